"""The delta stop: close everything once a short leg's delta reaches the stop, either sign.

Trigger: |delta| >= ``delta_stop`` for some short leg: the broker's delta where it sent a
         usable one, else the leg's delta by BSM from its mid and the underlying's price
         (a leg with neither is not judged by this rule).
Label:   ``Delta Stop (0.30)``.
Book:    ``delta_stop``.
Band:    every short leg's broker delta strictly inside (-``delta_stop``, ``delta_stop``);
         a leg without one is outside it (a local delta moves with time alone).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from functools import lru_cache
from typing import ClassVar

from rules.books import BookPolicy
from rules.clock import MarketTime
from rules.exits.base import Band, ExitReason, Hit
from rules.greeks import GreeksUnavailable, Rates, local_delta
from rules.model import Leg, Position, Quote, Side, usable_delta

_HALF = Decimal("0.5")


@lru_cache(maxsize=256)
def _label(book: BookPolicy) -> str:
    stop = book.delta_stop
    text = f"{stop:.2f}" if stop == round(stop, 2) else f"{stop.normalize():f}"
    return f"Delta Stop ({text})"


def _local_delta(leg: Leg, q: Quote, now: datetime, rates: Rates) -> float | None:
    """The leg's delta from its mid by BSM, or None when there is nothing to compute it from."""
    if q.underlying_price is None:
        return None
    mid = float((q.bid + q.ask) * _HALF)  # type: ignore[operator]
    try:
        return local_delta(
            leg.right, float(leg.strike), leg.expiry, mid, q.underlying_price, now, rates
        )
    except GreeksUnavailable:
        return None


class DeltaStop:
    REASON: ClassVar[ExitReason] = ExitReason.DELTA_STOP
    STOP: ClassVar[bool] = True
    BOOK_FIELDS: ClassVar[tuple[str, ...]] = ("delta_stop",)

    def __init__(self, position: Position, book: BookPolicy) -> None:
        self.stop: float = float(book.delta_stop)
        self.label: str = _label(book)
        self._short = tuple(
            (i, leg) for i, leg in enumerate(position.legs) if leg.side is Side.SHORT
        )
        self._band = Band(delta=self.stop)

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
        for i, leg in self._short:
            q = quotes[i]
            d = usable_delta(q.delta)
            if d is None:
                d = _local_delta(leg, q, at.now, rates)
                if d is None:
                    continue
            if d >= stop or d <= -stop:
                return Hit(ExitReason.DELTA_STOP, True, remaining, self.label)
        return None

    def band(self, profit_closed: int) -> Band | None:
        return self._band
