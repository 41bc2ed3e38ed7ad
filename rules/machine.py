"""The exit state machine of one position.

Theory of operation
-------------------
A position is OPEN (watched, nothing working), CLOSING (one close order is
working at the broker) or CLOSED (no contract left). :func:`evaluate` looks at
the state, the latest quote of every leg and the exchange time, and returns a
decision value: :class:`Hold` or :class:`Close`. It never acts. The caller
acts, then tells the machine what happened with :func:`apply` and one of four
events: the close was sent (OPEN -> CLOSING), contracts filled (CLOSING stays
CLOSING while the order works, returns to OPEN when the order is complete,
ends in CLOSED when the last contract fills), the order ended with a rest
unfilled (CLOSING -> OPEN: the rest is worked again while its trigger holds),
or the close was never sent after all (CLOSING -> OPEN: decided again).
What a fill changes is :func:`fill_outcome`, which the store uses too.
The legal moves are the table ``TRANSITIONS``; anything else raises
:class:`IllegalTransition`.

Profit tranches are counted by ``profit_closed``, the contracts closed by
profit targets so far, against the plan's cumulative boundaries: tranche i is
done once ``profit_closed >= cumulative[i]``. A gap over several targets closes
every contract up to the highest boundary reached in one order. Stops (loss,
delta, time) close everything remaining. While a profit close works, a stop
that holds yields a ``Close(replaces=True)``: cancel the working order, and on
its end the next evaluation sends the stop's close.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal, InvalidOperation

from rules.books import BookPolicy
from rules.clock import MarketTime
from rules.greeks import GreeksUnavailable, Rates, local_delta
from rules.model import MAX_PRICE, Position, Quote, quote_problem, usable_delta
from rules.plan import ExitPlan, make_plan
from rules.pnl import pct_of_max, realised_pnl


class Phase(enum.StrEnum):
    OPEN = "open"
    CLOSING = "closing"
    CLOSED = "closed"


class EventKind(enum.Enum):
    CLOSE_SENT = "close_sent"
    PARTIAL_FILL = "partial_fill"  # the order still has contracts to fill
    ORDER_FILLED = "order_filled"  # the order is complete, the position is not
    LAST_FILL = "last_fill"  # no contract remains
    ORDER_ENDED = "order_ended"  # cancelled, rejected or expired with a rest unfilled
    NOT_SENT = "not_sent"  # the close decided was never sent (refused, or failed on its way)


TRANSITIONS: dict[tuple[Phase, EventKind], Phase] = {
    (Phase.OPEN, EventKind.CLOSE_SENT): Phase.CLOSING,
    (Phase.CLOSING, EventKind.PARTIAL_FILL): Phase.CLOSING,
    (Phase.CLOSING, EventKind.ORDER_FILLED): Phase.OPEN,
    (Phase.CLOSING, EventKind.LAST_FILL): Phase.CLOSED,
    (Phase.CLOSING, EventKind.ORDER_ENDED): Phase.OPEN,
    (Phase.CLOSING, EventKind.NOT_SENT): Phase.OPEN,
}


class IllegalTransition(RuntimeError):
    """An event that the position's phase does not allow (e.g. a fill with no order)."""


class ExitReason(enum.StrEnum):
    PROFIT_TARGET = "profit_target"
    TIME_STOP = "time_stop"
    LOSS_STOP = "loss_stop"
    DELTA_STOP = "delta_stop"


class HoldReason(enum.StrEnum):
    NO_TRIGGER = "no_trigger"
    MISSING_QUOTE = "missing_quote"
    INVALID_QUOTE = "invalid_quote"
    INCONSISTENT_QUOTES = "inconsistent_quotes"
    STALE = "stale"
    FEED = "feed"
    ORDER_WORKING = "order_working"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class Hold:
    reason: HoldReason
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Close:
    """Close ``contracts`` spreads. Figures are per the mark the decision was made on."""

    contracts: int
    reason: ExitReason
    label: str
    target: Decimal | None  # the profit target reached, for profit closes
    tranche: int | None  # index of the highest tranche reached, for profit closes
    debit: Decimal  # debit to close one spread, in price points
    pnl: Decimal  # realised P&L in dollars if the contracts fill at ``debit``
    pct_of_max: Decimal  # (credit - debit) / credit
    triggers: tuple[ExitReason, ...]  # every trigger that held, in evaluation order
    replaces: bool = False  # cancel the working profit close first


