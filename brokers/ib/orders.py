"""Orders: closing combos placed, repriced and cancelled; their executions,
commissions and statuses passed on; open orders and positions.

A close is a BAG of the legs by conId, bought at a positive limit (a debit),
``orderRef`` = the store's order_ref. Orders are tracked by orderRef and permId,
never by ib_async ``Trade`` objects (a reconnect replaces those). A fill is the
BAG's execution (its legs' are not counted again), passed on once by execution
id with the total of its legs' commission reports. A status, and the error IB sent
with it, are judged by :mod:`brokers.ib.verdicts` (IB's warnings, errors, Inactive).
Modify and cancel go through the order ib_async knows (by client and order id).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from ib_async import IB, Contract, LimitOrder, Trade

from brokers.ib.contracts import ContractsMixin
from brokers.ib.convert import STATUS, _commission, _price
from brokers.ib.verdicts import INACTIVE, judge
from service.errors import BrokerRefused
from service.logs import get_logger
from service.ports import ComboOrder, Execution, LegKey, OrderEvent, OrderStatus
from service.settings import IbSettings

_log = get_logger("spreadwatch.ib")

COMMISSION_WAIT = 2.0  # seconds a fill waits for its legs' commission reports


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
        amount = _commission(report.commission)
        if amount is not None:
            key = (f.execution.orderRef, f.execution.time)
            legs[key] = legs.get(key, Decimal(0)) + amount
    return {
        f.execution.execId: legs.get((f.execution.orderRef, f.execution.time), Decimal(0))
        for f in fills
        if f.contract.secType == "BAG"
    }


def _with_commission(event: OrderEvent, commission: Decimal | None) -> OrderEvent:
    """The event with its execution's commission (as it is when either is missing)."""
    execution = event.execution
    if execution is None or commission is None:
        return event
    return replace(event, execution=replace(execution, commission=commission))


def _execution_of(ex: Any, price: Decimal, commission: Decimal = Decimal(0)) -> Execution:
    """The service's execution for ib_async's of a BAG."""
    return Execution(ex.execId, ex.orderRef, int(ex.shares), price, commission, ex.time)


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
    working: bool = False  # IB said it works (the service was told so)


