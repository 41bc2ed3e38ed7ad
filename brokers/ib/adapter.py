"""Interactive Brokers behind the service's ports, on ib_async.

:class:`IbBroker` is the :class:`service.ports.Feed` and the
:class:`service.ports.OrderGateway` for IB Gateway or TWS (or
``spreadwatch fake-gateway``). It converts at the edge: ib_async's floats,
NaN and IB's sentinels become Decimals or None here and nowhere else.

- **Paper guard.** It refuses an account that is not a paper one (IB's paper
  ids start with ``DU``; advisors' with ``DF``) unless ``allow_live``.
- **Contracts** are qualified once per leg; conIds are kept (and given to the
  caller to store on the legs).
- **Market data.** ``reqMktData`` per subscribed leg. Bid and ask become None
  when IB sends -1, NaN, or a zero size. Delta is the model's, else the mean
  of the bid and ask Greeks', else None (the rules then compute it locally).
  Frozen data (types 2 and 4) is never passed on: it is not fresh. Delayed
  data (3) is used only when the settings allow it.
- **Orders** are closing combos: a BAG of the legs by conId, bought at a
  positive limit (a debit), ``orderRef`` = the store's order_ref. They are
  tracked by orderRef and permId, never by ib_async ``Trade`` objects (a
  reconnect replaces those). A fill is the BAG's execution (its legs' are
  not counted again).
- **Connection.** When the socket drops, every subscribed leg is sent as
  having no quote (so nothing acts on data from before the gap), then it
  reconnects with backoff, resubscribes, and sends the executions IB has for
  its orders (the store applies each once, by execution id).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from ib_async import IB, ComboLeg, Contract, LimitOrder, Option, Stock, Ticker, Trade
from tenacity import AsyncRetrying, retry_if_exception_type, wait_exponential_jitter

from rules.model import Quote
from service.errors import BrokerRefused, InputError
from service.logs import get_logger
from service.ports import (
    ComboOrder,
    EventSink,
    Execution,
    LegKey,
    LegUpdate,
    OrderEvent,
    QuoteSink,
)
from service.settings import IbSettings

_log = get_logger("spreadwatch.ib")

PAPER_PREFIXES = ("DU", "DF")
CONNECTIVITY_LOST, RESTORED_DATA_LOST, RESTORED_DATA_KEPT = 1100, 1101, 1102
REJECTED = 201
LINE_LIMIT, NOT_SUBSCRIBED = 101, 354
PACE_REQUESTS, PACE_WINDOW = 8, 0.2  # at most 8 requests in any 0.2 s
COMMISSION_WAIT = 2.0  # seconds a fill waits for its legs' commission reports
UNSET = 1e300  # IB's "no value" double is 1.7976931348623157e308
FROZEN = (2, 4)
DATA_TYPES = {1: "live", 2: "frozen", 3: "delayed", 4: "delayed frozen"}
DELAYED = 3
STATUS = {
    "PendingSubmit": "submitted",
    "PreSubmitted": "working",
    "Submitted": "working",
    "ApiPending": "submitted",
    "PendingCancel": "working",
    "Filled": "filled",
    "Cancelled": "cancelled",
    "ApiCancelled": "cancelled",
    "Inactive": "rejected",
}
# IB's messages worth a log event of their own (others go as "ib error")
NOTICES = {
    1100: "connectivity lost",
    1101: "connectivity restored, data lost",
    1102: "connectivity restored, data kept",
    10197: "competing live session",
    101: "market data line limit",
    354: "market data not subscribed",
    10167: "delayed market data",
    201: "order rejected",
    202: "order cancelled",
    399: "order held",
}


class NotPaper(InputError):
    """The account is a live one and live trading was not allowed."""


def _price(x: float | None) -> Decimal | None:
    """An IB price as a Decimal; None for NaN, infinities and IB's -1 ("none")."""
    if x is None or not math.isfinite(x) or x < 0:
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


