"""The monitor live (its TaskGroup on a fast clock) on the in-memory store: a selloff, a
stop, what a start says, a close the account cannot take, evaluation waiting for writes.
(A restart, and the database dropping connections or writes: tests/integration/
test_loop_postgres.py.)"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from brokers.sim.broker import SimBroker
from brokers.sim.gateway import SimVenue
from service.app.assembly import App
from service.app.runner import WRITE_WAIT
from service.clock import ManualClock, SpeedClock
from service.ports import leg_key
from service.store.memory import InMemoryStore
from tests.factories import LOOP_POSITION as POSITION
from tests.factories import LOOP_T0 as T0
from tests.factories import market
from tests.loop import instance, live, run_for, run_until, started


def test_live_a_selloff_closes_everything_through_the_taskgroup() -> None:
    """The same loss stop as the step-driven test, with the feed, evaluation, order
    workers, event follower and housekeeping running as tasks on a clock 600x real time."""
    broker = SimBroker(fill_size=4)
    clock = SpeedClock(T0, speed=600)
    monitor, detail, _ = asyncio.run(
        live(InMemoryStore(), broker, lambda m: m.remaining().get("P1") == 0, clock)
    )
    assert [(o.reason, o.status, o.filled) for o in detail.orders] == [("loss_stop", "filled", 10)]
    assert [f.quantity for f in detail.fills] == [4, 4, 2]
    assert (detail.stored.remaining, detail.stored.status) == (0, "closed")
    assert broker.positions() == {}
    assert monitor.updates > 0
    assert len(monitor.sent_latency) == 1
    # the closed position's legs are released: the market quotes them no more
    assert venue_subscribed(monitor) == set()


def test_at_the_close_every_part_forgets_the_day_s_closed_positions() -> None:
    """A daemon runs for weeks with positions added as others close: at the close
    (App.at_close, the daemon's once a day) the book lets go of the closed position and
    so does every part that kept something of it (the soak's growth per position added)."""
    broker = SimBroker(fill_size=4)
    clock = SpeedClock(T0, speed=600)
    app, _, _ = asyncio.run(
        live(InMemoryStore(), broker, lambda m: m.remaining().get("P1") == 0, clock)
    )
    attempts = app.desk.executor.attempts._attempts  # type: ignore[attr-defined]

    def kept() -> list[bool]:
        return [
            "P1" in app.book.watches, "P1" in app.monitor._said, "P1" in app.views.realised,
            any(pid == "P1" for pid, _ in attempts),
        ]  # fmt: skip

    assert kept() == [True] * 4
    assert app.at_close() == ["P1"]
    assert kept() == [False] * 4
    assert app.decisions != []  # (the session just ended stays for the views)
    assert app.at_close() == []


def venue_subscribed(monitor: App) -> set[Any]:
    return set(monitor.watched_legs())


def test_stopping_leaves_a_working_order_working_and_recorded() -> None:
    """Stopped while its stop order works (the broker is slow to take it): the order is
    left working at the broker, and the store has it live, nothing half-written: queued,
    or submitted where the broker's acknowledgement was applied before the stop (a race
    the next start's reconciliation settles: a queued order the broker works is recorded
    acknowledged and adopted)."""
    broker = SimBroker(latency=timedelta(hours=1))  # the order never starts working
    clock = SpeedClock(T0, speed=600)
    _, detail, _ = asyncio.run(
        live(InMemoryStore(), broker, lambda m: len(m.decisions) == 1, clock)
    )
    (order,) = detail.orders
    assert order.status in ("queued", "submitted")
    assert order.filled == 0
    assert [o.order_ref for o in broker.open_orders()] == [order.order_ref]
    assert detail.stored.status == "closing"


def test_a_start_says_where_the_account_and_the_open_positions_disagree() -> None:
    """The account holds 8 of the 10 short puts the store has open: the start says so (and
    the close-only check will refuse that position's closes until a human looks)."""

    async def main() -> list[str]:
        store = InMemoryStore()
        await store.import_positions([POSITION], "DU1")
        broker = SimBroker()
        broker.hold_spreads(POSITION, 10)
        broker.hold(leg_key(POSITION, 0), 2)  # short 8, not 10
        venue = SimVenue(market(), broker, ManualClock(T0))
        return await (await instance(store, venue)).load(T0)

    assert asyncio.run(main()) == [
        "SPY 2027-04-16 P 450: the account holds -8, the open positions imply -10"
    ]


def test_a_close_the_account_cannot_take_is_retried_then_left_alone() -> None:
    """The account holds 8 of the 10 short puts: every stop the monitor decides is refused
    at the gateway boundary (it could open exposure). A refusal may be the account a fill
    ahead of the events, so the next quotes decide again; after 3 refusals over 5 s of
    market time the position is left alone, loudly. Nothing is ever sent."""

    async def main() -> Any:
        store = InMemoryStore()
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

    monitor, refused_at, detail, broker = asyncio.run(main())
    assert refused_at is not None
    why = monitor.attention["P1"]
    assert why.startswith("close refused: ")
    assert "account holds -8, the open positions imply -10" in why
    assert detail.stored.attention == why  # (a restart keeps it; `positions list` says it)
    assert [e.detail for e in detail.events if e.kind == "needs attention"] == [why]
    count, first = monitor.desk.policy.refusals["P1"]
    assert count >= 3
    assert first == refused_at
    assert detail.orders == []
    assert broker.open_orders() == []


def written_while(delay: float) -> tuple[int, int]:
    """Live on a clock 600x real time through a selloff, with every intent write taking
    ``delay`` seconds: (leg updates evaluated when the loss stop's write began, and when it
    had committed)."""
    seen: list[tuple[int, int]] = []

    async def main() -> None:
        clock = SpeedClock(T0, speed=600)
        async with started(InMemoryStore(), SimBroker(), clock) as (store, venue, monitor):
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


def test_evaluation_waits_for_a_decided_close_to_be_written() -> None:
    """What was decided is written before more quotes are evaluated: while the loss stop's
    intent takes 5 ms more to commit, the quotes that keep coming wait (the latest per
    leg). (Well inside WRITE_WAIT, the longest evaluation waits.)"""
    before, after = written_while(0.005)
    assert before > 0
    assert after == before


def test_a_write_that_hangs_holds_evaluation_back_only_briefly() -> None:
    """A database that does not answer must not stop the stops being evaluated: after
    WRITE_WAIT (50 ms) evaluation goes on while the write still hangs."""
    assert WRITE_WAIT < 0.5
    before, after = written_while(0.5)
    assert after > before


def rejected(times: int, after: int = 0) -> Any:
    """The selloff's loss stop with the broker rejecting the first ``times`` orders (IB's
    201), stepped for ``after`` minutes more once a human has resumed the position if it
    needed attention: (the loop, the store's detail, what the read model resolved)."""

    async def main() -> Any:
        store = InMemoryStore()
        await store.import_positions([POSITION], "DU1")
        seen: list[str] = []

        def reject(order: Any) -> str | None:
            seen.append(order.order_ref)
            return "201: no trading permission" if len(seen) <= times else None

        broker = SimBroker(fill_size=10, reject=reject)
        broker.hold_spreads(POSITION, 10)
        clock = ManualClock(T0)
        venue = SimVenue(market(), broker, clock)
        monitor = await instance(store, venue)
        await monitor.load(T0)
        await run_for(monitor, venue, clock, 8 * 60)
        held = await store.detail("P1")
        if after and "P1" in monitor.attention:
            await store.resume("P1")
            await monitor.intake.refresh()
            await run_for(monitor, venue, clock, after * 60)
        return monitor, held, await store.detail("P1")

    return asyncio.run(main())


def test_a_close_the_broker_rejects_three_times_in_a_row_needs_attention_and_stops() -> None:
    """Each rejected stop is decided again with a new order; the third rejection in a row
    leaves the position alone: no fourth order, said once (read model, store, audit)."""
    monitor, held, _ = rejected(10**6)
    assert [o.status for o in held.orders] == ["rejected"] * 3
    why = monitor.attention["P1"]
    assert why == "close rejected by the broker: 201: no trading permission"
    assert held.stored.attention == why
    assert [e.detail for e in held.events if e.kind == "needs attention"] == [why]
    assert monitor.views.attention_since(0) == [("P1", why)]


def test_a_resumed_position_is_resolved_and_traded_again() -> None:
    """Resumed by hand: the episode is said resolved, and the stop goes again (filled)."""
    monitor, held, after = rejected(3, after=2)
    why = held.stored.attention
    assert why is not None
    assert monitor.views.resolved_since(0) == [("P1", why, "resumed by hand")]
    assert monitor.attention == {}
    assert [o.status for o in after.orders] == ["rejected"] * 3 + ["filled"]
    assert after.stored.remaining == 0


def test_two_rejections_then_a_fill_need_no_attention() -> None:
    monitor, _, detail = rejected(2)
    assert [o.status for o in detail.orders] == ["rejected", "rejected", "filled"]
    assert monitor.attention == {}
    assert detail.stored.attention is None
