"""The loss stop: close everything once buying the spread back costs a multiple of the credit.

Trigger: the debit to close, at the book's mark, >= credit x ``loss_stop_multiple``.
Label:   ``Loss Stop (150% of credit)``.
Book:    ``loss_stop_multiple``, ``mark``.
Band:    2 x the mid debit < 2 x credit x ``loss_stop_multiple``, on a mid mark. On a
         natural mark the debit it compares is not the mid the screens add up (it is
         higher), so it has none: such a position is always judged.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from functools import lru_cache
from typing import ClassVar

from rules.books import BookPolicy
from rules.clock import MarketTime
from rules.exits.base import Band, ExitReason, Hit, pct
from rules.greeks import Rates
from rules.model import Position, Quote


@lru_cache(maxsize=256)
def _label(multiple: Decimal) -> str:
    """Keyed by the multiple, not the book: rules.exits.profit_target says why."""
    return f"Loss Stop ({pct(multiple)}% of credit)"


class LossStop:
    __slots__ = ("_natural", "debit", "label")

    REASON: ClassVar[ExitReason] = ExitReason.LOSS_STOP
    STOP: ClassVar[bool] = True
    BOOK_FIELDS: ClassVar[tuple[str, ...]] = ("loss_stop_multiple", "mark")

    def __init__(self, position: Position, book: BookPolicy) -> None:
        self.debit: Decimal = position.entry_credit * book.loss_stop_multiple
        self.label: str = _label(book.loss_stop_multiple)
        self._natural = book.mark == "natural"

    def fires(
        self,
        debit: Decimal,
        quotes: Sequence[Quote],
        at: MarketTime,
        rates: Rates,
        profit_closed: int,
        remaining: int,
    ) -> Hit | None:
        if debit >= self.debit:
            return Hit(ExitReason.LOSS_STOP, True, remaining, self.label)
        return None

    def band(self, profit_closed: int) -> Band | None:
        return None if self._natural else Band(high2=2 * self.debit)
