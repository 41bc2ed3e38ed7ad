"""Market data: a ``reqMktData`` line per subscribed leg and one per underlying, and
each ticker as the service's quote.

Bid and ask become None when IB sends -1, NaN, or a zero size. Delta is the
model's, else the mean of the bid and ask Greeks', else None (the rules then
compute it locally), and None too once IB's Greeks have stopped moving. Frozen
data (types 2 and 4) is never passed on: it is not fresh. Delayed data (3) is
used only when the settings allow it.

The types in use are said in one line, ``ib.market_data_types``, when the set of
them changes (at start: one line, not one per leg); each leg's at debug.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from ib_async import IB, Ticker

from brokers.ib.codes import DATA_TYPES, DELAYED, FROZEN_TYPES, LIVE
from brokers.ib.contracts import ContractsMixin
from brokers.ib.convert import _leg_text, _price, quote_of
from service.logs import get_logger
from service.ports import LegKey, LegUpdate
from service.settings import IbSettings

_log = get_logger("spreadwatch.ib")


class MarketDataMixin(ContractsMixin):
    def __init__(self, settings: IbSettings, ib: IB, now: Callable[[], datetime]) -> None:
        super().__init__(settings, ib, now)
        self._wanted: set[LegKey] = set()  # legs subscribed by the service
        self._tickers: dict[LegKey, Ticker] = {}
        self._stock_tickers: dict[str, Ticker] = {}
        self._spot: dict[str, float] = {}  # the underlyings' latest prices
        self._types: dict[LegKey, int] = {}  # the market data type each leg streams in
        self.refused: set[LegKey] = set()  # legs whose line IB refused (101, 354)
        self._greeks: dict[LegKey, tuple[Any, ...]] = {}  # the Greeks objects last seen
        self._greeks_at: dict[LegKey, datetime] = {}  # when they last changed
        self._greeks_stale = timedelta(seconds=settings.greeks_stale_after)

    def subscribe(self, leg: LegKey) -> None:
        self._wanted.add(leg)
        if self.ib.isConnected() and leg in self._contracts:
            self._open_line(leg)

    def unsubscribe(self, leg: LegKey) -> None:
        self._wanted.discard(leg)
        self._types.pop(leg, None)
        ticker = self._tickers.pop(leg, None)
        if ticker is not None:
            self._cancel_line(ticker)
        symbol = leg.underlying
        if symbol in self._stock_tickers and not any(w.underlying == symbol for w in self._wanted):
            self._cancel_line(self._stock_tickers.pop(symbol))

    def _open_line(self, leg: LegKey) -> None:
        """The leg's line, and its underlying's (one per underlying)."""
        if leg not in self._tickers:
            self._tickers[leg] = self.ib.reqMktData(self._contracts[leg], "", False, False)
        stock = self._stocks.get(leg.underlying)
        if stock is not None and leg.underlying not in self._stock_tickers:
            self._stock_tickers[leg.underlying] = self.ib.reqMktData(stock, "", False, False)

    def _close_lines(self) -> None:
        """Every line closed (after a reconnect or IB's 1101: the lines from before are
        gone, or not to be trusted), to be opened afresh."""
        for ticker in [*self._tickers.values(), *self._stock_tickers.values()]:
            with contextlib.suppress(Exception):
                self._cancel_line(ticker)
        self._tickers.clear()
        self._stock_tickers.clear()

    def _cancel_line(self, ticker: Ticker) -> None:
        """``cancelMktData`` for a line ib_async still knows: after a disconnect it has
        forgotten every request (``Wrapper.connectionClosed`` resets it) and would log
        "cancelMktData: No reqId found" for each line (ib_async's ``IB.cancelMktData``)."""
        known = ticker in self.ib.wrapper.ticker2ReqId["mktData"]
        if known and ticker.contract is not None and self.ib.isConnected():
            self.ib.cancelMktData(ticker.contract)

    def _on_tickers(self, tickers: set[Ticker]) -> None:
        if self._quotes is None or self._blind:
            return  # in a gap, ticks still on their way are from before it: not fresh
        now = self._now()
        out = []
        for t in tickers:
            con_id = t.contract.conId if t.contract is not None else 0
            symbol = self._stock_ids.get(con_id)
            if symbol is not None:
                self._spot_from(symbol, t)
                continue
            leg = self._legs.get(con_id)
            if leg is None or leg not in self._wanted:
                continue
            kind = t.marketDataType
            if self._types.get(leg) != kind:
                self._new_type(leg, kind)
            if kind in FROZEN_TYPES:
                continue  # frozen quotes are the last ones from the past: never fresh
            if kind == DELAYED and self.settings.market_data != "delayed":
                continue
            q = quote_of(t, now)
            greeks = (t.modelGreeks, t.bidGreeks, t.askGreeks)
            seen = self._greeks.get(leg)
            if seen is None or any(a is not b for a, b in zip(seen, greeks, strict=True)):
                self._greeks[leg] = greeks  # held, so a new object is never an old one's id
                self._greeks_at[leg] = now
            elif now - self._greeks_at[leg] > self._greeks_stale:
                q = q._replace(delta=None)  # IB's Greeks stopped moving: computed locally
            if q.underlying_price is None and symbol is None:
                q = q._replace(underlying_price=self._spot.get(leg.underlying))
            out.append(LegUpdate(leg, q))
        if out:
            self._quotes(out)

    def _new_type(self, leg: LegKey, kind: int) -> None:
        """A leg's market data type, at debug; the set of types in use, when it changes."""
        before = set(self._types.values())
        self._types[leg] = kind
        _log.debug("ib.market_data_type", leg=_leg_text(leg), type=DATA_TYPES.get(kind, kind))
        if set(self._types.values()) != before:
            _log.info(
                "ib.market_data_types",
                types=sorted(str(DATA_TYPES.get(k, k)) for k in set(self._types.values())),
                not_live=sorted(_leg_text(g) for g, k in self._types.items() if k != LIVE),
            )

    def _spot_from(self, symbol: str, t: Ticker) -> None:
        if t.marketDataType in FROZEN_TYPES:
            return
        bid, ask, last = _price(t.bid), _price(t.ask), _price(t.last)
        price = (bid + ask) / 2 if bid and ask and bid <= ask else last
        if price is not None and price > 0:
            self._spot[symbol] = float(price)
