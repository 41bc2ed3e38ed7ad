"""Limit prices for closing orders: start at the mark, walk toward the natural price.

A close is sent as one combo limit order at a debit per spread. It starts at
the mark the decision was made on, rounded to the nearest tick, and is
repriced on a schedule: after ``k`` of ``steps`` intervals the limit is
``k / steps`` of the way from the mark to the natural debit (what buying the
short legs at the ask and selling the long ones at the bid costs now),
rounded up to the tick. It is never beyond the natural, and from the last
step it is the natural itself. Stops walk on a shorter interval than profit
targets: a stop must get out; a profit target can wait for its price.

A walk may have a cap, ``max_slippage``: the most, per spread, the limit may
rise above the mark the close was decided on (that mark on the tick). The limit
is never above the cap; with the natural beyond it the order rests at the cap
and fills only if the market comes back. None: no cap (the natural is the only
bound). Each book sets both walks (:class:`rules.books.Repricing`).
Pure: no clock; the caller says how long the order has worked.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal

COMBO_TICK = Decimal("0.01")  # the increment of a combo's limit price


@dataclass(frozen=True, slots=True)
class Walk:
    """One kind of close's walk: ``steps`` reprices ``interval`` apart, capped at
    ``max_slippage`` above the decision's mark (None: no cap)."""

    steps: int = 4
    interval: timedelta = timedelta(seconds=15)
    max_slippage: Decimal | None = None

    def step(self, working_for: timedelta) -> int:
        """The reprice step an order that has worked for ``working_for`` is due at."""
        return min(max(int(working_for / self.interval), 0), self.steps)

    def limit(self, mark: Decimal, natural: Decimal, step: int) -> Decimal:
        """The debit limit at ``step``: :func:`limit_for`, never above the cap."""
        return limit_for(mark, natural, step, self.steps, self.max_slippage)


@dataclass(frozen=True, slots=True)
class RepriceSchedule:
    """The walks of profit closes and of stops (``stop_steps`` None: ``steps``)."""

    steps: int = 4  # reprices from the mark to the natural
    interval: timedelta = timedelta(seconds=15)  # between reprices of a profit close
    stop_interval: timedelta = timedelta(seconds=5)  # between reprices of a stop
    stop_steps: int | None = None
    max_slippage: Decimal | None = None  # a profit close's cap above its mark, per spread
    stop_max_slippage: Decimal | None = None  # a stop's

    def __post_init__(self) -> None:
        if self.steps < 1 or (self.stop_steps is not None and self.stop_steps < 1):
            raise ValueError("steps: at least 1")
        if self.interval <= timedelta(0) or self.stop_interval <= timedelta(0):
            raise ValueError("interval: must be positive")
        if any(s is not None and s < 0 for s in (self.max_slippage, self.stop_max_slippage)):
            raise ValueError("max_slippage: must not be negative")

    def walk(self, *, stop: bool) -> Walk:
        if stop:
            steps = self.steps if self.stop_steps is None else self.stop_steps
            return Walk(steps, self.stop_interval, self.stop_max_slippage)
        return Walk(self.steps, self.interval, self.max_slippage)

    def step(self, working_for: timedelta, *, stop: bool) -> int:
        """The reprice step an order that has worked for ``working_for`` is due at."""
        return self.walk(stop=stop).step(working_for)


def to_tick(price: Decimal, rounding: str = ROUND_HALF_UP, tick: Decimal = COMBO_TICK) -> Decimal:
    """``price`` on the tick: the nearest (half up) by default."""
    return (price / tick).to_integral_value(rounding) * tick


def limit_for(
    mark: Decimal, natural: Decimal, step: int, steps: int, max_slippage: Decimal | None = None
) -> Decimal:
    """The debit limit at ``step`` (0: just sent) of ``steps``, never above the mark (on the
    tick) plus ``max_slippage`` (floored to the tick): see the module docstring."""
    if not 0 <= step <= steps:
        raise ValueError(f"step {step} outside 0..{steps}")
    ceiling = to_tick(natural, ROUND_FLOOR)  # a combo's natural is on the tick already
    if max_slippage is not None:
        ceiling = min(ceiling, to_tick(to_tick(mark) + max_slippage, ROUND_FLOOR))
    if step == 0:
        return min(to_tick(mark), ceiling)
    if step == steps or natural <= mark:
        return ceiling
    return min(to_tick(mark + (natural - mark) * step / steps, ROUND_CEILING), ceiling)
