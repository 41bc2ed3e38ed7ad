"""The values the ports carry: statuses (enums, not strings), positions and orders as
stored, a broker's order events and executions, the account's holdings."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, NamedTuple

from rules.machine import Close, ExitReason, Phase, Working
from rules.model import Position, Quote, Right, Side
from rules.pnl import pct_of_max, realised_pnl


class OrderStatus(StrEnum):
    """A close order's status in the store."""

    INTENT = "intent"  # written, not yet sent
    QUEUED = "queued"  # handed to the broker's client, not yet acknowledged by the broker
    SUBMITTED = "submitted"  # acknowledged: the broker has it (not yet working)
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


# order_sent's: handed to the broker, then acknowledged by it
SENT_STATUSES = frozenset({OrderStatus.QUEUED, OrderStatus.SUBMITTED, OrderStatus.WORKING})


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
    void: str | None = None  # why a human voided it (no longer watched nor traded)
    attention: str | None = None  # why it needs a human (no order goes for it until then)

    @property
    def watched(self) -> bool:
        """Open or closing, not void: the daemon watches it."""
        return self.status is not Phase.CLOSED and self.void is None

    def shown_status(self) -> str:
        """The status as a trader reads it: open, closing, needs attention: <why>, closed,
        void."""
        if self.void is not None:
            return "void"
        if self.status is not Phase.CLOSED and self.attention is not None:
            return f"needs attention: {self.attention}"
        return self.status.value


class LegKey(NamedTuple):
    """An option contract as a broker knows it (a position's leg, without its side).

    A NamedTuple: every quote is filed under its leg, and a tuple hashes and compares
    in C (a frozen dataclass's ``__hash__`` and ``__eq__`` are Python functions)."""

    underlying: str
    expiry: date
    right: Right
    strike: Decimal


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


Reports = tuple[tuple[str, Decimal], ...]  # commission reports: (the report's id, amount)


@dataclass(frozen=True)
class Execution:
    """One fill of a combo order, in spreads, at a debit per spread (a negative one: a
    credit). ``commission``: None while the broker has not said it (it comes later, as a
    :class:`Commission`); ``reports``: the broker's reports it adds up (by their ids, so a
    report that comes again is not added twice)."""

    exec_id: str
    order_ref: str
    quantity: int
    price: Decimal
    commission: Decimal | None
    time: datetime
    reports: Reports = ()


@dataclass(frozen=True)
class Completed:
    """An order the broker no longer works, as it lists it (IB: ``reqCompletedOrders``):
    its final status in the broker's word, and how many spreads filled in all."""

    order_ref: str
    perm_id: int
    status: str
    filled: int


@dataclass(frozen=True)
class Commission:
    """A commission report that came after its fill was passed on: ``amount`` added to the
    fill ``exec_id``'s commission, once per ``report_id`` (IB: a leg's execution id)."""

    exec_id: str  # the fill's
    report_id: str
    amount: Decimal


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
    commission: Commission | None = None  # a late commission report of a fill passed on
    foreign: str = ""  # an open order another client works: why it is not ours to manage


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
    reports: Reports = ()  # the broker's reports ``commission`` adds up, by their ids


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
class RealisedRow:
    """One fill's realised P&L, as the store reads it: the fill joined to its close order
    (the exit reason) and its position (book, entry credit, multiplier)."""

    position_id: str
    book: str
    reason: str  # the close order's exit reason code
    order_ref: str  # the close order
    exec_id: str
    time: datetime
    contracts: int
    price: Decimal  # debit per spread
    commission: Decimal  # 0 where the broker said none (a NULL commission)
    realised: Decimal  # (credit - price) x multiplier x contracts - commission, to the cent


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


@dataclass(frozen=True)
class Holding:
    """One option position the account holds, as the broker reports it (IB: a
    ``position`` message of ``reqPositions``)."""

    leg: LegKey
    con_id: int  # the broker's contract id; 0 when it has none (the simulated broker)
    quantity: int  # contracts, short < 0
    avg_cost: Decimal  # per contract, multiplier included (IB's avgCost), >= 0 either side
    multiplier: int
    trading_class: str = ""  # the exchange's class of the option (IB: SPX or SPXW for SPX)


@dataclass(frozen=True)
class LegFill:
    """One execution of one option contract (IB: an execution of a leg, by conId)."""

    exec_id: str
    con_id: int
    leg: LegKey
    quantity: int  # bought > 0, sold < 0
    price: Decimal  # per share
    time: datetime


@dataclass(frozen=True)
class StoredLeg:
    """A leg of a stored position not closed or void (what a sync must not import again)."""

    position_id: str
    leg: LegKey
    side: Side
    con_id: int | None


class ControlKind(StrEnum):
    """The audit kinds of a human's or the reconciliation's change to a position (what
    ``positions show`` lists as its reconciliation history)."""

    VOIDED = "void"
    BOOK_CHANGED = "book changed"
    ATTENTION = "needs attention"
    RESUMED = "attention cleared"
    EXPIRED = "expired"


# What a change notification says when any position (or many) may have changed
EVERY_POSITION = "*"


class PositionControl(NamedTuple):
    """What a human may change about a watched position, as the store has it now: the
    daemon compares it with what it watches (:meth:`PositionStore.controls`)."""

    book: str
    manual_close: str | None
    attention: str | None


@dataclass(frozen=True)
class Admitted:
    """What a broker made of positions to watch: each admitted one's legs' contract ids (by
    leg index; none for a broker without them), and why it refused the others."""

    con_ids: dict[str, dict[int, int]]
    refused: dict[str, str]
