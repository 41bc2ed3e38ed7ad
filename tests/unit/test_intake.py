"""The daemon takes a human's changes up, and reconciles the account without end: the
loop stepped on the simulated market, on the in-memory store.

The scenario (tests.factories): SPY at 470, the 450/445 put spread sold at 0.80 x10
(P1); a selloff of 5% starts a minute in. The PostgreSQL path (NOTIFY, the poll, a
running ``spreadwatch run``) is tests/e2e/test_positions_live.py's.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from brokers.sim.broker import SimBroker
from brokers.sim.gateway import SimVenue
from rules.machine import ExitReason, Phase
from service.app.assembly import App
from service.app.holdings import CONFIRM, expired_detail
from service.app.intake import EVERY
from service.clock import ManualClock
from service.errors import StoreRefused
from service.ports import ControlKind, LegKey, leg_key
from service.store.memory import InMemoryStore
from tests.factories import LOOP_BESIDE as P2
from tests.factories import LOOP_POSITION as P1
from tests.factories import LOOP_T0 as T0
from tests.factories import NY, market
from tests.loop import instance, run_for, started


def keys(position: object) -> list[LegKey]:
    return [leg_key(position, i) for i in range(2)]  # type: ignore[arg-type]


def kinds(events: list[object]) -> list[str]:
    return [e.kind for e in events]  # type: ignore[attr-defined]


def run(scenario: object) -> None:
    asyncio.run(scenario)  # type: ignore[arg-type]


def test_a_close_asked_by_hand_closes_all_that_remains_through_the_order_path() -> None:
    """No rule holds at the start; `positions close` reaches the running loop: one close of
    all 10 (reason manual, "Manual Close"), written before it is sent, filled, applied once."""

    async def scenario() -> None:
        store, broker, clock = InMemoryStore(), SimBroker(), ManualClock(T0)
        async with started(store, broker, clock) as (_, venue, app):
            await app.load(clock.now())
            await run_for(app, venue, clock, 5)
            assert app.book.watches[P1.id].state.phase is Phase.OPEN
            await store.request_manual_close(P1.id, "manual")
            await app.intake.refresh({P1.id})
            await run_for(app, venue, clock, 30)
            detail = await store.detail(P1.id)
        assert (detail.stored.remaining, detail.stored.status) == (0, Phase.CLOSED)
        assert {(o.reason, o.label) for o in detail.orders} == {("manual", "Manual Close")}
        assert sum(f.quantity for f in detail.fills) == 10
        seen = kinds(detail.events)
        assert seen.index("manual close requested") < seen.index("close intent")
        assert seen.index("close intent") < seen.index("order submitted")
        assert app.views.decided[ExitReason.MANUAL.value] >= 1
        assert " CLOSING: P1 SPY put_credit - Manual Close - " in app.views.close_lines()[0]
        # sold at 0.80, bought back at 0.93: (0.80 - 0.93) x 100 x 10 less the simulated
        # broker's commission, 0.65 a contract a leg: 13.00
        assert [f.price for f in detail.fills] == [Decimal("0.93")]
        assert app.views.fill_lines()[0].endswith(
            " FILLED: P1 SPY put_credit - 10 contracts @ 0.93 - commission $13.00 - "
            "realised P&L: -$143.00 - position realised: -$143.00"
        )

    run(scenario())


def test_a_close_asked_before_the_start_is_acted_on_at_the_start() -> None:
    async def scenario() -> None:
        store, broker, clock = InMemoryStore(), SimBroker(), ManualClock(T0)
        async with started(store, broker, clock) as (_, venue, app):
            await store.request_manual_close(P1.id, "manual")
            await app.load(clock.now())
            assert app.book.watches[P1.id].state.manual
            await run_for(app, venue, clock, 30)
            detail = await store.detail(P1.id)
        assert detail.stored.remaining == 0
        assert {o.reason for o in detail.orders} == {"manual"}

    run(scenario())


def test_a_void_position_is_no_longer_watched_nor_traded() -> None:
    """Voided while running: its legs unsubscribed, and the selloff that stops P2 sends
    nothing for it. A void is refused while a close of the position is live."""

    async def scenario() -> None:
        store, broker, clock = InMemoryStore(), SimBroker(), ManualClock(T0)
        async with started(store, broker, clock) as (_, venue, app):
            await store.import_positions([P2], "DU1")
            broker.hold_spreads(P2, 5)
            await app.load(clock.now())
            await store.void(P1.id, "closed at the broker by hand")
            await app.intake.refresh({P1.id})
            assert P1.id not in app.book.watches
            assert not set(keys(P1)) & venue.market.subscribed
            await run_for(app, venue, clock, 6 * 60)
            voided, other = await store.detail(P1.id), await store.detail(P2.id)
            assert other.orders, "P2 is stopped in the selloff"
        assert voided.orders == []
        assert voided.stored.shown_status() == "void"
        assert ControlKind.VOIDED.value in kinds(voided.events)

    run(scenario())


def test_a_void_is_refused_while_a_close_order_is_live() -> None:
    async def scenario() -> str:
        store, broker, clock = InMemoryStore(), SimBroker(), ManualClock(T0)
        broker.latency = timedelta(hours=1)  # (nothing fills: the order stays live)
        async with started(store, broker, clock) as (_, venue, app):
            await store.request_manual_close(P1.id, "manual")
            await app.load(clock.now())
            await run_for(app, venue, clock, 5)
            assert await store.live_orders()
            try:
                await store.void(P1.id, "by mistake")
            except StoreRefused as exc:
                return str(exc)
            return ""

    said = asyncio.run(scenario())
    assert "is working at the broker" in said
    assert "P1" in said


def test_a_position_added_while_running_is_watched_and_can_exit() -> None:
    async def scenario() -> App:
        store, broker, clock = InMemoryStore(), SimBroker(), ManualClock(T0)
        async with started(store, broker, clock) as (_, venue, app):
            await app.load(clock.now())
            await run_for(app, venue, clock, 2)
            await store.import_positions([P2], "DU1")
            broker.hold_spreads(P2, 5)
            app.intake.changed(EVERY)
            await app.intake.refresh()
            assert P2.id in app.book.watches
            assert set(keys(P2)) <= venue.market.subscribed
            await run_for(app, venue, clock, 6 * 60)
            assert (await store.detail(P2.id)).orders
            return app

    app = asyncio.run(scenario())
    assert app.book.watches[P2.id].state.remaining < 5


def test_a_book_changed_by_hand_rearms_the_rules() -> None:
    async def scenario() -> None:
        store, broker, clock = InMemoryStore(), SimBroker(), ManualClock(T0)
        async with started(store, broker, clock) as (_, _venue, app):
            await app.load(clock.now())
            before = app.book.watches[P1.id].state.plan.targets
            await store.set_book(P1.id, "INCOME_POP")
            await app.intake.refresh({P1.id})
            state = app.book.watches[P1.id].state
            assert state.position.book == "INCOME_POP"
            assert state.plan.targets != before
            assert state.plan.targets[0] == Decimal("0.35")

    run(scenario())


def test_a_position_whose_book_is_missing_is_quarantined_and_the_rest_monitored() -> None:
    """Its book is not in the books the daemon has: it needs attention (in the store, the
    read model, once), sends nothing; P1 is still stopped in the selloff."""

    async def scenario() -> None:
        store, broker, clock = InMemoryStore(), SimBroker(), ManualClock(T0)
        lost = replace(P2, book="GONE")
        async with started(store, broker, clock) as (_, venue, app):
            await store.import_positions([lost], "DU1")
            broker.hold_spreads(lost, 5)
            lines = await app.load(clock.now())
            assert lost.id not in app.book.watches
            await run_for(app, venue, clock, 6 * 60)
            stored = (await store.detail(lost.id)).stored
            assert (await store.detail(P1.id)).orders
            assert (await store.detail(lost.id)).orders == []
            await app.intake.refresh()  # (said once: not again on a poll)
        why = "book 'GONE' is not in the books file"
        assert f"needs attention: P2: {why}" in lines
        assert stored.attention == why
        assert stored.shown_status() == f"needs attention: {why}"
        assert app.views.attention == {"P2": why}
        assert app.views.attentions == 1

    run(scenario())


def test_legs_closed_behind_our_back_need_attention_and_send_no_order() -> None:
    """The trader buys back 4 of P1's short puts at the broker: once the difference has held
    over two checks CONFIRM apart, P1 needs attention and nothing is sent for it in the
    selloff; P2 (other contracts) still closes. Resumed by hand, it is traded again."""

    async def scenario() -> None:
        store, broker, clock = InMemoryStore(), SimBroker(), ManualClock(T0)
        async with started(store, broker, clock) as (_, venue, app):
            await store.import_positions([P2], "DU1")
            broker.hold_spreads(P2, 5)
            await app.load(clock.now())
            broker.hold(keys(P1)[0], 4)  # -10 -> -6
            await app.holdings.check(clock.now())
            assert not app.views.attention  # (once is not enough: a fill may be in flight)
            await run_for(app, venue, clock, CONFIRM.total_seconds())
            await app.holdings.check(clock.now())
            why = app.views.attention.get(P1.id)
            assert why is not None
            assert "holds -6" in why
            assert "imply -10" in why
            await run_for(app, venue, clock, 6 * 60)
            assert (await store.detail(P1.id)).orders == []
            assert (await store.detail(P2.id)).orders
            assert (await store.detail(P1.id)).stored.attention == why
            await store.resume(P1.id)
            await app.intake.refresh({P1.id})
            assert P1.id not in app.views.attention
            assert P1.id not in app.monitor.policy.blocked

    run(scenario())


def test_an_expired_position_whose_legs_are_gone_is_closed_out_as_expired() -> None:
    """After the expiry date's close the simulated exchange has expired its legs: closed
    out (none remaining), said in the audit trail; not before the close."""

    async def scenario() -> None:
        day = T0.astimezone(NY).date()
        short = replace(P1, id="E1", legs=tuple(replace(leg, expiry=day) for leg in P1.legs))
        store, broker, clock = InMemoryStore(), SimBroker(), ManualClock(T0)
        async with started(store, broker, clock) as (_, _venue, app):
            await store.import_positions([short], "DU1")
            broker.hold_spreads(short, 10)
            await app.load(clock.now())
            await app.holdings.check(clock.now())  # (before the close: nothing)
            assert short.id in app.book.watches
            clock.now_ = datetime(day.year, day.month, day.day, 16, 5, tzinfo=NY)
            await app.holdings.check(clock.now())
            detail = await store.detail(short.id)
        assert (detail.stored.remaining, detail.stored.status) == (0, Phase.CLOSED)
        (expired,) = [e for e in detail.events if e.kind == ControlKind.EXPIRED.value]
        assert expired.detail is not None
        assert expired.detail.startswith(f"expired {day}")
        assert short.id not in app.book.watches
        assert P1.id in app.book.watches  # (not expired: not touched)

    run(scenario())


def test_how_a_position_expired_is_said_from_its_short_legs_and_the_last_price() -> None:
    """P1: short 450 P. Above 450 at the last quote it expired worthless; below, in the
    money (assigned or exercised); with no last price the account must say."""
    assert "worthless" in expired_detail(P1, [None, 455.0])
    itm = expired_detail(P1, [449.5, 449.5])
    assert "in the money" in itm
    assert "P450" in itm
    assert "assigned" in itm
    assert "no last price" in expired_detail(P1, [None, None])


def test_no_difference_is_acted_on_while_the_broker_is_away() -> None:
    """Disconnected, the account's holdings are the last the broker said: checks across the
    gap say nothing; connected again, the difference must hold anew."""

    async def scenario() -> None:
        store, broker, clock = InMemoryStore(), SimBroker(), ManualClock(T0)
        async with started(store, broker, clock) as (_, _venue, app):
            await app.load(clock.now())
            broker.hold(keys(P1)[0], 4)
            broker.drop()
            for _ in range(3):
                await app.holdings.check(clock.now())
                clock.now_ += CONFIRM
            assert not app.views.attention
            broker.reconnect()
            await app.holdings.check(clock.now())
            assert not app.views.attention
            clock.now_ += CONFIRM
            await app.holdings.check(clock.now())
            assert P1.id in app.views.attention

    run(scenario())


def test_a_close_asked_while_a_profit_close_works_replaces_it() -> None:
    """P1 sold at 2.00: its first tranche's close (4 of 10) goes out at once and does not
    fill. Asked by hand, the profit close is cancelled first, then all 10 close (manual)."""

    async def scenario() -> Any:
        store, broker, clock = InMemoryStore(), SimBroker(), ManualClock(T0)
        rich = replace(P1, id="R1", entry_credit=Decimal("2.00"))
        broker.latency = timedelta(hours=1)  # (nothing fills yet)
        await store.import_positions([rich], "DU1")
        broker.hold_spreads(rich, 10)
        venue = SimVenue(market(), broker, clock)
        app = await instance(store, venue)
        await app.load(clock.now())
        await run_for(app, venue, clock, 3)
        (profit,) = await store.live_orders()
        assert (profit.reason, profit.quantity) == ("profit_target", 4)
        broker.latency = timedelta(milliseconds=200)
        await store.request_manual_close(rich.id, "manual")
        await app.intake.refresh({rich.id})
        await run_for(app, venue, clock, 30)
        return profit, await store.detail(rich.id)

    profit, detail = asyncio.run(scenario())
    by_ref = {o.order_ref: o for o in detail.orders}
    assert by_ref[profit.order_ref].status in ("cancelled", "filled")
    manual = [o for o in detail.orders if o.reason == "manual"]
    assert manual
    assert manual[0].quantity == 10 - by_ref[profit.order_ref].filled
    assert detail.stored.remaining == 0
