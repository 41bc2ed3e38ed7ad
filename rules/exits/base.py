"""What every exit rule states, and the values the rules hand to the evaluation.

An exit rule is a class in a module of its own (``rules/exits/<rule>.py``),
registered once in :data:`rules.exits.RULES`, in the spec's evaluation order
(docs/exit-rules.md).
The class states, as class attributes, its reason (the ``ExitReason`` a close
by it carries), whether it is a stop (it closes every remaining contract and
replaces a working profit close) and the book fields it reads; an instance is
the rule armed for one position under one book (built once, by
``rules.plan.make_plan``), with:

- ``fires``: its trigger, on the figures of one evaluation: a :class:`Hit`
  (how many contracts it closes, under which label), or None;
- ``band``: its quiet band, the ticks on which it cannot fire, in the units
  the quiet path and the screens compare (:class:`Band`); None where it has
  none (it could fire on any tick: the position is always judged).

Pure: no I/O, no clock.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import ClassVar, Protocol

from rules.books import BookPolicy
from rules.clock import MarketTime
from rules.greeks import Rates
from rules.model import Position, Quote


class ExitReason(enum.StrEnum):
    """Why a position closes: one member per exit rule (the value is stored and reported)."""

    PROFIT_TARGET = "profit_target"
    TIME_STOP = "time_stop"
    LOSS_STOP = "loss_stop"
    DELTA_STOP = "delta_stop"
    MANUAL = "manual"  # a human asked for it (``positions close``): no rule fires it


# The reasons no rule fires: a human gives them. Such a close is a stop (everything that
# remains, replacing a working profit close) and acts before every rule.
REQUESTED: frozenset[ExitReason] = frozenset({ExitReason.MANUAL})
MANUAL_LABEL = "Manual Close"


class Band:
    """Where a rule cannot fire: every bound given must hold, strictly.

    ``low2``/``high2`` bound 2 x the mid debit (the sum over the legs of
    +/-(bid + ask), + for short legs); ``delta`` bounds every short leg's broker
    delta to (-delta, delta) (a leg without one is outside); ``before`` bounds
    the session date. None: no bound of that kind. A value, never changed once
    made (a plain class: compiled, it is made several times faster than a frozen
    dataclass, and bands are made each time an exit state is set).
    """

    __slots__ = ("before", "delta", "high2", "low2")

    def __init__(
        self,
        low2: Decimal | None = None,
        high2: Decimal | None = None,
        delta: float | None = None,
        before: date | None = None,
    ) -> None:
        self.low2 = low2
        self.high2 = high2
        self.delta = delta
        self.before = before

    def __repr__(self) -> str:
        return (
            f"Band(low2={self.low2!r}, high2={self.high2!r}, "
            f"delta={self.delta!r}, before={self.before!r})"
        )


def compose(bands: Sequence[Band | None]) -> Band | None:
    """The band inside all of ``bands`` (the tightest bound of each kind); None when one
    of them is None (a rule that can fire anywhere)."""
    low2 = high2 = None
    delta: float | None = None
    before: date | None = None
    for band in bands:
        if band is None:
            return None
        if band.low2 is not None and (low2 is None or band.low2 > low2):
            low2 = band.low2
        if band.high2 is not None and (high2 is None or band.high2 < high2):
            high2 = band.high2
        if band.delta is not None and (delta is None or band.delta < delta):
            delta = band.delta
        if band.before is not None and (before is None or band.before < before):
            before = band.before
    return Band(low2, high2, delta, before)


@dataclass(frozen=True, slots=True, init=False)  # (__init__ written out: rules.model)
class Hit:
    """A rule that fires: it closes ``contracts`` under ``label`` (``tranche`` and
    ``target``: the highest profit tranche reached, for tranche rules)."""

    reason: ExitReason
    stop: bool
    contracts: int
    label: str
    tranche: int | None = None
    target: Decimal | None = None

    def __init__(
        self,
        reason: ExitReason,
        stop: bool,
        contracts: int,
        label: str,
        tranche: int | None = None,
        target: Decimal | None = None,
    ) -> None:
        object.__setattr__(self, "reason", reason)
        object.__setattr__(self, "stop", stop)
        object.__setattr__(self, "contracts", contracts)
        object.__setattr__(self, "label", label)
        object.__setattr__(self, "tranche", tranche)
        object.__setattr__(self, "target", target)


class ExitRule(Protocol):
    """One exit rule armed for one position under one book."""

    REASON: ClassVar[ExitReason]
    STOP: ClassVar[bool]  # closes every remaining contract; replaces a working profit close
    BOOK_FIELDS: ClassVar[tuple[str, ...]]  # the BookPolicy fields it reads

    def fires(
        self,
        debit: Decimal,
        quotes: Sequence[Quote],
        at: MarketTime,
        rates: Rates,
        profit_closed: int,
        remaining: int,
    ) -> Hit | None:
        """The trigger on one evaluation's figures (``debit`` at the book's mark, usable
        ``quotes``); None when it does not fire."""
        ...

    def band(self, profit_closed: int) -> Band | None:
        """Where it cannot fire once ``profit_closed`` contracts closed at a profit."""
        ...


class RuleClass(Protocol):
    """A registered rule: the class, which arms itself for one position under one book."""

    REASON: ExitReason
    STOP: bool
    BOOK_FIELDS: tuple[str, ...]

    def __call__(self, position: Position, book: BookPolicy) -> ExitRule: ...


def fired(
    rules: tuple[ExitRule, ...],
    debit: Decimal,
    quotes: Sequence[Quote],
    at: MarketTime,
    rates: Rates,
    profit_closed: int,
    remaining: int,
) -> list[Hit] | None:
    """Every rule of ``rules`` that fires on one evaluation's figures, in their order;
    None when none does (most evaluations: no list is made)."""
    hits: list[Hit] | None = None
    for rule in rules:
        hit = rule.fires(debit, quotes, at, rates, profit_closed, remaining)
        if hit is not None:
            if hits is None:
                hits = [hit]
            else:
                hits.append(hit)
    return hits


def pct(fraction: Decimal) -> str:
    """``0.5`` -> ``50``, ``1.5`` -> ``150``, ``0.125`` -> ``12.5`` (labels)."""
    return f"{(fraction * 100).normalize():f}"
