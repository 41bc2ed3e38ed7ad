"""Driving the loop in tests: the loop the composition root builds on a store and a venue,
stepped on market time or run live on a clock until a condition holds."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from typing import Any

from brokers.ib.broker import IbBroker
from brokers.sim.broker import SimBroker
from brokers.sim.gateway import SimVenue
from rules.books import DEFAULT_BOOKS
from rules.pricing import RepriceSchedule
from service import bootstrap
from service.app.assembly import App
from service.clock import ManualClock
from service.ports import Clock, Store
from service.settings import Settings
from tests.factories import LOOP_POSITION, LOOP_SCHEDULE, market


async def monitor_on(store: Store, venue: SimVenue | IbBroker, schedule: RepriceSchedule) -> App:
    """The loop the composition root builds on ``store`` and a venue (simulated, or IB):
    the default books, NYSE hours."""
    app = await bootstrap.build(
        Settings(), store=store, venue=venue, books=dict(DEFAULT_BOOKS), schedule=schedule
    )
    return app.loop


async def run_for(monitor: App, venue: SimVenue, clock: ManualClock, seconds: float) -> None:
    """``seconds`` of market time in 250 ms steps; while the simulated broker's connection
    is down only the housekeeping runs (no quotes, no order events reach the monitor)."""
    end = clock.now_ + timedelta(seconds=seconds)
    while clock.now_ < end:
        clock.now_ += timedelta(milliseconds=250)
        if venue.connected():
            await monitor.step(clock.now_, *venue.step(clock.now_))
        else:
            await monitor.housekeeping(clock.now_)
        await asyncio.sleep(0)  # other tasks (an alerter, a server) get their turn


async def instance(store: Store, venue: SimVenue) -> App:
    """The loop on ``store`` and ``venue`` with the scenario's reprice schedule."""
    return await monitor_on(store, venue, LOOP_SCHEDULE)


@contextlib.asynccontextmanager
async def started(
    store: Store, broker: SimBroker, clock: Clock
) -> AsyncIterator[tuple[Store, SimVenue, App]]:
    """The scenario's position stored in ``store`` and held at ``broker``; a monitor on the
    simulated market (not yet loaded), its store and venue."""
    await store.import_positions([LOOP_POSITION], "DU1")
    broker.hold_spreads(LOOP_POSITION, 10)
    venue = SimVenue(market(), broker, clock)
    yield store, venue, await instance(store, venue)


async def run_until(
    monitor: App,
    venue: SimVenue,
    clock: Clock,
    until: Callable[[App], bool],
    limit: float = 30.0,
    meanwhile: Callable[[App], Awaitable[None]] | None = None,
) -> None:
    """Run the loaded monitor live on ``clock`` until ``until(monitor)`` holds (or ``limit``
    seconds of wall time), ``meanwhile`` called at every look, then stop it as SIGTERM
    would."""
    stop = asyncio.Event()

    async def watch() -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limit
        while not until(monitor) and loop.time() < deadline:
            if meanwhile is not None:
                await meanwhile(monitor)
            await asyncio.sleep(0.005)
        stop.set()

    async with asyncio.TaskGroup() as tg:
        tg.create_task(monitor.run(venue, clock, stop))
        tg.create_task(watch())


async def live(
    store: Store, broker: SimBroker, until: Any, clock: Clock, limit: float = 30.0
) -> tuple[App, Any, SimVenue]:
    """Run the monitor live on ``clock`` until ``until(monitor)`` holds (or ``limit``
    seconds of wall time), then stop it as SIGTERM would."""
    async with started(store, broker, clock) as (_, venue, monitor):
        await monitor.load(clock.now())
        await run_until(monitor, venue, clock, until, limit)
        return monitor, await store.detail(LOOP_POSITION.id), venue
