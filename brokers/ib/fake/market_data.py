"""The fake gateway's market data: ``reqMarketDataType``, ``reqMktData`` lines (live,
delayed or frozen; the line limit) and ``cancelMktData``, and on each market step
the quotes and ticks each line streams."""

from __future__ import annotations

import math
from decimal import Decimal

from brokers.ib.codes import (
    DELAYED,
    DELAYED_DATA,
    DELAYED_FROZEN,
    FROZEN,
    LINE_LIMIT,
    LIVE,
    NEEDS_SUBSCRIPTION,
    NOT_SUBSCRIBED,
)
from brokers.ib.fake.base import Session
from brokers.ib.fake.instrument import Instrument
from brokers.ib.fake.orders import OrdersMixin
from brokers.ib.fake.script import Script
from brokers.sim.market import SimMarket
from rules.clock import market_time
from service.ports import Clock, LegKey

SIZE = 10  # contracts quoted each side
CENT = Decimal("0.01")
NOT_COMPUTED = -2.0  # IB's "not computed" for a Greek

# tick types (https://interactivebrokers.github.io/tws-api/tick_types.html)
BID, ASK, LAST = 1, 2, 4
BID_SIZE, ASK_SIZE = 0, 3
BID_OPTION, ASK_OPTION, MODEL_OPTION = 10, 11, 13
DELAYED_TICK = {  # each live tick type's delayed one
    BID: 66,
    ASK: 67,
    LAST: 68,
    BID_SIZE: 69,
    ASK_SIZE: 70,
    BID_OPTION: 80,
    ASK_OPTION: 81,
    MODEL_OPTION: 83,
}


