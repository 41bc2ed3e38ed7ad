"""The order gateway of a process that may lose the right to trade (the trading lease).

:class:`Fenced` sends an order, a new limit or a cancel only while ``holding()``
says the lease is surely this process's (:meth:`service.app.lease.Lease.holding`);
otherwise it raises :class:`service.errors.NotHolding` and sends nothing. What
only reads (positions, executions, open and completed orders) goes through as is.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from decimal import Decimal

from service.errors import NotHolding
from service.ports import (
    ComboOrder,
    Completed,
    Execution,
    LegKey,
    OrderEvent,
    OrderGateway,
)


class Fenced:
    """``gateway``, its sends refused once ``holding()`` is False."""

    def __init__(self, gateway: OrderGateway, holding: Callable[[], bool]) -> None:
        self.gateway = gateway
        self.holding = holding

    def _check(self, what: str) -> None:
        if not self.holding():
            raise NotHolding(f"{what}: not sent: this process does not hold the trading lease")

    async def place(self, order: ComboOrder) -> None:
        self._check(f"order {order.order_ref}")
        await self.gateway.place(order)

    async def modify(self, order_ref: str, limit: Decimal) -> None:
        self._check(f"order {order_ref}'s new limit")
        await self.gateway.modify(order_ref, limit)

    async def cancel(self, order_ref: str) -> None:
        self._check(f"order {order_ref}'s cancel")
        await self.gateway.cancel(order_ref)

    async def positions(self) -> dict[LegKey, int]:
        return await self.gateway.positions()

    def on_positions(self, changed: Callable[[], None]) -> None:
        self.gateway.on_positions(changed)

    async def executions(self) -> list[Execution]:
        return await self.gateway.executions()

    def executions_from(self, now: datetime) -> datetime | None:
        return self.gateway.executions_from(now)

    async def open_orders(self) -> list[OrderEvent]:
        return await self.gateway.open_orders()

    def stored_executions(self, exec_ids: Iterable[str]) -> None:
        self.gateway.stored_executions(exec_ids)

    async def completed_orders(self) -> list[Completed]:
        return await self.gateway.completed_orders()
