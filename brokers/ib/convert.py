"""Pure conversions at the IB edge: ib_async's floats, NaN and IB's sentinels
become Decimals or None here and nowhere else."""

from __future__ import annotations

import math
from datetime import date, datetime
from decimal import Decimal

from ib_async import Contract, Ticker

from rules.model import Quote, Right
from service.ports import LegKey, OrderStatus

UNSET = 1e300  # IB's "no value" double is 1.7976931348623157e308
# Every status ib_async can give an order (``ib_async/order.py``, ``OrderStatus``): IB's
# (TWS API "Possible Order States") and ib_async's own (ValidationError, ApiUpdate).
# Inactive is not final: IB says it of orders inactive for now (brokers.ib.verdicts).
STATUS: dict[str, OrderStatus] = {
    "PendingSubmit": OrderStatus.SUBMITTED,
    "ApiPending": OrderStatus.SUBMITTED,
    "PreSubmitted": OrderStatus.WORKING,
    "Submitted": OrderStatus.WORKING,
    "ApiUpdate": OrderStatus.WORKING,
    "ValidationError": OrderStatus.WORKING,  # a warning: the order works as it did
    "PendingCancel": OrderStatus.WORKING,
    "Inactive": OrderStatus.SUBMITTED,  # at IB, not working for now
    "Filled": OrderStatus.FILLED,
    "Cancelled": OrderStatus.CANCELLED,
    "ApiCancelled": OrderStatus.CANCELLED,
}


def _price(x: float | None) -> Decimal | None:
    """An IB price as a Decimal; None for NaN, infinities and IB's -1 ("none")."""
    if x is None or not math.isfinite(x) or x < 0:
        return None
    return Decimal(str(x))


def _commission(x: float | None) -> Decimal | None:
    """A commission report's amount as a Decimal; None for NaN and IB's "no value"."""
    if x is None or not math.isfinite(x) or not 0 <= x < UNSET:
        return None
    return Decimal(str(x))


def _delta(ticker: Ticker) -> float | None:
    """The model delta; else the mean of the bid and ask Greeks' deltas; None otherwise."""
    model = ticker.modelGreeks
    if model is not None and model.delta is not None and math.isfinite(model.delta):
        return model.delta
    sides = [g.delta for g in (ticker.bidGreeks, ticker.askGreeks) if g is not None]
    usable = [d for d in sides if d is not None and math.isfinite(d) and -1 <= d <= 1]
    return sum(usable) / len(usable) if len(usable) == 2 else None


def _underlying(ticker: Ticker) -> float | None:
    for g in (ticker.modelGreeks, ticker.bidGreeks, ticker.askGreeks):
        if (
            g is not None
            and g.undPrice is not None
            and math.isfinite(g.undPrice)
            and g.undPrice > 0
        ):
            return float(g.undPrice)
    return None


def quote_of(ticker: Ticker, now: datetime) -> Quote:
    """A leg's quote from an ib_async ticker: IB's sentinels as None."""
    bid, ask = _price(ticker.bid), _price(ticker.ask)
    if not (ticker.bidSize and ticker.bidSize > 0):
        bid = None
    if not (ticker.askSize and ticker.askSize > 0):
        ask = None
    return Quote(bid, ask, now, _delta(ticker), _underlying(ticker))


def _leg_text(leg: LegKey) -> str:
    return f"{leg.underlying} {leg.expiry} {leg.right.value} {leg.strike}"


def leg_of(contract: Contract) -> LegKey | None:
    """An option contract as our leg (IB's expiry is YYYYMMDD, its right P/C or PUT/CALL);
    None for a contract that is not one."""
    expiry = contract.lastTradeDateOrContractMonth[:8]
    if contract.secType != "OPT" or len(expiry) != 8 or contract.right[:1] not in ("P", "C"):
        return None
    return LegKey(
        contract.symbol,
        date(int(expiry[:4]), int(expiry[4:6]), int(expiry[6:])),
        Right(contract.right[:1]),
        Decimal(str(contract.strike)).normalize(),
    )


def multiplier_of(contract: Contract) -> int:
    """The contract's multiplier (IB sends it as text; US equity options: 100)."""
    try:
        return int(Decimal(contract.multiplier or "100"))
    except ArithmeticError:
        return 100
