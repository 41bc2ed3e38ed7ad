"""The exit state of one position, and the decisions an evaluation returns.

A position is OPEN (watched, nothing working), CLOSING (one close order is
working at the broker) or CLOSED (no contract left). ``manual``: a human has
asked for everything that remains to be closed; the next evaluation on usable,
current quotes closes it (reason ``manual``), before any rule. Its :class:`ExitState`
changes only by ``rules.machine.apply``; ``rules.evaluate.evaluate`` reads it
and returns a :class:`Hold` or a :class:`Close`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from decimal import Decimal

from rules.exits import ExitReason
from rules.model import Position
from rules.plan import ExitPlan

__all__ = [
    "HOLD_CLOSED",
    "HOLD_MISSING",
    "HOLD_NO_TRIGGER",
    "HOLD_PREVIOUS_SESSION",
    "HOLD_STALE",
    "HOLD_WORKING",
    "Close",
    "Decision",
    "ExitReason",
    "ExitState",
    "Hold",
    "HoldReason",
    "Phase",
    "Working",
]


class Phase(enum.StrEnum):
    OPEN = "open"
    CLOSING = "closing"
    CLOSED = "closed"


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
    manual: bool = False  # a human asked to close all that remains (``positions close``)

    @property
    def stage(self) -> int:
        """Profit tranches done."""
        return sum(1 for boundary in self.plan.cumulative if boundary <= self.profit_closed)
