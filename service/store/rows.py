"""Rows to and from the domain's values, and what both stores decide alike.

Every store (:class:`service.store.repository.SqlStore` on PostgreSQL,
:class:`service.store.memory.InMemoryStore`) reads and writes through these:
the values of a new position, the audit rows of decisions, intents, orders sent
and fills, why a close intent is refused, and what a fill changes (from
:func:`rules.machine.fill_outcome`, with the P&L of :mod:`rules.pnl`). Only the
storage differs between the stores.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, NamedTuple

from rules.clock import dte, exchange_date
from rules.machine import (
    TRANSITIONS,
    Close,
    Decision,
    EventKind,
    ExitReason,
    IllegalTransition,
    Phase,
    Working,
    fill_outcome,
)
from rules.model import Leg, Position, Right, Side, Strategy
from rules.pnl import pct_of_max, realised_pnl
from service.errors import StoreRefused
from service.ports import (
    FINAL_ORDER_STATUSES,
    AuditEvent,
    CloseIntent,
    Fill,
    OrderStatus,
    StoredFill,
    StoredOrder,
    StoredPosition,
)

# the position's status once a close intent is written, and once its order ended
ON_INTENT = TRANSITIONS[(Phase.OPEN, EventKind.CLOSE_SENT)]
ON_END = TRANSITIONS[(Phase.CLOSING, EventKind.ORDER_ENDED)]
# order statuses no "submitted"/"working" replaces: the broker's word comes in any order
ONWARD = FINAL_ORDER_STATUSES | {OrderStatus.PARTIALLY_FILLED}

PRICE = Decimal("0.000001")  # an order's average price
CENT = Decimal("0.01")  # a fill's P&L and share of the maximum
FIGURE = Decimal("0.0001")  # a decision's P&L and share of the maximum


def sql_list(values: Sequence[str] | frozenset[OrderStatus]) -> str:
    """``'a', 'b'``: values for an SQL ``IN (...)``, in a stable order."""
    return ", ".join(f"'{v}'" for v in sorted(values))


# Positions -------------------------------------------------------------------------


def plain(value: Decimal) -> Decimal:
    """A Numeric column's value without the column's trailing zeros: 450.0000 -> 450."""
    normal = value.normalize()
    return normal.quantize(Decimal(1)) if normal.as_tuple().exponent > 0 else normal  # type: ignore[operator]


def position_of(row: Any, legs: Sequence[Any]) -> Position:
    """The position of a ``positions`` row (ORM or Core) and its ``legs`` rows."""
    return Position(
        id=row.id,
        book=row.book,
        underlying=row.underlying,
        strategy=Strategy(row.strategy),
        legs=tuple(
            Leg(Right(leg.right), plain(leg.strike), leg.expiry, Side(leg.side))
            for leg in sorted(legs, key=lambda x: x.index)
        ),
        contracts=row.contracts,
        entry_credit=plain(row.entry_credit),
        opened_at=row.opened_at,
        multiplier=row.multiplier,
    )


def stored_of(row: Any, legs: Sequence[Any]) -> StoredPosition:
    return StoredPosition(
        position=position_of(row, legs),
        account=row.account,
        remaining=row.remaining,
        profit_closed=row.profit_closed,
        stage=row.stage,
        status=Phase(row.status),
        manual_close=row.manual_close,
        initial_dte=row.initial_dte,
        closed_at=row.closed_at,
        version=row.version,
    )


def new_stored(position: Position, account: str) -> StoredPosition:
    """A position as imported: every contract remaining, open, version 1."""
    return StoredPosition(
        position=position,
        account=account,
        remaining=position.contracts,
        profit_closed=0,
        stage=0,
        status=Phase.OPEN,
        manual_close=None,
        initial_dte=dte(position.expiry, exchange_date(position.opened_at)),
        closed_at=None,
        version=1,
    )


def position_values(stored: StoredPosition) -> dict[str, Any]:
    """The ``positions`` row of a new position."""
    p = stored.position
    return {
        "id": p.id,
        "account": stored.account,
        "book": p.book,
        "underlying": p.underlying,
        "strategy": p.strategy.value,
        "multiplier": p.multiplier,
        "entry_credit": p.entry_credit,
        "contracts": p.contracts,
        "remaining": stored.remaining,
        "opened_at": p.opened_at,
        "initial_dte": stored.initial_dte,
    }


def leg_values(position: Position) -> list[dict[str, Any]]:
    return [
        {
            "position_id": position.id,
            "index": i,
            "right": leg.right.value,
            "strike": leg.strike,
            "expiry": leg.expiry,
            "side": leg.side.value,
        }
        for i, leg in enumerate(position.legs)
    ]


def already_stored(position_id: str) -> StoreRefused:
    return StoreRefused(f"position '{position_id}': id: already stored")


def no_position(position_id: str) -> StoreRefused:
    return StoreRefused(f"position '{position_id}': no such position")


def no_order(order_ref: str, what: str = "") -> StoreRefused:
    return StoreRefused(f"{what}order_ref: no order {order_ref}")


def no_leg(position_id: str, index: int) -> StoreRefused:
    return StoreRefused(f"position '{position_id}': leg {index}: no such leg")


def already_closed(position_id: str) -> StoreRefused:
    return StoreRefused(f"position '{position_id}': already closed")


def imported_values(position: Position) -> dict[str, Any]:
    return event_values(
        position_id=position.id, kind="imported", contracts_remaining=position.contracts
    )


def manual_close_values(position_id: str, reason: str, remaining: int) -> dict[str, Any]:
    return event_values(
        position_id=position_id,
        kind="manual close requested",
        detail=reason,
        contracts_remaining=remaining,
    )


# Stored rows as the port's values ------------------------------------------------------


def order_of(row: Any) -> StoredOrder:
    return StoredOrder(
        order_ref=row.order_ref,
        position_id=row.position_id,
        stage=row.stage,
        attempt=row.attempt,
        reason=row.reason,
        label=row.label,
        target=row.target,
        quantity=row.quantity,
        limit_price=row.limit_price,
        status=OrderStatus(row.status),
        filled=row.filled,
        avg_price=row.avg_price,
        paid=row.paid,
        broker_order_id=row.broker_order_id,
        perm_id=row.perm_id,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def fill_of(row: Any) -> StoredFill:
    return StoredFill(row.exec_id, row.order_ref, row.quantity, row.price, row.commission, row.time)


EVENT_COLUMNS = (
    "position_id",
    "kind",
    "reason",
    "label",
    "order_ref",
    "mark",
    "pnl",
    "pct_of_max",
    "contracts_closed",
    "contracts_remaining",
    "quotes",
    "detail",
)


def event_of(row: Any) -> AuditEvent:
    values = {c: getattr(row, c) for c in EVENT_COLUMNS}
    return AuditEvent(id=row.id, at=row.at, **values)


def event_values(**values: Any) -> dict[str, Any]:
    """An audit row's values: every column named (None where unset)."""
    return {c: values.get(c) for c in EVENT_COLUMNS}


