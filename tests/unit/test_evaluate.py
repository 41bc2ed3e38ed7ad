"""evaluate(): the spec's triggers, their order, marks and figures, with worked numbers.

Unless a test says otherwise: a 10-contract put credit spread (400/395) opened
for 1.00 at 45 DTE (time stop 21 DTE), evaluated at 30 DTE with fresh quotes and
a short-leg delta of -0.10. Credit 1.00 puts the profit targets at debits 0.50,
0.25 and 0.10 and the loss stop at 1.50.
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest

from rules.books import BookPolicy
from rules.machine import (
    Close,
    CloseSent,
    ExitReason,
    ExitState,
    Hold,
    HoldReason,
    apply,
    evaluate,
)
from rules.model import Quote
from tests.factories import (
    at_dte,
    call_spread,
    filled,
    iron_condor,
    opened_before,
    put_spread,
    quote,
    state_of,
    vertical_quotes,
)

NOW = at_dte(30)
TS = NOW.now


def close_at(state: ExitState, debit: str) -> Close:
    decision = evaluate(state, vertical_quotes(debit, TS), NOW)
    assert isinstance(decision, Close), decision
    return decision


# Profit targets ---------------------------------------------------------------


def test_first_target_fires_at_exactly_half_the_credit() -> None:
    """Debit 0.50 = 1.00 x (1 - 0.50): the first tranche (4 of 10) closes."""
    decision = evaluate(state_of(put_spread()), vertical_quotes("0.50", TS), NOW)
    assert decision == Close(
        contracts=4,
        reason=ExitReason.PROFIT_TARGET,
        label="Profit Target (50%)",
        target=Decimal("0.50"),
        tranche=0,
        debit=Decimal("0.50"),
        pnl=Decimal("200.00"),  # 0.50 x 100 x 4
        pct_of_max=Decimal("0.5"),
        triggers=(ExitReason.PROFIT_TARGET,),
    )


def test_first_target_does_not_fire_one_cent_above() -> None:
    """Debit 0.51 is only 49% of max profit: hold."""
    decision = evaluate(state_of(put_spread()), vertical_quotes("0.51", TS), NOW)
    assert decision == Hold(HoldReason.NO_TRIGGER)


def test_second_target_fires_at_exactly_a_quarter_of_the_credit() -> None:
    """With tranche 1 done, debit 0.25 (75%) closes the second 4."""
    state = filled(state_of(put_spread()), close_at(state_of(put_spread()), "0.50"))
    decision = evaluate(state, vertical_quotes("0.25", TS), NOW)
    assert isinstance(decision, Close)
    assert (decision.contracts, decision.label, decision.tranche) == (4, "Profit Target (75%)", 1)
    assert decision.target == Decimal("0.75")


def test_second_target_does_not_fire_one_cent_above() -> None:
    """With tranche 1 done, debit 0.26 (74%) holds: tranche 1 is not closed again."""
    state = filled(state_of(put_spread()), close_at(state_of(put_spread()), "0.50"))
    decision = evaluate(state, vertical_quotes("0.26", TS), NOW)
    assert decision == Hold(HoldReason.NO_TRIGGER)


def _after_two_tranches() -> ExitState:
    state = state_of(put_spread())
    state = filled(state, close_at(state, "0.50"))
    return filled(state, close_at(state, "0.25"))


def test_last_target_fires_at_exactly_a_tenth_of_the_credit() -> None:
    """With tranches 1 and 2 done, debit 0.10 (90%) closes the last 2, labelled 90%+."""
    decision = evaluate(_after_two_tranches(), vertical_quotes("0.10", TS), NOW)
    assert isinstance(decision, Close)
    assert (decision.contracts, decision.label, decision.tranche) == (
        2,
        "Profit Target (90%+)",
        2,
    )


def test_last_target_does_not_fire_one_cent_above() -> None:
    """With tranches 1 and 2 done, debit 0.11 (89%) holds."""
    decision = evaluate(_after_two_tranches(), vertical_quotes("0.11", TS), NOW)
    assert decision == Hold(HoldReason.NO_TRIGGER)


def test_gap_over_two_targets_closes_both_tranches_in_one_exit() -> None:
    """Debit at 75% from the start: one close of 4 + 4 = 8, reported under 75%, tranche 1."""
    decision = evaluate(state_of(put_spread()), vertical_quotes("0.25", TS), NOW)
    assert isinstance(decision, Close)
    assert decision.contracts == 8
    assert decision.label == "Profit Target (75%)"
    assert decision.tranche == 1
    assert decision.reason is ExitReason.PROFIT_TARGET


def test_gap_over_all_targets_closes_everything_under_the_last_label() -> None:
    """Debit at 90% from the start closes all 10 as 'Profit Target (90%+)'."""
    decision = evaluate(state_of(put_spread()), vertical_quotes("0.10", TS), NOW)
    assert isinstance(decision, Close)
    assert (decision.contracts, decision.label, decision.tranche) == (
        10,
        "Profit Target (90%+)",
        2,
    )


def test_tranches_of_seven_contracts_are_three_three_one() -> None:
    """7 contracts: 3 at 50%, 3 at 75%, 1 at 90%+."""
    state = state_of(put_spread(contracts=7))
    first = close_at(state, "0.50")
    state = filled(state, first)
    second = close_at(state, "0.25")
    state = filled(state, second)
    third = close_at(state, "0.10")
    assert (first.contracts, second.contracts, third.contracts) == (3, 3, 1)


def test_two_contracts_close_together_at_the_first_target() -> None:
    """Under 3 contracts: one exit of both at 50%."""
    decision = evaluate(state_of(put_spread(contracts=2)), vertical_quotes("0.50", TS), NOW)
    assert isinstance(decision, Close)
    assert (decision.contracts, decision.label) == (2, "Profit Target (50%)")


def test_two_contracts_hold_below_the_first_target() -> None:
    """Under 3 contracts, 49% of max profit is not enough."""
    decision = evaluate(state_of(put_spread(contracts=2)), vertical_quotes("0.51", TS), NOW)
    assert decision == Hold(HoldReason.NO_TRIGGER)


def test_two_contracts_have_no_75_percent_exit() -> None:
    """At 75% straight away, a 2-contract position closes both as its one 50% exit."""
    decision = evaluate(state_of(put_spread(contracts=2)), vertical_quotes("0.25", TS), NOW)
    assert isinstance(decision, Close)
    assert (decision.contracts, decision.label, decision.tranche) == (
        2,
        "Profit Target (50%)",
        0,
    )


def test_two_contracts_are_done_after_their_one_exit() -> None:
    """Once both filled, the position is closed and holds at any price."""
    state = state_of(put_spread(contracts=2))
    state = filled(state, close_at(state, "0.50"))
    assert evaluate(state, vertical_quotes("0.05", TS), NOW) == Hold(HoldReason.CLOSED)


# Hard stops -------------------------------------------------------------------


def test_loss_stop_fires_at_exactly_one_and_a_half_times_the_credit() -> None:
    """Debit 1.50 on a 1.00 credit closes all 10 by the loss stop."""
    decision = evaluate(state_of(put_spread()), vertical_quotes("1.50", TS), NOW)
    assert isinstance(decision, Close)
    assert decision.reason is ExitReason.LOSS_STOP
    assert decision.label == "Loss Stop (150% of credit)"
    assert decision.contracts == 10
    assert (decision.target, decision.tranche) == (None, None)


def test_loss_stop_does_not_fire_just_below() -> None:
    """Debit 1.49 on a 1.00 credit holds."""
    decision = evaluate(state_of(put_spread()), vertical_quotes("1.49", TS), NOW)
    assert decision == Hold(HoldReason.NO_TRIGGER)


@pytest.mark.parametrize("delta", [-0.30, -0.45])
def test_delta_stop_fires_on_a_short_put_at_or_beyond_minus_030(delta: float) -> None:
    """|delta| >= 0.30 of the short put closes everything."""
    quotes = vertical_quotes("0.80", TS, short_delta=delta)
    decision = evaluate(state_of(put_spread()), quotes, NOW)
    assert isinstance(decision, Close)
    assert decision.reason is ExitReason.DELTA_STOP
    assert decision.label == "Delta Stop (0.30)"
    assert decision.contracts == 10


def test_delta_stop_does_not_fire_on_a_short_put_at_minus_029() -> None:
    """|delta| 0.29 < 0.30: hold."""
    quotes = vertical_quotes("0.80", TS, short_delta=-0.29)
    assert evaluate(state_of(put_spread()), quotes, NOW) == Hold(HoldReason.NO_TRIGGER)


def test_delta_stop_fires_on_a_short_call_at_030() -> None:
    """A call credit spread's short call at delta +0.30 closes everything."""
    quotes = vertical_quotes("0.80", TS, short_delta=0.30, long_delta=0.15)
    decision = evaluate(state_of(call_spread()), quotes, NOW)
    assert isinstance(decision, Close)
    assert (decision.reason, decision.contracts) == (ExitReason.DELTA_STOP, 10)


