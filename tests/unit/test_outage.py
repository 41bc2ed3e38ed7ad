"""The database away while orders go and fill: no order event is dropped, whatever the
outage's length (the events wait, in order, and are applied when the database answers),
and the outage is said once, not at every failed write."""

from __future__ import annotations

import asyncio
from typing import Any

from structlog.testing import capture_logs

from brokers.sim.broker import SimBroker
from service.clock import SpeedClock
from service.errors import StoreUnavailable
from service.ports import Fill, FillApplied
from service.store.memory import InMemoryStore
from tests.factories import LOOP_T0 as T0
from tests.loop import live


class AwayStore(InMemoryStore):
    """The store, with the database away for the next ``fills`` fill writes and the next
    ``intents`` close intents' (each refused as a lost connection)."""

    def __init__(self, fills: int, intents: int) -> None:
        super().__init__()
        self.fills, self.intents = fills, intents

    async def apply_fill(self, fill: Fill) -> FillApplied:
        if self.fills > 0:
            self.fills -= 1
            raise StoreUnavailable("connection refused: the database is restarting")
        return await super().apply_fill(fill)

    async def record_intents(self, *args: Any, **kwargs: Any) -> Any:
        if self.intents > 0:
            self.intents -= 1
            raise StoreUnavailable("connection refused: the database is restarting")
        return await super().record_intents(*args, **kwargs)


def test_an_outage_longer_than_a_few_tries_drops_no_fill_and_is_said_once() -> None:
    """The loss stop's close is refused 40 times (the decision is taken again each time),
    then its fills 9 times in a row (before, an event gave up after 6 tries: the fill
    was lost, the position left closing, "event failed" logged; and each refused close
    was an "order.failed" error line). Every fill lands, in the store and the exit state;
    the outages are said as one line each, and their ends."""
    store = AwayStore(fills=9, intents=40)
    broker = SimBroker(fill_size=4)
    clock = SpeedClock(T0, speed=600)
    with capture_logs() as logged:
        _, detail, _ = asyncio.run(
            live(store, broker, lambda m: m.remaining().get("P1") == 0, clock, limit=60.0)
        )
    assert (store.intents, store.fills) == (0, 0)  # (both outages happened)
    assert [f.quantity for f in detail.fills] == [4, 4, 2]
    assert (detail.stored.remaining, detail.stored.status) == (0, "closed")
    assert broker.positions() == {}
    events = [e["event"] for e in logged]
    assert not [e for e in events if e in ("order.failed", "order.event_failed")]
    assert 1 <= events.count("store.unavailable") == events.count("store.available") <= 2