Decision = Hold | Close

HOLD_NO_TRIGGER = Hold(HoldReason.NO_TRIGGER)
HOLD_MISSING = Hold(HoldReason.MISSING_QUOTE)
HOLD_STALE = Hold(HoldReason.STALE)
HOLD_PREVIOUS_SESSION = Hold(HoldReason.STALE, "a leg's latest quote is from a previous session")
HOLD_WORKING = Hold(HoldReason.ORDER_WORKING)
HOLD_CLOSED = Hold(HoldReason.CLOSED)


@dataclass(frozen=True, slots=True)
class Working:
    close: Close
    filled: int = 0


@dataclass(frozen=True, slots=True)
class ExitState:
    position: Position
    plan: ExitPlan
    phase: Phase
    remaining: int
    profit_closed: int = 0
    working: Working | None = None

    @property
    def stage(self) -> int:
        """Profit tranches done."""
        return sum(1 for boundary in self.plan.cumulative if boundary <= self.profit_closed)


def open_state(position: Position, book: BookPolicy) -> ExitState:
    return ExitState(position, make_plan(position, book), Phase.OPEN, position.contracts)


# Events -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CloseSent:
    close: Close


@dataclass(frozen=True, slots=True)
class Filled:
    contracts: int


@dataclass(frozen=True, slots=True)
class OrderEnded:
    pass


@dataclass(frozen=True, slots=True)
class NotSent:
    """The close the position went CLOSING for never reached the broker."""


Event = CloseSent | Filled | OrderEnded | NotSent


def _phase_after(position_id: str, phase: Phase, kind: EventKind) -> Phase:
    after = TRANSITIONS.get((phase, kind))
    if after is None:
        raise IllegalTransition(
            f"position {position_id}: {kind.value} is not allowed when {phase.value}"
        )
    return after


def fill_kind(remaining_after: int, unfilled_after: int) -> EventKind:
    """Which fill it is: the last contract of the position, the last of its order, or
    part of the order."""
    if remaining_after == 0:
        return EventKind.LAST_FILL
    if unfilled_after == 0:
        return EventKind.ORDER_FILLED
    return EventKind.PARTIAL_FILL


@dataclass(frozen=True, slots=True)
class FillOutcome:
    """A position and its working order after a fill."""

    phase: Phase
    remaining: int
    profit_closed: int
    stage: int  # profit tranches completed by orders filled in full
    filled: int  # the order's contracts filled so far
    order_complete: bool  # the order has filled in full


def fill_outcome(
    position_id: str,
    phase: Phase,
    remaining: int,
    profit_closed: int,
    stage: int,
    order: Close | Working,
    contracts: int,
) -> FillOutcome:
    """What ``contracts`` filled of the working ``order`` (a :class:`Working` close, or a
    :class:`Close` with nothing filled yet) make of a position: the one statement of a
    fill's effect, for :func:`apply` and for the store. A profit close's contracts count
    toward ``profit_closed``; a profit close of tranche ``t`` filled in full completes
    tranche ``t`` (``stage`` at least ``t + 1``). Raises :class:`IllegalTransition` for a
    fill larger than the order's unfilled rest or the position's remaining."""
    working = order if isinstance(order, Working) else Working(order)
    close = working.close
    unfilled = close.contracts - working.filled
    if not 0 < contracts <= unfilled:
        raise IllegalTransition(
            f"position {position_id}: fill of {contracts} against an order with {unfilled} unfilled"
        )
    if contracts > remaining:
        raise IllegalTransition(
            f"position {position_id}: fill of {contracts} with {remaining} remaining"
        )
    kind = fill_kind(remaining - contracts, unfilled - contracts)
    after = _phase_after(position_id, phase, kind)
    profit = close.reason is ExitReason.PROFIT_TARGET
    complete = contracts == unfilled
    if profit and complete and close.tranche is not None:
        stage = max(stage, close.tranche + 1)
    return FillOutcome(
        phase=after,
        remaining=remaining - contracts,
        profit_closed=profit_closed + (contracts if profit else 0),
        stage=stage,
        filled=working.filled + contracts,
        order_complete=complete,
    )


