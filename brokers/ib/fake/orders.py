"""The fake gateway's orders: combo (BAG) limit orders placed, modified and cancelled
against the simulated broker; their statuses, executions (the BAG's and each leg's)
and commission reports; open orders and ``reqExecutions``."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from brokers.ib.codes import CANCELLED, CANNOT_CANCEL, CANNOT_MODIFY, REJECTED
from brokers.ib.fake.account import AccountMixin
from brokers.ib.fake.base import Session, ib_time
from brokers.ib.fake.instrument import Instrument
from brokers.ib.fake.versions import (
    MIN_SERVER_VER_AUTO_CANCEL_PARENT,
    MIN_SERVER_VER_DURATION,
    MIN_SERVER_VER_FA_PROFILE_DESUPPORT,
    MIN_SERVER_VER_PEGBEST_PEGMID_OFFSETS,
    MIN_SERVER_VER_POST_TO_ATS,
    before,
    since,
)
from brokers.sim.broker import COMMISSION_PER_CONTRACT, OrderRefused
from brokers.sim.market import SimMarket
from service.ports import Action, Clock, ComboLeg, ComboOrder, Execution, OrderEvent

DONE = ("Filled", "Cancelled", "Inactive")  # IB's statuses of orders no longer working
IB_STATUS = {  # the simulated broker's statuses as IB says them
    "submitted": "Submitted",
    "working": "Submitted",
    "partially_filled": "Submitted",
    "filled": "Filled",
    "cancelled": "Cancelled",
    "rejected": "Inactive",
}
Legs = list[tuple[Instrument, int, str]]  # instrument, ratio, action
LegFills = list[tuple[Instrument, str, Decimal]]  # instrument, side (BOT | SLD), price


@dataclass(eq=False)
class _Order:
    """An order as IB knows it: ids, its BAG legs by conId, status words."""

    client_id: int
    order_id: int
    perm_id: int
    ref: str
    action: str  # BUY | SELL (the combo)
    quantity: int
    limit: Decimal
    legs: Legs
    status: str = "PendingSubmit"
    filled: int = 0
    paid: Decimal = Decimal(0)
    last_price: Decimal = Decimal(0)

    @property
    def done(self) -> bool:
        return self.status in DONE


class OrdersMixin(AccountMixin):
    def __init__(self, market: SimMarket, clock: Clock, *, account: str, line_limit: int) -> None:
        super().__init__(market, clock, account=account, line_limit=line_limit)
        self.reject: str | None = None  # fault: the reason every new order is rejected with
        self._orders: dict[str, _Order] = {}  # orderRef -> the IB side of a broker order
        self._perm_ids = 1_000_000
        self._fills: list[tuple[_Order, Execution, LegFills]] = []

    def _open_orders(self, s: Session, fields: list[str]) -> None:
        for order in self._orders.values():
            if not order.done:
                self._send_order(s, order)
        s.send(53, 1)

    def _completed_orders(self, s: Session, fields: list[str]) -> None:
        s.send(102)

    def _executions(self, s: Session, fields: list[str]) -> None:
        req_id = int(fields[2])
        for order, execution, legs in self._fills:
            self._send_execution(s, req_id, order, execution, legs)
        s.send(55, 1, req_id)

    def _order_of(self, s: Session, order_id: int) -> _Order | None:
        """The session's order ``order_id`` (order ids are the client's)."""
        return next((o for o in self._orders.values() if (o.client_id, o.order_id) ==
                     (s.client_id, order_id)), None)  # fmt: skip

    def _place(self, s: Session, fields: list[str]) -> None:
        order_id = int(fields[1])
        self._next_order_id = max(self._next_order_id, order_id + 1)
        existing = self._order_of(s, order_id)
        if existing is not None:  # a modify: the new limit
            self._modify(s, existing, Decimal(fields[19]))
            return
        if fields[4] != "BAG" or fields[18] != "LMT" or not fields[26]:
            s.error(order_id, REJECTED, "Order rejected - reason:the fake gateway takes combo "
                    "(BAG) limit orders with an orderRef only")  # fmt: skip
            return
        legs: Legs = []
        for k in range(int(fields[35])):
            con_id, ratio, leg_action = fields[36 + 8 * k : 39 + 8 * k]
            ins = self._by_id.get(int(con_id))
            if ins is None or ins.sec_type != "OPT":
                s.no_security(order_id)
                return
            legs.append((ins, int(ratio), leg_action))
        self._new_order(s, order_id, fields, legs)

    def _modify(self, s: Session, order: _Order, limit: Decimal) -> None:
        try:
            self.broker.modify(order.ref, limit, self.clock.now())
        except OrderRefused:  # filled or cancelled meanwhile: IB's 104 / 10148
            s.error(order.order_id, CANNOT_MODIFY, "Can't modify a filled order.")
            return
        order.limit = limit
        self._send_open_order(s, order)

    def _new_order(self, s: Session, order_id: int, fields: list[str], legs: Legs) -> None:
        action, quantity, limit, ref = fields[16], fields[17], fields[19], fields[26]
        flip = action == "SELL"  # selling the combo: each leg the other way, a credit
        combo = ComboOrder(
            order_ref=ref,
            legs=tuple(
                ComboLeg(
                    ins.leg, Action(a if not flip else ("SELL" if a == "BUY" else "BUY")), ratio
                )
                for ins, ratio, a in legs
            ),
            quantity=int(Decimal(quantity)),
            limit=Decimal(limit) * (-1 if flip else 1),
        )
        self._perm_ids += 1
        order = _Order(s.client_id or 0, order_id, self._perm_ids, ref, action, combo.quantity,
                       Decimal(limit), legs)  # fmt: skip
        if self.reject is not None or ref in self._orders:
            why = self.reject or f"orderRef {ref} is already in use"
            order.status = "Inactive"
            s.error(order_id, REJECTED, f"Order rejected - reason:{why}")
            self._send_status(s, order)
            return
        for ins, _, _ in legs:
            self.market.subscribe(ins.leg)  # the broker needs the legs' quotes to fill
        self._orders[ref] = order
        self.broker.place(combo, self.clock.now())
        order.status = "Submitted"
        self._send_order(s, order)

    def _cancel(self, s: Session, fields: list[str]) -> None:
        order_id = int(fields[2])
        order = self._order_of(s, order_id)
        if order is None or order.done:
            s.error(order_id, CANNOT_CANCEL, f"OrderId {order_id} that needs to be cancelled "
                    "cannot be cancelled, state: Filled.")  # fmt: skip
            return
        self.broker.cancel(order.ref, self.clock.now())
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
                held = self.broker.positions()
                for s in self._sessions:
                    self._send_execution(s, -1, order, event.execution, legs)
                    if s.positions:
                        for ins, _, _ in order.legs:
                            self._send_position(s, ins.leg, held.get(ins.leg, 0))
            order.status = IB_STATUS[event.status]
            if event.execution is not None:
                order.paid += event.execution.price * event.execution.quantity
                order.last_price = event.execution.price
            for s in self._sessions:
                if event.status == "cancelled":
                    s.error(order.order_id, CANCELLED, "Order Canceled - reason:")
                self._send_status(s, order)

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
        self, s: Session, req_id: int, order: _Order, execution: Execution, legs: LegFills
    ) -> None:
        """execDetails for the BAG, then each leg, then their commission reports."""
        when = ib_time(execution.time)
        bag = [0, legs[0][0].symbol, "BAG", "", 0.0, "", "", "SMART", "USD", "", ""]
        side = "BOT" if order.action == "BUY" else "SLD"
        rows = [(f"{execution.exec_id}.bag", bag, side, execution.quantity, execution.price)]
        for k, (ins, leg_side, price) in enumerate(legs):
            ratio = order.legs[k][1]
            rows.append((f"{execution.exec_id}.{k + 1}", ins.fields_without_primary(), leg_side,
                         execution.quantity * ratio, price))  # fmt: skip
        for exec_id, contract, row_side, shares, price in rows:
            s.send(
                11, req_id, order.order_id, *contract, exec_id, when, self.account, "SMART",
                row_side, shares, price, order.perm_id, order.client_id, 0, shares, price,
                order.ref, "", "", "", 0,
            )  # fmt: skip
        for k, (exec_id, _, _, shares, _) in enumerate(rows):
            if k:  # commissions are per leg execution
                s.send(59, 1, exec_id, COMMISSION_PER_CONTRACT * shares, "USD", 0.0, 0.0, 0)

    def _send_open_order(self, s: Session, order: _Order) -> None:
        """openOrder as server version 176 writes it (faProfile included, before 177)."""
        symbol = order.legs[0][0].symbol
        legs: list[object] = [len(order.legs)]
        for ins, ratio, action in order.legs:
            legs += [ins.con_id, ratio, action, "SMART", 0, 0, "", -1]
        s.send(
            5, order.order_id,
            0, symbol, "BAG", "", 0.0, "", "", "SMART", "USD", "", "",  # the contract
            order.action, order.quantity, "LMT", order.limit, "", "DAY", "", self.account,
            "", 0, order.ref, order.client_id, order.perm_id, 0, 0, 0.0, "", "", "", "", "",
            before(MIN_SERVER_VER_FA_PROFILE_DESUPPORT, ""),  # faProfile
            "", "", "", "", "", 0, "", -1, 0, "", "", "", "", "", 0, 0, 0, 0, "", 0, 0, 0, 0,
            0, 0, "", 0, "", "",  # modelCode .. deltaNeutralAuxPrice
            0, 0, "", "", "", "", "",  # continuousUpdate .. comboLegsDescrip
            *legs,
            0, 0,  # order combo legs, smart combo routing params
            "", "", "",  # scale init level size, subs level size, price increment
            "",  # hedge type
            0, "", "", 0, 0,  # optOutSmartRouting, clearing account/intent, notHeld, no DNC
            "",  # algo strategy
            0, 0, order.status, "", "", "", "", "", "", "", "", "", "", "", "", "", "", 0, 0,
            0,  # conditions
            "", "", "", "", "", "", "", 0, "", "", "", "", 0, 0, "", 0,
            since(MIN_SERVER_VER_DURATION, ""), since(MIN_SERVER_VER_POST_TO_ATS, ""),
            since(MIN_SERVER_VER_AUTO_CANCEL_PARENT, 0),
            since(MIN_SERVER_VER_PEGBEST_PEGMID_OFFSETS, "", "", "", "", ""),  # minTradeQty ..
        )  # fmt: skip
