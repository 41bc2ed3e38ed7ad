"""The time stop: close everything once few enough days are left to expiry.

Trigger: the session date >= expiry - N days, N = min(``time_stop_dte``, floor(initial
         DTE x ``time_stop_fraction``)) (initial DTE: from the session it was opened in).
Label:   ``Time Stop (21 DTE)``.
Book:    ``time_stop_dte``, ``time_stop_fraction``.
Band:    session dates before that date (the screens: instants before its session day
         begins in New York).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from decimal import ROUND_FLOOR, Decimal
from functools import lru_cache
from typing import ClassVar

from rules.books import BookPolicy
from rules.clock import MarketTime, dte, exchange_date
from rules.exits.base import Band, ExitReason, Hit
from rules.greeks import Rates
from rules.model import Position, Quote


@lru_cache(maxsize=256)
def _label(stop_dte: int) -> str:
    return f"Time Stop ({stop_dte} DTE)"


class TimeStop:
    __slots__ = ("date", "dte", "initial_dte", "label")

    REASON: ClassVar[ExitReason] = ExitReason.TIME_STOP
    STOP: ClassVar[bool] = True
    BOOK_FIELDS: ClassVar[tuple[str, ...]] = ("time_stop_dte", "time_stop_fraction")

    def __init__(self, position: Position, book: BookPolicy) -> None:
        initial = dte(position.expiry, exchange_date(position.opened_at))
        adjusted = int((initial * book.time_stop_fraction).to_integral_value(ROUND_FLOOR))
        stop_dte = min(book.time_stop_dte, max(adjusted, 0))
        self.initial_dte: int = initial
        self.dte: int = stop_dte
        self.date: date = position.expiry - timedelta(days=stop_dte)  # first day with DTE <= N
        self.label: str = _label(stop_dte)

    def fires(
        self,
        debit: Decimal,
        quotes: Sequence[Quote],
        at: MarketTime,
        rates: Rates,
        profit_closed: int,
        remaining: int,
    ) -> Hit | None:
        if at.session_date >= self.date:
            return Hit(ExitReason.TIME_STOP, True, remaining, self.label)
        return None

    def band(self, profit_closed: int) -> Band | None:
        return Band(before=self.date)
