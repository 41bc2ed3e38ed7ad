"""Tranche sizing and the exit plan of a position (docs/exit-rules.md: tranches, time stop)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rules.books import INCOME_POP, PRIMARY, BookPolicy
from rules.plan import largest_remainder, make_plan, remaining_basis
from tests.factories import opened_before, put_spread

FRACTIONS = (Decimal("0.4"), Decimal("0.4"), Decimal("0.2"))


@pytest.mark.parametrize(
    ("contracts", "sizes"),
    [
        (10, (4, 4, 2)),
        (5, (2, 2, 1)),
        (4, (2, 1, 1)),
        (3, (1, 1, 1)),
        (7, (3, 3, 1)),
    ],
)
def test_largest_remainder_matches_spec_table(contracts: int, sizes: tuple[int, ...]) -> None:
    """SPEC's table: 10 -> 4/4/2, 5 -> 2/2/1, 4 -> 2/1/1, 3 -> 1/1/1, 7 -> 3/3/1."""
    assert largest_remainder(contracts, FRACTIONS) == sizes


@given(contracts=st.integers(min_value=3, max_value=10_000))
@settings(max_examples=200)
def test_largest_remainder_sums_exactly_and_gives_every_tranche_a_contract(
    contracts: int,
) -> None:
    """For any 3+ contracts the default split sums to the contracts, each tranche >= 1."""
    sizes = largest_remainder(contracts, FRACTIONS)
    assert len(sizes) == 3
    assert sum(sizes) == contracts
    assert all(size >= 1 for size in sizes)


@given(contracts=st.integers(min_value=3, max_value=10_000))
@settings(max_examples=200)
def test_largest_remainder_sizes_are_within_one_of_their_quota(contracts: int) -> None:
    """Largest-remainder rounding never moves a tranche a whole contract off its exact share."""
    sizes = largest_remainder(contracts, FRACTIONS)
    for size, fraction in zip(sizes, FRACTIONS, strict=True):
        assert abs(size - fraction * contracts) < 1


def test_remaining_basis_sizes_each_tranche_from_what_is_still_open() -> None:
    """SPEC: scale_basis "remaining": 10 -> 4, then 40% of 6 -> 2, then the last 4."""
    assert remaining_basis(10, FRACTIONS) == (4, 2, 4)


def test_fewer_than_three_contracts_is_one_tranche_at_the_first_target() -> None:
    """SPEC: under 3 contracts, one exit of everything at 50%, labelled without '+'."""
    plan = make_plan(put_spread(contracts=2), PRIMARY)
    assert plan.targets == (Decimal("0.50"),)
    assert plan.cumulative == (2,)
    assert plan.labels == ("Profit Target (50%)",)


def test_three_or_more_contracts_get_three_labelled_tranches() -> None:
    """The last tranche's label carries '+': 50%, 75%, 90%+."""
    plan = make_plan(put_spread(contracts=10), PRIMARY)
    assert plan.labels == (
        "Profit Target (50%)",
        "Profit Target (75%)",
        "Profit Target (90%+)",
    )
    assert plan.cumulative == (4, 8, 10)


def test_profit_target_debits_are_credit_times_one_minus_target() -> None:
    """Credit 1.00: targets fire at debits 0.50, 0.25, 0.10; the loss stop at 1.50."""
    plan = make_plan(put_spread(credit="1.00"), PRIMARY)
    assert plan.target_debits == (Decimal("0.50"), Decimal("0.25"), Decimal("0.10"))
    assert plan.loss_debit == Decimal("1.50")


def test_income_pop_labels_and_time_stop() -> None:
    """INCOME_POP: targets 35/60/80%+ and a 14-DTE time stop for a 45-DTE entry."""
    plan = make_plan(put_spread(contracts=10), INCOME_POP)
    assert plan.labels == (
        "Profit Target (35%)",
        "Profit Target (60%)",
        "Profit Target (80%+)",
    )
    assert plan.time_stop_dte == 14
    assert plan.time_label == "Time Stop (14 DTE)"


@pytest.mark.parametrize(
    ("initial_dte", "stop_dte"),
    [(45, 21), (30, 15), (10, 5), (43, 21), (41, 20), (31, 15), (1, 0)],
)
def test_effective_time_stop_is_min_of_book_and_half_the_initial_dte(
    initial_dte: int, stop_dte: int
) -> None:
    """Effective time stop = min(21, floor(initial DTE x 0.5))."""
    plan = make_plan(put_spread(opened_at=opened_before(initial_dte)), PRIMARY)
    assert plan.initial_dte == initial_dte
    assert plan.time_stop_dte == stop_dte


def test_time_stop_label_names_the_effective_dte() -> None:
    """A 30-DTE entry is labelled 'Time Stop (15 DTE)'."""
    plan = make_plan(put_spread(opened_at=opened_before(30)), PRIMARY)
    assert plan.time_label == "Time Stop (15 DTE)"


def test_hard_stop_labels() -> None:
    """SPEC's exit reason labels for the loss and delta stops."""
    plan = make_plan(put_spread(), PRIMARY)
    assert plan.loss_label == "Loss Stop (150% of credit)"
    assert plan.delta_label == "Delta Stop (0.30)"


def test_initial_dte_counts_from_the_new_york_date_of_opened_at() -> None:
    """02:30 UTC on 2025-05-22 is 22:30 on 2025-05-21 in New York: initial DTE 30, not 29."""
    opened_at = datetime(2025, 5, 22, 2, 30, tzinfo=UTC)
    position = put_spread(expiry=date(2025, 6, 20), opened_at=opened_at)
    plan = make_plan(position, PRIMARY)
    # UTC date 2025-05-22 would give 29 DTE and a 14-DTE stop.
    assert plan.initial_dte == 30
    assert plan.time_stop_dte == 15


def test_remaining_basis_book_plans_cumulative_boundaries() -> None:
    """A book with scale_basis 'remaining' closes 4, then 2, then 4 of 10."""
    plan = make_plan(put_spread(contracts=10), BookPolicy(scale_basis="remaining"))
    assert plan.cumulative == (4, 6, 10)


def test_natural_mark_flag_follows_the_book() -> None:
    """The plan prices at natural only when the book says so."""
    assert not make_plan(put_spread(), PRIMARY).natural
    assert make_plan(put_spread(), BookPolicy(mark="natural")).natural
