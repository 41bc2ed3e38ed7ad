"""What the service needs from the world, as Protocols it owns, and the values they carry.

Adapters implement these: the store (``service.store.repository.SqlStore`` on
PostgreSQL, ``service.store.memory.InMemoryStore`` in memory),
the broker's feed and order gateway (``brokers.sim``, ``brokers.ib``), the
clock (``service.clock``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, Protocol

from rules.machine import Close, Decision, ExitReason, Phase, Working
from rules.model import Position, Quote
from rules.pnl import pct_of_max, realised_pnl
from service.legs import Account as Account  # noqa: PLC0414  (re-exported)
from service.legs import Holding as Holding  # noqa: PLC0414  (re-exported)
from service.legs import LegFill as LegFill  # noqa: PLC0414  (re-exported)
from service.legs import LegKey as LegKey  # noqa: PLC0414  (re-exported)
from service.legs import StoredLeg as StoredLeg  # noqa: PLC0414  (re-exported)


class OrderStatus(StrEnum):
    """A close order's status in the store."""

    INTENT = "intent"  # written, not yet sent
    SUBMITTED = "submitted"
    WORKING = "working"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELLED = "cancelled"
    REJECTED = "rejected"

    @property
    def final(self) -> bool:
        """Nothing more happens to the order (no status replaces this one)."""
        return self in FINAL_ORDER_STATUSES


FINAL_ORDER_STATUSES = frozenset({OrderStatus.FILLED, OrderStatus.CANCELLED, OrderStatus.REJECTED})
SENT_STATUSES = frozenset({OrderStatus.SUBMITTED, OrderStatus.WORKING})  # order_sent's
ENDED_STATUSES = frozenset({OrderStatus.CANCELLED, OrderStatus.REJECTED})  # end_order's


@dataclass(frozen=True)
class StoredPosition:
    """A position as the system of record knows it now."""

    position: Position
    account: str
    remaining: int
    profit_closed: int  # contracts closed by profit targets
    stage: int  # profit tranches completed
    status: Phase  # open | closing | closed
    manual_close: str | None
    initial_dte: int
    closed_at: datetime | None
    version: int


@dataclass(frozen=True)
class LegUpdate:
    """A leg's new quote from the market data feed."""

    leg: LegKey
    quote: Quote


class Action(StrEnum):
    BUY = "BUY"
    SELL = "SELL"


@dataclass(frozen=True)
class ComboLeg:
    leg: LegKey
    action: Action  # to close a credit spread: buy the short legs back, sell the long ones
    ratio: int = 1


@dataclass(frozen=True)
class ComboOrder:
    """A closing combo limit order for ``quantity`` spreads at a debit of ``limit`` each."""

    order_ref: str
    legs: tuple[ComboLeg, ...]
    quantity: int
    limit: Decimal


@dataclass(frozen=True)
class Execution:
    """One fill of a combo order, in spreads, at a debit per spread."""

    exec_id: str
    order_ref: str
    quantity: int
    price: Decimal
    commission: Decimal
    time: datetime


@dataclass(frozen=True)
class OrderEvent:
    """What the broker says of an order: its status now, and the execution if one came."""

    order_ref: str
    status: OrderStatus  # the broker's word for it, as ours
    filled: int
    remaining: int
    at: datetime
    execution: Execution | None = None
    reason: str = ""  # why, for a rejection
    broker_order_id: int | None = None  # the broker's ids, when it says them (IB: order id,
    perm_id: int | None = None  # perm id)


def order_ref(position_id: str, stage: int | None, attempt: int) -> str:
    """The deterministic reference of a close order: the broker's orderRef too, so an order
    found at the broker after a restart is known. ``stage`` is the profit tranche; a
    stop's orders say "stop"."""
    return f"{position_id}:{'stop' if stage is None else stage}:{attempt}"


def position_of(ref: str) -> str:
    """The position an :func:`order_ref` closes."""
    return ref.rsplit(":", 2)[0]


def leg_key(position: Position, i: int) -> LegKey:
    """Leg ``i`` of ``position`` as a broker knows it."""
    leg = position.legs[i]
    return LegKey(position.underlying, leg.expiry, leg.right, leg.strike)


@dataclass(frozen=True)
class CloseIntent:
    """A close order as written before it is sent."""

    order_ref: str  # "{position_id}:{stage}:{attempt}", unique
    position_id: str
    stage: int | None  # the profit tranche, None for a stop
    attempt: int
    reason: str
    label: str
    target: Decimal | None
    quantity: int
    limit_price: Decimal | None
    quotes: dict[str, Any] | None = None  # what the decision was made on


@dataclass(frozen=True)
class Fill:
    exec_id: str  # the broker's execution id: a fill is applied once per id
    order_ref: str
    quantity: int  # spreads
    price: Decimal  # debit per spread
    time: datetime
    commission: Decimal | None = None


