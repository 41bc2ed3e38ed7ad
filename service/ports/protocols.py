"""The Protocols the service owns, by role: the store's (positions, orders, its
connections), the broker's (orders, the feed, the account, admission) and the clock."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol

from rules.machine import Decision
from rules.model import Position
from service.ports.values import (
    Admitted,
    CloseIntent,
    ComboOrder,
    Commission,
    Completed,
    Execution,
    Fill,
    FillApplied,
    Holding,
    LegFill,
    LegKey,
    LegUpdate,
    OrderEvent,
    PositionControl,
    PositionDetail,
    RealisedRow,
    StoredLeg,
    StoredOrder,
    StoredPosition,
)


class Account(Protocol):
    """What the broker says the account holds, and the executions it still has."""

    async def holdings(self) -> list[Holding]: ...

    async def leg_fills(self) -> list[LegFill]: ...


class PositionStore(Protocol):
    """The admin side of the system of record: positions, their detail, manual closes, and
    the broker's contract ids of their legs."""

    async def import_positions(self, positions: Sequence[Position], account: str) -> None: ...

    async def open_positions(self) -> list[StoredPosition]: ...

    async def all_positions(self) -> list[StoredPosition]: ...

    async def detail(self, position_id: str) -> PositionDetail: ...

    async def request_manual_close(self, position_id: str, reason: str) -> None: ...

    async def record_contract_ids(self, position_id: str, con_ids: dict[int, int]) -> None: ...

    async def contract_ids(self, position_id: str) -> dict[int, int | None]: ...

    async def stored_legs(self) -> list[StoredLeg]:
        """The legs of every position not closed nor void (what a sync must not import
        again)."""
        ...

    async def positions(self, ids: Sequence[str]) -> list[StoredPosition]:
        """The positions of ``ids`` that exist, whatever their status, with their legs."""
        ...

    async def controls(self) -> dict[str, PositionControl]:
        """Every watched position's control (cheap: no legs; the daemon's poll)."""
        ...

    async def void(self, position_id: str, reason: str) -> None:
        """No longer watched nor traded; refused while a close order of it is live."""
        ...

    async def set_book(self, position_id: str, book: str) -> None: ...

    async def mark_attention(self, position_id: str, why: str) -> bool:
        """Say the position needs a human (no order goes for it); False when it already
        said so for the same reason (nothing written)."""
        ...

    async def resume(self, position_id: str) -> None:
        """A human has looked: the position is watched and traded again."""
        ...

    async def realised(self, since: datetime | None = None) -> list[RealisedRow]:
        """Every fill (from ``since`` on, by its time) with the P&L it realised, net of its
        commission (a commission the broker never said counts as 0), oldest first."""
        ...

    async def close_expired(self, position_id: str, detail: str) -> None:
        """Closed out after its expiry (nothing left to trade): none remaining."""
        ...

    async def listen(self, changed: Callable[[str], None]) -> None:
        """Call ``changed`` with the position id (``"*"``: any) of each change a human
        makes (added, imported, close asked, void, book, resumed), from any process,
        until cancelled; ``"*"`` first, once listening (what changed before was not
        heard); raises :class:`service.errors.StoreUnavailable` when the
        connection it listens on is lost."""
        ...


class OrderStore(Protocol):
    """The order path: decisions, close intents, orders sent and ended, fills.

    A refusal raises :class:`service.errors.StoreRefused` (nothing written), a database
    that cannot be reached :class:`service.errors.StoreUnavailable`."""

    async def record_intent(
        self, intent: CloseIntent, decision: Decision | None = None
    ) -> None: ...

    async def record_intents(
        self, items: Sequence[tuple[CloseIntent, Decision | None]]
    ) -> list[str | None]: ...

    async def orders_sent(self, refs: Sequence[str], status: str = "queued") -> None: ...

    async def order_attempts(self) -> dict[tuple[str, int | None], int]: ...

    async def apply_fill(self, fill: Fill) -> FillApplied: ...

    async def add_commission(self, commission: Commission) -> Decimal | None:
        """Add a commission report that came after its fill to that fill's commission (and
        so to its realised P&L), once per report id: the fill's commission now, None when
        that report was added before (nothing changed). Refused: a fill not recorded."""
        ...

    async def record_decision(
        self,
        position_id: str,
        decision: Decision,
        quotes: dict[str, Any] | None = None,
        *,
        dry_run: bool = False,
    ) -> None:
        """Append a decision to the audit trail; ``dry_run``: a close that would have been
        made (kind ``would close (dry run)``)."""
        ...

    async def order_sent(
        self,
        order_ref: str,
        status: str,
        broker_order_id: int | None = None,
        perm_id: int | None = None,
    ) -> None: ...

    async def end_order(self, order_ref: str, status: str, detail: str = "") -> None: ...

    async def live_orders(self) -> list[StoredOrder]: ...

    async def fill_ids(self, since: datetime | None = None) -> set[str]:
        """The exec ids of the fills recorded at or after ``since`` (None: all)."""
        ...


