"""A screen: what a feed may skip, one leg quote at a time (built by rules.watch).

Split from :mod:`rules.watch` (which builds screens from a position's state and
quotes); compiled with it by mypyc. Pure: no I/O, no clock, no logging.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Final

from rules.bsm import LocalBand

UNITS_PER_DOLLAR: Final = 10_000  # a Screen's price unit: prices of up to 4 decimals are exact
MID_UNITS: Final = 2.0 * UNITS_PER_DOLLAR  # bid + ask in units, over this: the mid in dollars


def units(price: Decimal | None) -> int | None:
    """``price`` in a Screen's units (1/10,000), or None when that is not exact."""
    try:  # (the exact ratio: a third cheaper than scaling and comparing Decimals)
        numerator, denominator = price.as_integer_ratio()  # type: ignore[union-attr]
    except (AttributeError, ValueError, OverflowError):  # None, NaN, an infinity
        return None
    per_unit, rest = divmod(UNITS_PER_DOLLAR, denominator)
    return None if rest else numerator * per_unit


class Screen:
    """Admits a position's leg quotes, one at a time, on which no close can come.

    Built by :meth:`PositionWatch.screen` while the position is inside its
    quiet band. It keeps each leg's latest bid + ask and their signed sum
    ``mid2`` (twice the mid debit), all in integer :func:`units`, which add
    and compare several times faster than Decimals. A new quote of leg i is
    admitted when ``mid2`` with it stays strictly between ``low2`` and
    ``high2`` and, for a leg whose delta is ``checked`` (the short legs), its
    broker delta strictly inside the delta stop, or, with no usable broker
    delta, its spot and mid inside the leg's :class:`rules.bsm.LocalBand`
    (where its local delta provably is); an admitted quote is kept. The
    caller admits quotes only before ``deadline`` (the instant the time stop's
    session day begins, UTC, or a local band's end if sooner).

    Then :func:`rules.machine.evaluate` on the admitted quotes cannot close:
    a mid debit inside the band reaches no unfinished target and not the loss
    stop, the deltas not the delta stop, the date not the time stop; and if a
    quote is unusable (crossed, -1, NaN) evaluate holds anyway. The band's
    edges are rounded inward to whole units, so the screen is never looser
    than the band. A local delta moves with time alone and with the leg's own
    price: its band bounds both, for a window. A quote that is not admitted
    goes to evaluate, after which the caller builds a new screen.

    A screen is of one exit state: when the watch's state changes, its screen
    is closed (:meth:`close`) and admits nothing more, so a gate still holding
    it can never let a quote through on a state it was not built for.
    """

    __slots__ = (
        "bands",
        "checked",
        "deadline",
        "delta_stop",
        "high2",
        "low2",
        "mid2",
        "short",
        "sums",
    )

    def __init__(
        self,
        low2: int,
        high2: int,
        sums: list[int],
        short: tuple[bool, ...],
        checked: tuple[bool, ...],
        delta_stop: float,
        deadline: datetime,
        bands: list[LocalBand | None],
    ) -> None:
        self.low2 = low2  # exclusive bounds of mid2, in units
        self.high2 = high2
        self.sums = sums  # leg i's latest bid + ask, in units
        self.mid2 = sum(x if s else -x for x, s in zip(sums, short, strict=True))
        self.short = short
        self.checked = checked  # legs whose delta must stay inside the stop
        self.delta_stop = delta_stop
        self.deadline = deadline
        self.bands = bands  # a short leg's local band: where its local delta is inside

    def admits(
        self,
        i: int,
        bid: int | None,
        ask: int | None,
        delta: float | None,
        spot: float | None = None,
    ) -> bool:
        """Leg i now quotes bid/ask (in units; None: missing or not exact), delta and the
        underlying's price: True, and kept, if no close can come of it."""
        if bid is None or ask is None:  # no price, or one not exact in units
            return False
        total = bid + ask  # (checked, not caught: compiled, these stay machine integers)
        change = total - self.sums[i]
        mid2 = self.mid2 + change if self.short[i] else self.mid2 - change
        if not self.low2 < mid2 < self.high2:
            return False
        if self.checked[i]:
            if delta is not None and -1.0 <= delta <= 1.0:  # the broker's (usable_delta)
                if not -self.delta_stop < delta < self.delta_stop:
                    return False  # at the stop
            else:  # the rule computes it: inside the leg's local band, or judged
                band = self.bands[i]
                if band is None or spot is None or not band.admits(spot, total / MID_UNITS):
                    return False
        self.mid2 = mid2
        self.sums[i] = total
        return True

    def close(self) -> None:
        """Admit nothing more: the exit state this screen was built for has changed."""
        self.low2 = self.high2 = 0
