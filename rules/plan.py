"""The exit plan of one position: tranche sizes and the thresholds they fire at.

Everything that depends only on (position, book) is worked out once here, so
that evaluating a tick is a handful of Decimal comparisons:

- profit target t fires when the debit to close <= credit x (1 - t);
- the loss stop fires when the debit >= credit x loss_stop_multiple;
- the time stop fires when DTE <= min(time_stop_dte, floor(initial DTE x fraction)).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Context, Decimal
from functools import lru_cache

from rules.books import BookPolicy
from rules.clock import dte, exchange_date
from rules.model import Position, Right, Side

_EXACT = Context(prec=200)  # products of a book's fractions and a count, unrounded


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


def spread_width(position: Position) -> Decimal:
    """The widest vertical's strike distance (an iron condor can lose on one side only)."""
    by_right: dict[Right, list[Decimal]] = {}
    for leg in position.legs:
        by_right.setdefault(leg.right, []).append(leg.strike)
    return max(max(strikes) - min(strikes) for strikes in by_right.values())


def _pct(fraction: Decimal) -> str:
    return f"{(fraction * 100).normalize():f}"


@dataclass(frozen=True, slots=True)
class ExitPlan:
    """Thresholds and tranche boundaries of one position under one book."""

    targets: tuple[Decimal, ...]
    target_debits: tuple[Decimal, ...]  # profit target i fires at debit <= target_debits[i]
    cumulative: tuple[int, ...]  # contracts closed by profit once tranche i is done
    labels: tuple[str, ...]
    loss_debit: Decimal
    loss_label: str
    delta_stop: float
    delta_label: str
    initial_dte: int
    time_stop_dte: int
    time_stop_date: date  # the first session date with DTE <= time_stop_dte
    time_label: str
    natural: bool
    # The top of the quiet band, in units of sum(+/-(bid + ask)) = 2 x the mid
    # debit: below it no loss stop fires and the debit is within the width. None
    # for natural marks. The low edge depends on the tranches done: rules.watch.
    quiet_high2: Decimal | None
    width: Decimal  # widest vertical: the most one spread can cost to close
    stale_after: timedelta
    short_legs: tuple[int, ...]  # indexes into position.legs
    long_legs: tuple[int, ...]

    @property
    def tranches(self) -> int:
        return len(self.cumulative)


@lru_cache(maxsize=4096)
def _tranches(
    contracts: int, book: BookPolicy
) -> tuple[tuple[Decimal, ...], tuple[int, ...], tuple[str, ...]]:
    """The targets, cumulative boundaries and labels of ``contracts`` spreads under
    ``book``: the same for every position of that size in that book, so worked out once
    (a restart plans thousands of positions)."""
    if contracts >= book.scale_min_contracts:
        targets = book.targets
        split = largest_remainder if book.scale_basis == "original" else remaining_basis
        sizes = split(contracts, book.fractions)
    else:  # SPEC: fewer than 3 contracts close in one exit at the first target
        targets = book.targets[:1]
        sizes = (contracts,)
    cumulative = tuple(sum(sizes[: i + 1]) for i in range(len(sizes)))
    labels = tuple(
        f"Profit Target ({_pct(t)}%{'+' if len(targets) > 1 and i == len(targets) - 1 else ''})"
        for i, t in enumerate(targets)
    )
    return targets, cumulative, labels


@lru_cache(maxsize=256)
def _stop_labels(book: BookPolicy) -> tuple[str, str]:
    """The loss and delta stops' labels of ``book``."""
    delta_text = (
        f"{book.delta_stop:.2f}"
        if book.delta_stop == round(book.delta_stop, 2)
        else (f"{book.delta_stop.normalize():f}")
    )
    return (
        f"Loss Stop ({_pct(book.loss_stop_multiple)}% of credit)",
        f"Delta Stop ({delta_text})",
    )


def make_plan(position: Position, book: BookPolicy) -> ExitPlan:
    credit = position.entry_credit
    targets, cumulative, labels = _tranches(position.contracts, book)
    loss_label, delta_label = _stop_labels(book)
    initial = dte(position.expiry, exchange_date(position.opened_at))
    adjusted = int((initial * book.time_stop_fraction).to_integral_value(ROUND_FLOOR))
    stop_dte = min(book.time_stop_dte, max(adjusted, 0))
    width = spread_width(position)
    return ExitPlan(
        targets=targets,
        target_debits=tuple(credit * (1 - t) for t in targets),
        cumulative=cumulative,
        labels=labels,
        loss_debit=credit * book.loss_stop_multiple,
        loss_label=loss_label,
        delta_stop=float(book.delta_stop),
        delta_label=delta_label,
        initial_dte=initial,
        time_stop_dte=stop_dte,
        time_stop_date=position.expiry - timedelta(days=stop_dte),
        time_label=f"Time Stop ({stop_dte} DTE)",
        natural=book.mark == "natural",
        quiet_high2=None
        if book.mark == "natural"
        else 2 * min(credit * book.loss_stop_multiple, width),
        width=width,
        stale_after=book.stale_after_delta,
        short_legs=tuple(i for i, leg in enumerate(position.legs) if leg.side is Side.SHORT),
        long_legs=tuple(i for i, leg in enumerate(position.legs) if leg.side is Side.LONG),
    )
