"""The fake gateway's orders: limit orders (combos, BAG, or single options) placed,
modified and cancelled against the simulated broker; their statuses, executions (a
BAG's and each leg's) and commission reports; open orders and ``reqExecutions``;
what-if orders; the read-only API.

As IB: ``orderRef`` is free text (reused, empty: orders are IB's by client and order
id, and by perm id); a limit off the price increment is 110; a cancel of an order
IB does not know is 10147, of one that is done 10148 with its state; a read-only API
answers every placeOrder (what-if included) and cancel with 321."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from brokers.ib.codes import (
    CANCELLED,
    CANNOT_CANCEL,
    CANNOT_MODIFY,
    HELD,
    NOT_FOUND,
    PRICE_INCREMENT,
    READ_ONLY,
    REJECTED,
)
from brokers.ib.fake.account import AccountMixin
from brokers.ib.fake.base import Session
from brokers.ib.fake.fills import (
    COMMISSION_DELAY,
    Row,
    exec_details,
    execution_rows,
    send_report,
)
from brokers.ib.fake.instrument import Instrument
from brokers.ib.fake.ledger import Ledger
from brokers.ib.fake.order_wire import (
    ACTION,
    FIRST_LEG_COUNT,
    LIMIT,
    ORDER_REF,
    ORDER_TYPE,
    PRICE_INCREMENT_TEXT,
    QUANTITY,
    READ_ONLY_TEXT,
    SEC_TYPE,
    held_text,
    off_tick,
    open_order,
    what_if,
)
from brokers.sim.broker import COMMISSION_PER_CONTRACT, OrderRefused
from brokers.sim.market import SimMarket
from rules.clock import market_time, new_york
from service.ports import Action, Clock, ComboLeg, ComboOrder, Execution, OrderEvent

DONE = ("Filled", "Cancelled")  # IB's statuses of orders no longer working (Inactive may pass)
IB_STATUS = {  # the simulated broker's statuses as IB says them
    "submitted": "Submitted",
    "working": "Submitted",
    "partially_filled": "Submitted",
    "filled": "Filled",
    "cancelled": "Cancelled",
    "rejected": "Inactive",
}
INACTIVE_SECONDS = 0.5  # fault inactive_then_submitted: how long a new order is Inactive
Legs = list[tuple[Instrument, int, str]]  # instrument, ratio, action
LegFills = list[tuple[Instrument, str, Decimal]]  # instrument, side (BOT | SLD), price


@dataclass(eq=False)
class _Order:
    """An order as IB knows it: ids, its contract (a BAG's legs by conId, or one option),
    status words. ``ref`` is the client's orderRef (free text); ``key`` the simulated
    broker's reference for it (unique)."""

    client_id: int
    order_id: int
    perm_id: int
    ref: str
    action: str  # BUY | SELL (the combo, or the option)
    quantity: int
    limit: Decimal
    legs: Legs
    bag: bool = True
    status: str = "PendingSubmit"
    filled: int = 0
    paid: Decimal = Decimal(0)
    last_price: Decimal = Decimal(0)
    inactive: bool = False  # held Inactive for a while (fault inactive_then_submitted)
    ended: datetime | None = None  # when it was done (filled or cancelled)
    contract: list[object] = field(default_factory=list)  # openOrder's contract fields

    @property
    def key(self) -> str:
        return f"ib-{self.perm_id}"

    @property
    def done(self) -> bool:
        return self.status in DONE


class OrdersMixin(AccountMixin):
    def __init__(self, market: SimMarket, clock: Clock, *, account: str, line_limit: int) -> None:
        super().__init__(market, clock, account=account, line_limit=line_limit)
        self.reject: str | None = None  # fault: the reason every new order is rejected with
        self.read_only = False  # fault: the API is read-only (IB Gateway's default)
        self.inactive_then_submitted = False  # fault: a new order Inactive, then Submitted
        self.commission_delay = COMMISSION_DELAY  # seconds each commission report trails
        self.commission_first = False  # fault: commission reports before their executions
        self.leg_only_fills = False  # fault: no BAG execution, the legs' only
        self._orders: dict[str, _Order] = {}  # the simulated broker's key -> the IB order
        self._held: list[_Order] = []  # placed outside regular hours: sent at the open
        self._perm_ids = 1_000_000
        self._fills: list[tuple[_Order, Execution, LegFills]] = []
        self.ledger: Ledger | None = None  # --ledger: connections, orders, executions

    def connection_said(self, kind: str, s: Session) -> None:
        if self.ledger is not None and s.client_id is not None:
            self.ledger.connection(kind, s.serial, s.client_id, self.clock.now())

    def order(self, ref: str) -> _Order | None:
        """The latest order with orderRef ``ref`` (for tests and tools: IB itself keys
        orders by ids, never by orderRef)."""
        return next((o for o in reversed(self._orders.values()) if o.ref == ref), None)

    def _open_orders(self, s: Session, fields: list[str]) -> None:
        for order in self._orders.values():
            if not order.done:
                self._send_order(s, order)
        s.send(53, 1)

    def _executions(self, s: Session, fields: list[str]) -> None:
        """The executions of the day (IB: since midnight in the gateway's zone; here New
        York's), each with its commission report."""
        req_id = int(fields[2])
        today = self.clock.now().astimezone(new_york()).date()
        for n, (order, execution, legs) in enumerate(self._fills):
            if execution.time.astimezone(new_york()).date() == today:
                self._send_execution(s, req_id, n, order, execution, legs)
        s.send(55, 1, req_id)

    def _order_of(self, s: Session, order_id: int) -> _Order | None:
        """The session's order ``order_id`` (order ids are the client's)."""
        return next((o for o in self._orders.values() if (o.client_id, o.order_id) ==
                     (s.client_id, order_id)), None)  # fmt: skip

    def _place(self, s: Session, fields: list[str]) -> None:
        order_id = int(fields[1])
        self._next_order_id = max(self._next_order_id, order_id + 1)
        if self.read_only:  # IB Gateway's "Read-Only API": every placeOrder, what-if too
            s.error(order_id, READ_ONLY, READ_ONLY_TEXT)
            return
        if what_if(fields):
            self._what_if(s, order_id, fields)
            return
        existing = self._order_of(s, order_id)
        if existing is not None:  # a modify: the new limit
            self._modify(s, existing, Decimal(fields[LIMIT]))
            return
        if fields[ORDER_TYPE] != "LMT":
            s.error(order_id, REJECTED, "Order rejected - reason:the fake gateway takes limit "
                    "orders only")  # fmt: skip
            return
        legs = self._legs(s, order_id, fields)
        if legs is None:
            return
        if off_tick(Decimal(fields[LIMIT])):  # IB: an error, the order not placed
            s.error(order_id, PRICE_INCREMENT, PRICE_INCREMENT_TEXT)
            return
        self._new_order(s, order_id, fields, legs)

    def _legs(self, s: Session, order_id: int, fields: list[str]) -> Legs | None:
        """A BAG's legs by conId, or a single option as one leg; None (and IB's error 200
        said) for a contract the fake cannot trade."""
        if fields[SEC_TYPE] != "BAG":
            ins = self._describe(fields, 2)
            if ins is None or ins.sec_type != "OPT":
                s.no_security(order_id)
                return None
            return [(ins, 1, "BUY")]
        legs: Legs = []
        for k in range(int(fields[FIRST_LEG_COUNT])):
            at = FIRST_LEG_COUNT + 1 + 8 * k
            con_id, ratio, leg_action = fields[at : at + 3]
            ins = self._by_id.get(int(con_id))
            if ins is None or ins.sec_type != "OPT":
                s.no_security(order_id)
                return None
            legs.append((ins, int(ratio), leg_action))
        return legs

    def _what_if(self, s: Session, order_id: int, fields: list[str]) -> None:
        """A what-if: openOrder with ``whatIf`` and the margin it would take; nothing kept.
        (Any contract: IB answers 200 for one it does not know.)"""
        ins = self._describe(fields, 2) if fields[SEC_TYPE] != "BAG" else None
        if fields[SEC_TYPE] != "BAG" and ins is None:
            s.no_security(order_id)
            return
        order = _Order(s.client_id or 0, order_id, 0, fields[ORDER_REF], fields[ACTION],
                       int(Decimal(fields[QUANTITY])), Decimal(fields[LIMIT] or 0), [],
                       bag=ins is None, status="PreSubmitted")  # fmt: skip
        order.contract = ins.fields_without_primary() if ins is not None else []
        self._send_open_order(s, order, what_if=True)

    def _modify(self, s: Session, order: _Order, limit: Decimal) -> None:
        if off_tick(limit) and not order.done:  # IB: a warning, the order works as it was
            s.error(order.order_id, PRICE_INCREMENT, PRICE_INCREMENT_TEXT)
            return
        try:
            self.broker.modify(order.key, limit, self.clock.now())
        except OrderRefused:  # filled or cancelled meanwhile: IB's 104 / 10148
            s.error(order.order_id, CANNOT_MODIFY, "Can't modify a filled order.")
            return
        order.limit = limit
        if self.ledger is not None:
            self.ledger.modify(order, self.clock.now(), s.serial)
        self._send_open_order(s, order)

    def _new_order(self, s: Session, order_id: int, fields: list[str], legs: Legs) -> None:
        action, quantity, limit, ref = (fields[ACTION], fields[QUANTITY], fields[LIMIT],
                                        fields[ORDER_REF])  # fmt: skip
        flip = action == "SELL"  # selling the combo: each leg the other way, a credit
        self._perm_ids += 1
        order = _Order(s.client_id or 0, order_id, self._perm_ids, ref, action,
                       int(Decimal(quantity)), Decimal(limit), legs,
                       bag=fields[SEC_TYPE] == "BAG")  # fmt: skip
        if not order.bag:
            order.contract = legs[0][0].fields_without_primary()
        if self.ledger is not None:
            self.ledger.place(order, self.clock.now(), s.serial)
        combo = ComboOrder(
            order_ref=order.key,
            legs=tuple(
                ComboLeg(
                    ins.leg, Action(a if not flip else ("SELL" if a == "BUY" else "BUY")), ratio
                )
                for ins, ratio, a in legs
            ),
            quantity=order.quantity,
            limit=Decimal(limit) * (-1 if flip else 1),
        )
        if self.reject is not None:
            order.status = "Inactive"
            s.error(order_id, REJECTED, f"Order rejected - reason:{self.reject}")
            self._send_status(s, order)
            return
        for ins, _, _ in legs:
            self.market.subscribe(ins.leg)  # the broker needs the legs' quotes to fill
        self._orders[order.key] = order
        self.broker.place(combo, self.clock.now())
        order.status = "PreSubmitted"  # IB: accepted, not yet at the exchange
        self._send_order(s, order)
        if not market_time(self.clock.now()).regular_hours:  # a DAY order waits for the open
            self._held.append(order)
            s.error(order_id, HELD, held_text(order.action, order.quantity, order.ref,
                                              self.clock.now()))  # fmt: skip
            return
        order.status = "Submitted"
        if self.inactive_then_submitted:  # IB: Inactive, which may pass (then Submitted)
            order.status, order.inactive = "Inactive", True
            asyncio.get_running_loop().call_later(INACTIVE_SECONDS, self._activate, order)
        self._send_order(s, order)

    def _at_the_open(self) -> None:
        """The orders held outside regular hours go to the exchange (Submitted)."""
        held, self._held = self._held, []
        for order in held:
            if order.status == "PreSubmitted":  # (not cancelled meanwhile)
                order.status = "Submitted"
                for s in self._sessions:
                    self._send_order(s, order)

    def _activate(self, order: _Order) -> None:
        """An order that was Inactive works again (fault inactive_then_submitted)."""
        order.inactive = False
        if order.status == "Inactive":
            order.status = "Submitted"
            for s in self._sessions:
                self._send_status(s, order)

    def _cancel(self, s: Session, fields: list[str]) -> None:
        order_id = int(fields[2])
        if self.read_only:
            s.error(order_id, READ_ONLY, READ_ONLY_TEXT)
            return
        order = self._order_of(s, order_id)
        if order is None:
            s.error(order_id, NOT_FOUND, f"OrderId {order_id} that needs to be cancelled is "
                    "not found.")  # fmt: skip
            return
        if order.done:
            s.error(order_id, CANNOT_CANCEL, f"OrderId {order_id} that needs to be cancelled "
                    f"cannot be cancelled, state: {order.status}.")  # fmt: skip
            return
        if self.ledger is not None:
            self.ledger.modify(order, self.clock.now(), s.serial, "cancel")
        self.broker.cancel(order.key, self.clock.now())
        self._relay(self.broker.events())

    def _relay(self, events: list[OrderEvent]) -> None:
        """The broker's events to the clients, as IB says them."""
        for event in events:
            order = self._orders.get(event.order_ref)
            if order is None:
                continue
            order.filled = event.filled
            if event.execution is not None:
                legs = self._leg_prices(order)
                self._fills.append((order, event.execution, legs))
                n, held = len(self._fills) - 1, self.broker.positions()
                if self.ledger is not None:
                    self.ledger.executions(order, self._rows(n, order, event.execution, legs))
                for s in self._sessions:
                    self._send_execution(s, -1, n, order, event.execution, legs)
                    if s.positions:
                        for ins, _, _ in order.legs:
                            self._send_position(s, ins.leg, held.get(ins.leg, 0))
            status = IB_STATUS[event.status]
            if order.inactive and status == "Submitted":
                continue  # still Inactive for a while (fault inactive_then_submitted)
            order.status = status
            if order.done and order.ended is None:
                order.ended = event.at
            if event.execution is not None:
                order.paid += event.execution.price * event.execution.quantity
                order.last_price = event.execution.price
            for s in self._sessions:  # (IB: openOrder, then orderStatus, at each change)
                if event.status == "cancelled":
                    s.error(order.order_id, CANCELLED, "Order Canceled - reason:")
                self._send_order(s, order)

    def _leg_prices(self, order: _Order) -> LegFills:
        """Each leg's side and price in a fill at the natural: buys at the ask, sells at the
        bid."""
        out = []
        for ins, _, action in order.legs:
            q = self.market.quote(ins.leg, self.market.now)
            buy = (action == "BUY") != (order.action == "SELL")
            price = q.ask if buy else q.bid
            out.append((ins, "BOT" if buy else "SLD", price or Decimal(0)))
        return out

    def _send_order(self, s: Session, order: _Order) -> None:
        """openOrder, then orderStatus: an order as IB tells a client of it."""
        self._send_open_order(s, order)
        self._send_status(s, order)

    def _send_status(self, s: Session, order: _Order) -> None:
        avg = order.paid / order.filled if order.filled else Decimal(0)
        s.send(3, order.order_id, order.status, order.filled, order.quantity - order.filled,
               avg, order.perm_id, 0, order.last_price, order.client_id, "", 0.0)  # fmt: skip

    def _send_execution(
        self, s: Session, req_id: int, n: int, order: _Order, execution: Execution, legs: LegFills
    ) -> None:
        """execDetails for the BAG (unless fault leg_only_fills), then each leg, each leg
        stamped :data:`LEG_LAG` after the BAG; then each leg's commission report, as a
        message of its own: live, each :attr:`commission_delay` after the one before (fault
        commission_first: all of them before the executions), for reqExecutions at once.
        (A single option: its execution and its report.) ``n``: the fill's number here."""
        rows = self._rows(n, order, execution, legs)
        reports = [(r.exec_id, COMMISSION_PER_CONTRACT * r.shares) for r in rows if not r.bag]
        live = req_id == -1
        if live and self.commission_first:
            for exec_id, amount in reports:
                send_report(s, exec_id, amount)
        for r in rows:
            s.send(*exec_details(req_id, order, r, self.exec_time(r.time), self.account))
        if not live:
            for exec_id, amount in reports:
                send_report(s, exec_id, amount)
        elif not self.commission_first:
            loop = asyncio.get_running_loop()
            for k, (exec_id, amount) in enumerate(reports):
                loop.call_later(self.commission_delay * (k + 1), send_report, s, exec_id, amount)

    def _rows(self, n: int, order: _Order, execution: Execution, legs: LegFills) -> list[Row]:
        """The executions of fill ``n`` of ``order``, the BAG's and its legs'."""
        return execution_rows(
            f"{order.perm_id:08x}.{n:04x}", order.action, order.bag and not self.leg_only_fills,
            execution, [(ins, side, price, order.legs[k][1]) for k, (ins, side, price)
                        in enumerate(legs)],
        )  # fmt: skip

    def _send_open_order(self, s: Session, order: _Order, *, what_if: bool = False) -> None:
        """openOrder (:func:`brokers.ib.fake.order_wire.open_order`)."""
        s.send(*open_order(order, self.account, what_if=what_if))
