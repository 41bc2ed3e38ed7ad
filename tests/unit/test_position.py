"""check_position(): only defined-risk credit spreads are accepted; errors name the field."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime
from decimal import Decimal

import pytest

from rules.model import InvalidPosition, Leg, Position, Right, Side, check_position
from tests.factories import EXPIRY, call_spread, iron_condor, opened_before, put_spread


def field_of(position: Position) -> str:
    with pytest.raises(InvalidPosition) as caught:
        check_position(position)
    return caught.value.field


@pytest.mark.parametrize(
    "position",
    [put_spread(), call_spread(), iron_condor(), put_spread(contracts=1, credit="4.99")],
    ids=["put-credit", "call-credit", "iron-condor", "one-contract-near-width"],
)
def test_valid_spreads_pass(position: Position) -> None:
    """Put and call verticals and an iron condor with a credit below the width are accepted."""
    check_position(position)


@pytest.mark.parametrize("contracts", [0, -3])
def test_contracts_must_be_positive(contracts: int) -> None:
    """Zero or negative contracts: field 'contracts'."""
    assert field_of(put_spread(contracts=contracts)) == "contracts"


@pytest.mark.parametrize("credit", ["0", "-0.50"])
def test_credit_must_be_positive(credit: str) -> None:
    """A zero or negative credit is not a credit spread: field 'entry_credit'."""
    assert field_of(put_spread(credit=credit)) == "entry_credit"


@pytest.mark.parametrize("credit", ["5.00", "5.01"])
def test_credit_must_be_below_the_width(credit: str) -> None:
    """A 5-wide spread for 5.00 or more has no risk to define: field 'entry_credit'."""
    assert field_of(put_spread(credit=credit)) == "entry_credit"


def test_iron_condor_credit_is_checked_against_its_widest_side() -> None:
    """A 5-wide condor for 5.00: field 'entry_credit'."""
    assert field_of(iron_condor(credit="5.00")) == "entry_credit"


def test_put_spread_with_a_call_leg_is_rejected() -> None:
    """A put_credit whose long leg is a call: field 'legs'."""
    p = put_spread()
    bad = replace(p, legs=(p.legs[0], replace(p.legs[1], right=Right.CALL)))
    assert field_of(bad) == "legs"


def test_vertical_with_four_legs_is_rejected() -> None:
    """A put_credit with the condor's four legs: field 'legs'."""
    assert field_of(replace(put_spread(), legs=iron_condor().legs)) == "legs"


def test_iron_condor_with_two_legs_is_rejected() -> None:
    """An iron_condor with only a put vertical's legs: field 'legs'."""
    assert field_of(replace(iron_condor(), legs=put_spread().legs)) == "legs"


def test_two_short_legs_are_rejected() -> None:
    """Both legs short: field 'legs'."""
    p = put_spread()
    bad = replace(p, legs=(p.legs[0], replace(p.legs[1], side=Side.SHORT)))
    assert field_of(bad) == "legs"


def test_put_spread_selling_the_lower_strike_is_rejected() -> None:
    """Short put 395 below long put 400 is a debit spread: field 'legs'."""
    assert field_of(put_spread(short="395", long="400", credit="1.00")) == "legs"


def test_call_spread_selling_the_higher_strike_is_rejected() -> None:
    """Short call 455 above long call 450 is a debit spread: field 'legs'."""
    assert field_of(call_spread(short="455", long="450")) == "legs"


def test_mixed_expiries_are_rejected() -> None:
    """A long leg a week after the short leg is a calendar, not a vertical: 'legs.expiry'."""
    p = put_spread()
    later = date(2025, 6, 27)
    bad = replace(p, legs=(p.legs[0], replace(p.legs[1], expiry=later)))
    assert field_of(bad) == "legs.expiry"


def test_expiry_before_opened_at_is_rejected() -> None:
    """Opened the day after expiry: 'legs.expiry'."""
    assert field_of(put_spread(opened_at=opened_before(-1))) == "legs.expiry"


def test_naive_opened_at_is_rejected() -> None:
    """opened_at without a UTC offset: 'opened_at'."""
    naive = datetime(2025, 5, 6, 10, 0)  # noqa: DTZ001 - the point of the test
    assert field_of(put_spread(opened_at=naive)) == "opened_at"


def test_invalid_position_is_a_value_error_naming_the_field() -> None:
    """InvalidPosition is a ValueError whose message starts with the field."""
    with pytest.raises(ValueError, match=r"^contracts: "):
        check_position(put_spread(contracts=0))


def test_legs_built_by_hand_match_the_builder() -> None:
    """Guard: the builder's put spread sells 400 and buys 395 on EXPIRY."""
    assert put_spread().legs == (
        Leg(Right.PUT, Decimal("400"), EXPIRY, Side.SHORT),
        Leg(Right.PUT, Decimal("395"), EXPIRY, Side.LONG),
    )