def test_delta_stop_does_not_fire_on_a_short_call_at_029() -> None:
    """A short call at delta +0.29 holds."""
    quotes = vertical_quotes("0.80", TS, short_delta=0.29, long_delta=0.15)
    assert evaluate(state_of(call_spread()), quotes, NOW) == Hold(HoldReason.NO_TRIGGER)


def test_delta_stop_ignores_the_long_leg() -> None:
    """Only short legs count: a long leg's delta of -0.50 does not stop the position."""
    quotes = vertical_quotes("0.80", TS, short_delta=-0.10, long_delta=-0.50)
    assert evaluate(state_of(put_spread()), quotes, NOW) == Hold(HoldReason.NO_TRIGGER)


# Time stop --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("initial_dte", "stop_dte"),
    [(45, 21), (30, 15), (10, 5)],
)
def test_time_stop_fires_at_exactly_the_effective_dte(initial_dte: int, stop_dte: int) -> None:
    """At DTE = min(21, floor(initial DTE / 2)) everything closes, labelled with that DTE."""
    state = state_of(put_spread(opened_at=opened_before(initial_dte)))
    at = at_dte(stop_dte)
    decision = evaluate(state, vertical_quotes("0.80", at.now), at)
    assert isinstance(decision, Close)
    assert decision.reason is ExitReason.TIME_STOP
    assert decision.label == f"Time Stop ({stop_dte} DTE)"
    assert decision.contracts == 10