def _kind(event: CloseSent | OrderEnded | NotSent) -> EventKind:
    if isinstance(event, CloseSent):
        return EventKind.CLOSE_SENT
    if isinstance(event, OrderEnded):
        return EventKind.ORDER_ENDED
    return EventKind.NOT_SENT


def apply(state: ExitState, event: Event) -> ExitState:
    """The state after ``event``; raises IllegalTransition for a move the table forbids."""
    pid = state.position.id
    if isinstance(event, Filled):
        working = state.working
        if working is None or state.phase is not Phase.CLOSING:
            kind = fill_kind(state.remaining - event.contracts, 1)
            _phase_after(pid, state.phase, kind)  # (raises: no order works)
            raise IllegalTransition(f"position {pid}: a fill with no order working")
        out = fill_outcome(
            pid, state.phase, state.remaining, state.profit_closed, 0, working, event.contracts
        )
        return replace(
            state,
            phase=out.phase,
            remaining=out.remaining,
            profit_closed=out.profit_closed,
            working=Working(working.close, out.filled) if out.phase is Phase.CLOSING else None,
        )
    phase = _phase_after(pid, state.phase, _kind(event))
    if isinstance(event, CloseSent):
        close = event.close
        if close.replaces or not 0 < close.contracts <= state.remaining:
            raise IllegalTransition(
                f"position {pid}: cannot send a close of {close.contracts} "
                f"with {state.remaining} remaining"
            )
        return replace(state, phase=phase, working=Working(close))
    return replace(state, phase=phase, working=None)


# Evaluation -----------------------------------------------------------------

DEFAULT_RATES = Rates()
_CLOSED = Phase.CLOSED
_HALF = Decimal("0.5")
_ZERO = Decimal(0)


def debit_to_close(plan: ExitPlan, quotes: Sequence[Quote], *, mid: bool = False) -> Decimal:
    """What buying back one spread costs now, at the book's mark (mid or natural)."""
    if not plan.natural or mid:
        shorts, longs = plan.short_legs, plan.long_legs
        if len(shorts) == 1:  # a vertical: the common case, without the loops
            s, lg = quotes[shorts[0]], quotes[longs[0]]
            return (s.bid + s.ask - lg.bid - lg.ask) * _HALF  # type: ignore[operator]
    if plan.natural and not mid:
        return natural_debit(plan, quotes)
    debit = _ZERO
    for i in plan.short_legs:
        q = quotes[i]
        debit += q.bid + q.ask  # type: ignore[operator]
    for i in plan.long_legs:
        q = quotes[i]
        debit -= q.bid + q.ask  # type: ignore[operator]
    return debit * _HALF


def natural_debit(plan: ExitPlan, quotes: Sequence[Quote]) -> Decimal:
    """Buying the short legs back at the ask and selling the long ones at the bid."""
    debit = _ZERO
    for i in plan.short_legs:
        debit += quotes[i].ask  # type: ignore[operator]
    for i in plan.long_legs:
        debit -= quotes[i].bid  # type: ignore[operator]
    return debit


def _local_delta(state: ExitState, i: int, q: Quote, now: datetime, rates: Rates) -> float | None:
    """Leg i's delta from its mid by BSM, or None when there is nothing to compute it from."""
    if q.underlying_price is None:
        return None
    leg = state.position.legs[i]
    mid = float((q.bid + q.ask) * _HALF)  # type: ignore[operator]
    try:
        return local_delta(
            leg.right, float(leg.strike), leg.expiry, mid, q.underlying_price, now, rates
        )
    except GreeksUnavailable:
        return None