class OrdersMixin(ContractsMixin):
    def __init__(self, settings: IbSettings, ib: IB, now: Callable[[], datetime]) -> None:
        super().__init__(settings, ib, now)
        self._placed: dict[str, _Placed] = {}  # orderRef -> ids
        self._filled: dict[str, int] = {}  # orderRef -> spreads filled (from BAG executions)
        self._seen: set[str] = set()  # BAG execution ids passed on
        self._ended: set[str] = set()  # orderRefs whose end (cancel, rejection) was passed on
        self._held: dict[str, list[_Held]] = {}  # orderRef -> fills waiting for commissions
        self._sequence = 0  # orders placed so far
        self._foreign: set[int] = set()  # perm ids of other clients' open orders, said once
        self._positions_changed: Callable[[], None] | None = None

    def _limit_order(
        self, order_ref: str, quantity: int, limit: Decimal, order_id: int = 0
    ) -> LimitOrder:
        """A closing combo's IB order: bought (at a debit) for the day, on our account."""
        return LimitOrder(
            "BUY", quantity, float(limit), orderRef=order_ref, tif="DAY", account=self.account,
            orderId=order_id,
        )  # fmt: skip

    async def place(self, order: ComboOrder) -> None:
        if order.order_ref in self._placed:  # IB takes a reused orderRef as a second order
            raise BrokerRefused(f"order {order.order_ref} is already at IB: not placed twice")
        await self.qualify([leg.leg for leg in order.legs])
        contract = self._bag(order)
        ib_order = self._limit_order(order.order_ref, order.quantity, order.limit)
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

    def _trade(self, placed: _Placed) -> Trade | None:
        """ib_async's trade of an order of ours (placed by this client, or adopted)."""
        return self.ib.wrapper.trades.get((self.ib.wrapper.clientId, placed.order_id))

    def _ours(self, order_ref: str, doing: str) -> _Placed:
        """The order placed (or adopted) by this client; another's is refused."""
        placed = self._placed.get(order_ref)
        if placed is None:
            raise BrokerRefused(f"order {order_ref} was not placed by this client: not {doing}")
        return placed

    async def modify(self, order_ref: str, limit: Decimal) -> None:
        placed = self._ours(order_ref, "modified")
        ib_order = self._limit_order(order_ref, placed.quantity, limit, placed.order_id)
        trade = self._trade(placed)
        if trade is not None and trade.orderStatus.status == INACTIVE:
            # IB's Inactive may pass (brokers.ib.verdicts); ib_async asserts on modifying
            # what it thinks done, after sending it: sent as ib_async sends it, no assert
            self.ib.client.placeOrder(placed.order_id, placed.contract, ib_order)  # type: ignore[no-untyped-call]
            placed.limit = limit
            return
        try:
            self.ib.placeOrder(placed.contract, ib_order)
        except AssertionError as exc:  # ib_async asserts the order is not done yet
            raise BrokerRefused(f"order {order_ref} is done: not modified") from exc
        placed.limit = limit

    async def cancel(self, order_ref: str) -> None:
        """Through the order ib_async knows (ib_async's ``IB.cancelOrder`` finds the trade
        by the order's client id and order id: a fresh order, client id 0, is an "Unknown
        orderId" to it, and PendingCancel is never set)."""
        placed = self._ours(order_ref, "cancelled")
        trade = self._trade(placed)
        if trade is not None:
            self.ib.cancelOrder(trade.order)
        else:  # not known to ib_async (none should be): IB is asked all the same
            self.ib.client.cancelOrder(placed.order_id, "")  # type: ignore[no-untyped-call]

    def on_positions(self, changed: Callable[[], None]) -> None:
        """``changed`` on each ``position`` message (IB sends one per account position
        that moves, after ``reqPositions``, which ib_async makes at connect)."""
        self._positions_changed = changed

    def _on_position(self, position: Any) -> None:
        if self._positions_changed is not None:
            self._positions_changed()

    async def positions(self) -> dict[LegKey, int]:
        out: dict[LegKey, int] = {}
        for p in self.ib.positions(self.account):
            leg = self._legs.get(p.contract.conId)
            if leg is not None and p.position:
                out[leg] = int(p.position)
        return out

    async def _fills(self) -> tuple[list[Any], dict[str, Decimal]]:
        """Today's executions IB has, and each BAG execution's commission."""
        fills = await self.ib.reqExecutionsAsync()
        return fills, _commissions(fills, self.ib.fills())

    async def executions(self) -> list[Execution]:
        """Today's executions of our orders, one per BAG fill."""
        fills, commissions = await self._fills()
        out = []
        for f in fills:
            if f.contract.secType != "BAG" or not f.execution.orderRef:
                continue
            price = _price(f.execution.price)
            out.append(
                _execution_of(
                    f.execution,
                    price if price is not None else Decimal(0),
                    commissions.get(f.execution.execId, Decimal(0)),
                )
            )
        return out

    async def _pass_missed_fills(self) -> None:
        """The executions of our orders that happened while no one listened, passed on
        (those seen before are not)."""
        fills, commissions = await self._fills()
        missed = [
            _with_commission(e, commissions.get(f.execution.execId))
            for f in fills
            if f.contract.secType == "BAG" and (e := self._fill_event(f)) is not None
        ]
        if missed and self._events is not None:
            self._events(missed)

    async def open_orders(self) -> list[OrderEvent]:
        trades = await self.ib.reqAllOpenOrdersAsync()
        now = self._now()
        out = []
        for t in trades:
            ref = t.order.orderRef
            if not ref:
                continue
            o, st = t.order, t.orderStatus
            if o.clientId != self.ib.wrapper.clientId:  # another client's: left alone
                self._foreign_order(ref, o)
            elif ref not in self._placed:  # ours from before a restart: adopt the ids
                self._placed[ref] = _Placed(
                    o.orderId, o.permId, t.contract, int(o.totalQuantity), Decimal(str(o.lmtPrice)),
                    working=True,
                )  # fmt: skip
            status = STATUS.get(st.status, OrderStatus.WORKING)
            out.append(OrderEvent(ref, status, int(st.filled), int(st.remaining), now))
        return out

    def _foreign_order(self, ref: str, order: Any) -> None:
        """An open order placed by another client (another client id, or TWS itself): its
        ids are that client's, so a modify from here would be a new order at IB and a
        cancel would not reach it. It is said once, never adopted, never modified."""
        if order.permId in self._foreign:
            return
        self._foreign.add(order.permId)
        _log.warning(
            "ib.foreign_order", order_ref=ref, client_id=order.clientId, perm_id=order.permId,
            detail="an open order placed by another client: left alone (not repriced, not "
            "cancelled); use that client, or TWS, to manage it",
        )  # fmt: skip

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
                    OrderEvent(ref, OrderStatus.CANCELLED, self._filled.get(ref, 0), 0, now,
                               reason="not working at IB after the reconnect")
                    for ref in gone
                ]
            )  # fmt: skip

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
        status = (
            OrderStatus.FILLED if placed is not None and left == 0 else OrderStatus.PARTIALLY_FILLED
        )
        execution = _execution_of(ex, price)
        return OrderEvent(ref, status, total, left, ex.time, execution=execution)

    def _on_commission(self, trade: Trade, fill: Any, report: Any) -> None:
        ref = fill.execution.orderRef
        waiting = [h for h in self._held.get(ref, ()) if h.reports < h.legs]
        if fill.contract.secType == "BAG" or not waiting:
            return
        held = waiting[0]  # the oldest fill of the order still short of reports
        amount = _commission(report.commission)
        if amount is not None:
            held.commission += amount
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
        if self._events is not None:
            self._events([_with_commission(held.event, held.commission)])

    def _on_status(self, trade: Trade) -> None:
        """An order's status, judged (:func:`brokers.ib.verdicts.judge`): an event for the
        service, or a warning logged with IB's code and text (the order works as it did)."""
        ref = trade.order.orderRef
        if not ref or self._events is None:
            return
        placed = self._placed.get(ref)
        if placed is not None and trade.order.permId:
            placed.perm_id = trade.order.permId
        verdict = judge(trade, placed is not None and placed.working)
        status = verdict.status
        if status is None:
            if ref not in self._ended:
                _log.warning(
                    "ib.order_inactive" if trade.orderStatus.status == INACTIVE
                    else "ib.order_warning",
                    order_ref=ref, code=verdict.code or None, detail=verdict.text or None,
                )  # fmt: skip
            return
        if status in ("cancelled", "rejected"):
            if ref in self._ended:
                return  # IB says an end more than once (an error, then the status)
            self._ended.add(ref)
        if status == "working" and placed is not None:
            placed.working = True
        if status in ("cancelled", "working", "rejected"):
            st, o = trade.orderStatus, trade.order
            event = OrderEvent(
                ref, status, int(st.filled), int(st.remaining), self._now(), reason=verdict.reason
            )
            self._events(
                [replace(event, broker_order_id=o.orderId or None, perm_id=o.permId or None)]
            )