# Decisions and intents ------------------------------------------------------------------


def decision_values(
    position_id: str, remaining: int, decision: Decision, quotes: dict[str, Any] | None
) -> dict[str, Any]:
    """The audit row of a decision: a close with its figures, or a hold with its reason."""
    if isinstance(decision, Close):
        return event_values(
            position_id=position_id,
            kind="decision",
            reason=decision.reason.value,
            label=decision.label,
            mark=decision.debit,
            pnl=decision.pnl.quantize(FIGURE),
            pct_of_max=decision.pct_of_max.quantize(FIGURE),
            contracts_closed=decision.contracts,
            contracts_remaining=remaining,
            quotes=quotes,
            detail="triggers: " + ", ".join(t.value for t in decision.triggers),
        )
    return event_values(
        position_id=position_id,
        kind="hold",
        reason=decision.reason.value,
        contracts_remaining=remaining,
        quotes=quotes,
        detail=decision.detail or None,
    )


def intent_values(intent: CloseIntent, remaining: int) -> dict[str, Any]:
    """The audit row of a close intent written."""
    return event_values(
        position_id=intent.position_id,
        kind="close intent",
        reason=intent.reason,
        label=intent.label,
        order_ref=intent.order_ref,
        mark=intent.limit_price,
        contracts_closed=intent.quantity,
        contracts_remaining=remaining,
        quotes=intent.quotes,
    )


def intent_refusal(
    intent: CloseIntent, remaining: int | None, live: str | None, taken: bool = False
) -> str | None:
    """Why ``intent`` may not be written, given its position's ``remaining`` (None: no
    such position), its live order's ref (None: none) and whether its order_ref is
    ``taken`` by an order stored before; None when it may."""
    ref, pid = intent.order_ref, intent.position_id
    if taken:
        return f"order {ref}: order_ref: already stored"
    if remaining is None:
        return f"order {ref}: position '{pid}': no such position"
    if not 0 < intent.quantity <= remaining:
        return f"order {ref}: quantity: {intent.quantity} spreads to close, {remaining} remaining"
    if live is not None:
        return f"order {ref}: position {pid} has {live} live"
    return None


# Orders sent and ended ----------------------------------------------------------------


def sent_status(status: str) -> OrderStatus:
    """``order_sent``'s status, checked: submitted or working."""
    if status not in (OrderStatus.SUBMITTED, OrderStatus.WORKING):
        raise ValueError(status)
    return OrderStatus(status)


