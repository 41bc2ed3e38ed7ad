"""The repricing walk per book: a profit close's and a stop's, each with its cap
(``max_slippage`` above the decision's mark), which the limit never passes."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from brokers.sim.broker import SimBroker
from brokers.sim.gateway import SimVenue
from rules.books import DEFAULT_BOOKS, PRIMARY, Repricing
from rules.pricing import RepriceSchedule, Walk, to_tick
from service import bootstrap
from service.clock import ManualClock
from service.errors import InputError
from service.inputs import book_of
from service.store.memory import InMemoryStore
from tests.factories import LOOP_POSITION, LOOP_T0, market
from tests.loop import run_for

prices = st.decimals(min_value=Decimal("0.01"), max_value=Decimal(20), places=3)


@given(
    steps=st.integers(1, 12),
    slippage=st.decimals(min_value=0, max_value=Decimal(2), places=2),
    mark=prices,
    naturals=st.lists(prices, min_size=1, max_size=30),
)
def test_the_repricing_limit_is_never_passed(
    steps: int, slippage: Decimal, mark: Decimal, naturals: list[Decimal]
) -> None:
    """Whatever the walk and however the natural moves, every limit of the walk is at most
    the decision's mark (on the tick) plus max_slippage, and never above the natural."""
    walk = Walk(steps, timedelta(seconds=1), slippage)
    cap = to_tick(mark) + slippage
    for k, natural in enumerate(naturals):
        limit = walk.limit(mark, natural, walk.step(timedelta(seconds=k)))
        assert limit <= cap
        assert limit <= natural


def test_without_a_cap_the_walk_is_todays() -> None:
    """No max_slippage: the last step is the natural however far it ran."""
    walk = Walk(4, timedelta(seconds=15))
    assert walk.limit(Decimal("0.50"), Decimal("3.00"), 4) == Decimal("3.00")
    assert Walk(4, timedelta(seconds=15), Decimal("0.10")).limit(
        Decimal("0.50"), Decimal("3.00"), 4
    ) == Decimal("0.60")


def test_the_default_books_walk_as_before() -> None:
    """Profit closes in 4 steps of 15 s, stops in 4 of 5 s, no cap."""
    today = RepriceSchedule()
    for stop in (False, True):
        assert PRIMARY.schedule().walk(stop=stop) == today.walk(stop=stop)
    assert PRIMARY.schedule().walk(stop=True) == Walk(4, timedelta(seconds=5), None)


def test_a_book_sets_its_walks_from_its_file_table() -> None:
    book = book_of(
        {
            "reprice": {"steps": 2, "interval": 30, "max_slippage": Decimal("0.10")},
            "stop_reprice": {"steps": 6, "interval": 2},
        },
        "book 'X'",
    )
    schedule = book.schedule()
    assert schedule.walk(stop=False) == Walk(2, timedelta(seconds=30), Decimal("0.10"))
    assert schedule.walk(stop=True) == Walk(6, timedelta(seconds=2), None)


@pytest.mark.parametrize(
    ("table", "field"),
    [
        ({"steps": 0}, "steps"),
        ({"interval": 0}, "interval"),
        ({"max_slippage": Decimal("-0.01")}, "max_slippage"),
        ({"slippage": 1}, "slippage"),
    ],
)
def test_a_walk_out_of_range_is_refused_naming_the_field(
    table: dict[str, object], field: str
) -> None:
    with pytest.raises(InputError, match=f"book 'X': stop_reprice.{field}: "):
        book_of({"stop_reprice": table}, "book 'X'")


class _Recording(SimVenue):
    """The simulated venue, each reprice's limit recorded (with the natural then)."""

    limits: list[tuple[Decimal, Decimal | None]]

    async def modify(self, order_ref: str, limit: Decimal) -> None:
        order = self.broker._open[order_ref].order
        self.limits.append((limit, self.broker.natural(order)))
        await super().modify(order_ref, limit)


CAPPED = dataclasses.replace(
    PRIMARY, stop_reprice=Repricing(steps=2, interval=1.0, max_slippage=Decimal("0.05"))
)


def test_a_stop_whose_natural_runs_away_rests_at_its_cap() -> None:
    """The selloff takes the position past its loss stop and the natural on up; the stop's
    limit walks to the decision's mark + 0.05 and no further, so it does not fill."""

    async def scenario() -> tuple[list[tuple[Decimal, Decimal | None]], Decimal, int]:
        store, broker, clock = InMemoryStore(), SimBroker(), ManualClock(LOOP_T0)
        await store.import_positions([LOOP_POSITION], "DU1")
        broker.hold_spreads(LOOP_POSITION, 10)
        venue = _Recording(market(), broker, clock)
        venue.limits = []
        books = {**DEFAULT_BOOKS, "PRIMARY": CAPPED}
        app = (await bootstrap.build(None, store=store, venue=venue, books=books)).loop
        await app.load(clock.now())
        await run_for(app, venue, clock, 5 * 60)
        (order,) = (await store.detail(LOOP_POSITION.id)).orders
        assert order.limit_price is not None
        return venue.limits, order.limit_price, (await store.detail("P1")).stored.remaining

    limits, first, remaining = asyncio.run(scenario())
    cap = first + Decimal("0.05")  # (the first limit: the decision's mark on the tick)
    assert limits, "the stop was never repriced"
    assert all(limit <= cap for limit, _ in limits)
    assert limits[-1][0] == cap
    assert any(natural is not None and natural > cap for _, natural in limits)
    assert remaining == 10
