"""The monitor live (its TaskGroup on a fast clock), and a restart while an order works.

On PostgreSQL: the second instance reads the database; the database loses a write, then
every connection mid-session. (The monitor live on the in-memory store:
tests/unit/test_live.py.)"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import asyncpg

from brokers.sim.broker import SimBroker
from brokers.sim.gateway import SimVenue
from service.app.assembly import App
from service.clock import ManualClock, SpeedClock
from service.errors import StoreUnavailable
from service.ports import Clock, Store, leg_key
from service.store import database
from service.store.repository import SqlStore
from tests import loop
from tests.factories import LOOP_POSITION as POSITION
from tests.factories import LOOP_T0 as T0
from tests.factories import market
from tests.loop import instance, run_until
from tests.support import plain_url as _plain


@contextlib.asynccontextmanager
async def started(
    db_url: str, broker: SimBroker, clock: Clock
) -> AsyncIterator[tuple[Store, SimVenue, App]]:
    """:func:`tests.loop.started` on a store on the database ``db_url``."""
    engine = database.engine(db_url)
    try:
        async with loop.started(SqlStore(engine), broker, clock) as parts:
            yield parts
    finally:
        await engine.dispose()


def test_a_restart_while_an_order_works_sends_no_second_order_and_fills_once(
    db_url: str,
) -> None:
    """Instance A sends the loss stop; it fills 3 at a time. A dies after the first fill.
    While no one listens the broker fills 3 more. Instance B starts on the same database
    and broker: it applies the missed fill, adopts the working order (no second order),
    and follows it to the end; every execution lands exactly once."""
    broker = SimBroker(fill_size=3)
    clock = ManualClock(T0)
    venue = SimVenue(market(), broker, clock)
    broker.hold_spreads(POSITION, 10)

    def tick() -> tuple[Any, Any]:
        clock.now_ += timedelta(milliseconds=250)
        return venue.step(clock.now_)

    async def first() -> None:
        engine = database.engine(db_url)
        try:
            store = SqlStore(engine)
            await store.import_positions([POSITION], "DU1")
            a = await instance(store, venue)
            await a.load(clock.now_)
            while a.remaining()["P1"] == 10:
                assert clock.now_ < T0 + timedelta(minutes=10)
                await a.step(clock.now_, *tick())
        finally:
            await engine.dispose()  # A is gone

    async def second() -> tuple[App, list[str], Any]:
        engine = database.engine(db_url)
        try:
            store = SqlStore(engine)
            b = await instance(store, venue)
            lines = await b.load(clock.now_)
            while b.remaining()["P1"] > 0:
                assert clock.now_ < T0 + timedelta(minutes=12)
                await b.step(clock.now_, *tick())
            return b, lines, await store.detail("P1")
        finally:
            await engine.dispose()

    asyncio.run(first())
    missed = 0
    while missed == 0:  # the gap: the broker trades, its events reach no one
        missed = sum(1 for e in tick()[1] if e.execution is not None)
    b, lines, detail = asyncio.run(second())

    ref = "P1:stop:1"
    assert f"{ref}: working at the broker: adopted" in lines
    assert sum(1 for line in lines if "applied missed execution" in line) == 1
    assert b.decisions == []  # B sent nothing of its own
    assert {e.order_ref for e in broker.executions()} == {ref}  # one order, ever
    assert sorted(f.exec_id for f in detail.fills) == sorted(e.exec_id for e in broker.executions())
    assert [f.quantity for f in detail.fills] == [3, 3, 3, 1]
    assert [(o.order_ref, o.status, o.filled) for o in detail.orders] == [(ref, "filled", 10)]
    assert (detail.stored.remaining, broker.positions()) == (0, {})
    assert leg_key(POSITION, 0) not in b.expected_holdings()


def test_a_fill_whose_store_write_loses_the_connection_is_retried_and_lands_once(
    db_url: str,
) -> None:
    """The database drops the connection under the first fill's write: the event is tried
    again (with backoff) and lands, once; the monitor's state follows the store."""
    failures = {"left": 2}

    async def main() -> tuple[App, Any, SimBroker]:
        engine = database.engine(db_url)
        try:
            store = SqlStore(engine)
            real = store.apply_fill

            async def flaky(fill: Any) -> Any:
                if failures["left"]:
                    failures["left"] -= 1
                    raise StoreUnavailable("apply_fill: database unavailable: connection reset")
                return await real(fill)

            store.apply_fill = flaky  # type: ignore[method-assign]
            await store.import_positions([POSITION], "DU1")
            broker = SimBroker()
            broker.hold_spreads(POSITION, 10)
            clock = ManualClock(T0)
            venue = SimVenue(market(), broker, clock)
            monitor = await instance(store, venue)
            await monitor.load(T0)
            while monitor.remaining()["P1"] > 0:
                assert clock.now_ < T0 + timedelta(minutes=10)
                clock.now_ += timedelta(milliseconds=250)
                await monitor.step(clock.now_, *venue.step(clock.now_))
            return monitor, await store.detail("P1"), broker
        finally:
            await engine.dispose()

    monitor, detail, broker = asyncio.run(main())
    assert failures["left"] == 0
    assert [(f.exec_id, f.quantity) for f in detail.fills] == [
        (e.exec_id, e.quantity) for e in broker.executions()
    ]
    assert (detail.stored.remaining, detail.orders[0].status) == (0, "filled")
    assert monitor.remaining() == {"P1": 0}


def test_connections_the_database_drops_mid_session_are_replaced_and_fills_land_once(
    db_url: str,
) -> None:
    """Live, with the loss stop working (filled 3 at a time): the server terminates every
    connection of the database, the ones the order workers and the event follower keep
    among them. Their next writes fail as lost, are retried on new connections, and every
    execution lands exactly once."""
    broker = SimBroker(fill_size=3, latency=timedelta(seconds=2))
    killed: list[int] = []

    async def kill_once(monitor: App) -> None:
        if not killed and monitor.decisions:  # the stop is out, not filled yet
            killed.append(await terminate_all(db_url))

    async def main() -> Any:
        clock = SpeedClock(T0, speed=600)
        async with started(db_url, broker, clock) as (store, venue, monitor):
            await monitor.load(clock.now())
            done = lambda m: m.remaining().get("P1") == 0  # noqa: E731
            await run_until(monitor, venue, clock, done, meanwhile=kill_once)
            assert done(monitor)
            return await store.detail("P1")

    detail = asyncio.run(main())
    assert killed[0] >= 2  # at least a worker's and the follower's
    assert sorted(f.exec_id for f in detail.fills) == sorted(e.exec_id for e in broker.executions())
    assert [f.quantity for f in detail.fills] == [3, 3, 3, 1]
    assert (detail.stored.remaining, detail.orders[0].status) == (0, "filled")


async def terminate_all(db_url: str) -> int:
    """The server ends every other connection to the database; how many it ended."""
    conn = await asyncpg.connect(_plain(db_url))
    try:
        return int(
            await conn.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        )
    finally:
        await conn.close()