def _unusable(quotes: Sequence[Quote | None]) -> Hold:
    """The precise reason the fast screen in :func:`evaluate` refused the quotes."""
    for q in quotes:
        if q is None:
            return HOLD_MISSING
        problem = quote_problem(q)
        if problem is not None:
            return Hold(HoldReason.INVALID_QUOTE, problem)
    return Hold(HoldReason.INVALID_QUOTE, "unusable quote")


def _close(
    state: ExitState,
    contracts: int,
    reason: ExitReason,
    label: str,
    debit: Decimal,
    triggers: tuple[ExitReason, ...],
    tranche: int | None = None,
    replaces: bool = False,
) -> Close:
    p = state.position
    return Close(
        contracts=contracts,
        reason=reason,
        label=label,
        target=None if tranche is None else state.plan.targets[tranche],
        tranche=tranche,
        debit=debit,
        pnl=realised_pnl(p.entry_credit, debit, p.multiplier, contracts),
        pct_of_max=pct_of_max(p.entry_credit, debit),
        triggers=triggers,
        replaces=replaces,
    )


def evaluate(
    state: ExitState,
    quotes: Sequence[Quote | None],
    at: MarketTime,
    *,
    rates: Rates = DEFAULT_RATES,
    feed_problem: str | None = None,
) -> Decision:
    """Decide what to do with one position now. ``quotes`` follow ``position.legs``.

    Nothing is acted on when the feed has a problem, a leg has no quote or an
    invalid one, no leg has updated for ``stale_after`` during regular hours, a
    leg's quote predates today's session (yesterday's frozen quote), or the
    legs' mids give a debit outside [0, width], which no consistent market
    can (one leg has moved and the other's quote has not caught up yet).
    Otherwise the first trigger in SPEC.md's order wins: loss stop, delta stop,
    time stop, profit targets; every trigger that holds is listed in ``triggers``.
    """
    # This runs on every tick of every position: it is written for speed, with
    # each step's meaning in its comment. UTC datetimes keep comparisons cheap.
    if state.phase is _CLOSED:
        return HOLD_CLOSED
    if feed_problem is not None:
        return Hold(HoldReason.FEED, feed_problem)

    # 1. Every leg has a usable quote: bid >= 0, ask > 0, bid <= ask, finite.
    #    None raises TypeError/AttributeError and NaN raises InvalidOperation
    #    (or compares False): any of those ends in the slow, precise _unusable.
    newest = oldest = None
    try:
        for q in quotes:
            ts, ask = q.ts, q.ask  # type: ignore[union-attr]
            if not (_ZERO <= q.bid <= ask < MAX_PRICE and ask > _ZERO):  # type: ignore[union-attr,operator]
                return _unusable(quotes)
            if newest is None or oldest is None:
                newest = oldest = ts
            elif ts > newest:
                newest = ts
            elif ts < oldest:
                oldest = ts
    except (AttributeError, TypeError, InvalidOperation):
        return _unusable(quotes)
    if newest is None or oldest is None:
        return HOLD_MISSING  # a position without legs: nothing to judge
    valid: Sequence[Quote] = quotes  # type: ignore[assignment]  # checked above
    plan = state.plan
    debit = debit_to_close(plan, valid)
    mid = debit_to_close(plan, valid, mid=True) if plan.natural else debit
    return judge(state, valid, debit, mid, newest, oldest, at, rates)


