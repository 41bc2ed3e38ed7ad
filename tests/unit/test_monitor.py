"""The monitor end to end on the in-memory store: simulated market and broker, scripted
moves. (The sessions once more on PostgreSQL: tests/integration/test_monitor_postgres.py.)"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from brokers.sim.broker import SimBroker
from brokers.sim.gateway import SimGateway, SimVenue
from brokers.sim.market import Move, SimMarket, Underlying
from rules.books import DEFAULT_BOOKS
from rules.clock import market_time
from rules.model import Quote
from rules.pricing import RepriceSchedule
from service.app.assembly import assemble
from service.clock import ManualClock
from service.ports import LegUpdate, Store, leg_key
from service.store import database
from service.store.memory import InMemoryStore
from service.store.repository import SqlStore
from tests.factories import LOOP_POSITION as POSITION
from tests.factories import LOOP_SCHEDULE as SCHEDULE
from tests.factories import LOOP_T0 as T0
from tests.loop import monitor_on

# POSITION: the 450/445 put spread on SPY at 470 (vol 15%) is worth a mid of about 0.79:
# sold at 0.80.


def session(move: Move | None, db_url: str | None, minutes: float, **broker: Any) -> Any:
    """Run the monitor over ``minutes`` of simulated time, one step per 250 ms, on the
    database ``db_url`` (None: in memory)."""

    async def main() -> Any:
        engine = None if db_url is None else database.engine(db_url)
        try:
            store: Store = InMemoryStore() if engine is None else SqlStore(engine)
            await store.import_positions([POSITION], "DU1")
            market = SimMarket(
                [Underlying("SPY", 470.0, vol=0.15, moves=[move] if move else [])], T0, seed=3
            )
            sim = SimBroker(**broker)
            sim.hold_spreads(POSITION, 10)
            clock = ManualClock(T0)
            venue = SimVenue(market, sim, clock)
            monitor = await monitor_on(store, venue, SCHEDULE)
            await monitor.load(T0)
            while clock.now_ < T0 + timedelta(minutes=minutes):
                clock.now_ += timedelta(milliseconds=250)
                await monitor.step(clock.now_, *venue.step(clock.now_))
            return monitor, await store.detail(POSITION.id), sim
        finally:
            if engine is not None:
                await engine.dispose()

    return asyncio.run(main())


@pytest.fixture
def run() -> Callable[..., Any]:
    """A session in memory (tests/integration/test_monitor_postgres.py: on PostgreSQL)."""
    return lambda move, minutes, **broker: session(move, None, minutes, **broker)


def test_a_rally_takes_every_profit_tranche_40_40_20(run: Callable[..., Any]) -> None:
    rally = Move("rally", T0 + timedelta(minutes=1), 0.07, timedelta(minutes=6))
    monitor, detail, sim = run(rally, 10)
    closes = [(d.reason.value, d.label, d.contracts) for _, _, d in monitor.decisions]
    assert [c[0] for c in closes] == ["profit_target"] * 3
    assert [c[2] for c in closes] == [4, 4, 2]
    assert (detail.stored.remaining, detail.stored.status, detail.stored.stage) == (0, "closed", 3)
    assert sum(f.quantity for f in detail.fills) == 10
    assert [o.status for o in detail.orders] == ["filled"] * 3
    assert sim.positions() == {}  # the broker holds nothing of the spread any more
    decisions = [e for e in detail.events if e.kind == "decision"]
    assert [e.contracts_closed for e in decisions] == [4, 4, 2]
    assert all(set(e.quotes) == {"natural", "legs"} for e in decisions)


def test_a_selloff_fires_the_loss_stop_for_everything(run: Callable[..., Any]) -> None:
    selloff = Move("selloff", T0 + timedelta(minutes=1), 0.05, timedelta(minutes=5))
    monitor, detail, sim = run(selloff, 8)
    (decision,) = [d for _, _, d in monitor.decisions]
    assert (decision.reason.value, decision.contracts) == ("loss_stop", 10)
    assert decision.debit >= Decimal("1.20")  # 150% of the 0.80 credit
    assert (detail.stored.remaining, detail.stored.status) == (0, "closed")
    (order,) = detail.orders
    assert (order.reason, order.filled, order.status) == ("loss_stop", 10, "filled")
    assert sim.positions() == {}


def test_a_quiet_market_closes_nothing(run: Callable[..., Any]) -> None:
    monitor, detail, sim = run(None, 3)
    assert monitor.decisions == []
    assert (detail.stored.remaining, detail.orders) == (10, [])
    assert len(sim.executions()) == 0


def test_partial_fills_land_as_they_come(run: Callable[..., Any]) -> None:
    selloff = Move("selloff", T0 + timedelta(minutes=1), 0.05, timedelta(minutes=5))
    monitor, detail, _ = run(selloff, 8, fill_size=3)
    assert [f.quantity for f in detail.fills] == [3, 3, 3, 1]
    assert detail.stored.remaining == 0
    assert monitor.remaining() == {"P1": 0}


def test_a_burst_for_one_leg_collapses_to_its_newest_quote() -> None:
    """Three quotes of the short leg in one step: the first would reach the profit target,
    the newest does not; only the newest is evaluated, so nothing closes."""
    short, long_ = leg_key(POSITION, 0), leg_key(POSITION, 1)
    now = T0 + timedelta(seconds=1)

    def quote(bid: str, ask: str, delta: float) -> Quote:
        return Quote(Decimal(bid), Decimal(ask), now, delta, 470.0)

    burst = [
        LegUpdate(long_, quote("1.50", "1.60", -0.10)),
        LegUpdate(short, quote("1.80", "1.90", -0.12)),  # mid debit 0.30: past 50%
        LegUpdate(short, quote("2.10", "2.20", -0.15)),
        LegUpdate(short, quote("2.25", "2.40", -0.17)),  # mid debit 0.775: calm
    ]

    async def main() -> Any:
        store = InMemoryStore()
        await store.import_positions([POSITION], "DU1")
        sim = SimBroker()
        monitor = assemble(
            store,
            SimGateway(sim, lambda: now),
            dict(DEFAULT_BOOKS),
            schedule=SCHEDULE,
            subscribe=lambda leg: None,
            market_time=market_time,
        )
        await monitor.load(now)
        await monitor.step(now, burst)
        return monitor, [q.bid for q in monitor.watches["P1"].quotes if q is not None]

    monitor, bids = asyncio.run(main())
    assert monitor.decisions == []
    assert bids == [Decimal("2.25"), Decimal("1.50")]


def test_a_quiet_market_is_kept_by_the_screens_and_still_read_as_fresh(
    run: Callable[..., Any],
) -> None:
    """Most quotes of a calm spread are admitted by its screen (kept, not evaluated); what
    reads the quotes (staleness here) sees the newest, admitted ones."""
    monitor, _, _ = run(None, 3)
    assert monitor.screened > 0.9 * monitor.updates
    assert monitor.evaluations < 0.1 * monitor.updates
    assert monitor.staleness(T0 + timedelta(minutes=3))["P1"] < 1.0


def test_the_broker_a_fill_ahead_is_what_the_positions_imply() -> None:
    """The broker's positions move with its fills before their events are applied: the
    holdings the open positions imply count the executions received and not yet applied,
    so the two agree after every step of a loss stop filled 3 at a time."""
    selloff = Move("selloff", T0 + timedelta(minutes=1), 0.05, timedelta(minutes=5))

    async def main() -> Any:
        store = InMemoryStore()
        await store.import_positions([POSITION], "DU1")
        market = SimMarket([Underlying("SPY", 470.0, vol=0.15, moves=[selloff])], T0, seed=3)
        sim = SimBroker(fill_size=3)
        sim.hold_spreads(POSITION, 10)
        clock = ManualClock(T0)
        venue = SimVenue(market, sim, clock)
        monitor = await monitor_on(store, venue, SCHEDULE)
        await monitor.load(T0)
        checked = 0
        while monitor.remaining()["P1"] > 0:
            assert clock.now_ < T0 + timedelta(minutes=10)
            clock.now_ += timedelta(milliseconds=250)
            updates, events = venue.step(clock.now_)
            monitor.on_events(events)  # received, not applied yet
            implied = {k: v for k, v in monitor.expected_holdings().items() if v}
            assert implied == sim.positions()
            checked += any(e.execution is not None for e in events)
            await monitor.step(clock.now_, updates)
        return checked

    assert asyncio.run(main()) == 4  # fills of 3, 3, 3 and 1, each checked in flight


def test_a_working_close_is_repriced_on_the_quotes_its_screen_admitted() -> None:
    """A profit close works (the broker never takes it); the spread goes deeper in profit
    on quotes the closing screen admits (not evaluated). At the schedule's last step the
    limit follows the natural of those quotes, not of the quotes it was decided on."""
    short, long_ = leg_key(POSITION, 0), leg_key(POSITION, 1)
    schedule = RepriceSchedule(steps=1, interval=timedelta(seconds=2))

    def legs(at: datetime, short_mid: str) -> list[LegUpdate]:
        m = Decimal(short_mid)
        return [
            LegUpdate(long_, Quote(Decimal("0.95"), Decimal("1.05"), at, -0.10, 470.0)),
            LegUpdate(short, Quote(m - Decimal("0.05"), m + Decimal("0.05"), at, -0.15, 470.0)),
        ]

    async def main() -> Any:
        store = InMemoryStore()
        await store.import_positions([POSITION], "DU1")
        sim = SimBroker(latency=timedelta(hours=1))
        sim.hold_spreads(POSITION, 10)
        clock = ManualClock(T0)
        monitor = assemble(
            store,
            SimGateway(sim, clock.now),
            dict(DEFAULT_BOOKS),
            schedule=schedule,
            subscribe=lambda leg: None,
            market_time=market_time,
        )
        await monitor.load(T0)
        await monitor.step(T0, legs(T0, "1.40"))  # mid debit 0.40: the first target
        (order,) = sim.open_orders()
        assert sim.limit(order.order_ref) == Decimal("0.40")  # at the mark, sent
        evaluated = monitor.evaluations
        later = T0 + timedelta(seconds=3)
        clock.now_ = later
        await monitor.step(later, legs(later, "1.25"))  # debit 0.25: admitted
        assert monitor.evaluations == evaluated
        return sim.limit(order.order_ref)

    assert asyncio.run(main()) == Decimal("0.35")  # ask 1.30 less bid 0.95: admitted quotes
