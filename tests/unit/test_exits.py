"""The exit rules' registry (rules/exits): each rule states what the evaluation and the
screens need, and the registry states SPEC.md's order once."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import ClassVar

from rules.books import PRIMARY, BookPolicy
from rules.clock import MarketTime
from rules.exits import RULES, ExitReason, Hit, check
from rules.greeks import Rates
from rules.model import Position, Quote
from rules.plan import make_plan
from tests.unit.conftest import put_spread


def test_every_registered_rule_states_its_trigger_band_and_book_fields() -> None:
    assert check() == []


def test_the_registry_is_specs_evaluation_order() -> None:
    """SPEC.md: loss stop, delta stop, time stop, profit targets."""
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
    stops: list[object] = [rule for rule in RULES if rule.STOP]
    assert [type(rule) for rule in plan.exits] == registered
    assert [type(rule) for rule in plan.stops] == stops
