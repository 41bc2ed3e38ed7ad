"""The exit state machine of one position: its legal moves, and the one place they are made.

Theory of operation
-------------------
A position is OPEN (watched, nothing working), CLOSING (one close order is
working at the broker) or CLOSED (no contract left). :func:`evaluate`
(``rules.evaluate``) looks at the state, the latest quote of every leg and the
exchange time, and returns a decision value: :class:`Hold` or :class:`Close`.
It never acts. The caller acts, then tells the machine what happened with
:func:`apply` and one of four events: the close was sent (OPEN -> CLOSING),
contracts filled (CLOSING stays CLOSING while the order works, returns to OPEN
when the order is complete, ends in CLOSED when the last contract fills), or
the order ended with a rest unfilled (CLOSING -> OPEN: the rest is worked again
while its trigger holds), or the close was never sent after all (CLOSING ->
OPEN: decided again). What a fill changes is :func:`fill_outcome`, which the
store uses too. The legal moves are the table ``TRANSITIONS``; anything else
raises :class:`IllegalTransition`.

The exit rules and their order are ``rules.exits``; the state and decision
types ``rules.state``. Both, and the evaluation, are importable from here too.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final

from rules.books import BookPolicy
from rules.evaluate import DEFAULT_RATES, debit_to_close, evaluate, judge, natural_debit
from rules.exits import TRANCHES
from rules.model import Position
from rules.plan import make_plan
from rules.state import (
    HOLD_CLOSED,
    HOLD_MISSING,
    HOLD_NO_TRIGGER,
    HOLD_PREVIOUS_SESSION,
    HOLD_STALE,
    HOLD_WORKING,
    Close,
    Decision,
    ExitReason,
    ExitState,
    Hold,
    HoldReason,
    Phase,
    Working,
)

__all__ = [
    "DEFAULT_RATES",
    "HOLD_CLOSED",
    "HOLD_MISSING",
    "HOLD_NO_TRIGGER",
    "HOLD_PREVIOUS_SESSION",
    "HOLD_STALE",
    "HOLD_WORKING",
    "TRANSITIONS",
    "Close",
    "CloseSent",
    "Decision",
    "Event",
    "EventKind",
    "ExitReason",
    "ExitState",
    "FillOutcome",
    "Filled",
    "Hold",
    "HoldReason",
    "IllegalTransition",
    "NotSent",
    "OrderEnded",
    "Phase",
    "Working",
    "apply",
    "debit_to_close",
    "evaluate",
    "fill_kind",
    "fill_outcome",
    "judge",
    "natural_debit",
    "open_state",
]


class EventKind(enum.StrEnum):
    CLOSE_SENT = "close_sent"
    PARTIAL_FILL = "partial_fill"  # the order still has contracts to fill
    ORDER_FILLED = "order_filled"  # the order is complete, the position is not
    LAST_FILL = "last_fill"  # no contract remains
    ORDER_ENDED = "order_ended"  # cancelled, rejected or expired with a rest unfilled
    NOT_SENT = "not_sent"  # the close decided was never sent (refused, or failed on its way)


TRANSITIONS: Final[dict[tuple[Phase, EventKind], Phase]] = {
    (Phase.OPEN, EventKind.CLOSE_SENT): Phase.CLOSING,
    (Phase.CLOSING, EventKind.PARTIAL_FILL): Phase.CLOSING,
    (Phase.CLOSING, EventKind.ORDER_FILLED): Phase.OPEN,
    (Phase.CLOSING, EventKind.LAST_FILL): Phase.CLOSED,
    (Phase.CLOSING, EventKind.ORDER_ENDED): Phase.OPEN,
    (Phase.CLOSING, EventKind.NOT_SENT): Phase.OPEN,
}


class IllegalTransition(Exception):
    """An event that the position's phase does not allow (e.g. a fill with no order).

    (An Exception, not a RuntimeError: mypyc, which compiles this module, cannot derive
    a class from RuntimeError. Nothing catches either but this class by name.)"""


def open_state(position: Position, book: BookPolicy) -> ExitState:
    return ExitState(position, make_plan(position, book), Phase.OPEN, position.contracts)


# Events -------------------------------------------------------------------


# (the __init__s written out, init=False: rules.model says why)
@dataclass(frozen=True, slots=True, init=False)
class CloseSent:
    close: Close

    def __init__(self, close: Close) -> None:
        object.__setattr__(self, "close", close)


@dataclass(frozen=True, slots=True, init=False)
class Filled:
    contracts: int

    def __init__(self, contracts: int) -> None:
        object.__setattr__(self, "contracts", contracts)


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


@dataclass(frozen=True, slots=True, init=False)
class FillOutcome:
    """A position and its working order after a fill."""

    phase: Phase
    remaining: int
    profit_closed: int
    stage: int  # profit tranches completed by orders filled in full
    filled: int  # the order's contracts filled so far
    order_complete: bool  # the order has filled in full

    def __init__(
        self,
        phase: Phase,
        remaining: int,
        profit_closed: int,
        stage: int,
        filled: int,
        order_complete: bool,
    ) -> None:
        object.__setattr__(self, "phase", phase)
        object.__setattr__(self, "remaining", remaining)
        object.__setattr__(self, "profit_closed", profit_closed)
        object.__setattr__(self, "stage", stage)
        object.__setattr__(self, "filled", filled)
        object.__setattr__(self, "order_complete", order_complete)


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
    profit = close.reason in TRANCHES  # a profit close: counts towards the tranches
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
        after = Working(working.close, out.filled) if out.phase is Phase.CLOSING else None
        return _moved(state, out.phase, after, out.remaining, out.profit_closed)
    phase = _phase_after(pid, state.phase, _kind(event))
    if isinstance(event, CloseSent):
        close = event.close
        if close.replaces or not 0 < close.contracts <= state.remaining:
            raise IllegalTransition(
                f"position {pid}: cannot send a close of {close.contracts} "
                f"with {state.remaining} remaining"
            )
        return _moved(state, phase, Working(close), state.remaining, state.profit_closed)
    return _moved(state, phase, None, state.remaining, state.profit_closed)


def _moved(
    state: ExitState, phase: Phase, working: Working | None, remaining: int, profit_closed: int
) -> ExitState:
    """``state`` with these fields changed: ``dataclasses.replace``, without its interpreted
    walk over the fields (every other field is passed on as it is)."""
    return ExitState(
        state.position, state.plan, phase, remaining, profit_closed, working, state.manual
    )
