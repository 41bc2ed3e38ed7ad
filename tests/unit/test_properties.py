"""Invariants of the exit rules, by hypothesis (STYLE.md: property tests, a state machine).

- contracts remaining never goes negative and never rises;
- the closes of a position never sum past its contracts;
- the same inputs give the same decision;
- an invalid or missing quote never produces a Close.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from hypothesis import event, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from rules.books import BookPolicy
from rules.clock import MarketTime, market_time
from rules.machine import (
    Close,
    CloseSent,
    Decision,
    ExitState,
    Filled,
    Hold,
    HoldReason,
    OrderEnded,
    Phase,
    apply,
    evaluate,
)
from rules.model import Quote
from tests.factories import at_dte, opened_before, put_spread, state_of, vertical_quotes

PROPERTY = settings(max_examples=200, deadline=None)

contracts_st = st.integers(min_value=1, max_value=20)
# 0.00 .. 2.00 in cents: spans every profit target and the loss stop of a 1.00 credit.
debits = st.integers(min_value=0, max_value=200).map(lambda cents: Decimal(cents) / 100)
deltas = st.one_of(
    st.none(),
    st.floats(min_value=-0.6, max_value=0.0),
    st.sampled_from([-2.0, float("nan")]),  # IB's "no value"
)
dtes = st.integers(min_value=-1, max_value=45)
books = st.sampled_from([BookPolicy(), BookPolicy(mark="natural")])


def spoil(q: Quote, kind: str) -> Quote | None:
    """One way a leg's latest quote can be unusable."""
    if kind == "none":
        return None
    if kind == "no-bid":
        return q._replace(bid=None)
    if kind == "no-ask":
        return q._replace(ask=None)
    if kind == "nan":
        return q._replace(bid=Decimal("NaN"))
    if kind == "ib-minus-one":
        return q._replace(bid=Decimal(-1), ask=Decimal(-1))
    if kind == "crossed":
        assert q.ask is not None
        return q._replace(bid=q.ask + Decimal("0.05"))
    assert kind == "zero-ask"
    return q._replace(bid=Decimal(0), ask=Decimal(0))


SPOILS = ["none", "no-bid", "no-ask", "nan", "ib-minus-one", "crossed", "zero-ask"]


@given(
    contracts=contracts_st,
    debit=debits,
    delta=deltas,
    dte=dtes,
    book=books,
    regular_hours=st.booleans(),
)
@PROPERTY
def test_the_same_inputs_give_the_same_decision(
    contracts: int,
    debit: Decimal,
    delta: float | None,
    dte: int,
    book: BookPolicy,
    regular_hours: bool,
) -> None:
    """evaluate is a function: called twice on equal inputs, it decides the same."""
    at = at_dte(dte, regular_hours=regular_hours)
    state = state_of(put_spread(contracts=contracts), book)
    first = evaluate(state, vertical_quotes(debit, at.now, short_delta=delta), at)
    again = evaluate(
        state_of(put_spread(contracts=contracts), book),
        vertical_quotes(debit, at.now, short_delta=delta),
        at,
    )
    assert first == again


@given(
    contracts=contracts_st,
    debit=debits,
    delta=st.floats(min_value=-0.9, max_value=0.0),
    dte=dtes,
    leg=st.sampled_from([0, 1]),
    kind=st.sampled_from(SPOILS),
)
@PROPERTY
def test_an_invalid_quote_never_produces_a_close(
    contracts: int, debit: Decimal, delta: float, dte: int, leg: int, kind: str
) -> None:
    """Whatever the prices, delta and DTE, one unusable leg quote means Hold."""
    at = at_dte(dte)
    quotes: list[Quote | None] = list(vertical_quotes(debit, at.now, short_delta=delta))
    q = quotes[leg]
    assert q is not None
    quotes[leg] = spoil(q, kind)
    decision = evaluate(state_of(put_spread(contracts=contracts)), quotes, at)
    assert isinstance(decision, Hold)
    assert decision.reason in {HoldReason.INVALID_QUOTE, HoldReason.MISSING_QUOTE}


@st.composite
def episodes(draw: st.DrawFn) -> tuple[int, list[tuple[Decimal, int, bool]]]:
    """A position size and a run of (debit, DTE, end the order after a partial fill?)."""
    contracts = draw(contracts_st)
    steps = draw(
        st.lists(
            st.tuples(debits, st.integers(min_value=0, max_value=30), st.booleans()),
            min_size=1,
            max_size=12,
        )
    )
    return contracts, steps


@given(episode=episodes(), data=st.data())
@PROPERTY
def test_remaining_never_rises_and_closes_never_sum_past_the_contracts(
    episode: tuple[int, list[tuple[Decimal, int, bool]]], data: st.DataObject
) -> None:
    """Send every decided close, fill part or all of it: remaining only falls, stays >= 0."""
    contracts, steps = episode
    state = state_of(put_spread(contracts=contracts))
    total_filled = 0
    for debit, dte, end_early in steps:
        at = at_dte(dte)
        decision = evaluate(state, vertical_quotes(debit, at.now), at)
        if not isinstance(decision, Close):
            continue
        assert 0 < decision.contracts <= state.remaining
        state = apply(state, CloseSent(decision))
        n = data.draw(st.integers(min_value=1, max_value=decision.contracts), label="fill")
        before = state.remaining
        state = apply(state, Filled(n))
        total_filled += n
        assert 0 <= state.remaining == before - n
        if state.phase is Phase.CLOSING and end_early:
            state = apply(state, OrderEnded())
        elif state.phase is Phase.CLOSING:
            state = apply(state, Filled(decision.contracts - n))
            total_filled += decision.contracts - n
        assert state.phase is not Phase.CLOSING
        assert total_filled == contracts - state.remaining <= contracts