def ended_status(status: str) -> OrderStatus:
    """``end_order``'s status, checked: cancelled or rejected."""
    if status not in (OrderStatus.CANCELLED, OrderStatus.REJECTED):
        raise ValueError(status)
    return OrderStatus(status)


def order_kind(status: OrderStatus) -> str:
    """The audit row's kind of an order sent or ended: ``order working``..."""
    return f"order {status.value}"


def perm_detail(perm_id: int | None) -> str | None:
    return None if perm_id is None else f"perm id {perm_id}"


def after_end(order: str, remaining: int, phase: Phase) -> Phase | None:
    """The position's phase once its ``order`` (its status now) ended unfilled; None when
    the order had ended already (filled before the cancel reached the broker...): then
    nothing changes."""
    if OrderStatus(order) in FINAL_ORDER_STATUSES:
        return None
    return ON_END if remaining > 0 else phase


def ended_values(
    position_id: str, order_ref: str, status: OrderStatus, remaining: int, detail: str
) -> dict[str, Any]:
    return event_values(
        position_id=position_id,
        kind=order_kind(status),
        order_ref=order_ref,
        contracts_remaining=remaining,
        detail=detail or None,
    )


# Fills ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class FillChange:
    """What a new execution writes: the order's figures, the position's, the audit row."""

    filled: int
    paid: Decimal
    avg_price: Decimal
    order_status: OrderStatus
    remaining: int
    profit_closed: int
    stage: int
    status: Phase
    closed_at: datetime | None  # set when the last contract fills
    event: dict[str, Any]


def repeat_of(fill: Fill, known: StoredFill) -> None:
    """An execution id seen before must be the same execution (else: refused)."""
    if (known.order_ref, known.quantity, known.price) != (
        fill.order_ref,
        fill.quantity,
        fill.price,
    ):
        raise StoreRefused(
            f"fill {fill.exec_id}: exec_id: already recorded as {known.quantity} "
            f"of {known.order_ref} at {known.price}"
        )


class Standing(NamedTuple):
    """What a fill needs of its position (a ``positions`` row, or a stored position's)."""

    id: str
    remaining: int
    profit_closed: int
    stage: int
    entry_credit: Decimal
    multiplier: int


def standing(stored: StoredPosition) -> Standing:
    p = stored.position
    return Standing(
        p.id, stored.remaining, stored.profit_closed, stored.stage, p.entry_credit, p.multiplier
    )


def fill_change(fill: Fill, order: StoredOrder, position: Standing) -> FillChange:
    """A new execution of ``order`` applied to ``position`` (both as stored now).

    The state change is the domain's (:func:`rules.machine.fill_outcome`): the fill
    proves its order works, so the position is taken as CLOSING on it. Raises
    :class:`StoreRefused` for more than the order's unfilled rest or the position's
    remaining (nothing is written)."""
    reason = ExitReason(order.reason)
    close = Close(
        contracts=order.quantity,
        reason=reason,
        label=order.label,
        target=order.target,
        tranche=order.stage,
        debit=order.limit_price or Decimal(0),
        pnl=Decimal(0),
        pct_of_max=Decimal(0),
        triggers=(reason,),
    )
    p = position
    try:
        out = fill_outcome(
            p.id,
            Phase.CLOSING,
            position.remaining,
            position.profit_closed,
            position.stage,
            Working(close, order.filled),
            fill.quantity,
        )
    except IllegalTransition as exc:
        raise StoreRefused(
            f"fill {fill.exec_id}: quantity: {fill.quantity} spreads, but order "
            f"{order.order_ref} has {order.quantity - order.filled} unfilled and position "
            f"{p.id} {position.remaining} remaining"
        ) from exc
    # the average from the exact total paid: the same to the digit whatever order
    # concurrent fills were applied in
    paid = order.paid + fill.price * fill.quantity
    return FillChange(
        filled=out.filled,
        paid=paid,
        avg_price=(paid / out.filled).quantize(PRICE, ROUND_HALF_UP),
        order_status=OrderStatus.FILLED if out.order_complete else OrderStatus.PARTIALLY_FILLED,
        remaining=out.remaining,
        profit_closed=out.profit_closed,
        stage=out.stage,
        status=out.phase,
        closed_at=fill.time if out.phase is Phase.CLOSED else None,
        event=event_values(
            position_id=p.id,
            kind="filled",
            reason=order.reason,
            label=order.label,
            order_ref=order.order_ref,
            mark=fill.price,
            pnl=realised_pnl(p.entry_credit, fill.price, p.multiplier, fill.quantity).quantize(
                CENT, ROUND_HALF_UP
            ),
            pct_of_max=pct_of_max(p.entry_credit, fill.price).quantize(CENT, ROUND_HALF_UP),
            contracts_closed=fill.quantity,
            contracts_remaining=out.remaining,
            detail=f"execution {fill.exec_id}",
        ),
    )
