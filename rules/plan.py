"""The exit plan of one position: every exit rule armed for it, and the figures they share.

Everything that depends only on (position, book) is worked out once here, so
that evaluating a tick is a handful of Decimal comparisons: each registered
rule (:data:`rules.exits.RULES`) is built for the position, with its
thresholds and its labels (its module states them), in the spec's order.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Final, TypeVar

from rules.books import BookPolicy
from rules.exits import RULES, Band, ExitRule, compose
from rules.exits.delta_stop import DeltaStop
from rules.exits.loss_stop import LossStop
from rules.exits.profit_target import ProfitTarget, largest_remainder, remaining_basis
from rules.exits.time_stop import TimeStop
from rules.model import Position, Right, Side

__all__ = ["ExitPlan", "largest_remainder", "make_plan", "remaining_basis", "spread_width"]

R = TypeVar("R")
_ZERO: Final = Decimal(0)


def spread_width(position: Position) -> Decimal:
    """The widest vertical's strike distance (an iron condor can lose on one side only)."""
    by_right: dict[Right, list[Decimal]] = {}
    for leg in position.legs:
        by_right.setdefault(leg.right, []).append(leg.strike)
    return max(max(strikes) - min(strikes) for strikes in by_right.values())


@dataclass(frozen=True, slots=True, init=False)  # (__init__ written out: rules.model)
class ExitPlan:
    """The exit rules of one position under one book, armed, and what they share."""

    exits: tuple[ExitRule, ...]  # every registered rule, in SPEC order
    natural: bool
    width: Decimal  # widest vertical: the most one spread can cost to close
    stale_after: timedelta
    short_legs: tuple[int, ...]  # indexes into position.legs
    long_legs: tuple[int, ...]

    def __init__(
        self,
        exits: tuple[ExitRule, ...],
        natural: bool,
        width: Decimal,
        stale_after: timedelta,
        short_legs: tuple[int, ...],
        long_legs: tuple[int, ...],
    ) -> None:
        object.__setattr__(self, "exits", exits)
        object.__setattr__(self, "natural", natural)
        object.__setattr__(self, "width", width)
        object.__setattr__(self, "stale_after", stale_after)
        object.__setattr__(self, "short_legs", short_legs)
        object.__setattr__(self, "long_legs", long_legs)

    def band(self, profit_closed: int, *, stops_only: bool = False) -> Band | None:
        """Where no rule (``stops_only``: no stop) can fire and the legs' mids are
        consistent (mid debit within [0, width]; only below width for ``stops_only``),
        once ``profit_closed`` contracts closed at a profit; None: no such band."""
        consistent = Band(None if stops_only else _ZERO, 2 * self.width)
        bands = [r.band(profit_closed) for r in self.exits if r.STOP or not stops_only]
        return compose([*bands, consistent])

    def exit(self, kind: type[R]) -> R:
        """The armed rule of class ``kind``."""
        for rule in self.exits:
            if isinstance(rule, kind):
                return rule
        raise LookupError(kind)

    # The figures of each rule, by the names the plan gave them before the rules had
    # modules of their own (tests, benchmarks/generate.py).

    @property
    def targets(self) -> tuple[Decimal, ...]:
        return self.exit(ProfitTarget).targets

    @property
    def target_debits(self) -> tuple[Decimal, ...]:
        return self.exit(ProfitTarget).debits

    @property
    def cumulative(self) -> tuple[int, ...]:
        return self.exit(ProfitTarget).cumulative

    @property
    def labels(self) -> tuple[str, ...]:
        return self.exit(ProfitTarget).labels

    @property
    def tranches(self) -> int:
        return len(self.cumulative)

    @property
    def loss_debit(self) -> Decimal:
        return self.exit(LossStop).debit

    @property
    def loss_label(self) -> str:
        return self.exit(LossStop).label

    @property
    def delta_stop(self) -> float:
        return self.exit(DeltaStop).stop

    @property
    def delta_label(self) -> str:
        return self.exit(DeltaStop).label

    @property
    def initial_dte(self) -> int:
        return self.exit(TimeStop).initial_dte

    @property
    def time_stop_dte(self) -> int:
        return self.exit(TimeStop).dte

    @property
    def time_stop_date(self) -> date:
        return self.exit(TimeStop).date

    @property
    def time_label(self) -> str:
        return self.exit(TimeStop).label


def make_plan(position: Position, book: BookPolicy) -> ExitPlan:
    return ExitPlan(
        exits=tuple(rule(position, book) for rule in RULES),
        natural=book.mark == "natural",
        width=spread_width(position),
        stale_after=book.stale_after_delta,
        short_legs=tuple(i for i, leg in enumerate(position.legs) if leg.side is Side.SHORT),
        long_legs=tuple(i for i, leg in enumerate(position.legs) if leg.side is Side.LONG),
    )