class MarketDataMixin(OrdersMixin):
    def __init__(self, market: SimMarket, clock: Clock, *, account: str, line_limit: int) -> None:
        super().__init__(market, clock, account=account, line_limit=line_limit)
        self.delayed_only = False
        self._paused = False  # after 1100: no market data until 1101/1102
        self.options_farm_down = False  # after 2103 for usopt: no option quotes until 2104
        self.frozen = False  # fault: lines open as frozen data (type 2)
        self.greeks = True  # False: option Greeks are no longer sent
        self.bad_quotes = ""  # fault: "-1" or "nan" sent for every option bid and ask
        self._leg_lines: dict[LegKey, int] = {}  # subscribers per option leg
        self.unsubscribed: frozenset[str] = frozenset()  # fault: no data for their options
        self.script: Script | None = None  # --script: moves of the market at given times

    def _tick(self, kind: int) -> int:
        """The tick type ``kind`` as sent now: its delayed one when only delayed data is on."""
        return DELAYED_TICK[kind] if self.delayed_only else kind

    def _market_data_type(self, s: Session, fields: list[str]) -> None:
        s.data_type = int(fields[2])

    def _market_data(self, s: Session, fields: list[str]) -> None:
        req_id = int(fields[2])
        ins = self._describe(fields, 3)
        if ins is None:
            s.no_security(req_id)
            return
        lines = sum(len(o.lines) for o in self._sessions)
        if lines >= self.line_limit:
            s.error(req_id, LINE_LIMIT, f"Max number of tickers has been reached "
                    f"({self.line_limit})")  # fmt: skip
            return
        if ins.sec_type == "OPT" and ins.leg.underlying in self.unsubscribed:
            # (IB's words, as a paper account without an options data subscription hears
            # them; the line is not opened)
            s.error(req_id, NEEDS_SUBSCRIPTION, "Requested market data requires additional "
                    "subscription for API. See link in 'Market Data Connections' dialog for "
                    f"more details.{ins.leg.underlying} OPRA/TOP/ALL")  # fmt: skip
            return
        if self.delayed_only:
            if s.data_type in (LIVE, FROZEN):
                s.error(req_id, NOT_SUBSCRIBED, "Requested market data is not subscribed. "
                        "Delayed market data is available.")  # fmt: skip
                return
            s.error(req_id, DELAYED_DATA, "Requested market data is not subscribed. Displaying "
                    "delayed market data.")  # fmt: skip
        s.lines[req_id] = ins
        # the line's parameters, as IB sends them first for each line: its minimum tick,
        # its BBO exchange's code, its snapshot permissions (TWS API, "tickReqParams")
        s.send(81, req_id, 0.01, "9c0001", 3)
        kind = DELAYED if self.delayed_only else LIVE
        if self.frozen:  # the last quotes IB has, e.g. outside market hours
            kind = DELAYED_FROZEN if self.delayed_only else FROZEN
        s.send(58, 1, req_id, kind)
        if ins.sec_type == "OPT":
            leg = ins.leg
            if not self._leg_lines.get(leg):
                self.market.subscribe(leg)
            self._leg_lines[leg] = self._leg_lines.get(leg, 0) + 1
            self._quote_option(s, req_id, ins)
        else:
            self._quote_stock(s, req_id, ins)
        if fields[-3] == "1":  # a snapshot: what there is now, its end, and no line
            s.send(57, 1, req_id)  # tickSnapshotEnd (TWS API, "Top Market Data": snapshots)
            self._cancel_line(s, req_id)

    def _cancel_market_data(self, s: Session, fields: list[str]) -> None:
        self._cancel_line(s, int(fields[2]))

    def _cancel_line(self, s: Session, req_id: int) -> None:
        ins = s.lines.pop(req_id, None)
        for key in [k for k in s.ticked if k[0] == req_id]:
            del s.ticked[key]
        if ins is None or ins.sec_type != "OPT":
            return
        leg = ins.leg
        self._leg_lines[leg] -= 1
        if not self._leg_lines[leg]:
            del self._leg_lines[leg]
            self.market.unsubscribe(leg)

    def tick(self) -> None:
        """Move the market to the clock's now and send each line what changed."""
        now = self.clock.now()
        if self.script is not None:
            self.script.play(self.market, now)
        stepped = self.market.step(now)
        if market_time(now).regular_hours:  # (options trade then only: no fill outside them)
            self._at_the_open()
            self._relay(self.broker.trade(stepped, now))
        updates = {u.leg: u for u in stepped}
        if self._paused:
            return
        for s in list(self._sessions):
            for req_id, ins in s.lines.items():
                if ins.sec_type == "STK":
                    self._quote_stock(s, req_id, ins)
                elif ins.leg in updates:
                    self._quote_option(s, req_id, ins)

    def _quote_option(self, s: Session, req_id: int, ins: Instrument) -> None:
        if not market_time(self.market.now).regular_hours and not self.frozen:
            return  # options trade in regular hours only: IB streams no live quotes then
        if self.options_farm_down:
            return
        q = self.market.quote(ins.leg, self.market.now)
        bad = {"-1": -1.0, "nan": math.nan}.get(self.bad_quotes)
        bid, ask = (bad, bad) if bad is not None else (q.bid, q.ask)
        for kind, price in ((self._tick(BID), bid), (self._tick(ASK), ask)):
            s.tick(req_id, kind, price, 1, 6, req_id, kind, price, SIZE, 0)
        for kind in (self._tick(BID_SIZE), self._tick(ASK_SIZE)):  # IB also says the sizes
            s.tick(req_id, kind, SIZE, 2, 6, req_id, kind, SIZE)  # on their own
        mid = (q.bid + q.ask) / 2 if q.bid is not None and q.ask is not None else None
        under = -1.0 if q.underlying_price is None else q.underlying_price
        ticks = (self._tick(BID_OPTION), self._tick(ASK_OPTION), self._tick(MODEL_OPTION))
        # IB's computations: the bid's and the ask's at the volatility each price implies,
        # the model's at its own (with the mid as its price); a value
        # IB cannot compute is -1 (implied volatility) or -2 (the Greeks)
        sides = ((ticks[0], q.bid), (ticks[1], q.ask), (ticks[2], None))
        for tick, price in sides if self.greeks else ():
            at = None if price is None else float(price)
            done = self.market.computation(ins.leg, self.market.now, at)
            iv, delta, gamma, vega, theta = (-1.0, *(NOT_COMPUTED,) * 4) if done is None else done
            shown = mid if price is None else price
            values = (round(iv, 6), round(delta, 6), -1.0 if shown is None else shown, 0.0,
                      round(gamma, 6), round(vega, 6), round(theta, 6), under)  # fmt: skip
            s.tick(req_id, tick, values, 21, req_id, tick, 1, *values)

    def _quote_stock(self, s: Session, req_id: int, ins: Instrument) -> None:
        spot = Decimal(str(round(self.market.spot(ins.symbol), 2)))
        for kind, price in ((BID, spot - CENT), (ASK, spot + CENT), (LAST, spot)):
            s.tick(req_id, self._tick(kind), price, 1, 6, req_id, self._tick(kind), price, 100, 0)
