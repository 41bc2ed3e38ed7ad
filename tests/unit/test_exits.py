"""The exit rules' registry (rules/exits): each rule states what the evaluation and the
screens need, and the registry states the spec's order once."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from decimal import Decimal
from typing import ClassVar

from hypothesis import given, settings
from hypothesis import strategies as st

from rules.books import INCOME_POP, PRIMARY, BookPolicy
from rules.clock import MarketTime
from rules.evaluate import DEFAULT_RATES, debit_to_close
from rules.exits import RULES, Band, ExitReason, Hit, check
from rules.greeks import Rates
from rules.model import Position, Quote
from rules.plan import make_plan
from tests.factories import at_dte, put_spread, vertical_quotes


def test_every_registered_rule_states_its_trigger_band_and_book_fields() -> None:
    assert check() == []


def test_the_registry_is_specs_evaluation_order() -> None:
    """The spec: loss stop, delta stop, time stop, profit targets."""
    assert [rule.REASON for rule in RULES] == [
        ExitReason.LOSS_STOP,
        ExitReason.DELTA_STOP,
        ExitReason.TIME_STOP,
        ExitReason.PROFIT_TARGET,
    ]


class _Bandless:
    """A rule that forgot its quiet band: the screens would admit ticks it fires on."""

    REASON: ClassVar[ExitReason] = ExitReason.LOSS_STOP
    STOP: ClassVar[bool] = True
    BOOK_FIELDS: ClassVar[tuple[str, ...]] = ("loss_stop_multiple",)

    def __init__(self, position: Position, book: BookPolicy) -> None:
        pass

    def fires(
        self,
        debit: Decimal,
        quotes: Sequence[Quote],
        at: MarketTime,
        rates: Rates,
        profit_closed: int,
        remaining: int,
    ) -> Hit | None:
        return None


def test_a_rule_without_a_band_is_named() -> None:
    errors = check([*RULES[1:], _Bandless])
    assert "_Bandless: no band() (its quiet band)" in errors


def test_a_rule_reading_no_book_field_or_an_unknown_one_is_named() -> None:
    class Vague(_Bandless):
        BOOK_FIELDS: ClassVar[tuple[str, ...]] = ("loss_stop_multiple", "colour")

    assert "Vague: BOOK_FIELDS not in BookPolicy: colour" in check([*RULES[1:], Vague])


def test_a_reason_registered_twice_or_never_is_named() -> None:
    errors = check([*RULES, RULES[0]])
    assert "loss_stop: 2 rules registered, not 1" in errors
    assert "delta_stop: 0 rules registered, not 1" in check(RULES[:1] + RULES[2:])


def test_the_plan_arms_every_registered_rule_in_order() -> None:
    plan = make_plan(put_spread(), PRIMARY)
    registered: list[object] = list(RULES)
    assert [type(rule) for rule in plan.exits] == registered


def _inside(band: Band, mid: Decimal, short_delta: float | None, session: date) -> bool:
    """The tick is inside every bound ``band`` gives (as the quiet path and screens ask)."""
    mid2 = 2 * mid
    return (
        (band.low2 is None or band.low2 < mid2)
        and (band.high2 is None or mid2 < band.high2)
        and (
            band.delta is None
            or (short_delta is not None and -band.delta < short_delta < band.delta)
        )
        and (band.before is None or session < band.before)
    )


@settings(max_examples=400, deadline=None)
@given(
    book=st.sampled_from([PRIMARY, INCOME_POP, BookPolicy(mark="natural")]),
    contracts=st.integers(min_value=1, max_value=12),
    credit_cents=st.integers(min_value=20, max_value=300),
    debit_cents=st.integers(min_value=0, max_value=500),
    short_delta=st.one_of(st.none(), st.floats(min_value=-0.6, max_value=0.6)),
    dte=st.integers(min_value=0, max_value=45),
    done=st.integers(min_value=0, max_value=12),
)
def test_no_rule_fires_inside_its_own_band(
    book: BookPolicy,
    contracts: int,
    credit_cents: int,
    debit_cents: int,
    short_delta: float | None,
    dte: int,
    done: int,
) -> None:
    """Each rule's band is sound on its own: a tick inside it never makes the rule fire
    (the screens admit such ticks unseen; a band too wide would be a silent miss)."""
    position = put_spread(contracts, Decimal(credit_cents) / 100)
    plan = make_plan(position, book)
    profit_closed = min(done, contracts - 1)
    at = at_dte(dte)
    mid = Decimal(debit_cents) / 100
    quotes = vertical_quotes(mid, at.now, short_delta=short_delta)
    debit = debit_to_close(plan, quotes)
    for rule in plan.exits:
        band = rule.band(profit_closed)
        if band is None or not _inside(band, mid, short_delta, at.session_date):
            continue
        hit = rule.fires(debit, quotes, at, DEFAULT_RATES, profit_closed, contracts)
        assert hit is None, (rule, band, mid, debit, hit)
