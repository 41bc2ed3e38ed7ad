"""Rows to and from the domain's values, in one place for both stores.

Every store (:class:`service.store.repository.SqlStore` on PostgreSQL,
:class:`service.store.memory.InMemoryStore`) reads and writes through these: a
stored row as the port's value (:class:`StoredPosition`, :class:`StoredOrder`,
:class:`StoredFill`, :class:`AuditEvent`), the values of a new position and its
legs, and the audit rows of imports, decisions, intents, orders sent or ended
and manual closes. What the stores decide alike is :mod:`.changes`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from rules.clock import dte, exchange_date
from rules.machine import Close, Decision, Phase
from rules.model import Leg, Position, Right, Side, Strategy
from rules.pnl import realised_net
from service.ports import (
    AuditEvent,
    CloseIntent,
    LegKey,
    OrderStatus,
    RealisedRow,
    StoredFill,
    StoredLeg,
    StoredOrder,
    StoredPosition,
)

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
        trading_class=row.trading_class,
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
        void=row.void_reason,
        attention=row.attention,
    )


def stored_leg(position: Position, index: int, con_id: int | None) -> StoredLeg:
    """Leg ``index`` of a stored position, with the broker's contract id when known."""
    leg = position.legs[index]
    key = LegKey(position.underlying, leg.expiry, leg.right, leg.strike)
    return StoredLeg(position.id, key, leg.side, con_id)


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
        "trading_class": p.trading_class,
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


def imported_values(position: Position) -> dict[str, Any]:
    return event_values(
        position_id=position.id, kind="imported", contracts_remaining=position.contracts
    )


def control_values(position_id: str, kind: str, detail: str, remaining: int) -> dict[str, Any]:
    """The audit row of a human's or the reconciliation's change to a position: voided, book
    changed, needs attention, resumed, expired."""
    return event_values(
        position_id=position_id, kind=kind, detail=detail, contracts_remaining=remaining
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


WOULD_CLOSE = "would close (dry run)"  # the audit kind of a dry run's close


def decision_values(
    position_id: str,
    remaining: int,
    decision: Decision,
    quotes: dict[str, Any] | None,
    *,
    dry_run: bool = False,
) -> dict[str, Any]:
    """The audit row of a decision: a close with its figures (``dry_run``: one that would
    have been made), or a hold with its reason."""
    if isinstance(decision, Close):
        return event_values(
            position_id=position_id,
            kind=WOULD_CLOSE if dry_run else "decision",
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


# Orders sent and ended ----------------------------------------------------------------


def order_kind(status: OrderStatus) -> str:
    """The audit row's kind of an order sent or ended: ``order working``..."""
    return f"order {status.value}"


def perm_detail(perm_id: int | None) -> str | None:
    return None if perm_id is None else f"perm id {perm_id}"


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


# Realised P&L ----------------------------------------------------------------------


def realised_of(fill: Any, position: Any, reason: str) -> RealisedRow:
    """A fill (a ``fills`` row or a :class:`StoredFill`) of a ``position`` (a row, or a
    :class:`Position`: its id, book, entry credit and multiplier) with what it realised: a
    commission
    the broker never said (NULL) counts as 0, the broker having charged none we know of."""
    commission = Decimal(0) if fill.commission is None else plain(fill.commission)
    price = plain(fill.price)
    credit = plain(position.entry_credit)
    net = realised_net(credit, price, position.multiplier, fill.quantity, commission)
    return RealisedRow(
        position_id=position.id,
        book=position.book,
        reason=reason,
        order_ref=fill.order_ref,
        exec_id=fill.exec_id,
        time=fill.time,
        contracts=fill.quantity,
        price=price,
        commission=commission,
        realised=net,
    )


def realised_in(
    fills: Iterable[StoredFill],
    orders: Mapping[str, StoredOrder],
    positions: Mapping[str, StoredPosition],
    since: datetime | None,
) -> list[RealisedRow]:
    """The in-memory store's fills joined to their orders and positions (as the SQL
    store's query does), oldest first."""
    out = []
    for f in fills:
        if since is not None and f.time < since:
            continue
        order = orders[f.order_ref]
        out.append(realised_of(f, positions[order.position_id].position, order.reason))
    return sorted(out, key=lambda r: (r.time, r.exec_id))
