"""Orders: closing combos placed, repriced and cancelled; their executions,
commissions and statuses passed on; open orders and positions.

A close is a BAG of the legs by conId, bought at a positive limit (a debit),
``orderRef`` = the store's order_ref. Orders are tracked by orderRef and permId,
never by ib_async ``Trade`` objects (a reconnect replaces those). Its fills and
their commissions are :mod:`brokers.ib.fills`'. A status, and the error IB sent
with it, are judged by :mod:`brokers.ib.verdicts` (IB's warnings, errors, Inactive).
Modify and cancel go through the order ib_async knows (by client and order id).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from ib_async import IB, Contract, LimitOrder, Trade

from brokers.ib.convert import STATUS
from brokers.ib.fills import FillsMixin
from brokers.ib.verdicts import INACTIVE, judge
from service.errors import BrokerRefused
from service.logs import get_logger
from service.ports import ComboOrder, Completed, LegKey, OrderEvent, OrderStatus
from service.settings import IbSettings

_log = get_logger("spreadwatch.ib")


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
    at: datetime | None = None  # when placed (adopted: when first listed)


class OrdersMixin(FillsMixin):
    def __init__(self, settings: IbSettings, ib: IB, now: Callable[[], datetime]) -> None:
        super().__init__(settings, ib, now)
        self._placed: dict[str, _Placed] = {}  # orderRef -> ids
        self._ended: set[str] = set()  # orderRefs whose end (cancel, rejection) was passed on
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

    def _let_go(self, before: datetime) -> None:
        """Also the orders placed before ``before`` that are done (ended or filled): a
        day order (tif DAY) lives no longer than its day. Before the fills' count goes."""
        for ref, placed in list(self._placed.items()):
            done = ref in self._ended or self._filled.get(ref, 0) >= placed.quantity
            if done and placed.at is not None and placed.at < before:
                del self._placed[ref]
                self._ended.discard(ref)
        super()._let_go(before)

    async def place(self, order: ComboOrder) -> None:
        self._turn()
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
            at=self._now(),
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

    def _ordered(self, order_ref: str) -> int | None:
        placed = self._placed.get(order_ref)
        return None if placed is None else placed.quantity

    def _size(self, order_ref: str, trade: Trade | None) -> int:
        placed = self._placed.get(order_ref)
        if placed is not None:
            return len(placed.contract.comboLegs or [])
        return super()._size(order_ref, trade)

    async def open_orders(self) -> list[OrderEvent]:
        trades = await self.ib.reqAllOpenOrdersAsync()
        now = self._now()
        out = []
        for t in trades:
            ref = t.order.orderRef
            if not ref:
                continue
            o, st = t.order, t.orderStatus
            foreign = ""
            if o.clientId != self.ib.wrapper.clientId:  # another client's: left alone
                foreign = self._foreign_order(ref, o)
            elif ref not in self._placed:  # ours from before a restart: adopt the ids
                self._placed[ref] = _Placed(
                    o.orderId, o.permId, t.contract, int(o.totalQuantity), Decimal(str(o.lmtPrice)),
                    working=True, at=now,
                )  # fmt: skip
            status = STATUS.get(st.status, OrderStatus.WORKING)
            out.append(OrderEvent(ref, status, int(st.filled), int(st.remaining), now,
                                  foreign=foreign))  # fmt: skip
        return out

    async def completed_orders(self) -> list[Completed]:
        """The orders IB lists as done (``reqCompletedOrders``; API orders only): each with
        its final status and the quantity filled (``filledQuantity``)."""
        out = []
        for t in await self.ib.reqCompletedOrdersAsync(apiOnly=True):
            o = t.order
            if o.orderRef:
                filled = o.filledQuantity if math.isfinite(o.filledQuantity) else 0
                out.append(Completed(o.orderRef, o.permId, t.orderStatus.status, int(filled)))
        return out

    def _foreign_order(self, ref: str, order: Any) -> str:
        """An open order placed by another client (another client id, or TWS itself): its
        ids are that client's, so a modify from here would be a new order at IB and a
        cancel would not reach it. Never adopted, never modified; said once, and why (the
        service puts its position before a human)."""
        why = (
            f"order {ref} works at IB under another client (client id {order.clientId}, perm "
            f"id {order.permId}): spreadwatch cannot reprice or cancel it from client id "
            f"{self.ib.wrapper.clientId}; manage it in that client or in TWS, then resume the "
            "position"
        )
        if order.permId not in self._foreign:
            self._foreign.add(order.permId)
            _log.warning("ib.foreign_order", order_ref=ref, client_id=order.clientId,
                         perm_id=order.permId, detail=why)  # fmt: skip
        return why

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
