"""The delta stop: close everything once a short leg's delta reaches the stop, either sign.

Trigger: |delta| >= ``delta_stop`` for some short leg: the broker's delta where it sent a
         usable one, else the leg's delta by BSM from its mid and the underlying's price
         (a leg with neither is not judged by this rule).
Label:   ``Delta Stop (0.30)``.
Book:    ``delta_stop``.
Band:    every short leg's broker delta strictly inside (-``delta_stop``, ``delta_stop``);
         a leg without one is outside it (a local delta moves with time alone: the
         screens bound it for a while, rules.watch and rules.bsm.LocalBand).

The armed rule keeps each leg's last local IV (``vols``, a :class:`rules.greeks.Vols`):
Newton's next solve starts there. It changes no decision (rules.greeks.local_delta).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from functools import lru_cache
from typing import ClassVar, Final

from rules.books import BookPolicy
from rules.clock import MarketTime
from rules.exits.base import Band, ExitReason, Hit
from rules.greeks import GreeksUnavailable, Rates, Vols, local_delta
from rules.model import Leg, Position, Quote, Side, usable_delta

_HALF: Final = Decimal("0.5")


@lru_cache(maxsize=256)
def _figures(stop: Decimal) -> tuple[float, str]:
    """A book's delta stop as a float, and its label (keyed by the stop, not the book:
    rules.exits.profit_target says why)."""
    text = f"{stop:.2f}" if stop == round(stop, 2) else f"{stop.normalize():f}"
    return float(stop), f"Delta Stop ({text})"


@lru_cache(maxsize=64)
def _shorts(sides: tuple[Side, ...]) -> tuple[int, ...]:
    return tuple(i for i, side in enumerate(sides) if side is Side.SHORT)


def leg_delta_local(
    leg: Leg,
    q: Quote,
    now: datetime,
    rates: Rates,
    vols: Vols | None = None,
    i: int = 0,
    stop: float = math.nan,
) -> float | None:
    """The leg's delta from its mid by BSM, or None when there is nothing to compute it from
    (the rule's fallback; the status screens show the same figure). ``vols``, ``i``,
    ``stop``: the rule's memo of IVs, the leg's index in it and the stop
    (rules.greeks.local_delta)."""
    if q.underlying_price is None:
        return None
    mid = float((q.bid + q.ask) * _HALF)  # type: ignore[operator]
    try:
        return local_delta(
            leg.right,
            float(leg.strike),
            leg.expiry,
            mid,
            q.underlying_price,
            now,
            rates,
            vols=vols,
            leg=i,
            stop=stop,
        )
    except GreeksUnavailable:
        return None


class DeltaStop:
    __slots__ = ("_legs", "_short", "label", "stop", "vols")

    REASON: ClassVar[ExitReason] = ExitReason.DELTA_STOP
    STOP: ClassVar[bool] = True
    BOOK_FIELDS: ClassVar[tuple[str, ...]] = ("delta_stop",)

    def __init__(self, position: Position, book: BookPolicy) -> None:
        self.stop, self.label = _figures(book.delta_stop)
        self._legs = position.legs
        self._short = _shorts(tuple(leg.side for leg in position.legs))
        self.vols = Vols(len(position.legs))  # each leg's last local IV: Newton's start

    def fires(
        self,
        debit: Decimal,
        quotes: Sequence[Quote],
        at: MarketTime,
        rates: Rates,
        profit_closed: int,
        remaining: int,
    ) -> Hit | None:
        stop = self.stop
        for i in self._short:
            q = quotes[i]
            d = usable_delta(q.delta)
            if d is None:
                d = leg_delta_local(self._legs[i], q, at.now, rates, self.vols, i, stop)
                if d is None:
                    continue
            if d >= stop or d <= -stop:
                return Hit(ExitReason.DELTA_STOP, True, remaining, self.label)
        return None

    def band(self, profit_closed: int) -> Band | None:
        return Band(delta=self.stop)
