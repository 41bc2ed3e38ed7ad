"""The tests' builders, in one place: positions, quotes and exchange times for rules/;
the store's positions, intents and fills; the replay's input files; the loop's scenario.

Rules' builders: dates are chosen so that DTEs are what a test says: ``EXPIRY`` is a Friday and
``at_dte(n)`` is 11:00 New York time ``n`` calendar days before it. Quotes of a
vertical are built from the debit a test wants, so the mid (or natural) debit
is exact in Decimal.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

from brokers.sim.market import Move, SimMarket, Underlying
from rules.books import BookPolicy
from rules.clock import MarketTime
from rules.machine import Close, CloseSent, ExitReason, ExitState, Filled, apply, open_state
from rules.model import Leg, Position, Quote, Right, Side, Strategy
from rules.pricing import RepriceSchedule
from service.ports import CloseIntent, Fill, Store, order_ref
from tests.support import ROOT

NY = ZoneInfo("America/New_York")
EXPIRY = date(2025, 6, 20)  # a Friday
HALF_SPREAD = Decimal("0.01")


def d(text: str) -> Decimal:
    return Decimal(text)


def opened_before(days: int, expiry: date = EXPIRY) -> datetime:
    """10:00 New York time ``days`` calendar days before ``expiry``: initial DTE = ``days``."""
    return datetime.combine(expiry - timedelta(days=days), time(10, 0), tzinfo=NY)


def at_dte(dte: int, expiry: date = EXPIRY, *, regular_hours: bool = True) -> MarketTime:
    """11:00 New York time on the session ``dte`` calendar days before ``expiry``."""
    session = expiry - timedelta(days=dte)
    return MarketTime(datetime.combine(session, time(11, 0), tzinfo=NY), session, regular_hours)


def _vertical(
    right: Right,
    contracts: int,
    credit: str | Decimal,
    short: str,
    long: str,
    expiry: date,
    opened_at: datetime | None,
    underlying: str,
    book: str,
) -> Position:
    return Position(
        id=f"{'put' if right is Right.PUT else 'call'}-1",
        book=book,
        underlying=underlying,
        strategy=Strategy.PUT_CREDIT if right is Right.PUT else Strategy.CALL_CREDIT,
        legs=(
            Leg(right, Decimal(short), expiry, Side.SHORT),
            Leg(right, Decimal(long), expiry, Side.LONG),
        ),
        contracts=contracts,
        entry_credit=Decimal(credit),
        opened_at=opened_before(45, expiry) if opened_at is None else opened_at,
    )


def put_spread(
    contracts: int = 10,
    credit: str | Decimal = "1.00",
    short: str = "400",
    long: str = "395",
    expiry: date = EXPIRY,
    opened_at: datetime | None = None,
    *,
    underlying: str = "SPY",
    book: str = "PRIMARY",
) -> Position:
    """A put credit vertical; legs are (short put, long put). Opened 45 DTE by default."""
    return _vertical(Right.PUT, contracts, credit, short, long, expiry, opened_at, underlying, book)


def call_spread(
    contracts: int = 10,
    credit: str | Decimal = "1.00",
    short: str = "450",
    long: str = "455",
    expiry: date = EXPIRY,
    opened_at: datetime | None = None,
) -> Position:
    """A call credit vertical; legs are (short call, long call). Opened 45 DTE by default."""
    return _vertical(
        Right.CALL, contracts, credit, short, long, expiry, opened_at, "SPY", "PRIMARY"
    )


def iron_condor(contracts: int = 10, credit: str | Decimal = "2.00") -> Position:
    """Legs: long put 395, short put 400, short call 450, long call 455. Opened 45 DTE."""
    return Position(
        id="ic-1",
        book="PRIMARY",
        underlying="SPY",
        strategy=Strategy.IRON_CONDOR,
        legs=(
            Leg(Right.PUT, Decimal("395"), EXPIRY, Side.LONG),
            Leg(Right.PUT, Decimal("400"), EXPIRY, Side.SHORT),
            Leg(Right.CALL, Decimal("450"), EXPIRY, Side.SHORT),
            Leg(Right.CALL, Decimal("455"), EXPIRY, Side.LONG),
        ),
        contracts=contracts,
        entry_credit=Decimal(credit),
        opened_at=opened_before(45),
    )


def quote(
    mid: str | Decimal,
    ts: datetime,
    delta: float | None = None,
    underlying_price: float | None = None,
) -> Quote:
    """A valid quote one cent either side of ``mid``."""
    m = Decimal(mid)
    return Quote(m - HALF_SPREAD, m + HALF_SPREAD, ts, delta, underlying_price)


def vertical_quotes(
    debit: str | Decimal,
    ts: datetime,
    *,
    long_mid: str = "0.20",
    short_delta: float | None = -0.10,
    long_delta: float | None = -0.05,
) -> list[Quote]:
    """(short, long) quotes whose mid debit is exactly ``debit``; natural is ``debit`` + 0.02."""
    short_mid = Decimal(debit) + Decimal(long_mid)
    return [quote(short_mid, ts, short_delta), quote(long_mid, ts, long_delta)]


def state_of(position: Position, book: BookPolicy | None = None) -> ExitState:
    return open_state(position, BookPolicy() if book is None else book)


def filled(state: ExitState, close: Close) -> ExitState:
    """The state after ``close`` was sent and filled completely."""
    state = apply(state, CloseSent(close))
    return apply(state, Filled(close.contracts))


# Positions the store's and the loop's tests use ----------------------------------------

OPENED = datetime(2027, 3, 1, 15, 0, tzinfo=UTC)  # 10:00 New York
STORE_EXPIRY = date(2027, 4, 16)  # 46 days after the session of 2027-03-01


def vertical(pid: str = "P1", contracts: int = 10, credit: str = "1.00") -> Position:
    return Position(
        id=pid,
        book="PRIMARY",
        underlying="SPY",
        strategy=Strategy.PUT_CREDIT,
        legs=(
            Leg(Right.PUT, Decimal("450"), STORE_EXPIRY, Side.SHORT),
            Leg(Right.PUT, Decimal("445"), STORE_EXPIRY, Side.LONG),
        ),
        contracts=contracts,
        entry_credit=Decimal(credit),
        opened_at=OPENED,
    )


def condor(pid: str = "C1") -> Position:
    return Position(
        id=pid,
        book="INCOME_POP",
        underlying="QQQ",
        strategy=Strategy.IRON_CONDOR,
        legs=(
            Leg(Right.PUT, Decimal("395.5"), STORE_EXPIRY, Side.LONG),
            Leg(Right.PUT, Decimal("400.5"), STORE_EXPIRY, Side.SHORT),
            Leg(Right.CALL, Decimal("450"), STORE_EXPIRY, Side.SHORT),
            Leg(Right.CALL, Decimal("455"), STORE_EXPIRY, Side.LONG),
        ),
        contracts=4,
        entry_credit=Decimal("2.15"),
        opened_at=OPENED,
        multiplier=100,
    )


# What the store's tests write ----------------------------------------------------------


def intent(
    pid: str = "P1", quantity: int = 4, stage: int | None = 0, reason: str = "profit_target"
) -> CloseIntent:
    return CloseIntent(
        order_ref=order_ref(pid, stage, 1),
        position_id=pid,
        stage=stage,
        attempt=1,
        reason=reason,
        label="50% profit target" if reason == "profit_target" else "loss stop",
        target=Decimal("0.50") if reason == "profit_target" else None,
        quantity=quantity,
        limit_price=Decimal("0.50"),
        quotes={"legs": [{"bid": "0.61", "ask": "0.63"}, {"bid": "0.11", "ask": "0.13"}]},
    )


PROFIT_CLOSE = Close(
    contracts=4,
    reason=ExitReason.PROFIT_TARGET,
    label="50% profit target",
    target=Decimal("0.50"),
    tranche=0,
    debit=Decimal("0.48"),
    pnl=Decimal("208.00"),
    pct_of_max=Decimal("0.52"),
    triggers=(ExitReason.PROFIT_TARGET,),
)


def fill(exec_id: str, quantity: int, price: str = "0.50", order_ref: str = "P1:0:1") -> Fill:
    return Fill(
        exec_id=exec_id,
        order_ref=order_ref,
        quantity=quantity,
        price=Decimal(price),
        time=OPENED + timedelta(days=3),
        commission=Decimal("1.30"),
    )


async def three_fills(store: Store) -> None:
    """P1 (10 at 1.00, x100): 4 at 0.50 less 1.30 on 2027-03-04 (ET); 6 at 1.50 (a loss
    stop) with no commission said, at 22:30 ET that day (the next day in UTC); C1 (4 at
    2.15, x100): 1 at 0.45 less 1.0051 on 2027-03-05."""
    await store.import_positions([vertical("P1"), condor("C1")], "DU1")
    await store.record_intent(intent("P1", quantity=4))
    await store.apply_fill(fill("E1", 4, "0.50"))
    await store.record_intent(intent("P1", quantity=6, stage=None, reason="loss_stop"))
    stop = fill("E2", 6, "1.50", order_ref="P1:stop:1")
    await store.apply_fill(replace(stop, commission=None, time=stop.time + timedelta(hours=12.5)))
    await store.record_intent(intent("C1", quantity=1))
    odd = fill("E3", 1, "0.45", order_ref="C1:0:1")
    await store.apply_fill(replace(odd, commission=Decimal("1.0051"), time=odd.time + timedelta(1)))


# The loop's scenario: the 450/445 put spread sold at 0.80, a selloff ------------------

LOOP_T0 = datetime(2027, 3, 2, 15, 0, tzinfo=UTC)  # Tuesday 10:00 New York
LOOP_POSITION = replace(vertical(), entry_credit=Decimal("0.80"))  # SPY 450/445 P x10
LOOP_SCHEDULE = RepriceSchedule(
    steps=4, interval=timedelta(seconds=2), stop_interval=timedelta(seconds=1)
)
# beside it: SPY 440/435 P x5 at 0.80 (the selloff takes it past its loss stop too)
LOOP_BESIDE = replace(
    LOOP_POSITION,
    id="P2",
    contracts=5,
    legs=tuple(replace(leg, strike=leg.strike - 10) for leg in LOOP_POSITION.legs),
)
SELLOFF = Move("selloff", LOOP_T0 + timedelta(minutes=1), 0.05, timedelta(minutes=5))


def market() -> SimMarket:
    return SimMarket([Underlying("SPY", 470.0, vol=0.15, moves=[SELLOFF])], LOOP_T0, seed=3)


# The replay's input files --------------------------------------------------------------

HEADER = "ts,underlying,expiry,right,strike,bid,ask,delta,underlying_price"

PUT_SPREAD = """
[[positions]]
id = "{id}"
book = "{book}"
underlying = "SPY"
strategy = "put_credit"
contracts = {contracts}
entry_credit = {credit}
opened_at = "{opened_at}"
legs = [
  {{ right = "P", strike = 450, expiry = "{expiry}", side = "short" }},
  {{ right = "P", strike = 445, expiry = "{expiry}", side = "long" }},
]
"""


def put_spread_toml(
    id: str = "P1",
    book: str = "PRIMARY",
    contracts: int = 10,
    credit: str = "1.00",
    opened_at: str = "2027-03-01T10:00:00-05:00",
    expiry: str = "2027-04-16",
) -> str:
    """A put credit vertical as a record of positions.toml."""
    return PUT_SPREAD.format(
        id=id, book=book, contracts=contracts, credit=credit, opened_at=opened_at, expiry=expiry
    )


def tick(ts: str, strike: int, bid: str, ask: str, delta: str = "", spot: str = "460") -> str:
    return f"{ts},SPY,2027-04-16,P,{strike},{bid},{ask},{delta},{spot}"


def generate(out: Path, seed: int, updates: int, *, no_delta: bool = False) -> Path:
    """A seeded benchmark stream (benchmarks/generate.py) in ``out``."""
    args = [sys.executable, str(ROOT / "benchmarks" / "generate.py"), "--out", str(out)]
    args += ["--seed", str(seed), "--updates", str(updates), "--positions", "120"]
    args += ["--underlyings", "8", "--days", "5"] + (["--no-delta"] if no_delta else [])
    subprocess.run(args, check=True, capture_output=True)
    return out
