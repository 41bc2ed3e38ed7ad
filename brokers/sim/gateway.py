"""The simulated venue behind the service's ports: market data feed and order gateway.

:class:`SimVenue` puts a :class:`brokers.sim.market.SimMarket` and a
:class:`brokers.sim.broker.SimBroker` behind :class:`service.ports.Feed` and
:class:`service.ports.OrderGateway`. Live, :meth:`SimVenue.run` steps the
market every 250 ms of the clock's time and hands the quotes and the
broker's order events to the service; tests and the demo call
:meth:`SimVenue.step` themselves for a deterministic session.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from decimal import Decimal

from brokers.sim import seed
from brokers.sim.broker import SimBroker
from brokers.sim.market import SimMarket
from rules.clock import expiry_instant
from service.logs import get_logger
from service.ports import (
    Admitted,
    Clock,
    ComboOrder,
    Completed,
    EventSink,
    Execution,
    Holding,
    LegFill,
    LegKey,
    LegUpdate,
    OrderEvent,
    ProblemSink,
    QuoteSink,
    StoredPosition,
)

TICK = timedelta(milliseconds=250)
MAX_BEHIND = timedelta(seconds=1)  # market time the market may lag its clock before it skips
_log = get_logger("spreadwatch.sim")
BEHIND = "the simulated market fell behind its clock: the quotes due meanwhile are skipped"


class SimGateway:
    """:class:`service.ports.OrderGateway` and :class:`service.ports.Account` on a
    :class:`SimBroker`; ``now`` is the clock."""

    def __init__(self, broker: SimBroker, now: Callable[[], datetime]) -> None:
        self.broker = broker
        self._now = now
        self._positions_changed: Callable[[], None] | None = None

    async def place(self, order: ComboOrder) -> None:
        self.broker.place(order, self._now())

    async def modify(self, order_ref: str, limit: Decimal) -> None:
        self.broker.modify(order_ref, limit, self._now())

    async def cancel(self, order_ref: str) -> None:
        self.broker.cancel(order_ref, self._now())

    async def positions(self) -> dict[LegKey, int]:
        """What the account holds; options past their expiry's close are gone (the
        simulated exchange expires them, as IB removes them overnight)."""
        now = self._now()
        return {
            leg: n for leg, n in self.broker.positions().items() if now < expiry_instant(leg.expiry)
        }

    def on_positions(self, changed: Callable[[], None]) -> None:
        self._positions_changed = changed

    async def executions(self) -> list[Execution]:
        return self.broker.executions()

    def executions_from(self, now: datetime) -> datetime | None:
        """(None: the simulated broker lives and dies with its process, so it has every
        execution of the orders it had, those of the day before included: it lets go of
        none but older ones, which nothing reconciled now can have.)"""
        return None

    async def open_orders(self) -> list[OrderEvent]:
        return self.broker.open_orders()

    def stored_executions(self, exec_ids: Iterable[str]) -> None:
        """(The simulated broker passes each execution on once, as it happens.)"""

    async def completed_orders(self) -> list[Completed]:
        """(None: the simulated broker has every execution, so no outcome is unknown.)"""
        return []

    async def holdings(self) -> list[Holding]:
        return self.broker.holdings()

    async def leg_fills(self) -> list[LegFill]:
        """None: the simulated broker fills combos, and keeps no leg's execution."""
        return []


class SimVenue(SimGateway):
    """Feed and order gateway of a simulated market and broker, on ``clock``.

    ``holds_admitted``: the simulated account holds what is admitted (the daemon's: the
    store is the account); otherwise whoever made the broker says what it holds."""

    def __init__(
        self, market: SimMarket, broker: SimBroker, clock: Clock, *, holds_admitted: bool = False
    ) -> None:
        super().__init__(broker, clock.now)
        self.market = market
        self.clock = clock
        self.holds_admitted = holds_admitted
        self._admitted: dict[str, datetime] = {}  # position -> its last leg's expiry instant

    async def admit(self, positions: Sequence[StoredPosition]) -> Admitted:
        """Each position's underlying quoted (seeded as the first position on it); every
        position admitted, held once by the account when ``holds_admitted`` (those past
        their expiry are forgotten: they are never admitted again)."""
        now = self._now()
        self._admitted = {pid: t for pid, t in self._admitted.items() if now < t}
        for s in positions:
            if s.position.id in self._admitted:
                continue
            last = max(leg.expiry for leg in s.position.legs)
            self._admitted[s.position.id] = expiry_instant(last)
            self.market.add(seed.underlying_for(s.position))
            if self.holds_admitted:
                self.broker.hold_spreads(s.position, s.remaining)
        return Admitted({}, {})

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
        events = self.broker.trade(updates, now)
        if self._positions_changed is not None and any(e.execution for e in events):
            self._positions_changed()
        return updates, events

    async def run(
        self, quotes: QuoteSink, events: EventSink, problems: ProblemSink | None = None
    ) -> None:
        """(The simulated market serves every leg: ``problems`` is never told.) A market
        more than :data:`MAX_BEHIND` behind the clock (more legs than it can quote at this
        speed, or a stalled process) skips to it rather than making every quote due
        meanwhile: each leg is quoted once more, at the clock's time, as a feed under load
        conflates (said once). Before, the quotes due piled up with the lag, in memory and
        in time, and the lag grew with them."""
        said = False
        while True:
            now = self.clock.now()
            if now - self.market.now > MAX_BEHIND:
                if not said:
                    said = True
                    _log.warning("sim.behind", behind=str(now - self.market.now),
                                 legs=len(self.market.subscribed), detail=BEHIND)  # fmt: skip
                self.market.skip_to(now - TICK)
            updates, happened = self.step(now)
            if updates:
                quotes(updates)
            if happened:
                events(happened)
            await self.clock.sleep(TICK.total_seconds())