@pytest.mark.parametrize(
    ("initial_dte", "stop_dte"),
    [(45, 21), (30, 15), (10, 5)],
)
def test_time_stop_does_not_fire_one_day_earlier(initial_dte: int, stop_dte: int) -> None:
    """At effective stop DTE + 1 the position holds."""
    state = state_of(put_spread(opened_at=opened_before(initial_dte)))
    at = at_dte(stop_dte + 1)
    assert evaluate(state, vertical_quotes("0.80", at.now), at) == Hold(HoldReason.NO_TRIGGER)


def test_time_stop_fires_for_a_two_contract_position() -> None:
    """The time stop closes a small position that never reached its target."""
    state = state_of(put_spread(contracts=2))
    at = at_dte(21)
    decision = evaluate(state, vertical_quotes("0.80", at.now), at)
    assert isinstance(decision, Close)
    assert (decision.reason, decision.contracts) == (ExitReason.TIME_STOP, 2)


def test_time_stop_fires_past_expiry() -> None:
    """DTE below the stop (even negative) keeps the time stop on."""
    state = state_of(put_spread())
    at = at_dte(-1)
    decision = evaluate(state, vertical_quotes("0.80", at.now), at)
    assert isinstance(decision, Close)
    assert decision.reason is ExitReason.TIME_STOP


# A stop while tranches remain ---------------------------------------------------


def test_loss_stop_after_a_tranche_closes_everything_remaining() -> None:
    """After the 50% tranche (4) filled, a loss stop closes the other 6."""
    state = state_of(put_spread())
    state = filled(state, close_at(state, "0.50"))
    decision = evaluate(state, vertical_quotes("1.50", TS), NOW)
    assert isinstance(decision, Close)
    assert (decision.reason, decision.contracts) == (ExitReason.LOSS_STOP, 6)


def test_time_stop_after_a_tranche_closes_everything_remaining() -> None:
    """After the 50% tranche filled, reaching 21 DTE at 60% profit closes the other 6."""
    state = state_of(put_spread())
    state = filled(state, close_at(state, "0.50"))
    at = at_dte(21)
    decision = evaluate(state, vertical_quotes("0.40", at.now), at)
    assert isinstance(decision, Close)
    assert (decision.reason, decision.contracts) == (ExitReason.TIME_STOP, 6)


# Order of evaluation ------------------------------------------------------------


