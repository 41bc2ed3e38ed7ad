"""The fake gateway's orders once done, and faults on them: today's completed orders
(``reqCompletedOrders``), an order IB ends on its own, a fill IB corrects."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from brokers.ib.fake.base import Session
from brokers.ib.fake.fills import exec_details, execution_rows
from brokers.ib.fake.order_wire import completed_order
from brokers.ib.fake.orders import OrdersMixin
from rules.clock import new_york


class DoneOrdersMixin(OrdersMixin):
    def end_at_ib(self, ref: str) -> None:
        """Fault: IB cancels the latest order ``ref`` on its own (a DAY order expiring, a
        margin check), telling the connected clients."""
        order = self.order(ref)
        if order is not None:
            self.broker.cancel(order.key, self.clock.now())
            self._relay(self.broker.events())

    def correct(self, ref: str, price: Decimal) -> None:
        """Fault: IB corrects the latest fill of ``ref``: its BAG execution again at ``price``,
        the execId's digits after the final period counted up (TWS API, Execution.ExecId)."""
        n, (order, execution, legs) = next((k, f) for k, f in reversed(list(
            enumerate(self._fills))) if f[0].ref == ref)  # fmt: skip
        bag = execution_rows(
            f"{order.perm_id:08x}.{n:04x}",
            order.action,
            True,
            replace(execution, price=price),
            [(*leg, 1) for leg in legs],
        )[0]
        fixed = replace(bag, exec_id=bag.exec_id[:-2] + "02")
        for s in self._sessions:
            s.send(*exec_details(-1, order, fixed, self.exec_time(fixed.time), self.account))

    def _completed_orders(self, s: Session, fields: list[str]) -> None:
        """The orders done today (IB: the current trading day's; here New York's), each as
        a completedOrder with its final status and the quantity filled; then the end."""
        today = self.clock.now().astimezone(new_york()).date()
        for order in self._orders.values():
            if order.ended is not None and order.ended.astimezone(new_york()).date() == today:
                s.send(*completed_order(order, self.account))
        s.send(102)
