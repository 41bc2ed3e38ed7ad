"""The exit state machine of one position: its legal moves, and the one place they are made.

Theory of operation
-------------------
A position is OPEN (watched, nothing working), CLOSING (one close order is
working at the broker) or CLOSED (no contract left). :func:`evaluate`
(``rules.evaluate``) looks at the state, the latest quote of every leg and the
exchange time, and returns a decision value: :class:`Hold` or :class:`Close`.
It never acts. The caller acts, then tells the machine what happened with
:func:`apply` and one of three events: the close was sent (OPEN -> CLOSING),
contracts filled (CLOSING stays CLOSING while the order works, returns to OPEN
when the order is complete, ends in CLOSED when the last contract fills), or
the order ended with a rest unfilled (CLOSING -> OPEN: the rest is worked again
while its trigger holds). The legal moves are the table ``TRANSITIONS``;
anything else raises :class:`IllegalTransition`.

The exit rules and their order are ``rules.exits``; the state and decision
types ``rules.state``. Both, and the evaluation, are importable from here too.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace

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
    "Filled",
    "Hold",
    "HoldReason",
    "IllegalTransition",
    "OrderEnded",
    "Phase",
    "Working",
    "apply",
    "debit_to_close",
    "evaluate",
    "judge",
    "natural_debit",
    "open_state",
]


class EventKind(enum.Enum):
    CLOSE_SENT = "close_sent"
    PARTIAL_FILL = "partial_fill"  # the order still has contracts to fill
    ORDER_FILLED = "order_filled"  # the order is complete, the position is not
    LAST_FILL = "last_fill"  # no contract remains
    ORDER_ENDED = "order_ended"  # cancelled, rejected or expired with a rest unfilled


TRANSITIONS: dict[tuple[Phase, EventKind], Phase] = {
    (Phase.OPEN, EventKind.CLOSE_SENT): Phase.CLOSING,
    (Phase.CLOSING, EventKind.PARTIAL_FILL): Phase.CLOSING,
    (Phase.CLOSING, EventKind.ORDER_FILLED): Phase.OPEN,
    (Phase.CLOSING, EventKind.LAST_FILL): Phase.CLOSED,
    (Phase.CLOSING, EventKind.ORDER_ENDED): Phase.OPEN,
}


class IllegalTransition(RuntimeError):
    """An event that the position's phase does not allow (e.g. a fill with no order)."""


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


Event = CloseSent | Filled | OrderEnded


def _kind(state: ExitState, event: Event) -> EventKind:
    if isinstance(event, CloseSent):
        return EventKind.CLOSE_SENT
    if isinstance(event, OrderEnded):
        return EventKind.ORDER_ENDED
    if state.remaining - event.contracts == 0:
        return EventKind.LAST_FILL
    working = state.working
    if working is not None and working.filled + event.contracts == working.close.contracts:
        return EventKind.ORDER_FILLED
    return EventKind.PARTIAL_FILL


def apply(state: ExitState, event: Event) -> ExitState:
    """The state after ``event``; raises IllegalTransition for a move the table forbids."""
    kind = _kind(state, event)
    phase = TRANSITIONS.get((state.phase, kind))
    if phase is None:
        raise IllegalTransition(
            f"position {state.position.id}: {kind.value} is not allowed when {state.phase.value}"
        )
    if isinstance(event, CloseSent):
        close = event.close
        if close.replaces or not 0 < close.contracts <= state.remaining:
            raise IllegalTransition(
                f"position {state.position.id}: cannot send a close of {close.contracts} "
                f"with {state.remaining} remaining"
            )
        return replace(state, phase=phase, working=Working(close))
    if isinstance(event, OrderEnded):
        return replace(state, phase=phase, working=None)
    working = state.working
    assert working is not None  # the table admits fills only when CLOSING
    if not 0 < event.contracts <= working.close.contracts - working.filled:
        raise IllegalTransition(
            f"position {state.position.id}: fill of {event.contracts} against an order with "
            f"{working.close.contracts - working.filled} unfilled"
        )
    tranche = working.close.reason in TRANCHES  # a profit close: counts towards the tranches
    return replace(
        state,
        phase=phase,
        remaining=state.remaining - event.contracts,
        profit_closed=state.profit_closed + (event.contracts if tranche else 0),
        working=Working(working.close, working.filled + event.contracts)
        if phase is Phase.CLOSING
        else None,
    )