class StoreControl(Protocol):
    """The store's connections: kept by a task, opened ahead, checked."""

    def hold(self) -> AbstractAsyncContextManager[None]:
        """Inside, the calling task's order-path writes run on one connection it keeps."""
        ...

    async def warm(self, connections: int) -> None:
        """Be ready to serve ``connections`` callers at once with nothing left to open."""
        ...

    async def ping(self) -> bool: ...

    async def bind(self, venue: str) -> str:
        """Bind the store to ``venue`` (``sim``, ``ib:<account>``) if it is bound to none;
        the venue it is bound to (another one: its records are not this venue's)."""
        ...


class Store(PositionStore, OrderStore, StoreControl, Protocol):
    """The system of record: positions, close orders, fills and the audit trail."""


class OrderGateway(Protocol):
    """Where closing orders go: a broker's side of orders, fills and positions.

    Events (status changes and executions) reach the service as
    :class:`OrderEvent` values from the adapter's own stream.
    """

    async def place(self, order: ComboOrder) -> None: ...

    async def modify(self, order_ref: str, limit: Decimal) -> None: ...

    async def cancel(self, order_ref: str) -> None: ...

    async def positions(self) -> dict[LegKey, int]: ...

    def on_positions(self, changed: Callable[[], None]) -> None:
        """Call ``changed`` (cheap, no I/O) whenever the account's positions move."""
        ...

    async def executions(self) -> list[Execution]: ...

    def executions_from(self, now: datetime) -> datetime | None:
        """The earliest instant whose executions :meth:`executions` reports at ``now``
        (None: all of them). An order placed before it that no longer works may have
        filled unseen: its outcome is not the broker's to tell."""
        ...

    async def open_orders(self) -> list[OrderEvent]: ...

    def stored_executions(self, exec_ids: Iterable[str]) -> None:
        """The executions the store holds (told on start, before :meth:`executions` and
        before the stream starts): never passed on as events again."""
        ...

    async def completed_orders(self) -> list[Completed]:
        """The orders the broker lists as done (IB: the current day's), with what filled."""
        ...


class Admits(Protocol):
    """A broker that gets ready to watch and close positions (IB: their contracts qualified)."""

    async def admit(self, positions: Sequence[StoredPosition]) -> Admitted: ...


QuoteSink = Callable[[Sequence[LegUpdate]], None]


EventSink = Callable[[Sequence[OrderEvent]], None]


ProblemSink = Callable[[LegKey, str], None]
"""A leg the broker cannot serve (its market data refused, its contract unknown), and why
in a line that names the leg and the broker's words."""


class Feed(Protocol):
    """The broker's push side: market data for subscribed legs, and order events.

    ``run`` runs until cancelled, calling ``quotes`` with each batch of leg updates
    and ``events`` with each batch of order events (both synchronous and cheap: the
    monitor only keeps them). ``subscribe`` and ``unsubscribe`` may be called at any
    time, before or during ``run``. ``problems``, when given, is told of each leg the
    broker cannot serve (synchronous and cheap too): the positions holding it need a
    human, where they would otherwise wait for quotes that never come.
    """

    def subscribe(self, leg: LegKey) -> None: ...

    def unsubscribe(self, leg: LegKey) -> None: ...

    def connected(self) -> bool:
        """Connected to the broker, with fresh data flowing."""
        ...

    async def run(
        self, quotes: QuoteSink, events: EventSink, problems: ProblemSink | None = None
    ) -> None: ...


class Clock(Protocol):
    """Market time: the wall clock, or a simulated one that runs faster."""

    def now(self) -> datetime: ...

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of this clock's time."""
        ...