def _why(decision: Decision) -> str:
    return decision.reason.value


# The state machine -----------------------------------------------------------------


class ExitMachine(RuleBasedStateMachine):
    """One put credit spread driven by ticks, sends, fills and order ends in any order."""

    state: ExitState
    now: datetime
    decision: Decision | None

    @initialize(contracts=st.integers(min_value=3, max_value=20), book=books)
    def open(self, contracts: int, book: BookPolicy) -> None:
        self.state = state_of(put_spread(contracts=contracts), book)
        self.contracts = contracts
        self.now = opened_before(45)
        self.decision = None
        self.last_remaining = contracts
        self.filled = 0

    def _after(self, state: ExitState) -> None:
        self.state = state
        self.decision = None  # a decision is about the state it was made on

    @rule(
        advance=st.integers(min_value=0, max_value=3 * 24 * 60),
        debit=debits,
        delta=deltas,
        age=st.integers(min_value=0, max_value=150),  # stale beyond 120 s in regular hours
        spoilt=st.one_of(
            st.none(), st.none(), st.tuples(st.sampled_from([0, 1]), st.sampled_from(SPOILS))
        ),
    )
    def tick(
        self,
        advance: int,
        debit: Decimal,
        delta: float | None,
        age: int,
        spoilt: tuple[int, str] | None,
    ) -> None:
        self.now += timedelta(minutes=advance)
        at: MarketTime = market_time(self.now)
        quotes: list[Quote | None] = list(
            vertical_quotes(debit, self.now - timedelta(seconds=age), short_delta=delta)
        )
        if spoilt is not None:
            leg, kind = spoilt
            q = quotes[leg]
            assert q is not None
            quotes[leg] = spoil(q, kind)
        decision = evaluate(self.state, quotes, at)
        assert decision == evaluate(self.state, quotes, at)
        if spoilt is not None:
            assert isinstance(decision, Hold)
        if isinstance(decision, Close):
            assert 0 < decision.contracts <= self.state.remaining
            assert decision.replaces == (self.state.phase is Phase.CLOSING)
        event(f"{self.state.phase.value}: {type(decision).__name__} {_why(decision)}")
        self.decision = decision

    @precondition(lambda self: isinstance(self.decision, Close) and not self.decision.replaces)
    @rule()
    def send(self) -> None:
        assert isinstance(self.decision, Close)
        self._after(apply(self.state, CloseSent(self.decision)))

    @precondition(
        lambda self: (
            self.state.phase is Phase.CLOSING
            and self.state.working.close.contracts - self.state.working.filled > 1
        )
    )
    @rule(data=st.data())
    def partial_fill(self, data: st.DataObject) -> None:
        working = self.state.working
        assert working is not None
        unfilled = working.close.contracts - working.filled
        n = data.draw(st.integers(min_value=1, max_value=unfilled - 1), label="partial")
        self.filled += n
        self._after(apply(self.state, Filled(n)))

    @precondition(lambda self: self.state.phase is Phase.CLOSING)
    @rule()
    def full_fill(self) -> None:
        working = self.state.working
        assert working is not None
        n = working.close.contracts - working.filled
        self.filled += n
        self._after(apply(self.state, Filled(n)))

    @precondition(lambda self: self.state.phase is Phase.CLOSING)
    @rule()
    def order_ended(self) -> None:
        self._after(apply(self.state, OrderEnded()))

    @invariant()
    def remaining_is_within_the_position(self) -> None:
        assert 0 <= self.state.remaining <= self.contracts

    @invariant()
    def remaining_never_rises(self) -> None:
        assert self.state.remaining <= self.last_remaining
        self.last_remaining = self.state.remaining

    @invariant()
    def fills_account_for_what_is_closed(self) -> None:
        assert self.filled == self.contracts - self.state.remaining

    @invariant()
    def profit_closes_never_exceed_the_contracts(self) -> None:
        assert 0 <= self.state.profit_closed <= self.contracts

    @invariant()
    def closed_exactly_when_nothing_remains(self) -> None:
        assert (self.state.phase is Phase.CLOSED) == (self.state.remaining == 0)

    @invariant()
    def an_order_works_exactly_when_closing(self) -> None:
        assert (self.state.working is None) == (self.state.phase is not Phase.CLOSING)

    @invariant()
    def a_working_order_is_never_overfilled(self) -> None:
        working = self.state.working
        if working is not None:
            assert 0 <= working.filled < working.close.contracts <= self.contracts


ExitMachine.TestCase.settings = settings(max_examples=200, stateful_step_count=30, deadline=None)
TestExitMachine = ExitMachine.TestCase