def judge(
    state: ExitState,
    quotes: Sequence[Quote],
    debit: Decimal,
    mid: Decimal,
    newest: datetime,
    oldest: datetime,
    at: MarketTime,
    rates: Rates,
) -> Decision:
    """Steps 2-4 of :func:`evaluate`, on usable quotes and their figures.

    ``debit`` is at the book's mark, ``mid`` at mid; ``newest``/``oldest`` are
    the latest and earliest of the legs' quote times.
    """
    plan = state.plan
    now = at.now

    # 2. The data is current: during regular hours some leg updated within
    #    stale_after, and no leg's quote is older than today's open.
    if at.regular_hours:
        if now - newest >= plan.stale_after:
            return HOLD_STALE
        session_open = at.session_open
        if session_open is not None and oldest < session_open:
            return HOLD_PREVIOUS_SESSION

    # 3. The legs agree: a mid debit outside [0, width] is no consistent market.
    if not _ZERO <= mid <= plan.width:
        return Hold(
            HoldReason.INCONSISTENT_QUOTES,
            f"mid debit {mid} outside [0, {plan.width}]: legs quoted at different moments",
        )

    # 4. The triggers, all of them, for the log; the first in SPEC order acts.
    loss = debit >= plan.loss_debit
    delta = False
    stop_delta = plan.delta_stop
    for i in plan.short_legs:
        q = quotes[i]
        d = usable_delta(q.delta)
        if d is None:
            d = _local_delta(state, i, q, now, rates)
            if d is None:
                continue
        if d >= stop_delta or d <= -stop_delta:
            delta = True
            break
    time = at.session_date >= plan.time_stop_date
    reached = -1
    profit_n = 0
    target_debits = plan.target_debits
    if debit <= target_debits[0]:  # thresholds fall as targets rise
        reached = len(target_debits) - 1
        while debit > target_debits[reached]:
            reached -= 1
        profit_n = min(plan.cumulative[reached] - state.profit_closed, state.remaining)
    if not (loss or delta or time or profit_n > 0):
        return HOLD_NO_TRIGGER
    return _decide(state, debit, loss, delta, time, reached, profit_n)


def _decide(
    state: ExitState,
    debit: Decimal,
    loss: bool,
    delta: bool,
    time: bool,
    reached: int,
    profit_n: int,
) -> Decision:
    """Some trigger holds: the first in SPEC order acts; all are listed."""
    plan = state.plan
    triggers = tuple(
        r
        for r, hit in (
            (ExitReason.LOSS_STOP, loss),
            (ExitReason.DELTA_STOP, delta),
            (ExitReason.TIME_STOP, time),
            (ExitReason.PROFIT_TARGET, profit_n > 0),
        )
        if hit
    )
    stop: tuple[ExitReason, str] | None = None
    if loss:
        stop = (ExitReason.LOSS_STOP, plan.loss_label)
    elif delta:
        stop = (ExitReason.DELTA_STOP, plan.delta_label)
    elif time:
        stop = (ExitReason.TIME_STOP, plan.time_label)
    if state.phase is Phase.CLOSING:
        working = state.working
        if stop is None or working is None or working.close.reason is not ExitReason.PROFIT_TARGET:
            return HOLD_WORKING
        return _close(state, state.remaining, *stop, debit, triggers, replaces=True)
    if stop is not None:
        return _close(state, state.remaining, *stop, debit, triggers)
    return _close(
        state,
        profit_n,
        ExitReason.PROFIT_TARGET,
        plan.labels[reached],
        debit,
        triggers,
        tranche=reached,
    )


def dollars(amount: Decimal) -> str:
    """``$1,165.00`` / ``-$50.00``."""
    cents = amount.quantize(Decimal("0.01"))
    return f"-${-cents:,.2f}" if cents < 0 else f"${cents:,.2f}"


def format_close_line(position: Position, close: Close) -> str:
    """SPEC.md's human line: ``CLOSING: SPY put_credit - Profit Target (75%) - ...``."""
    money = dollars(close.pnl)
    pct = (close.pct_of_max * 100).quantize(Decimal(1))
    return (
        f"CLOSING: {position.underlying} {position.strategy.value} - {close.label} - "
        f"P&L: {money} ({pct}% of max) - Closed {close.contracts}/{position.contracts} contracts"
    )