def _commissions(fills: Sequence[Any], known: Sequence[Any] = ()) -> dict[str, Decimal]:
    """Each BAG execution's commission: the sum of its legs' reports (legs of the same
    order at the same time). ``known``: ib_async's own fills, where a report that came
    for an execution seen before is kept."""
    reports = {f.execution.execId: f.commissionReport for f in known}
    legs: dict[tuple[str, datetime], Decimal] = {}
    for f in fills:
        report = f.commissionReport
        if not (report and report.commission):
            report = reports.get(f.execution.execId, report)
        if f.contract.secType == "BAG" or report is None:
            continue
        amount = report.commission
        if amount is not None and math.isfinite(amount) and 0 <= amount < UNSET:
            key = (f.execution.orderRef, f.execution.time)
            legs[key] = legs.get(key, Decimal(0)) + Decimal(str(amount))
    return {
        f.execution.execId: legs.get((f.execution.orderRef, f.execution.time), Decimal(0))
        for f in fills
        if f.contract.secType == "BAG"
    }


def _with_commission(event: OrderEvent, commissions: dict[str, Decimal]) -> OrderEvent:
    execution = event.execution
    if execution is None or execution.exec_id not in commissions:
        return event
    return replace(event, execution=replace(execution, commission=commissions[execution.exec_id]))


def _leg_text(leg: LegKey) -> str:
    return f"{leg.underlying} {leg.expiry} {leg.right.value} {leg.strike}"


def quote_of(ticker: Ticker, now: datetime) -> Quote:
    """A leg's quote from an ib_async ticker: IB's sentinels as None."""
    bid, ask = _price(ticker.bid), _price(ticker.ask)
    if not (ticker.bidSize and ticker.bidSize > 0):
        bid = None
    if not (ticker.askSize and ticker.askSize > 0):
        ask = None
    return Quote(bid, ask, now, _delta(ticker), _underlying(ticker))


@dataclass(eq=False)
class _Held:
    """A BAG fill waiting for its legs' commission reports."""

    event: OrderEvent
    legs: int
    reports: int = 0
    commission: Decimal = Decimal(0)
    timer: asyncio.TimerHandle | None = None


@dataclass
class _Placed:
    """What is needed to modify or cancel an order: never an ib_async Trade."""

    order_id: int
    perm_id: int
    contract: Contract
    quantity: int
    limit: Decimal
    sequence: int = 0  # the adapter's count of orders placed, when this one was


