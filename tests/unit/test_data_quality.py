"""Invalid and stale data never acts (docs/exit-rules.md: Order of evaluation, last paragraph).

Every test uses prices that would fire the loss stop (debit 1.50 on a 1.00
credit) if the data were usable, so a Hold can only come from the data check.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import pytest

from rules.clock import MarketTime, market_time
from rules.machine import Close, ExitReason, Hold, HoldReason, evaluate
from rules.model import Quote
from tests.factories import NY, put_spread, quote, state_of, vertical_quotes

# Wednesday 2025-05-21, 11:00 New York: regular hours, 30 DTE to the 2025-06-20 expiry.
RTH = market_time(datetime(2025, 5, 21, 11, 0, tzinfo=NY))
# The same Wednesday at 17:00, after the close.
AFTER_HOURS = market_time(datetime(2025, 5, 21, 17, 0, tzinfo=NY))
# Saturday 2025-05-24, 11:00: no session.
WEEKEND = market_time(datetime(2025, 5, 24, 11, 0, tzinfo=NY))

LOSS_DEBIT = "1.50"


def long_leg(ts: datetime) -> Quote:
    return quote("0.20", ts, -0.05)


def test_the_clock_fixtures_are_what_the_tests_say() -> None:
    """Guard: 11:00 on a Wednesday is regular hours; 17:00 and Saturday are not."""
    assert RTH.regular_hours
    assert not AFTER_HOURS.regular_hours
    assert not WEEKEND.regular_hours


def test_valid_quotes_at_the_loss_debit_do_close() -> None:
    """Control: with good data these prices fire the loss stop."""
    decision = evaluate(state_of(put_spread()), vertical_quotes(LOSS_DEBIT, RTH.now), RTH)
    assert isinstance(decision, Close)
    assert decision.reason is ExitReason.LOSS_STOP


@pytest.mark.parametrize(
    ("bid", "ask"),
    [
        pytest.param(None, Decimal("1.71"), id="missing-bid"),
        pytest.param(Decimal("1.69"), None, id="missing-ask"),
        pytest.param(Decimal("NaN"), Decimal("1.71"), id="nan-bid"),
        pytest.param(Decimal("1.69"), Decimal("NaN"), id="nan-ask"),
        pytest.param(Decimal("-1"), Decimal("1.71"), id="ib-minus-one-bid"),
        pytest.param(Decimal("-1"), Decimal("-1"), id="ib-minus-one-both"),
        pytest.param(Decimal("1.80"), Decimal("1.71"), id="crossed"),
        pytest.param(Decimal("0"), Decimal("0"), id="zero-ask"),
    ],
)
def test_an_invalid_short_leg_quote_holds(bid: Decimal | None, ask: Decimal | None) -> None:
    """A short leg quote with a missing side, NaN, a negative price, crossed or no offer holds."""
    quotes = [Quote(bid, ask, RTH.now, -0.50), long_leg(RTH.now)]
    decision = evaluate(state_of(put_spread()), quotes, RTH)
    assert isinstance(decision, Hold)
    assert decision.reason is HoldReason.INVALID_QUOTE


def test_an_invalid_long_leg_quote_holds() -> None:
    """A crossed long leg stops evaluation just as a bad short leg does."""
    quotes = [
        quote("1.70", RTH.now, -0.50),
        Quote(Decimal("0.25"), Decimal("0.15"), RTH.now, -0.05),
    ]
    decision = evaluate(state_of(put_spread()), quotes, RTH)
    assert isinstance(decision, Hold)
    assert decision.reason is HoldReason.INVALID_QUOTE


def test_a_zero_bid_with_an_offer_is_a_valid_quote() -> None:
    """Bid 0, ask 0.02 is a real market for a far-out long leg: the loss stop still fires."""
    quotes = [quote("1.51", RTH.now, -0.10), Quote(Decimal("0"), Decimal("0.02"), RTH.now)]
    decision = evaluate(state_of(put_spread()), quotes, RTH)
    assert isinstance(decision, Close)
    assert decision.reason is ExitReason.LOSS_STOP


@pytest.mark.parametrize("missing", [0, 1])
def test_a_missing_quote_holds(missing: int) -> None:
    """A leg with no quote at all holds with MISSING_QUOTE."""
    quotes: list[Quote | None] = list(vertical_quotes(LOSS_DEBIT, RTH.now, short_delta=-0.50))
    quotes[missing] = None
    decision = evaluate(state_of(put_spread()), quotes, RTH)
    assert decision == Hold(HoldReason.MISSING_QUOTE)


def test_a_feed_problem_holds() -> None:
    """A broker or farm problem holds with FEED and its detail, whatever the prices."""
    quotes = vertical_quotes(LOSS_DEBIT, RTH.now, short_delta=-0.50)
    decision = evaluate(state_of(put_spread()), quotes, RTH, feed_problem="farm down")
    assert decision == Hold(HoldReason.FEED, "farm down")


def test_no_leg_updated_for_over_120_seconds_in_regular_hours_is_stale() -> None:
    """Both legs 121 s old at 11:00 on a weekday: hold STALE."""
    old = RTH.now - timedelta(seconds=121)
    decision = evaluate(state_of(put_spread()), vertical_quotes(LOSS_DEBIT, old), RTH)
    assert decision == Hold(HoldReason.STALE)


def test_quotes_under_120_seconds_old_are_not_stale() -> None:
    """Both legs 119 s old during regular hours: the loss stop acts."""
    recent = RTH.now - timedelta(seconds=119)
    decision = evaluate(state_of(put_spread()), vertical_quotes(LOSS_DEBIT, recent), RTH)
    assert isinstance(decision, Close)
    assert decision.reason is ExitReason.LOSS_STOP


@pytest.mark.parametrize("at", [AFTER_HOURS, WEEKEND], ids=["after-close", "saturday"])
def test_old_quotes_outside_regular_hours_are_not_stale(at: MarketTime) -> None:
    """Outside regular hours, quotes two hours old are still acted on."""
    old = at.now - timedelta(hours=2)
    decision = evaluate(state_of(put_spread()), vertical_quotes(LOSS_DEBIT, old), at)
    assert isinstance(decision, Close)
    assert decision.reason is ExitReason.LOSS_STOP


def test_a_quiet_leg_is_fine_when_another_leg_updated_recently() -> None:
    """Long leg quoted an hour ago, short leg 5 s ago: not stale, the loss stop acts."""
    quotes = [
        quote("1.70", RTH.now - timedelta(seconds=5), -0.10),
        long_leg(RTH.now - timedelta(hours=1)),
    ]
    decision = evaluate(state_of(put_spread()), quotes, RTH)
    assert isinstance(decision, Close)
    assert decision.reason is ExitReason.LOSS_STOP
