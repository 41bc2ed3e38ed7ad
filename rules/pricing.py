"""Limit prices for closing orders: start at the mark, walk toward the natural price.

A close is sent as one combo limit order at a debit per spread. It starts at
the mark the decision was made on, rounded to the nearest tick, and is
repriced on a schedule: after ``k`` of ``steps`` intervals the limit is
``k / steps`` of the way from the mark to the natural debit (what buying the
short legs at the ask and selling the long ones at the bid costs now),
rounded up to the tick. It is never beyond the natural, and from the last
step it is the natural itself. Stops walk on a shorter interval than profit
targets: a stop must get out; a profit target can wait for its price.
Pure: no clock; the caller says how long the order has worked.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal

COMBO_TICK = Decimal("0.01")  # the increment of a combo's limit price


@dataclass(frozen=True, slots=True)
class RepriceSchedule:
    steps: int = 4  # reprices from the mark to the natural
    interval: timedelta = timedelta(seconds=15)  # between reprices of a profit close
    stop_interval: timedelta = timedelta(seconds=5)  # between reprices of a stop

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise ValueError("steps: at least 1")
        if self.interval <= timedelta(0) or self.stop_interval <= timedelta(0):
            raise ValueError("interval: must be positive")

    def step(self, working_for: timedelta, *, stop: bool) -> int:
        """The reprice step an order that has worked for ``working_for`` is due at."""
        interval = self.stop_interval if stop else self.interval
        return min(max(int(working_for / interval), 0), self.steps)


def to_tick(price: Decimal, rounding: str = ROUND_HALF_UP, tick: Decimal = COMBO_TICK) -> Decimal:
    """``price`` on the tick: the nearest (half up) by default."""
    return (price / tick).to_integral_value(rounding) * tick


def limit_for(mark: Decimal, natural: Decimal, step: int, steps: int) -> Decimal:
    """The debit limit at ``step`` (0: just sent) of ``steps``: see the module docstring."""
    if not 0 <= step <= steps:
        raise ValueError(f"step {step} outside 0..{steps}")
    ceiling = to_tick(natural, ROUND_FLOOR)  # a combo's natural is on the tick already
    if step == 0:
        return min(to_tick(mark), ceiling)
    if step == steps or natural <= mark:
        return ceiling
    return min(to_tick(mark + (natural - mark) * step / steps, ROUND_CEILING), ceiling)
