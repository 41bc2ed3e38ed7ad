"""Closing orders are closes: built from the position, refused loudly otherwise."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest

from rules.model import Side
from service.orders.closing import NotAClose, check_close, closing_order
from service.ports import Action, LegKey, leg_key
from tests.factories import iron_condor, put_spread

CONDOR = iron_condor(contracts=4)  # long 395 P, short 400 P, short 450 C, long 455 C
HELD = {
    leg_key(CONDOR, i): (-4 if leg.side is Side.SHORT else 4) for i, leg in enumerate(CONDOR.legs)
}


def test_a_close_buys_the_shorts_back_and_sells_the_longs() -> None:
    order = closing_order(CONDOR, "C1:0:1", 2, Decimal("1.00"))
    assert [leg.action for leg in order.legs] == [Action.SELL, Action.BUY, Action.BUY, Action.SELL]
    assert [leg.leg.strike for leg in order.legs] == [
        Decimal(s) for s in ("395", "400", "450", "455")
    ]
    check_close(order, HELD, remaining=4)  # a close: no error


@pytest.mark.parametrize(
    ("change", "held", "remaining", "error"),
    [
        ({"quantity": 5}, HELD, 4, "5 spreads, 4 remaining"),
        ({"quantity": 0}, HELD, 4, "0 spreads, 4 remaining"),
        ({"limit": Decimal("-0.10")}, HELD, 4, "a credit limit"),
        ({}, {**HELD, leg_key(CONDOR, 1): 0}, 4, "would open or increase: account holds 0"),
        ({}, {**HELD, leg_key(CONDOR, 0): -4}, 4, "SELL SPY 2025-06-20 P 395 would open"),
        (
            {},
            {**HELD, leg_key(CONDOR, 2): -1},
            4,
            "BUY 2 SPY 2025-06-20 C 450: account holds only -1",
        ),
    ],
)
def test_anything_but_a_close_is_refused(
    change: dict[str, object], held: dict[LegKey, int], remaining: int, error: str
) -> None:
    order = replace(closing_order(CONDOR, "C1:0:1", 2, Decimal("1.00")), **change)
    with pytest.raises(NotAClose, match=error):
        check_close(order, held, remaining)


def test_a_leg_bought_the_wrong_way_is_refused() -> None:
    order = closing_order(CONDOR, "C1:0:1", 1, Decimal("1.00"))
    flipped = replace(order, legs=(replace(order.legs[0], action=Action.BUY), *order.legs[1:]))
    with pytest.raises(NotAClose, match="BUY SPY 2025-06-20 P 395 would open or increase"):
        check_close(flipped, HELD, remaining=4)


def test_spreads_sharing_a_contract_close_against_what_the_positions_imply() -> None:
    """P1 is short the 400 put and long the 395; P2 is short the 395 put and long the 390.
    The account nets 0 in the 395 put, yet closing P2 (buying the 395 back) is a close:
    the account holds exactly what the two positions imply, and P2's part comes off."""
    p1 = put_spread(10, short="400", long="395")
    p2 = put_spread(10, short="395", long="390")
    held = {leg_key(p1, 0): -10, leg_key(p1, 1): 0, leg_key(p2, 1): 10}
    order = closing_order(p2, "P2:0:1", 4, Decimal("0.50"))
    with pytest.raises(NotAClose, match="would open or increase: account holds 0"):
        check_close(order, held, remaining=10)  # the account's net alone cannot tell
    check_close(order, held, remaining=10, expected=held)  # consistent: a close
    drifted = {**held, leg_key(p2, 1): 6}  # a fill the store has not seen
    with pytest.raises(NotAClose, match="account holds 6, the open positions imply 10"):
        check_close(order, drifted, remaining=10, expected=held)
