"""Staleness at a start: a position with no quote yet is not stale (stale is a quote that
stopped moving); it has its book's limit for a first quote, then ``data.no_quote`` once."""

from __future__ import annotations

import asyncio
from typing import Any

from structlog.testing import capture_logs

from brokers.sim.broker import SimBroker
from service.clock import ManualClock
from service.store.memory import InMemoryStore
from tests.factories import LOOP_POSITION as POSITION
from tests.factories import LOOP_T0 as T0
from tests.loop import run_for, started


def test_no_quote_yet_is_not_stale_and_is_said_once_after_its_grace() -> None:
    """Quotes do not come (the broker away from the start): for the book's 120 s nothing is
    said; then data.no_quote, once; never data.stale, and /readyz's stale list stays
    empty. (Before, every position was said stale at the first look of every start.)"""

    async def main() -> tuple[list[dict[str, Any]], list[dict[str, Any]], set[str]]:
        broker, clock = SimBroker(), ManualClock(T0)
        async with started(InMemoryStore(), broker, clock) as (_, venue, monitor):
            await monitor.load(T0)
            broker.drop()
            with capture_logs() as early:
                await run_for(monitor, venue, clock, 110)
            with capture_logs() as late:
                await run_for(monitor, venue, clock, 300)
            return early, late, set(monitor.views.stale)

    early, late, stale = asyncio.run(main())
    said = [e for e in early + late if e["event"] in ("data.stale", "data.no_quote")]
    assert [e for e in early if e in said] == []
    assert [(e["event"], e["position_id"]) for e in said] == [("data.no_quote", POSITION.id)]
    assert stale == set()