def test_loss_beats_delta_and_time_and_all_are_listed() -> None:
    """Loss, delta and time all hold: the loss stop wins; triggers lists all three in order."""
    at = at_dte(21)
    quotes = vertical_quotes("1.50", at.now, short_delta=-0.40)
    decision = evaluate(state_of(put_spread()), quotes, at)
    assert isinstance(decision, Close)
    assert decision.reason is ExitReason.LOSS_STOP
    assert decision.triggers == (
        ExitReason.LOSS_STOP,
        ExitReason.DELTA_STOP,
        ExitReason.TIME_STOP,
    )


def test_delta_beats_time_and_profit_and_all_are_listed() -> None:
    """Delta, time and profit hold: the delta stop closes all 10."""
    at = at_dte(21)
    quotes = vertical_quotes("0.50", at.now, short_delta=-0.35)
    decision = evaluate(state_of(put_spread()), quotes, at)
    assert isinstance(decision, Close)
    assert (decision.reason, decision.contracts) == (ExitReason.DELTA_STOP, 10)
    assert decision.triggers == (
        ExitReason.DELTA_STOP,
        ExitReason.TIME_STOP,
        ExitReason.PROFIT_TARGET,
    )


def test_time_beats_profit() -> None:
    """At 21 DTE and 50% profit the time stop closes all 10, not the 4 of tranche 1."""
    at = at_dte(21)
    decision = evaluate(state_of(put_spread()), vertical_quotes("0.50", at.now), at)
    assert isinstance(decision, Close)
    assert decision.reason is ExitReason.TIME_STOP
    assert decision.contracts == 10
    assert decision.label == "Time Stop (21 DTE)"
    assert (decision.target, decision.tranche) == (None, None)
    assert decision.triggers == (ExitReason.TIME_STOP, ExitReason.PROFIT_TARGET)


def test_loss_beats_delta() -> None:
    """Loss and delta hold at 30 DTE: loss wins, triggers are loss then delta."""
    quotes = vertical_quotes("1.60", TS, short_delta=-0.50)
    decision = evaluate(state_of(put_spread()), quotes, NOW)
    assert isinstance(decision, Close)
    assert decision.reason is ExitReason.LOSS_STOP
    assert decision.triggers == (ExitReason.LOSS_STOP, ExitReason.DELTA_STOP)


# Call spreads and iron condors --------------------------------------------------


def test_call_credit_spread_takes_profit_at_its_first_target() -> None:
    """A 10-contract call spread at debit 0.50 on credit 1.00 closes 4 at 50%."""
    quotes = vertical_quotes("0.50", TS, short_delta=0.10, long_delta=0.05)
    decision = evaluate(state_of(call_spread()), quotes, NOW)
    assert isinstance(decision, Close)
    assert (decision.contracts, decision.label) == (4, "Profit Target (50%)")


def test_call_credit_spread_loss_stop() -> None:
    """A call spread at debit 1.50 on credit 1.00 closes everything by the loss stop."""
    quotes = vertical_quotes("1.50", TS, short_delta=0.20, long_delta=0.10)
    decision = evaluate(state_of(call_spread()), quotes, NOW)
    assert isinstance(decision, Close)
    assert (decision.reason, decision.contracts) == (ExitReason.LOSS_STOP, 10)


def condor_quotes(
    long_put: str,
    short_put: str,
    short_call: str,
    long_call: str,
    *,
    short_put_delta: float = -0.10,
    short_call_delta: float = 0.10,
) -> list[Quote]:
    return [
        quote(long_put, TS, -0.05),
        quote(short_put, TS, short_put_delta),
        quote(short_call, TS, short_call_delta),
        quote(long_call, TS, 0.05),
    ]


def test_iron_condor_debit_is_shorts_minus_longs() -> None:
    """0.60 + 0.80 - 0.20 - 0.20 = 1.00 on a 2.00 credit: the 50% tranche (4) closes."""
    decision = evaluate(state_of(iron_condor()), condor_quotes("0.20", "0.60", "0.80", "0.20"), NOW)
    assert isinstance(decision, Close)
    assert decision.debit == Decimal("1.00")
    assert (decision.contracts, decision.label) == (4, "Profit Target (50%)")


def test_iron_condor_holds_between_target_and_stop() -> None:
    """1.10 + 1.00 - 0.30 - 0.30 = 1.50 on a 2.00 credit: no trigger."""
    decision = evaluate(state_of(iron_condor()), condor_quotes("0.30", "1.10", "1.00", "0.30"), NOW)
    assert decision == Hold(HoldReason.NO_TRIGGER)


