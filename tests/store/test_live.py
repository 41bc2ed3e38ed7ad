"""The monitor live (its TaskGroup on a fast clock), and a restart while an order works."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import asyncpg

from brokers.sim.broker import SimBroker
from brokers.sim.gateway import SimVenue
from brokers.sim.market import Move, SimMarket, Underlying
from rules.pricing import RepriceSchedule
from service.app.assembly import App
from service.app.runner import WRITE_WAIT
from service.clock import ManualClock, SpeedClock
from service.errors import StoreUnavailable
from service.ports import Clock, leg_key
from service.store import database
from service.store.repository import SqlStore
from tests.store.conftest import _plain, monitor_on, vertical

T0 = datetime(2027, 3, 2, 15, 0, tzinfo=UTC)  # Tuesday 10:00 New York
POSITION = replace(vertical(), entry_credit=Decimal("0.80"))  # SPY 450/445 P x10
SCHEDULE = RepriceSchedule(
    steps=4, interval=timedelta(seconds=2), stop_interval=timedelta(seconds=1)
)
SELLOFF = Move("selloff", T0 + timedelta(minutes=1), 0.05, timedelta(minutes=5))


def market() -> SimMarket:
    return SimMarket([Underlying("SPY", 470.0, vol=0.15, moves=[SELLOFF])], T0, seed=3)


async def instance(store: SqlStore, venue: SimVenue) -> App:
    return await monitor_on(store, venue, SCHEDULE)


@contextlib.asynccontextmanager
async def started(
    db_url: str, broker: SimBroker, clock: Clock
) -> AsyncIterator[tuple[SqlStore, SimVenue, App]]:
    """POSITION stored and held at ``broker``; a monitor on the simulated market (not yet
    loaded), its store and venue."""
    engine = database.engine(db_url)
    try:
        store = SqlStore(engine)
        await store.import_positions([POSITION], "DU1")
        broker.hold_spreads(POSITION, 10)
        venue = SimVenue(market(), broker, clock)
        yield store, venue, await instance(store, venue)
    finally:
        await engine.dispose()


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
    db_url: str, broker: SimBroker, until: Any, clock: Clock, limit: float = 30.0
) -> tuple[App, Any, SimVenue]:
    """Run the monitor live on ``clock`` until ``until(monitor)`` holds (or ``limit``
    seconds of wall time), then stop it as SIGTERM would."""
    async with started(db_url, broker, clock) as (store, venue, monitor):
        await monitor.load(clock.now())
        await run_until(monitor, venue, clock, until, limit)
        return monitor, await store.detail(POSITION.id), venue


def test_live_a_selloff_closes_everything_through_the_taskgroup(db_url: str) -> None:
    """The same loss stop as the step-driven test, with the feed, evaluation, order
    workers, event follower and housekeeping running as tasks on a clock 600x real time."""
    broker = SimBroker(fill_size=4)
    clock = SpeedClock(T0, speed=600)
    monitor, detail, _ = asyncio.run(
        live(db_url, broker, lambda m: m.remaining().get("P1") == 0, clock)
    )
    assert [(o.reason, o.status, o.filled) for o in detail.orders] == [("loss_stop", "filled", 10)]
    assert [f.quantity for f in detail.fills] == [4, 4, 2]
    assert (detail.stored.remaining, detail.stored.status) == (0, "closed")
    assert broker.positions() == {}
    assert monitor.updates > 0
    assert len(monitor.sent_latency) == 1
    # the closed position's legs are released: the market quotes them no more
    assert venue_subscribed(monitor) == set()


def venue_subscribed(monitor: App) -> set[Any]:
    return set(monitor.watched_legs())


def test_stopping_leaves_a_working_order_working_and_recorded(db_url: str) -> None:
    """Stopped while its stop order works (the broker is slow to take it): the order is
    left working at the broker, and the store has it live, nothing half-written."""
    broker = SimBroker(latency=timedelta(hours=1))  # the order never starts working
    clock = SpeedClock(T0, speed=600)
    _, detail, _ = asyncio.run(live(db_url, broker, lambda m: len(m.decisions) == 1, clock))
    (order,) = detail.orders
    assert (order.status, order.filled) == ("submitted", 0)
    assert [o.order_ref for o in broker.open_orders()] == [order.order_ref]
    assert detail.stored.status == "closing"


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


def test_a_start_says_where_the_account_and_the_open_positions_disagree(db_url: str) -> None:
    """The account holds 8 of the 10 short puts the store has open: the start says so (and
    the close-only check will refuse that position's closes until a human looks)."""

    async def main() -> list[str]:
        engine = database.engine(db_url)
        try:
            store = SqlStore(engine)
            await store.import_positions([POSITION], "DU1")
            broker = SimBroker()
            broker.hold_spreads(POSITION, 10)
            broker.hold(leg_key(POSITION, 0), 2)  # short 8, not 10
            venue = SimVenue(market(), broker, ManualClock(T0))
            return await (await instance(store, venue)).load(T0)
        finally:
            await engine.dispose()

    assert asyncio.run(main()) == [
        "SPY 2027-04-16 P 450: the account holds -8, the open positions imply -10"
    ]


def test_a_close_the_account_cannot_take_is_retried_then_left_alone(db_url: str) -> None:
    """The account holds 8 of the 10 short puts: every stop the monitor decides is refused
    at the gateway boundary (it could open exposure). A refusal may be the account a fill
    ahead of the events, so the next quotes decide again; after 3 refusals over 5 s of
    market time the position is left alone, loudly. Nothing is ever sent."""

    async def main() -> Any:
        engine = database.engine(db_url)
        try:
            store = SqlStore(engine)
            await store.import_positions([POSITION], "DU1")
            broker = SimBroker()
            broker.hold_spreads(POSITION, 10)
            broker.hold(leg_key(POSITION, 0), 2)
            clock = ManualClock(T0)
            venue = SimVenue(market(), broker, clock)
            monitor = await instance(store, venue)
            await monitor.load(T0)
            refused_at = None
            while clock.now_ < T0 + timedelta(minutes=8):
                clock.now_ += timedelta(milliseconds=250)
                await monitor.step(clock.now_, *venue.step(clock.now_))
                if refused_at is None and monitor.desk.policy.refusals:
                    refused_at = clock.now_
            return monitor, refused_at, await store.detail("P1"), broker
        finally:
            await engine.dispose()

    monitor, refused_at, detail, broker = asyncio.run(main())
    assert refused_at is not None
    assert "account holds -8, the open positions imply -10" in monitor.blocked["P1"]
    count, first = monitor.desk.policy.refusals["P1"]
    assert count >= 3
    assert first == refused_at
    assert detail.orders == []
    assert broker.open_orders() == []


def written_while(db_url: str, delay: float) -> tuple[int, int]:
    """Live on a clock 600x real time through a selloff, with every intent write taking
    ``delay`` seconds: (leg updates evaluated when the loss stop's write began, and when it
    had committed)."""
    seen: list[tuple[int, int]] = []

    async def main() -> None:
        clock = SpeedClock(T0, speed=600)
        async with started(db_url, SimBroker(), clock) as (store, venue, monitor):
            real = store.record_intents

            async def slow(items: Any) -> Any:
                before = monitor.updates
                await asyncio.sleep(delay)
                out = await real(items)
                seen.append((before, monitor.updates))
                return out

            store.record_intents = slow  # type: ignore[method-assign]
            await monitor.load(clock.now())
            await run_until(monitor, venue, clock, lambda _: bool(seen))

    asyncio.run(main())
    return seen[0]


def test_evaluation_waits_for_a_decided_close_to_be_written(db_url: str) -> None:
    """What was decided is written before more quotes are evaluated: while the loss stop's
    intent takes 5 ms more to commit, the quotes that keep coming wait (the latest per
    leg). (Well inside WRITE_WAIT, the longest evaluation waits.)"""
    before, after = written_while(db_url, 0.005)
    assert before > 0
    assert after == before


def test_a_write_that_hangs_holds_evaluation_back_only_briefly(db_url: str) -> None:
    """A database that does not answer must not stop the stops being evaluated: after
    WRITE_WAIT (50 ms) evaluation goes on while the write still hangs."""
    assert WRITE_WAIT < 0.5
    before, after = written_while(db_url, 0.5)
    assert after > before


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
