"""The simulated broker behind the service's OrderGateway port, on a clock."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal

from brokers.sim.broker import SimBroker
from service.ports import ComboOrder, Execution, LegKey, OrderEvent


class SimGateway:
    """:class:`service.ports.OrderGateway` on a :class:`SimBroker`; ``now`` is the clock."""

    def __init__(self, broker: SimBroker, now: Callable[[], datetime]) -> None:
        self.broker = broker
        self._now = now

    async def place(self, order: ComboOrder) -> None:
        self.broker.place(order, self._now())

    async def modify(self, order_ref: str, limit: Decimal) -> None:
        self.broker.modify(order_ref, limit, self._now())

    async def cancel(self, order_ref: str) -> None:
        self.broker.cancel(order_ref, self._now())

    async def positions(self) -> dict[LegKey, int]:
        return self.broker.positions()

    async def executions(self) -> list[Execution]:
        return self.broker.executions()

    async def open_orders(self) -> list[OrderEvent]:
        return self.broker.open_orders()