def test_iron_condor_loss_stop_on_the_summed_debit() -> None:
    """2.60 + 1.00 - 0.40 - 0.20 = 3.00 = 1.5 x 2.00: the loss stop closes all 10."""
    decision = evaluate(state_of(iron_condor()), condor_quotes("0.40", "2.60", "1.00", "0.20"), NOW)
    assert isinstance(decision, Close)
    assert decision.debit == Decimal("3.00")
    assert (decision.reason, decision.contracts) == (ExitReason.LOSS_STOP, 10)


def test_iron_condor_delta_stop_on_the_short_put() -> None:
    """The short put at -0.30 stops the condor."""
    quotes = condor_quotes("0.30", "1.10", "1.00", "0.30", short_put_delta=-0.30)
    decision = evaluate(state_of(iron_condor()), quotes, NOW)
    assert isinstance(decision, Close)
    assert decision.reason is ExitReason.DELTA_STOP


def test_iron_condor_delta_stop_on_the_short_call() -> None:
    """The short call at +0.30 stops the condor."""
    quotes = condor_quotes("0.30", "1.10", "1.00", "0.30", short_call_delta=0.30)
    decision = evaluate(state_of(iron_condor()), quotes, NOW)
    assert isinstance(decision, Close)
    assert decision.reason is ExitReason.DELTA_STOP


# Marks ----------------------------------------------------------------------------


def test_mid_mark_prices_each_leg_at_its_mid() -> None:
    """Mid 0.69 - 0.20 = 0.49 reaches 50% on a 1.00 credit."""
    decision = evaluate(state_of(put_spread()), vertical_quotes("0.49", TS), NOW)
    assert isinstance(decision, Close)
    assert decision.debit == Decimal("0.49")


def test_natural_mark_buys_the_short_at_ask_and_sells_the_long_at_bid() -> None:
    """Same quotes, natural: ask 0.70 - bid 0.19 = 0.51, which is not 50%: hold."""
    state = state_of(put_spread(), BookPolicy(mark="natural"))
    assert evaluate(state, vertical_quotes("0.49", TS), NOW) == Hold(HoldReason.NO_TRIGGER)


def test_natural_mark_debit_is_reported_on_the_close() -> None:
    """Natural: ask 0.69 - bid 0.19 = 0.50, the 50% target exactly."""
    state = state_of(put_spread(), BookPolicy(mark="natural"))
    decision = evaluate(state, vertical_quotes("0.48", TS), NOW)
    assert isinstance(decision, Close)
    assert decision.debit == Decimal("0.50")
    assert decision.pnl == Decimal("200.00")  # 0.50 x 100 x 4


# P&L figures ----------------------------------------------------------------------


def test_pnl_and_pct_of_a_stop_close() -> None:
    """Credit 1.00, debit 0.25, 4 contracts at the time stop: P&L 300.00, 75% of max."""
    at = at_dte(21)
    decision = evaluate(state_of(put_spread(contracts=4)), vertical_quotes("0.25", at.now), at)
    assert isinstance(decision, Close)
    assert decision.contracts == 4
    assert decision.pnl == Decimal("300.00")
    assert decision.pct_of_max == Decimal("0.75")


def test_pnl_of_a_gap_close_counts_only_the_contracts_closed() -> None:
    """10 contracts, debit 0.25: 8 close, P&L 0.75 x 100 x 8 = 600.00."""
    decision = evaluate(state_of(put_spread()), vertical_quotes("0.25", TS), NOW)
    assert isinstance(decision, Close)
    assert decision.pnl == Decimal("600.00")
    assert decision.pct_of_max == Decimal("0.75")


def test_pnl_of_a_loss_stop_is_negative() -> None:
    """10 contracts, credit 1.00, debit 1.50: P&L -500.00, -50% of max."""
    decision = evaluate(state_of(put_spread()), vertical_quotes("1.50", TS), NOW)
    assert isinstance(decision, Close)
    assert decision.pnl == Decimal("-500.00")
    assert decision.pct_of_max == Decimal("-0.5")


# Local delta ------------------------------------------------------------------------

# Short put 400 at mid 21.90, long put 395 at 17.50: debit 4.40, below the 4.50 loss
# stop of a 3.00 credit and above every profit target. With SPY at 380 the short put
# is 20 points in the money: its BSM delta is far beyond -0.30.
ITM_SPOT = 380.0


def itm_quotes(delta: float | None, spot: float | None) -> list[Quote]:
    return [
        quote("21.90", TS, delta, spot),
        quote("17.50", TS, None, spot),
    ]


