"""The simulated venue behind the service's ports: market data feed and order gateway.

:class:`SimVenue` puts a :class:`brokers.sim.market.SimMarket` and a
:class:`brokers.sim.broker.SimBroker` behind :class:`service.ports.Feed` and
:class:`service.ports.OrderGateway`. Live, :meth:`SimVenue.run` steps the
market every 250 ms of the clock's time and hands the quotes and the
broker's order events to the service; tests and the demo call
:meth:`SimVenue.step` themselves for a deterministic session.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal

from brokers.sim.broker import SimBroker
from brokers.sim.market import SimMarket
from service.ports import (
    Clock,
    ComboOrder,
    EventSink,
    Execution,
    Holding,
    LegFill,
    LegKey,
    LegUpdate,
    OrderEvent,
    QuoteSink,
)

TICK = timedelta(milliseconds=250)


class SimGateway:
    """:class:`service.ports.OrderGateway` and :class:`service.ports.Account` on a
    :class:`SimBroker`; ``now`` is the clock."""

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

    async def holdings(self) -> list[Holding]:
        return self.broker.holdings()

    async def leg_fills(self) -> list[LegFill]:
        """None: the simulated broker fills combos, and keeps no leg's execution."""
        return []


class SimVenue(SimGateway):
    """Feed and order gateway of a simulated market and broker, on ``clock``."""

    def __init__(self, market: SimMarket, broker: SimBroker, clock: Clock) -> None:
        super().__init__(broker, clock.now)
        self.market = market
        self.clock = clock

    def connected(self) -> bool:
        return self.broker.connected

    def subscribe(self, leg: LegKey) -> None:
        self.market.subscribe(leg)

    def unsubscribe(self, leg: LegKey) -> None:
        self.market.unsubscribe(leg)

    def step(self, now: datetime) -> tuple[list[LegUpdate], list[OrderEvent]]:
        """The market's updates due by ``now``, and the broker's events after trading on
        them."""
        updates = self.market.step(now)
        return updates, self.broker.trade(updates, now)

    async def run(self, quotes: QuoteSink, events: EventSink) -> None:
        while True:
            updates, happened = self.step(self.clock.now())
            if updates:
                quotes(updates)
            if happened:
                events(happened)
            await self.clock.sleep(TICK.total_seconds())
