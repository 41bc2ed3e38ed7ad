"""Profit targets: close the position in tranches as the debit to close falls.

Trigger: tranche i's target t_i is reached when the debit to close, at the book's mark,
         <= credit x (1 - t_i); a debit past several targets closes every contract up
         to the highest boundary reached, in one order. Tranche i is done once the
         contracts closed by profit targets reach its cumulative boundary.
Sizes:   ``fractions`` of the contracts by largest remainder (``scale_basis``
         "original") or of what is still open (``remaining``); fewer than
         ``scale_min_contracts`` close in one exit at the first target.
Label:   ``Profit Target (50%)``; the last of several carries '+': ``(90%+)``.
Book:    ``targets``, ``fractions``, ``scale_basis``, ``scale_min_contracts``.
Band:    2 x the mid debit > 2 x the next unfinished tranche's threshold (the mid is at
         most the natural debit, so this holds on either mark); none once every
         tranche is done.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from decimal import ROUND_HALF_UP, Context, Decimal
from functools import lru_cache
from typing import ClassVar, Final

from rules.books import BookPolicy
from rules.clock import MarketTime
from rules.exits.base import Band, ExitReason, Hit, pct
from rules.greeks import Rates
from rules.model import Position, Quote

_EXACT: Final = Context(prec=200)  # products of a book's fractions and a count, unrounded
_UNBOUNDED: Final = Band()


def largest_remainder(contracts: int, fractions: tuple[Decimal, ...]) -> tuple[int, ...]:
    """Split ``contracts`` by ``fractions`` (summing to 1) so the parts sum exactly.

    Largest-remainder (Hamilton) rounding, ties to the earlier tranche; then every
    tranche gets at least one contract, taken from the largest (latest on ties).
    10 -> 4/4/2, 5 -> 2/2/1, 4 -> 2/1/1, 3 -> 1/1/1, 7 -> 3/3/1.
    """
    n = len(fractions)
    if contracts < n:
        raise ValueError(f"{contracts} contracts cannot fill {n} tranches of at least one")
    quotas = [_EXACT.multiply(f, contracts) for f in fractions]
    sizes = [math.floor(q) for q in quotas]
    by_remainder = sorted(range(n), key=lambda i: (-(quotas[i] - sizes[i]), i))
    for i in by_remainder[: contracts - sum(sizes)]:
        sizes[i] += 1
    for i in range(n):
        if sizes[i] == 0:
            donor = max(range(n), key=lambda j: (sizes[j], j))
            sizes[donor] -= 1
            sizes[i] = 1
    return tuple(sizes)


def remaining_basis(contracts: int, fractions: tuple[Decimal, ...]) -> tuple[int, ...]:
    """Each tranche a fraction of what is still open when it starts; the last takes the rest.

    Rounded half up, at least one contract, and leaving at least one for each
    later tranche: 10 -> 4, then 40% of 6 -> 2, then the last 4.
    """
    n = len(fractions)
    if contracts < n:
        raise ValueError(f"{contracts} contracts cannot fill {n} tranches of at least one")
    sizes: list[int] = []
    left = contracts
    for i, f in enumerate(fractions):
        if i == n - 1:
            sizes.append(left)
            break
        size = int((f * left).quantize(Decimal(1), ROUND_HALF_UP))
        size = max(1, min(size, left - (n - 1 - i)))
        sizes.append(size)
        left -= size
    return tuple(sizes)


@lru_cache(maxsize=4096)
def _tranches(
    contracts: int,
    book_targets: tuple[Decimal, ...],
    fractions: tuple[Decimal, ...],
    basis: str,
    min_contracts: int,
) -> tuple[tuple[Decimal, ...], tuple[int, ...], tuple[str, ...]]:
    """The targets, cumulative boundaries and labels of ``contracts`` spreads under a
    book's targets, fractions, scale basis and scale minimum: the same for every position
    of that size in that book, so worked out once (a restart plans thousands of
    positions). Keyed by those fields, not by the book: a BookPolicy's hash is
    interpreted, and hashes every field."""
    if contracts >= min_contracts:
        targets = book_targets
        split = largest_remainder if basis == "original" else remaining_basis
        sizes = split(contracts, fractions)
    else:  # SPEC: fewer than 3 contracts close in one exit at the first target
        targets = book_targets[:1]
        sizes = (contracts,)
    cumulative = tuple(sum(sizes[: i + 1]) for i in range(len(sizes)))
    labels = tuple(
        f"Profit Target ({pct(t)}%{'+' if len(targets) > 1 and i == len(targets) - 1 else ''})"
        for i, t in enumerate(targets)
    )
    return targets, cumulative, labels


class ProfitTarget:
    __slots__ = ("cumulative", "debits", "labels", "targets")

    REASON: ClassVar[ExitReason] = ExitReason.PROFIT_TARGET
    STOP: ClassVar[bool] = False
    BOOK_FIELDS: ClassVar[tuple[str, ...]] = (
        "targets",
        "fractions",
        "scale_basis",
        "scale_min_contracts",
    )

    def __init__(self, position: Position, book: BookPolicy) -> None:
        credit = position.entry_credit
        targets, cumulative, labels = _tranches(
            position.contracts,
            book.targets,
            book.fractions,
            book.scale_basis,
            book.scale_min_contracts,
        )
        self.targets = targets
        self.cumulative = cumulative  # contracts closed by profit once tranche i is done
        self.labels = labels
        # tranche i fires at debit <= debits[i]; thresholds fall as targets rise
        self.debits = tuple(credit * (1 - t) for t in targets)

    def fires(
        self,
        debit: Decimal,
        quotes: Sequence[Quote],
        at: MarketTime,
        rates: Rates,
        profit_closed: int,
        remaining: int,
    ) -> Hit | None:
        debits = self.debits
        if not debit <= debits[0]:
            return None
        reached = len(debits) - 1
        while debit > debits[reached]:
            reached -= 1
        n = min(self.cumulative[reached] - profit_closed, remaining)
        if n <= 0:
            return None
        return Hit(
            ExitReason.PROFIT_TARGET,
            False,
            n,
            self.labels[reached],
            reached,
            self.targets[reached],
        )

    def band(self, profit_closed: int) -> Band | None:
        # a close needs a tranche past profit_closed: the next unfinished one's threshold
        for boundary, debit in zip(self.cumulative, self.debits, strict=True):
            if boundary > profit_closed:
                return Band(low2=2 * debit)
        return _UNBOUNDED  # every tranche done: it cannot fire
