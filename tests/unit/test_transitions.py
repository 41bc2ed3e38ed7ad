"""apply(): the exit state machine's legal moves, illegal ones, partial fills and replaces.

A 10-contract put credit spread opened for 1.00 (tranches 4/4/2), evaluated at
30 DTE. Debit 0.50 is the 50% target, 0.25 the 75% target, 1.50 the loss stop.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from rules.machine import (
    TRANSITIONS,
    Close,
    CloseSent,
    EventKind,
    ExitReason,
    ExitState,
    Filled,
    Hold,
    HoldReason,
    IllegalTransition,
    OrderEnded,
    Phase,
    apply,
    evaluate,
)
from tests.factories import at_dte, filled, put_spread, state_of, vertical_quotes

NOW = at_dte(30)


def decide(state: ExitState, debit: str) -> Close:
    decision = evaluate(state, vertical_quotes(debit, NOW.now), NOW)
    assert isinstance(decision, Close), decision
    return decision


def fresh() -> ExitState:
    return state_of(put_spread())


def working_first_tranche() -> ExitState:
    """CLOSING the 50% tranche: 4 contracts working, none filled."""
    state = fresh()
    return apply(state, CloseSent(decide(state, "0.50")))


def closed() -> ExitState:
    state = fresh()
    return filled(state, decide(state, "1.50"))


# The table ------------------------------------------------------------------------


def test_transition_table_is_the_documented_machine() -> None:
    """OPEN -sent-> CLOSING; fills stay CLOSING, complete to OPEN, or end CLOSED; end -> OPEN;
    not sent -> OPEN."""
    assert TRANSITIONS == {
        (Phase.OPEN, EventKind.CLOSE_SENT): Phase.CLOSING,
        (Phase.CLOSING, EventKind.PARTIAL_FILL): Phase.CLOSING,
        (Phase.CLOSING, EventKind.ORDER_FILLED): Phase.OPEN,
        (Phase.CLOSING, EventKind.LAST_FILL): Phase.CLOSED,
        (Phase.CLOSING, EventKind.ORDER_ENDED): Phase.OPEN,
        (Phase.CLOSING, EventKind.NOT_SENT): Phase.OPEN,
    }


def test_open_state_starts_open_with_every_contract() -> None:
    """A new position is OPEN, all contracts remaining, nothing working, stage 0."""
    state = fresh()
    assert (state.phase, state.remaining, state.profit_closed, state.working, state.stage) == (
        Phase.OPEN,
        10,
        0,
        None,
        0,
    )


# Legal moves ----------------------------------------------------------------------


def test_close_sent_moves_open_to_closing_with_the_order_working() -> None:
    """Sending the 50% close: CLOSING, the close is the working order, nothing filled yet."""
    state = fresh()
    close = decide(state, "0.50")
    after = apply(state, CloseSent(close))
    assert after.phase is Phase.CLOSING
    assert after.working is not None
    assert (after.working.close, after.working.filled) == (close, 0)
    assert after.remaining == 10


def test_partial_fill_stays_closing_and_lowers_remaining_at_once() -> None:
    """1 of the 4 working fills: remaining 9, profit_closed 1, still CLOSING."""
    after = apply(working_first_tranche(), Filled(1))
    assert after.phase is Phase.CLOSING
    assert after.remaining == 9
    assert after.profit_closed == 1
    assert after.working is not None
    assert after.working.filled == 1


def test_the_order_completing_returns_to_open() -> None:
    """The 4 working fill in two parts (1 + 3): OPEN, remaining 6, nothing working."""
    state = apply(working_first_tranche(), Filled(1))
    after = apply(state, Filled(3))
    assert (after.phase, after.remaining, after.profit_closed, after.working) == (
        Phase.OPEN,
        6,
        4,
        None,
    )


def test_the_last_fill_closes_the_position() -> None:
    """A loss stop of all 10 filling completely ends CLOSED with nothing remaining."""
    state = closed()
    assert (state.phase, state.remaining, state.working) == (Phase.CLOSED, 0, None)


def test_stop_fills_do_not_count_as_profit_tranches() -> None:
    """Contracts closed by a stop are not profit_closed: stage stays 0."""
    state = closed()
    assert (state.profit_closed, state.stage) == (0, 0)


def test_order_ended_returns_to_open_keeping_the_fills() -> None:
    """3 of 4 filled, then cancelled: OPEN, remaining 7, profit_closed 3, nothing working."""
    state = apply(working_first_tranche(), Filled(3))
    after = apply(state, OrderEnded())
    assert (after.phase, after.remaining, after.profit_closed, after.working) == (
        Phase.OPEN,
        7,
        3,
        None,
    )


# Illegal moves --------------------------------------------------------------------


def test_fill_when_open_is_illegal() -> None:
    """No order works when OPEN, so a fill is an error."""
    with pytest.raises(IllegalTransition):
        apply(fresh(), Filled(1))


def test_fill_of_everything_when_open_is_illegal() -> None:
    """Even a fill of exactly the remaining contracts needs a working order."""
    with pytest.raises(IllegalTransition):
        apply(fresh(), Filled(10))


def test_order_ended_when_open_is_illegal() -> None:
    """No order to end when OPEN."""
    with pytest.raises(IllegalTransition):
        apply(fresh(), OrderEnded())


@pytest.mark.parametrize(
    "event",
    [Filled(1), OrderEnded()],
    ids=["fill", "order-ended"],
)
def test_fill_or_order_end_when_closed_is_illegal(event: Filled | OrderEnded) -> None:
    """Nothing happens to a CLOSED position."""
    with pytest.raises(IllegalTransition):
        apply(closed(), event)


def test_close_sent_when_closed_is_illegal() -> None:
    """A CLOSED position sends nothing."""
    state = closed()
    close = decide(fresh(), "1.50")
    with pytest.raises(IllegalTransition):
        apply(state, CloseSent(close))


def test_a_second_close_while_closing_is_illegal() -> None:
    """One order at a time: CloseSent while CLOSING is an error."""
    state = working_first_tranche()
    with pytest.raises(IllegalTransition):
        apply(state, CloseSent(decide(fresh(), "0.50")))


def test_overfill_beyond_the_working_order_is_illegal() -> None:
    """5 filled against a working order of 4 is an error."""
    with pytest.raises(IllegalTransition):
        apply(working_first_tranche(), Filled(5))


def test_overfill_equal_to_everything_remaining_is_illegal() -> None:
    """10 filled against a working order of 4 is an error even though 10 remain."""
    with pytest.raises(IllegalTransition):
        apply(working_first_tranche(), Filled(10))


def test_overfill_after_a_partial_fill_is_illegal() -> None:
    """3 of 4 filled: a further fill of 2 exceeds the 1 unfilled."""
    state = apply(working_first_tranche(), Filled(3))
    with pytest.raises(IllegalTransition):
        apply(state, Filled(2))


@pytest.mark.parametrize("contracts", [0, -1])
def test_a_fill_of_no_contracts_is_illegal(contracts: int) -> None:
    """A fill must be of at least one contract."""
    with pytest.raises(IllegalTransition):
        apply(working_first_tranche(), Filled(contracts))


def test_a_close_larger_than_remaining_is_illegal() -> None:
    """After the 50% tranche filled (6 left), sending a close of 10 is an error."""
    state = fresh()
    state = filled(state, decide(state, "0.50"))
    too_big = replace(decide(fresh(), "1.50"), contracts=10)
    with pytest.raises(IllegalTransition):
        apply(state, CloseSent(too_big))


def test_a_replacing_close_cannot_be_sent_as_a_new_order() -> None:
    """Close(replaces=True) means cancel first; sending it while OPEN is an error."""
    state = fresh()
    replacing = replace(decide(state, "1.50"), replaces=True)
    with pytest.raises(IllegalTransition):
        apply(state, CloseSent(replacing))


# Tranches and partial fills ---------------------------------------------------------


def test_a_tranche_is_done_only_when_all_its_contracts_filled() -> None:
    """3 of the 4 in tranche 1 filled: stage 0; the 4th fill makes stage 1."""
    state = apply(working_first_tranche(), Filled(3))
    assert state.stage == 0
    assert apply(state, Filled(1)).stage == 1


def test_the_unfilled_rest_of_a_tranche_is_worked_again_while_its_trigger_holds() -> None:
    """3 of 4 filled then the order ended: at 50% again only the last 1 closes, same label."""
    state = apply(apply(working_first_tranche(), Filled(3)), OrderEnded())
    decision = decide(state, "0.50")
    assert (decision.contracts, decision.label, decision.tranche) == (
        1,
        "Profit Target (50%)",
        0,
    )


def test_the_unfilled_rest_waits_when_the_trigger_no_longer_holds() -> None:
    """3 of 4 filled then the order ended: at 49% nothing is closed."""
    state = apply(apply(working_first_tranche(), Filled(3)), OrderEnded())
    decision = evaluate(state, vertical_quotes("0.51", NOW.now), NOW)
    assert decision == Hold(HoldReason.NO_TRIGGER)


def test_a_gap_after_a_partial_tranche_closes_the_rest_up_to_the_boundary() -> None:
    """3 of 4 filled, ended, then 75%: the rest of tranche 1 and all of tranche 2 (1 + 4)."""
    state = apply(apply(working_first_tranche(), Filled(3)), OrderEnded())
    decision = decide(state, "0.25")
    assert (decision.contracts, decision.label, decision.tranche) == (
        5,
        "Profit Target (75%)",
        1,
    )


def test_stage_counts_tranches_done() -> None:
    """Stage goes 0 -> 1 -> 2 -> 3 as the 50%, 75% and 90% tranches fill."""
    state = fresh()
    stages = [state.stage]
    for debit in ("0.50", "0.25", "0.10"):
        state = filled(state, decide(state, debit))
        stages.append(state.stage)
    assert stages == [0, 1, 2, 3]
    assert state.phase is Phase.CLOSED


def test_a_gap_fill_completes_two_tranches_at_once() -> None:
    """The 8-contract gap close at 75% filling makes stage 2."""
    state = fresh()
    state = filled(state, decide(state, "0.25"))
    assert (state.stage, state.remaining, state.profit_closed) == (2, 2, 8)


# While CLOSING ----------------------------------------------------------------------


def test_a_loss_stop_while_a_profit_close_works_replaces_it_for_everything_remaining() -> None:
    """1 of 4 filled, then debit 1.50: Close(replaces=True) of the 9 remaining by the loss stop."""
    state = apply(working_first_tranche(), Filled(1))
    decision = evaluate(state, vertical_quotes("1.50", NOW.now), NOW)
    assert isinstance(decision, Close)
    assert decision.replaces
    assert (decision.reason, decision.contracts) == (ExitReason.LOSS_STOP, 9)


def test_after_the_replaced_order_ends_the_stop_is_sent_for_everything_remaining() -> None:
    """The profit order ends (1 filled): the loss stop closes the 9 left as a new order."""
    state = apply(apply(working_first_tranche(), Filled(1)), OrderEnded())
    decision = decide(state, "1.50")
    assert not decision.replaces
    assert (decision.reason, decision.contracts) == (ExitReason.LOSS_STOP, 9)
    assert apply(state, CloseSent(decision)).phase is Phase.CLOSING


def test_a_further_profit_trigger_while_a_profit_close_works_holds() -> None:
    """The 50% close works and the debit reaches 75%: hold ORDER_WORKING, no second order."""
    decision = evaluate(working_first_tranche(), vertical_quotes("0.25", NOW.now), NOW)
    assert decision == Hold(HoldReason.ORDER_WORKING)


def test_a_stop_while_a_stop_close_works_holds() -> None:
    """A loss stop is working; the delta stop also holding does not replace it."""
    state = fresh()
    state = apply(state, CloseSent(decide(state, "1.50")))
    quotes = vertical_quotes("1.60", NOW.now, short_delta=-0.60)
    assert evaluate(state, quotes, NOW) == Hold(HoldReason.ORDER_WORKING)


def test_no_trigger_while_closing_holds() -> None:
    """The 50% close works and the debit drifts back to 0.80: hold, nothing new is sent."""
    decision = evaluate(working_first_tranche(), vertical_quotes("0.80", NOW.now), NOW)
    assert isinstance(decision, Hold)
