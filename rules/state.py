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
from typing import Final

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


# (the __init__s written out, init=False: rules.model says why)
@dataclass(frozen=True, slots=True, init=False)
class Hold:
    reason: HoldReason
    detail: str = ""

    def __init__(self, reason: HoldReason, detail: str = "") -> None:
        object.__setattr__(self, "reason", reason)
        object.__setattr__(self, "detail", detail)


@dataclass(frozen=True, slots=True, init=False)
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

    def __init__(
        self,
        contracts: int,
        reason: ExitReason,
        label: str,
        target: Decimal | None,
        tranche: int | None,
        debit: Decimal,
        pnl: Decimal,
        pct_of_max: Decimal,
        triggers: tuple[ExitReason, ...],
        replaces: bool = False,
    ) -> None:
        object.__setattr__(self, "contracts", contracts)
        object.__setattr__(self, "reason", reason)
        object.__setattr__(self, "label", label)
        object.__setattr__(self, "target", target)
        object.__setattr__(self, "tranche", tranche)
        object.__setattr__(self, "debit", debit)
        object.__setattr__(self, "pnl", pnl)
        object.__setattr__(self, "pct_of_max", pct_of_max)
        object.__setattr__(self, "triggers", triggers)
        object.__setattr__(self, "replaces", replaces)


Decision = Hold | Close

HOLD_NO_TRIGGER: Final = Hold(HoldReason.NO_TRIGGER)
HOLD_MISSING: Final = Hold(HoldReason.MISSING_QUOTE)
HOLD_STALE: Final = Hold(HoldReason.STALE)
HOLD_PREVIOUS_SESSION: Final = Hold(
    HoldReason.STALE, "a leg's latest quote is from a previous session"
)
HOLD_WORKING: Final = Hold(HoldReason.ORDER_WORKING)
HOLD_CLOSED: Final = Hold(HoldReason.CLOSED)


@dataclass(frozen=True, slots=True, init=False)
class Working:
    close: Close
    filled: int = 0

    def __init__(self, close: Close, filled: int = 0) -> None:
        object.__setattr__(self, "close", close)
        object.__setattr__(self, "filled", filled)


@dataclass(frozen=True, slots=True, init=False)
class ExitState:
    position: Position
    plan: ExitPlan
    phase: Phase
    remaining: int
    profit_closed: int = 0
    working: Working | None = None
    manual: bool = False  # a human asked to close all that remains (``positions close``)

    def __init__(
        self,
        position: Position,
        plan: ExitPlan,
        phase: Phase,
        remaining: int,
        profit_closed: int = 0,
        working: Working | None = None,
        manual: bool = False,
    ) -> None:
        object.__setattr__(self, "position", position)
        object.__setattr__(self, "plan", plan)
        object.__setattr__(self, "phase", phase)
        object.__setattr__(self, "remaining", remaining)
        object.__setattr__(self, "profit_closed", profit_closed)
        object.__setattr__(self, "working", working)
        object.__setattr__(self, "manual", manual)

    @property
    def stage(self) -> int:
        """Profit tranches done."""
        return sum(1 for boundary in self.plan.cumulative if boundary <= self.profit_closed)
