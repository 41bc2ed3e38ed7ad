"""Limit prices of closing orders: from the mark to the natural, on the tick."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rules.pricing import RepriceSchedule, limit_for, to_tick


def d(text: str) -> Decimal:
    return Decimal(text)


def test_a_close_starts_at_the_mark_on_the_nearest_tick() -> None:
    assert limit_for(d("0.505"), d("0.60"), 0, 4) == d("0.51")
    assert limit_for(d("0.504"), d("0.60"), 0, 4) == d("0.50")


def test_it_walks_to_the_natural_in_equal_steps_rounded_up() -> None:
    """Mark 0.50, natural 0.60, 4 steps: 0.525 -> 0.53, 0.55, 0.575 -> 0.58, 0.60."""
    assert [limit_for(d("0.50"), d("0.60"), k, 4) for k in range(5)] == [
        d("0.50"),
        d("0.53"),
        d("0.55"),
        d("0.58"),
        d("0.60"),
    ]


def test_when_the_natural_is_below_the_mark_it_takes_the_natural() -> None:
    assert [limit_for(d("0.50"), d("0.46"), k, 3) for k in range(4)] == [d("0.46")] * 4


def test_a_step_outside_the_schedule_is_an_error() -> None:
    with pytest.raises(ValueError, match=r"step 5 outside 0\.\.4"):
        limit_for(d("0.50"), d("0.60"), 5, 4)


prices = st.integers(min_value=0, max_value=5_000).map(lambda n: Decimal(n) / 100)


@given(
    mark=st.integers(0, 500_000).map(lambda n: Decimal(n) / 1000),
    natural=prices,
    steps=st.integers(1, 8),
)
def test_never_beyond_the_natural_never_backward_always_on_the_tick(
    mark: Decimal, natural: Decimal, steps: int
) -> None:
    limits = [limit_for(mark, natural, k, steps) for k in range(steps + 1)]
    assert all(x <= natural for x in limits)
    assert limits == sorted(limits)
    assert limits[-1] == natural
    assert all(x == to_tick(x) for x in limits)


def test_stops_walk_faster_than_profit_targets() -> None:
    s = RepriceSchedule(steps=4, interval=timedelta(seconds=15), stop_interval=timedelta(seconds=5))
    assert [s.step(timedelta(seconds=t), stop=False) for t in (0, 14, 15, 44, 45, 60, 600)] == [
        0,
        0,
        1,
        2,
        3,
        4,
        4,
    ]
    assert [s.step(timedelta(seconds=t), stop=True) for t in (0, 4, 5, 10, 20, 600)] == [
        0,
        0,
        1,
        2,
        4,
        4,
    ]


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"steps": 0}, "steps: at least 1"),
        ({"interval": timedelta(0)}, "interval: must be positive"),
        ({"stop_interval": timedelta(seconds=-1)}, "interval: must be positive"),
    ],
)
def test_a_schedule_that_cannot_work_is_refused(kwargs: dict[str, object], error: str) -> None:
    with pytest.raises(ValueError, match=error):
        RepriceSchedule(**kwargs)  # type: ignore[arg-type]