@pytest.mark.parametrize("broker_delta", [None, -2.0, float("nan")])
def test_local_delta_stops_a_deep_in_the_money_short_put(broker_delta: float | None) -> None:
    """No usable broker delta (None, IB's -2, NaN) and a spot: BSM delta fires the stop."""
    state = state_of(put_spread(credit="3.00"))
    decision = evaluate(state, itm_quotes(broker_delta, ITM_SPOT), NOW)
    assert isinstance(decision, Close)
    assert decision.reason is ExitReason.DELTA_STOP
    assert decision.triggers == (ExitReason.DELTA_STOP,)


def test_no_delta_and_no_spot_means_no_delta_stop() -> None:
    """Without a delta or a spot to compute one, the same quotes hold."""
    state = state_of(put_spread(credit="3.00"))
    assert evaluate(state, itm_quotes(None, None), NOW) == Hold(HoldReason.NO_TRIGGER)


def test_broker_delta_is_used_when_present() -> None:
    """A usable broker delta of -0.10 is trusted over what the spot would imply."""
    state = state_of(put_spread(credit="3.00"))
    assert evaluate(state, itm_quotes(-0.10, ITM_SPOT), NOW) == Hold(HoldReason.NO_TRIGGER)


def test_local_delta_of_a_far_out_of_the_money_short_put_does_not_stop() -> None:
    """Short put 400 at 0.80 with SPY at 450 (11% OTM, 30 days): |delta| well under 0.30."""
    state = state_of(put_spread(credit="0.50"))
    quotes = [quote("0.80", TS, None, 450.0), quote("0.30", TS, None, 450.0)]
    assert evaluate(state, quotes, NOW) == Hold(HoldReason.NO_TRIGGER)


# A human's close (positions close) -----------------------------------------------


def manual(state: ExitState) -> ExitState:
    return replace(state, manual=True)


def test_a_manual_close_closes_all_that_remains_on_the_next_usable_quotes() -> None:
    """Debit 0.80: no rule holds; asked by hand, all 10 close, labelled as the spec's line
    says, at the mark's figures."""
    decision = evaluate(manual(state_of(put_spread())), vertical_quotes("0.80", TS), NOW)
    assert decision == Close(
        contracts=10,
        reason=ExitReason.MANUAL,
        label="Manual Close",
        target=None,
        tranche=None,
        debit=Decimal("0.80"),
        pnl=Decimal("200.00"),  # (1.00 - 0.80) x 100 x 10
        pct_of_max=Decimal("0.2"),
        triggers=(ExitReason.MANUAL,),
    )


def test_a_manual_close_acts_before_a_stop_that_holds_and_lists_it() -> None:
    decision = evaluate(manual(state_of(put_spread())), vertical_quotes("1.60", TS), NOW)
    assert isinstance(decision, Close)
    assert decision.reason is ExitReason.MANUAL
    assert decision.triggers == (ExitReason.MANUAL, ExitReason.LOSS_STOP)


def test_a_manual_close_is_not_made_on_bad_or_stale_data() -> None:
    state = manual(state_of(put_spread()))
    short, long_ = vertical_quotes("0.80", TS)
    crossed = [short._replace(bid=short.ask + Decimal("0.05")), long_]  # type: ignore[operator]
    decision = evaluate(state, crossed, NOW)
    assert isinstance(decision, Hold)
    assert decision.reason is HoldReason.INVALID_QUOTE
    stale = vertical_quotes("0.80", TS - state.plan.stale_after)
    assert evaluate(state, stale, NOW) == Hold(HoldReason.STALE)


def test_a_manual_close_replaces_a_working_profit_close_and_waits_for_a_stop() -> None:
    """While a tranche's close works the human's close replaces it, as a stop does; while
    a stop's close works there is nothing more to do."""
    state = state_of(put_spread())
    profit = close_at(state, "0.50")
    working = manual(apply(state, CloseSent(profit)))
    decision = evaluate(working, vertical_quotes("0.80", TS), NOW)
    assert isinstance(decision, Close)
    assert (decision.reason, decision.replaces, decision.contracts) == (ExitReason.MANUAL, True, 10)
    stop = close_at(state, "1.60")
    stopping = manual(apply(state, CloseSent(stop)))
    assert evaluate(stopping, vertical_quotes("0.80", TS), NOW) == Hold(HoldReason.ORDER_WORKING)
