"""What the order desk needs of the rest of the service, as Protocols it owns.

The application (:mod:`service.app`) implements them: the position book
(:class:`service.app.book.PositionBook`) and the read model
(:class:`service.app.readmodel.ReadModel`). The desk is handed them at
construction; it never calls back into the monitor.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from typing import Protocol

from rules.machine import Close
from rules.model import Position
from rules.watch import PositionWatch
from service.ports import Commission, Execution, LegKey, OrderEvent


class Book(Protocol):
    """The open positions' exit states, and what they imply the account holds."""

    def watch(self, position_id: str) -> PositionWatch | None: ...

    def expected_holdings(self, legs: Iterable[LegKey] | None = None) -> dict[LegKey, int]: ...

    def received(self, event: OrderEvent) -> None:
        """An event is queued: its execution is in the broker's positions already."""
        ...

    def applied(self, event: OrderEvent) -> None:
        """An event is applied to the exit states (or failed): no longer in flight."""
        ...

    def release(self, watch: PositionWatch) -> None:
        """A closed position: its legs are let go where no open position holds them."""
        ...


class OrderViews(Protocol):
    """The read model's side the order desk feeds, as things happen."""

    def close_sent(
        self, at: datetime, order_ref: str, close: Close, position: Position, decided: float
    ) -> None: ...

    def order_event(self, event: OrderEvent) -> None: ...

    def filled(self, position: Position, execution: Execution) -> None:
        """A fill applied to the store (once): its line, and what it realised."""
        ...

    def commission(
        self, position_id: str, at: datetime, commission: Commission, fill: Decimal
    ) -> None:
        """A commission report added to a fill after it (``fill``: its commission now)."""
        ...

    def needs_attention(self, position_id: str, why: str) -> None:
        """No order goes for the position until a human looks."""
        ...

    def would_close(self, at: datetime, close: Close, position: Position) -> None:
        """A dry run's close, new for its position (nothing was sent)."""
        ...


class Unread:
    """An :class:`OrderViews` no one reads (a desk used on its own, as in tests)."""

    def close_sent(
        self, at: datetime, order_ref: str, close: Close, position: Position, decided: float
    ) -> None:
        pass

    def commission(
        self, position_id: str, at: datetime, commission: Commission, fill: Decimal
    ) -> None:
        pass

    def order_event(self, event: OrderEvent) -> None:
        pass

    def filled(self, position: Position, execution: Execution) -> None:
        pass

    def needs_attention(self, position_id: str, why: str) -> None:
        pass

    def would_close(self, at: datetime, close: Close, position: Position) -> None:
        pass