@dataclass(frozen=True)
class FillApplied:
    applied: bool  # False: this execution id had been applied before; nothing changed
    remaining: int
    order_filled: int
    order_status: OrderStatus


@dataclass(frozen=True)
class StoredOrder:
    """A close order as the store keeps it."""

    order_ref: str
    position_id: str
    stage: int | None
    attempt: int
    reason: str
    label: str
    target: Decimal | None
    quantity: int
    limit_price: Decimal | None
    status: OrderStatus
    filled: int
    avg_price: Decimal | None
    paid: Decimal  # the exact sum of price x quantity over the fills
    broker_order_id: int | None
    perm_id: int | None
    created_at: datetime
    updated_at: datetime

    def working(self, entry_credit: Decimal, multiplier: int) -> Working:
        """The order as the rules know a working close (its figures at its limit) with
        what has filled of it, for a position sold at ``entry_credit``."""
        reason = ExitReason(self.reason)
        limit = self.limit_price or Decimal(0)
        close = Close(
            contracts=self.quantity,
            reason=reason,
            label=self.label,
            target=self.target,
            tranche=self.stage,
            debit=limit,
            pnl=realised_pnl(entry_credit, limit, multiplier, self.quantity),
            pct_of_max=pct_of_max(entry_credit, limit),
            triggers=(reason,),
        )
        return Working(close, self.filled)


@dataclass(frozen=True)
class StoredFill:
    exec_id: str
    order_ref: str
    quantity: int
    price: Decimal
    commission: Decimal | None
    time: datetime


@dataclass(frozen=True)
class AuditEvent:
    """One row of a position's append-only audit trail."""

    id: int
    position_id: str
    at: datetime
    kind: str  # imported, hold, decision, close intent, order ..., filled, manual close...
    reason: str | None = None
    label: str | None = None
    order_ref: str | None = None
    mark: Decimal | None = None
    pnl: Decimal | None = None
    pct_of_max: Decimal | None = None
    contracts_closed: int | None = None
    contracts_remaining: int | None = None
    quotes: dict[str, Any] | None = None
    detail: str | None = None


@dataclass(frozen=True)
class PositionDetail:
    stored: StoredPosition
    orders: list[StoredOrder] = field(default_factory=list)
    fills: list[StoredFill] = field(default_factory=list)
    events: list[AuditEvent] = field(default_factory=list)


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

    async def stored_legs(self) -> list[StoredLeg]: ...


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

    async def orders_sent(self, refs: Sequence[str], status: str = "submitted") -> None: ...

    async def order_attempts(self) -> dict[tuple[str, int | None], int]: ...

    async def apply_fill(self, fill: Fill) -> FillApplied: ...

    async def record_decision(
        self, position_id: str, decision: Decision, quotes: dict[str, Any] | None = None
    ) -> None: ...

    async def order_sent(
        self,
        order_ref: str,
        status: str,
        broker_order_id: int | None = None,
        perm_id: int | None = None,
    ) -> None: ...

    async def end_order(self, order_ref: str, status: str, detail: str = "") -> None: ...

    async def live_orders(self) -> list[StoredOrder]: ...


class StoreControl(Protocol):
    """The store's connections: kept by a task, opened ahead, checked."""

    def hold(self) -> AbstractAsyncContextManager[None]:
        """Inside, the calling task's order-path writes run on one connection it keeps."""
        ...

    async def warm(self, connections: int) -> None:
        """Be ready to serve ``connections`` callers at once with nothing left to open."""
        ...

    async def ping(self) -> bool: ...


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

    async def executions(self) -> list[Execution]: ...

    async def open_orders(self) -> list[OrderEvent]: ...


QuoteSink = Callable[[Sequence[LegUpdate]], None]
EventSink = Callable[[Sequence[OrderEvent]], None]


class Feed(Protocol):
    """The broker's push side: market data for subscribed legs, and order events.

    ``run`` runs until cancelled, calling ``quotes`` with each batch of leg updates
    and ``events`` with each batch of order events (both synchronous and cheap: the
    monitor only keeps them). ``subscribe`` and ``unsubscribe`` may be called at any
    time, before or during ``run``.
    """

    def subscribe(self, leg: LegKey) -> None: ...

    def unsubscribe(self, leg: LegKey) -> None: ...

    def connected(self) -> bool:
        """Connected to the broker, with fresh data flowing."""
        ...

    async def run(self, quotes: QuoteSink, events: EventSink) -> None: ...


class Clock(Protocol):
    """Market time: the wall clock, or a simulated one that runs faster."""

    def now(self) -> datetime: ...

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of this clock's time."""
        ...