class IbBroker:
    def __init__(
        self,
        settings: IbSettings,
        ib: IB | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.settings = settings
        self.ib = IB() if ib is None else ib
        # IB's pacing: 50 messages a second. ib_async throttles in bursts (45 a second by
        # default), and two bursts a second apart can land in one second at IB. Smaller
        # bursts, more often: at most 6 windows x 8 = 48 in any second, 40/s on average.
        self.ib.client.MaxRequests = PACE_REQUESTS
        self.ib.client.RequestsInterval = PACE_WINDOW  # type: ignore[assignment]  # a float
        self._now = now  # the time quotes are stamped with (a simulated clock in tests)
        self.account = settings.account
        self._contracts: dict[LegKey, Contract] = {}
        self._legs: dict[int, LegKey] = {}  # conId -> leg
        self._wanted: set[LegKey] = set()  # legs subscribed by the service
        self._tickers: dict[LegKey, Ticker] = {}
        self._stocks: dict[str, Contract] = {}  # underlying -> its stock contract
        self._stock_ids: dict[int, str] = {}  # conId -> underlying
        self._stock_tickers: dict[str, Ticker] = {}
        self._spot: dict[str, float] = {}  # the underlyings' latest prices
        self._types: dict[LegKey, int] = {}  # the market data type each leg streams in
        self.refused: set[LegKey] = set()  # legs whose line IB refused (101, 354)
        self._greeks: dict[LegKey, tuple[Any, ...]] = {}  # the Greeks objects last seen
        self._greeks_at: dict[LegKey, datetime] = {}  # when they last changed
        self._greeks_stale = timedelta(seconds=settings.greeks_stale_after)
        self._placed: dict[str, _Placed] = {}  # orderRef -> ids
        self._filled: dict[str, int] = {}  # orderRef -> spreads filled (from BAG executions)
        self._seen: set[str] = set()  # BAG execution ids passed on
        self._blind = False  # in a gap (1100, a dropped socket): ticks are not fresh
        self._ended: set[str] = set()  # orderRefs whose end (cancel, rejection) was passed on
        self._held: dict[str, list[_Held]] = {}  # orderRef -> fills waiting for commissions
        self._tasks: set[asyncio.Task[None]] = set()
        self._quotes: QuoteSink | None = None
        self._events: EventSink | None = None
        self.reconnects = 0
        self._closing = False
        self._sequence = 0  # orders placed so far
        self.ib.errorEvent += self._on_error
        self.ib.pendingTickersEvent += self._on_tickers
        self.ib.execDetailsEvent += self._on_execution
        self.ib.commissionReportEvent += self._on_commission
        self.ib.orderStatusEvent += self._on_status

    # Connection -----------------------------------------------------------------------

    async def connect(self) -> None:
        """Connect and check the account (the paper guard)."""
        s = self.settings
        await self.ib.connectAsync(s.host, s.port, clientId=s.client_id, timeout=s.timeout)
        accounts = self.ib.managedAccounts()
        account = s.account or (accounts[0] if len(accounts) == 1 else "")
        if not account or account not in accounts:
            self.ib.disconnect()
            raise InputError(
                f"ib.account: {s.account or '(unset)'}: the gateway manages "
                f"{', '.join(accounts) or 'no account'}; set ib.account to one of them"
            )
        if not account.startswith(PAPER_PREFIXES) and not s.allow_live:
            self.ib.disconnect()
            raise NotPaper(
                f"ib.account: {account} is not a paper account (paper ids start with DU): "
                "refusing to trade it; set ib.allow_live = true to allow a live account"
            )
        self.account = account
        self.ib.reqMarketDataType(DELAYED if s.market_data == "delayed" else 1)
        _log.info("ib connected", account=account, server_version=self.ib.client.serverVersion())

    async def qualify(self, legs: Sequence[LegKey]) -> dict[LegKey, int]:
        """Each leg's conId (qualified once, then kept)."""
        todo = [leg for leg in legs if leg not in self._contracts]
        if todo:
            asked = [
                Option(
                    leg.underlying,
                    f"{leg.expiry:%Y%m%d}",
                    float(leg.strike),
                    leg.right.value,
                    "SMART",
                    currency="USD",
                )
                for leg in todo
            ]
            symbols = sorted({leg.underlying for leg in todo} - set(self._stocks))
            stocks = [Stock(symbol, "SMART", "USD") for symbol in symbols]
            for stock in await self.ib.qualifyContractsAsync(*stocks):
                if isinstance(stock, Contract) and stock.conId:
                    self._stocks[stock.symbol] = stock
                    self._stock_ids[stock.conId] = stock.symbol
            done = await self.ib.qualifyContractsAsync(*asked)
            for leg, contract in zip(todo, done, strict=False):
                if not isinstance(contract, Contract) or not contract.conId:
                    raise InputError(f"{leg.underlying} {leg.expiry} {leg.right.value} "
                                     f"{leg.strike}: IB knows no such option")  # fmt: skip
                self._contracts[leg] = contract
                self._legs[contract.conId] = leg
        return {leg: self._contracts[leg].conId for leg in legs}

    async def run(self, quotes: QuoteSink, events: EventSink) -> None:
        """Stream until cancelled; reconnect with backoff after a dropped connection."""
        self._quotes, self._events = quotes, events
        while not self._closing:
            if not self.ib.isConnected():
                async for attempt in AsyncRetrying(
                    retry=retry_if_exception_type((OSError, ConnectionError, TimeoutError)),
                    wait=wait_exponential_jitter(multiplier=0.2, max=30.0),
                ):
                    with attempt:
                        await self.connect()
                self.reconnects += 1
                _log.info("ib reconnected", reconnects=self.reconnects)
                await self._resume(recheck=True)
            else:  # the first start: the manager reconciles the orders itself
                await self._resume(recheck=False)
            gone = asyncio.Event()
            self.ib.disconnectedEvent += gone.set
            try:
                await gone.wait()
            finally:
                self.ib.disconnectedEvent -= gone.set
            if not self._closing:
                self._gap("the connection to IB dropped")

    async def _resume(self, recheck: bool = True) -> None:
        """After a (re)connect: the legs' lines again, and the executions of our orders that
        happened while no one listened."""
        for leg in list(self._tickers):  # lines from before: closed, and opened afresh
            with contextlib.suppress(Exception):
                self.ib.cancelMktData(self._contracts[leg])
        for symbol in list(self._stock_tickers):
            with contextlib.suppress(Exception):
                self.ib.cancelMktData(self._stocks[symbol])
        self._tickers.clear()
        self._stock_tickers.clear()
        self._blind = False
        await self.qualify(list(self._wanted))
        for leg in list(self._wanted):
            self._open_line(leg)
        fills = await self.ib.reqExecutionsAsync()
        commissions = _commissions(fills, self.ib.fills())
        missed = [
            _with_commission(e, commissions)
            for f in fills
            if f.contract.secType == "BAG" and (e := self._fill_event(f)) is not None
        ]
        if missed and self._events is not None:
            self._events(missed)
        if recheck:
            await self._recheck_orders()

    async def _recheck_orders(self) -> None:
        """After a gap: an order of ours IB no longer works, and that did not fill, ended
        while no one listened (cancelled by IB, expired): said as cancelled."""
        # orders placed after this request may still sit in ib_async's send queue (it is
        # paced, first in first out): only those placed before it are judged
        cutoff = self._sequence
        working = {e.order_ref for e in await self.open_orders()}
        gone = [
            ref
            for ref, placed in self._placed.items()
            if placed.sequence <= cutoff
            and ref not in working
            and ref not in self._ended
            and self._filled.get(ref, 0) < placed.quantity
        ]
        if gone and self._events is not None:
            now = self._now()
            self._ended.update(gone)
            self._events(
                [
                    OrderEvent(ref, "cancelled", self._filled.get(ref, 0), 0, now,
                               reason="not working at IB after the reconnect")
                    for ref in gone
                ]
            )  # fmt: skip

    def _gap(self, why: str) -> None:
        """No leg has a usable quote until fresh data comes: said to the service, and
        whatever ticks were still on their way are dropped until then."""
        self._blind = True
        _log.warning("data stale", detail=why, legs=len(self._wanted))
        if self._quotes is not None and self._wanted:
            now = self._now()
            self._quotes([LegUpdate(leg, Quote(None, None, now)) for leg in self._wanted])

    def connected(self) -> bool:
        """Connected, and not in a gap IB announced (1100)."""
        return bool(self.ib.isConnected()) and not self._blind

    # Market data --------------------------------------------------------------------------

    def subscribe(self, leg: LegKey) -> None:
        self._wanted.add(leg)
        if self.ib.isConnected() and leg in self._contracts:
            self._open_line(leg)

    def unsubscribe(self, leg: LegKey) -> None:
        self._wanted.discard(leg)
        if leg in self._tickers and self.ib.isConnected():
            self.ib.cancelMktData(self._contracts[leg])
        self._tickers.pop(leg, None)
        symbol = leg.underlying
        if symbol in self._stock_tickers and not any(w.underlying == symbol for w in self._wanted):
            if self.ib.isConnected():
                self.ib.cancelMktData(self._stocks[symbol])
            del self._stock_tickers[symbol]

    def _open_line(self, leg: LegKey) -> None:
        """The leg's line, and its underlying's (one per underlying)."""
        if leg not in self._tickers:
            self._tickers[leg] = self.ib.reqMktData(self._contracts[leg], "", False, False)
        stock = self._stocks.get(leg.underlying)
        if stock is not None and leg.underlying not in self._stock_tickers:
            self._stock_tickers[leg.underlying] = self.ib.reqMktData(stock, "", False, False)

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
                self._types[leg] = kind
                _log.info("market data type", leg=_leg_text(leg), type=DATA_TYPES.get(kind, kind))
            if kind in FROZEN:
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

    def _spot_from(self, symbol: str, t: Ticker) -> None:
        if t.marketDataType in FROZEN:
            return
        bid, ask, last = _price(t.bid), _price(t.ask), _price(t.last)
        price = (bid + ask) / 2 if bid and ask and bid <= ask else last
        if price is not None and price > 0:
            self._spot[symbol] = float(price)

    def _on_error(self, req_id: int, code: int, message: str, *rest: Any) -> None:
        what = NOTICES.get(code)
        if code == CONNECTIVITY_LOST:
            self._gap("IB lost its connectivity (1100)")
        elif code == RESTORED_DATA_LOST:  # the lines again
            self._blind = False
            task = asyncio.get_running_loop().create_task(self._resume(recheck=True))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        elif code == RESTORED_DATA_KEPT:  # it flows again
            self._blind = False
        leg = None
        if code in (LINE_LIMIT, NOT_SUBSCRIBED):  # a line refused: which leg, said once
            contract = self.ib.wrapper._reqId2Contract.get(req_id)
            leg = self._legs.get(contract.conId) if contract is not None else None
            if leg is not None:
                self.refused.add(leg)
        log = _log.warning if what is not None else _log.info
        log(
            what or "ib message",
            code=code,
            req_id=req_id,
            detail=message,
            leg=None if leg is None else _leg_text(leg),
            open_lines=len(self._tickers) + len(self._stock_tickers),
        )
        # An order's error reaches the service through its status: ib_async marks the
        # trade cancelled and logs the error on it (see _on_status).

    # Orders ---------------------------------------------------------------------------------

    def _bag(self, order: ComboOrder) -> Contract:
        legs = []
        for combo_leg in order.legs:
            contract = self._contracts[combo_leg.leg]
            legs.append(
                ComboLeg(
                    conId=contract.conId,
                    ratio=combo_leg.ratio,
                    action=combo_leg.action.value,
                    exchange="SMART",
                )
            )
        first = order.legs[0].leg
        return Contract(
            secType="BAG", symbol=first.underlying, exchange="SMART", currency="USD",
            comboLegs=legs,
        )  # fmt: skip

    async def place(self, order: ComboOrder) -> None:
        await self.qualify([leg.leg for leg in order.legs])
        contract = self._bag(order)
        ib_order = LimitOrder(
            "BUY", order.quantity, float(order.limit), orderRef=order.order_ref, tif="DAY",
            account=self.account,
        )  # fmt: skip
        trade = self.ib.placeOrder(contract, ib_order)
        self._sequence += 1
        self._placed[order.order_ref] = _Placed(
            trade.order.orderId,
            trade.order.permId,
            contract,
            order.quantity,
            order.limit,
            self._sequence,
        )

    async def modify(self, order_ref: str, limit: Decimal) -> None:
        placed = self._placed[order_ref]
        ib_order = LimitOrder(
            "BUY", placed.quantity, float(limit), orderRef=order_ref, tif="DAY",
            account=self.account, orderId=placed.order_id,
        )  # fmt: skip
        try:
            self.ib.placeOrder(placed.contract, ib_order)
        except AssertionError as exc:  # ib_async asserts the order is not done yet
            raise BrokerRefused(f"order {order_ref} is done: not modified") from exc
        placed.limit = limit

    async def cancel(self, order_ref: str) -> None:
        placed = self._placed[order_ref]
        self.ib.cancelOrder(LimitOrder("BUY", placed.quantity, float(placed.limit),
                                       orderId=placed.order_id))  # fmt: skip

    async def positions(self) -> dict[LegKey, int]:
        out: dict[LegKey, int] = {}
        for p in self.ib.positions(self.account):
            leg = self._legs.get(p.contract.conId)
            if leg is not None and p.position:
                out[leg] = int(p.position)
        return out

    async def executions(self) -> list[Execution]:
        """Today's executions of our orders, one per BAG fill."""
        fills = await self.ib.reqExecutionsAsync()
        commissions = _commissions(fills, self.ib.fills())
        out = []
        for f in fills:
            if f.contract.secType != "BAG" or not f.execution.orderRef:
                continue
            price = _price(f.execution.price)
            out.append(
                Execution(
                    exec_id=f.execution.execId,
                    order_ref=f.execution.orderRef,
                    quantity=int(f.execution.shares),
                    price=price if price is not None else Decimal(0),
                    commission=commissions.get(f.execution.execId, Decimal(0)),
                    time=f.execution.time,
                )
            )
        return out

    async def open_orders(self) -> list[OrderEvent]:
        trades = await self.ib.reqAllOpenOrdersAsync()
        now = self._now()
        out = []
        for t in trades:
            ref = t.order.orderRef
            if not ref:
                continue
            o, st = t.order, t.orderStatus
            if ref not in self._placed:  # ours from before a restart: adopt the ids
                self._placed[ref] = _Placed(
                    o.orderId, o.permId, t.contract, int(o.totalQuantity), Decimal(str(o.lmtPrice))
                )
            status = STATUS.get(st.status, "working")
            out.append(OrderEvent(ref, status, int(st.filled), int(st.remaining), now))
        return out

    def _on_execution(self, trade: Trade, fill: Any) -> None:
        """A BAG execution is held until its legs' commission reports are in (or
        COMMISSION_WAIT has passed), then passed on with their total."""
        if fill.contract.secType != "BAG" or self._events is None:
            return  # a leg's execution: the BAG's says the spreads
        event = self._fill_event(fill)
        if event is None or event.execution is None:
            return
        legs = len(fill.contract.comboLegs or []) or len(trade.contract.comboLegs or [])
        held = _Held(event, max(legs, 1))
        self._held.setdefault(event.order_ref, []).append(held)
        held.timer = asyncio.get_running_loop().call_later(
            COMMISSION_WAIT, self._release, event.order_ref, held
        )

    def _fill_event(self, fill: Any) -> OrderEvent | None:
        """The service's event for a BAG execution seen for the first time (live or in
        reqExecutions after a gap), None for one seen before or not ours."""
        ex = fill.execution
        ref, price = ex.orderRef, _price(ex.price)
        if not ref or price is None or ex.execId in self._seen:
            return None
        self._seen.add(ex.execId)
        n = int(ex.shares)
        total = self._filled.get(ref, 0) + n
        self._filled[ref] = total
        placed = self._placed.get(ref)
        left = 0 if placed is None else max(placed.quantity - total, 0)
        status = "filled" if placed is not None and left == 0 else "partially_filled"
        execution = Execution(ex.execId, ref, n, price, Decimal(0), ex.time)
        return OrderEvent(ref, status, total, left, ex.time, execution=execution)

    def _on_commission(self, trade: Trade, fill: Any, report: Any) -> None:
        ref = fill.execution.orderRef
        waiting = [h for h in self._held.get(ref, ()) if h.reports < h.legs]
        if fill.contract.secType == "BAG" or not waiting:
            return
        held = waiting[0]  # the oldest fill of the order still short of reports
        amount = report.commission
        if amount is not None and math.isfinite(amount) and 0 <= amount < UNSET:
            held.commission += Decimal(str(amount))
        held.reports += 1
        if held.reports >= held.legs:
            self._release(ref, held)

    def _release(self, ref: str, held: _Held) -> None:
        queue = self._held.get(ref, [])
        if held not in queue:
            return  # passed on already
        queue.remove(held)
        if not queue:
            del self._held[ref]
        if held.timer is not None:
            held.timer.cancel()
        execution = held.event.execution
        assert execution is not None
        event = replace(held.event, execution=replace(execution, commission=held.commission))
        if self._events is not None:
            self._events([event])

    def _on_status(self, trade: Trade) -> None:
        ref = trade.order.orderRef
        if not ref or self._events is None:
            return
        if ref in self._placed and trade.order.permId:
            self._placed[ref].perm_id = trade.order.permId
        status = STATUS.get(trade.orderStatus.status)
        reason = ""
        last = trade.log[-1] if trade.log else None
        if status == "cancelled" and last is not None and last.errorCode == REJECTED:
            # ib_async's text: "Error 201, reqId 5: <IB's message>[, contract: ...]"
            text = last.message.split(": ", 1)[-1].split(", contract")[0]
            status, reason = "rejected", f"{last.errorCode}: {text}"
        if status in ("cancelled", "rejected"):
            if ref in self._ended:
                return  # IB says an end more than once (an error, then the status)
            self._ended.add(ref)
        if status in ("cancelled", "working", "rejected"):
            st, o = trade.orderStatus, trade.order
            event = OrderEvent(
                ref, status, int(st.filled), int(st.remaining), self._now(), reason=reason
            )
            self._events(
                [replace(event, broker_order_id=o.orderId or None, perm_id=o.permId or None)]
            )

    async def close(self) -> None:
        """Disconnect for good: ``run`` ends instead of reconnecting."""
        self._closing = True
        with contextlib.suppress(Exception):
            self.ib.disconnect()
