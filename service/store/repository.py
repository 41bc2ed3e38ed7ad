"""The store: PostgreSQL rows to and from the rules' types, one transaction per change.

:class:`SqlStore` is the service's :class:`service.ports.Store`. Every method
is one transaction. Money is Decimal end to end (``Numeric`` columns).
Changes to a position take its row lock (``SELECT ... FOR UPDATE``) first, so
two writers applying fills to the same position queue up and both land
exactly; a fill is recorded by its execution id, and applying the same one
again changes nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import func, literal, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
)

from rules.clock import dte, exchange_date
from rules.machine import Close, Decision
from rules.model import Leg, Position, Right, Side, Strategy
from service.ports import (
    CloseIntent,
    Fill,
    FillApplied,
    PositionDetail,
    StoredPosition,
    StoreError,
)
from service.store import driver
from service.store.schema import (
    FINAL_ORDER_STATUSES,
    CloseOrderRow,
    ExitEventRow,
    FillRow,
    LegRow,
    PositionRow,
)

_PRICE = Decimal("0.000001")
# an order status no "submitted"/"working" replaces (SQL literals)
_ONWARD = ", ".join(f"'{x}'" for x in (*FINAL_ORDER_STATUSES, "partially_filled"))
_CENT = Decimal("0.0001")


def _plain(value: Decimal) -> Decimal:
    """A Numeric column's value without the column's trailing zeros: 450.0000 -> 450."""
    normal = value.normalize()
    return normal.quantize(Decimal(1)) if normal.as_tuple().exponent > 0 else normal  # type: ignore[operator]


def _legs(row: Any, legs: Sequence[Any]) -> Position:
    """The position of a ``positions`` row (ORM or Core) and its ``legs`` rows."""
    return Position(
        id=row.id,
        book=row.book,
        underlying=row.underlying,
        strategy=Strategy(row.strategy),
        legs=tuple(
            Leg(Right(leg.right), _plain(leg.strike), leg.expiry, Side(leg.side))
            for leg in sorted(legs, key=lambda x: x.index)
        ),
        contracts=row.contracts,
        entry_credit=_plain(row.entry_credit),
        opened_at=row.opened_at,
        multiplier=row.multiplier,
    )


def _stored(row: Any, legs: Sequence[Any]) -> StoredPosition:
    return StoredPosition(
        position=_legs(row, legs),
        account=row.account,
        remaining=row.remaining,
        profit_closed=row.profit_closed,
        stage=row.stage,
        status=row.status,
        manual_close=row.manual_close,
        initial_dte=row.initial_dte,
        closed_at=row.closed_at,
        version=row.version,
    )


class SqlStore:
    """The system of record on PostgreSQL (SQLAlchemy 2, asyncpg)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)
        self._engine = engine

    # Positions -----------------------------------------------------------------

    async def import_positions(self, positions: Sequence[Position], account: str) -> None:
        """All of ``positions`` or none: an id already stored is an error, not a duplicate."""
        async with self._sessions.begin() as s:
            ids = [p.id for p in positions]
            taken = (await s.scalars(select(PositionRow.id).where(PositionRow.id.in_(ids)))).all()
            if taken:
                raise StoreError(f"position '{sorted(taken)[0]}': id: already stored")
            for p in positions:
                s.add(
                    PositionRow(
                        id=p.id,
                        account=account,
                        book=p.book,
                        underlying=p.underlying,
                        strategy=p.strategy.value,
                        multiplier=p.multiplier,
                        entry_credit=p.entry_credit,
                        contracts=p.contracts,
                        remaining=p.contracts,
                        opened_at=p.opened_at,
                        initial_dte=dte(p.expiry, exchange_date(p.opened_at)),
                    )
                )
            await s.flush()  # positions before the rows that refer to them
            for p in positions:
                for i, leg in enumerate(p.legs):
                    s.add(
                        LegRow(
                            position_id=p.id,
                            index=i,
                            right=leg.right.value,
                            strike=leg.strike,
                            expiry=leg.expiry,
                            side=leg.side.value,
                        )
                    )
                s.add(
                    ExitEventRow(position_id=p.id, kind="imported", contracts_remaining=p.contracts)
                )
            try:
                await s.flush()
            except IntegrityError as exc:  # a concurrent import of the same id
                raise StoreError(f"positions: not stored: {exc.orig}") from exc

    async def open_positions(self) -> list[StoredPosition]:
        """Every position not closed, with its legs (what the service loads on start)."""
        return await self._positions(PositionRow.status != "closed")

    async def all_positions(self) -> list[StoredPosition]:
        return await self._positions(None)

    async def _positions(self, where: Any) -> list[StoredPosition]:
        # Core rows, not ORM objects: a restart loads every open position, and an ORM
        # instance costs several times a row (10,000 positions: 0.85 s against 0.25 s)
        positions, legs = PositionRow.__table__, LegRow.__table__
        query = select(positions).order_by(positions.c.opened_at, positions.c.id)
        of_legs = select(legs).join(positions, positions.c.id == legs.c.position_id)
        if where is not None:
            query, of_legs = query.where(where), of_legs.where(where)
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
            leg_rows = (await conn.execute(of_legs.order_by(legs.c.index))).all()
        by_position: dict[str, list[Any]] = {}
        for leg in leg_rows:
            by_position.setdefault(leg.position_id, []).append(leg)
        return [_stored(r, by_position.get(r.id, [])) for r in rows]

    async def detail(self, position_id: str) -> PositionDetail:
        """A position with its legs, close orders, fills and audit trail."""
        async with self._sessions() as s:
            row = await s.get(PositionRow, position_id)
            if row is None:
                raise StoreError(f"position '{position_id}': no such position")
            legs = (await s.scalars(select(LegRow).where(LegRow.position_id == row.id))).all()
            orders = (
                await s.scalars(
                    select(CloseOrderRow)
                    .where(CloseOrderRow.position_id == row.id)
                    .order_by(CloseOrderRow.created_at, CloseOrderRow.order_ref)
                )
            ).all()
            fills = (
                await s.scalars(
                    select(FillRow)
                    .where(FillRow.order_ref.in_([o.order_ref for o in orders]))
                    .order_by(FillRow.time, FillRow.exec_id)
                )
            ).all()
            events = (
                await s.scalars(
                    select(ExitEventRow)
                    .where(ExitEventRow.position_id == row.id)
                    .order_by(ExitEventRow.id)
                )
            ).all()
        return PositionDetail(
            stored=_stored(row, legs),
            orders=[_columns(o) for o in orders],
            fills=[_columns(f) for f in fills],
            events=[_columns(e) for e in events],
        )

    async def request_manual_close(self, position_id: str, reason: str) -> None:
        """Mark an open position for the service to close (all that remains)."""
        async with self._sessions.begin() as s:
            row = await self._lock(s, position_id)
            if row.status == "closed":
                raise StoreError(f"position '{position_id}': already closed")
            row.manual_close = reason
            row.version += 1
            s.add(
                ExitEventRow(
                    position_id=row.id,
                    kind="manual close requested",
                    detail=reason,
                    contracts_remaining=row.remaining,
                )
            )

    async def record_contract_ids(self, position_id: str, con_ids: dict[int, int]) -> None:
        """The broker's contract id of each leg (by its index), once qualified."""
        async with self._sessions.begin() as s:
            for index, con_id in con_ids.items():
                done = await s.execute(
                    update(LegRow)
                    .where(LegRow.position_id == position_id, LegRow.index == index)
                    .values(con_id=con_id)
                )
                if done.rowcount != 1:  # type: ignore[attr-defined]
                    raise StoreError(f"position '{position_id}': leg {index}: no such leg")

    async def contract_ids(self, position_id: str) -> dict[int, int | None]:
        async with self._sessions() as s:
            rows = (
                await s.execute(
                    select(LegRow.index, LegRow.con_id).where(LegRow.position_id == position_id)
                )
            ).all()
        return dict(rows)

    # Orders and fills ------------------------------------------------------------

    def hold(self) -> contextlib.AbstractAsyncContextManager[None]:
        """Inside (a long-running task), the order path's statements run on one connection
        the task keeps: see :mod:`service.store.driver`."""
        return driver.hold(self._engine)

    async def record_intent(self, intent: CloseIntent, decision: Decision | None = None) -> None:
        """Write a close order BEFORE it is sent: never more than what remains, and never
        beside another live order of the position (a unique index holds that too). The
        decision it acts on, if given, goes to the audit trail in the same transaction.
        Raises :class:`StoreError` (nothing written) otherwise."""
        (refused,) = await self.record_intents([(intent, decision)])
        if refused is not None:
            raise StoreError(refused)

    async def record_intents(
        self, items: Sequence[tuple[CloseIntent, Decision | None]]
    ) -> list[str | None]:
        """:meth:`record_intent` for several orders at once (a burst of decisions commits
        once). Each item is checked on its own: the result is None where it was written, the
        reason where it was refused (and nothing of it written).

        The usual case is one statement, one round trip (:data:`_INTENTS_SQL`): every order
        whose position has the contracts and no live order is written with its decision and
        audit rows. The rest (or all, if that statement fails on a race the unique index
        caught) go through :meth:`_record_intents_checked`, which says why."""
        payload = [
            _intent_payload(k, intent, decision) for k, (intent, decision) in enumerate(items)
        ]
        written: set[str] = set()
        try:
            async with driver.driver(self._engine, "close intents") as conn:
                written = {r[0] for r in await conn.fetch(_INTENTS_SQL, json.dumps(payload))}
        except IntegrityError:
            written = set()
        rest = [(k, item) for k, item in enumerate(items) if item[0].order_ref not in written]
        out: list[str | None] = [None] * len(items)
        if rest:
            reasons = await self._record_intents_checked([item for _, item in rest])
            for (k, _), why in zip(rest, reasons, strict=True):
                out[k] = why
        return out

    async def _record_intents_checked(
        self, items: Sequence[tuple[CloseIntent, Decision | None]]
    ) -> list[str | None]:
        """:meth:`record_intents` item by item under the positions' row locks."""
        pids = sorted({intent.position_id for intent, _ in items})  # lock in one order
        live_ref = (
            select(CloseOrderRow.order_ref)
            .where(
                CloseOrderRow.position_id == PositionRow.id,
                CloseOrderRow.status.not_in(FINAL_ORDER_STATUSES),
            )
            .limit(1)
            .scalar_subquery()
        )
        out: list[str | None] = []
        orders: list[dict[str, Any]] = []
        events: list[dict[str, Any]] = []
        async with self._sessions.begin() as s:
            found = await s.execute(
                select(PositionRow.id, PositionRow.remaining, live_ref)
                .where(PositionRow.id.in_(pids))
                .order_by(PositionRow.id)
                .with_for_update(of=PositionRow, key_share=True)
            )
            remaining: dict[str, int] = {}
            live: dict[str, str] = {}
            for pid, left, ref in found:
                remaining[pid] = left
                if ref is not None:
                    live[pid] = ref
            for intent, decision in items:
                pid, ref = intent.position_id, intent.order_ref
                left = remaining.get(pid)
                if left is None:
                    out.append(f"order {ref}: position '{pid}': no such position")
                    continue
                if not 0 < intent.quantity <= left:
                    out.append(
                        f"order {ref}: quantity: {intent.quantity} spreads to close, "
                        f"{left} remaining"
                    )
                    continue
                if pid in live:
                    out.append(f"order {ref}: position {pid} has {live[pid]} live")
                    continue
                live[pid] = ref
                out.append(None)
                orders.append(
                    {
                        "order_ref": ref,
                        "position_id": pid,
                        "stage": intent.stage,
                        "attempt": intent.attempt,
                        "reason": intent.reason,
                        "label": intent.label,
                        "target": intent.target,
                        "quantity": intent.quantity,
                        "limit_price": intent.limit_price,
                        "status": "intent",
                    }
                )
                if decision is not None:
                    events.append(_decision_values(pid, left, decision, intent.quotes))
                events.append(
                    _event_values(
                        position_id=pid,
                        kind="close intent",
                        reason=intent.reason,
                        label=intent.label,
                        order_ref=ref,
                        mark=intent.limit_price,
                        contracts_closed=intent.quantity,
                        contracts_remaining=left,
                        quotes=intent.quotes,
                    )
                )
            if orders:
                # Core (table) inserts: one statement each for the whole burst
                await s.execute(insert(CloseOrderRow.__table__), orders)  # type: ignore[arg-type]
                await s.execute(insert(ExitEventRow.__table__), events)  # type: ignore[arg-type]
                await s.execute(
                    update(PositionRow)
                    .where(PositionRow.id.in_([o["position_id"] for o in orders]))
                    .values(status="closing", version=PositionRow.version + 1)
                )
        return out

    async def orders_sent(self, refs: Sequence[str], status: str = "submitted") -> None:
        """:meth:`order_sent` for several orders (no broker ids yet), in one statement: the
        orders not yet further along take ``status``, and the audit trail says so."""
        if status not in ("submitted", "working"):
            raise ValueError(status)
        async with driver.driver(self._engine, "orders sent") as conn:
            await conn.execute(_SENT_MANY_SQL, list(refs), status)

    async def apply_fill(self, fill: Fill) -> FillApplied:
        """Apply one execution exactly once, in one transaction with contracts remaining.

        The usual case is one statement (:data:`_FILL_SQL`). Anything else (an execution
        seen before, an unknown order, a fill larger than what is left) goes through
        :meth:`_apply_fill_checked`, which says exactly what is wrong."""
        args = (fill.exec_id, fill.order_ref, fill.quantity, fill.price, fill.commission, fill.time)
        try:
            async with driver.driver(self._engine, "fill") as conn:
                done = await conn.fetchrow(_FILL_SQL, *args)
        except IntegrityError:  # a CHECK refused it (an over-fill): say why, below
            done = None
        if done is not None:
            return FillApplied(True, done["remaining"], done["filled"], done["status"])
        return await self._apply_fill_checked(fill)

    async def _apply_fill_checked(self, fill: Fill) -> FillApplied:
        """:meth:`apply_fill` step by step under the row locks, with every check said."""
        async with self._sessions.begin() as s:
            order_ref = fill.order_ref
            row, order = await self._lock_for_order(s, order_ref, f"fill {fill.exec_id}: ")
            inserted = await s.scalar(
                insert(FillRow)
                .values(
                    exec_id=fill.exec_id,
                    order_ref=order_ref,
                    quantity=fill.quantity,
                    price=fill.price,
                    commission=fill.commission,
                    time=fill.time,
                )
                .on_conflict_do_nothing(index_elements=[FillRow.exec_id])
                .returning(FillRow.exec_id)
            )
            if inserted is None:  # this execution was applied before: it must be the same one
                known = await s.get(FillRow, fill.exec_id)
                assert known is not None
                if (known.order_ref, known.quantity, known.price) != (
                    order_ref,
                    fill.quantity,
                    fill.price,
                ):
                    raise StoreError(
                        f"fill {fill.exec_id}: exec_id: already recorded as {known.quantity} "
                        f"of {known.order_ref} at {known.price}"
                    )
                return FillApplied(False, row.remaining, order.filled, order.status)
            if fill.quantity > min(order.quantity - order.filled, row.remaining):
                raise StoreError(
                    f"fill {fill.exec_id}: quantity: {fill.quantity} spreads, but order "
                    f"{order_ref} has {order.quantity - order.filled} unfilled and position "
                    f"{row.id} {row.remaining} remaining"
                )
            filled = order.filled + fill.quantity
            # the average from the exact total paid: the same to the digit whatever order
            # concurrent fills were applied in
            order.paid += fill.price * fill.quantity
            order.avg_price = (order.paid / filled).quantize(_PRICE)
            order.filled = filled
            order.status = "filled" if filled == order.quantity else "partially_filled"
            row.remaining -= fill.quantity
            if order.reason == "profit_target":
                row.profit_closed += fill.quantity
                if order.status == "filled" and order.stage is not None:
                    row.stage = max(row.stage, order.stage + 1)
            if row.remaining == 0:
                row.status, row.closed_at = "closed", fill.time
            elif order.status == "filled":
                row.status = "open"
            row.version += 1
            gain = row.entry_credit - fill.price
            s.add(
                ExitEventRow(
                    position_id=row.id,
                    kind="filled",
                    reason=order.reason,
                    label=order.label,
                    order_ref=order_ref,
                    mark=fill.price,
                    pnl=(gain * row.multiplier * fill.quantity).quantize(_CENT),
                    pct_of_max=(gain / row.entry_credit).quantize(_CENT),
                    contracts_closed=fill.quantity,
                    contracts_remaining=row.remaining,
                    detail=f"execution {fill.exec_id}",
                )
            )
            return FillApplied(True, row.remaining, order.filled, order.status)

    async def record_decision(
        self, position_id: str, decision: Decision, quotes: dict[str, Any] | None = None
    ) -> None:
        """Append a decision to the audit trail: a close with its figures at the mark it
        was made on, or a hold with its reason (the service records holds when they
        change, not on every tick)."""
        async with self._sessions.begin() as s:
            remaining = await s.scalar(
                select(PositionRow.remaining).where(PositionRow.id == position_id)
            )
            if remaining is None:
                raise StoreError(f"position '{position_id}': no such position")
            s.add(ExitEventRow(**_decision_values(position_id, remaining, decision, quotes)))

    async def order_attempts(self) -> dict[tuple[str, int | None], int]:
        """The highest attempt per (open position, stage) among its close orders: where the
        next order_ref's attempt number starts."""
        async with self._sessions() as s:
            rows = await s.execute(
                select(
                    CloseOrderRow.position_id,
                    CloseOrderRow.stage,
                    func.max(CloseOrderRow.attempt),
                )
                .join(PositionRow, PositionRow.id == CloseOrderRow.position_id)
                .where(PositionRow.status != "closed")
                .group_by(CloseOrderRow.position_id, CloseOrderRow.stage)
            )
            return {(pid, stage): n for pid, stage, n in rows}

    async def order_sent(
        self,
        order_ref: str,
        status: str,
        broker_order_id: int | None = None,
        perm_id: int | None = None,
    ) -> None:
        """The broker has the order: submitted, or working; its ids are kept."""
        if status not in ("submitted", "working"):
            raise ValueError(status)
        detail = None if perm_id is None else f"perm id {perm_id}"
        args = (order_ref, status, f"order {status}", broker_order_id or None, perm_id or None)
        async with driver.driver(self._engine, "order sent") as conn:
            done = await conn.fetchrow(_SENT_SQL, *args, detail)
        if done is None:
            raise StoreError(f"order_ref: no order {order_ref}")

    async def end_order(self, order_ref: str, status: str, detail: str = "") -> None:
        """A live order ended without filling all of it: cancelled or rejected."""
        if status not in ("cancelled", "rejected"):
            raise ValueError(status)
        async with self._sessions.begin() as s:
            row, order = await self._lock_for_order(s, order_ref)
            if order.status in FINAL_ORDER_STATUSES:
                return  # already ended (filled before the cancel reached the broker...)
            order.status = status
            order.updated_at = func.now()
            if row.remaining > 0:
                row.status = "open"
            row.version += 1
            s.add(
                ExitEventRow(
                    position_id=row.id,
                    kind=f"order {status}",
                    order_ref=order_ref,
                    contracts_remaining=row.remaining,
                    detail=detail or None,
                )
            )

    async def warm(self, connections: int) -> None:
        """Open ``connections`` pooled connections now, each with the order path's statements
        prepared, so that none is opened or prepared while orders go out (a new connection
        costs ~15 ms of connecting and type introspection, a first statement a few ms of
        planning). Each statement is a no-op here: empty batches, no such order."""

        async def one() -> AsyncConnection:
            conn = await self._engine.connect()
            raw: Any = (await conn.get_raw_connection()).driver_connection
            await raw.fetch(_INTENTS_SQL, "[]")
            await raw.execute(_SENT_MANY_SQL, [], "submitted")
            await raw.fetchrow(_SENT_SQL, "", "working", "", None, None, None)
            await raw.fetchrow(_FILL_SQL, "", "", 0, Decimal(0), Decimal(0), datetime.now(UTC))
            return conn

        opened = await asyncio.gather(*(one() for _ in range(connections)))
        for conn in opened:  # back to the pool, which keeps them
            await conn.close()

    async def ping(self, timeout: float = 2.0) -> bool:
        """The database answers (a ``SELECT 1`` within ``timeout`` seconds)."""
        try:
            async with asyncio.timeout(timeout), self._engine.connect() as conn:
                await conn.execute(select(literal(1)))
        except (OSError, TimeoutError, DBAPIError):
            return False
        return True

    async def live_orders(self) -> list[dict[str, Any]]:
        """Close orders not final (what the service reconciles with the broker on start)."""
        async with self._sessions() as s:
            rows = (
                await s.scalars(
                    select(CloseOrderRow).where(CloseOrderRow.status.not_in(FINAL_ORDER_STATUSES))
                )
            ).all()
        return [_columns(r) for r in rows]

    @classmethod
    async def _lock_for_order(
        cls, s: AsyncSession, order_ref: str, what: str = ""
    ) -> tuple[PositionRow, CloseOrderRow]:
        """Lock the position an order closes, then the order (every writer locks in this
        order)."""
        position_id = await s.scalar(
            select(CloseOrderRow.position_id).where(CloseOrderRow.order_ref == order_ref)
        )
        if position_id is None:
            raise StoreError(f"{what}order_ref: no order {order_ref}")
        row = await cls._lock(s, position_id)
        order = await s.get(CloseOrderRow, order_ref, with_for_update=True)
        assert order is not None  # the position's lock keeps its orders in place
        return row, order

    @staticmethod
    async def _lock(s: AsyncSession, position_id: str) -> PositionRow:
        row = await s.scalar(
            select(PositionRow).where(PositionRow.id == position_id).with_for_update(key_share=True)
        )
        if row is None:
            raise StoreError(f"position '{position_id}': no such position")
        return row


def _columns(row: Any) -> dict[str, Any]:
    return {c.key: getattr(row, c.key) for c in row.__table__.columns}


_EVENT_COLUMNS = (
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


def _event_values(**values: Any) -> dict[str, Any]:
    """An audit row's values for a bulk insert: every column named (None where unset)."""
    return {c: values.get(c) for c in _EVENT_COLUMNS}


def _decision_values(
    position_id: str, remaining: int, decision: Decision, quotes: dict[str, Any] | None
) -> dict[str, Any]:
    """The audit row of a decision: a close with its figures, or a hold with its reason."""
    if isinstance(decision, Close):
        return _event_values(
            position_id=position_id,
            kind="decision",
            reason=decision.reason.value,
            label=decision.label,
            mark=decision.debit,
            pnl=decision.pnl.quantize(_CENT),
            pct_of_max=decision.pct_of_max.quantize(_CENT),
            contracts_closed=decision.contracts,
            contracts_remaining=remaining,
            quotes=quotes,
            detail="triggers: " + ", ".join(t.value for t in decision.triggers),
        )
    return _event_values(
        position_id=position_id,
        kind="hold",
        reason=decision.reason.value,
        contracts_remaining=remaining,
        quotes=quotes,
        detail=decision.detail or None,
    )


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def _intent_payload(k: int, intent: CloseIntent, decision: Decision | None) -> dict[str, Any]:
    """One row of :data:`_INTENTS_SQL`'s JSON batch (numbers as text: exact)."""
    row: dict[str, Any] = {
        "k": k,
        "pid": intent.position_id,
        "ref": intent.order_ref,
        "stage": intent.stage,
        "attempt": intent.attempt,
        "reason": intent.reason,
        "label": intent.label,
        "target": _text(intent.target),
        "qty": intent.quantity,
        "limit_price": _text(intent.limit_price),
        "quotes": intent.quotes,
    }
    if decision is not None:
        d = _decision_values(intent.position_id, 0, decision, None)
        row |= {
            "d_kind": d["kind"],
            "d_reason": d["reason"],
            "d_label": d["label"],
            "d_mark": _text(d["mark"]),
            "d_pnl": _text(d["pnl"]),
            "d_pct": _text(d["pct_of_max"]),
            "d_contracts": d["contracts_closed"],
            "d_detail": d["detail"],
        }
    return row


# Close intents in one statement: the positions that can take them are updated (row locks,
# re-checked after any wait), their orders inserted, and the audit rows (the decision, then
# the intent, per order, in the batch's order). Returns the order_refs written.
_INTENTS_SQL = f"""
WITH req AS (
    SELECT * FROM jsonb_to_recordset($1) AS r(
        k int, pid text, ref text, stage int, attempt int, reason text, label text,
        target numeric, qty int, limit_price numeric, quotes jsonb,
        d_kind text, d_reason text, d_label text, d_mark numeric, d_pnl numeric,
        d_pct numeric, d_contracts int, d_detail text)
),
upd AS (
    UPDATE positions p SET status = 'closing', version = p.version + 1
    FROM req
    WHERE p.id = req.pid AND req.qty > 0 AND req.qty <= p.remaining
      AND NOT EXISTS (
        SELECT 1 FROM close_orders o
        WHERE o.position_id = p.id
          AND o.status NOT IN ({", ".join(f"'{x}'" for x in FINAL_ORDER_STATUSES)}))
    RETURNING p.id, p.remaining
),
orders AS (
    INSERT INTO close_orders (order_ref, position_id, stage, attempt, reason, label, target,
                              quantity, limit_price, status)
    SELECT req.ref, req.pid, req.stage, req.attempt, req.reason, req.label, req.target,
           req.qty, req.limit_price, 'intent'
    FROM req JOIN upd ON upd.id = req.pid
    RETURNING order_ref
),
events AS (
    INSERT INTO exit_events (position_id, kind, reason, label, order_ref, mark, pnl,
                             pct_of_max, contracts_closed, contracts_remaining, quotes, detail)
    SELECT pid, kind, reason, label, ref, mark, pnl, pct, contracts, remaining, quotes, detail
    FROM (
        SELECT 2 * req.k AS n, req.pid, req.d_kind AS kind, req.d_reason AS reason,
               req.d_label AS label, NULL AS ref, req.d_mark AS mark, req.d_pnl AS pnl,
               req.d_pct AS pct, req.d_contracts AS contracts, upd.remaining,
               req.quotes, req.d_detail AS detail
        FROM req JOIN upd ON upd.id = req.pid WHERE req.d_kind IS NOT NULL
        UNION ALL
        SELECT 2 * req.k + 1, req.pid, 'close intent', req.reason, req.label, req.ref,
               req.limit_price, NULL, NULL, req.qty, upd.remaining, req.quotes, NULL
        FROM req JOIN upd ON upd.id = req.pid
    ) e
    ORDER BY n
    RETURNING 1
)
SELECT order_ref FROM orders
"""


# The broker has an order (submitted or working, with its ids), in one statement under the
# position's row lock taken first (as every writer does): the broker's word comes in any
# order, so a status already further along (partly filled, final) stays; the audit row.
# No row back: no such order.
_SENT_SQL = f"""
WITH lk AS (
    SELECT p.id, p.remaining FROM positions p JOIN close_orders c ON c.position_id = p.id
    WHERE c.order_ref = $1
    FOR NO KEY UPDATE OF p
),
o AS (
    UPDATE close_orders c SET
        status = CASE WHEN c.status IN ({_ONWARD}) THEN c.status ELSE $2 END,
        broker_order_id = coalesce(CAST($4 AS bigint), c.broker_order_id),
        perm_id = coalesce(CAST($5 AS bigint), c.perm_id),
        updated_at = CASE  -- (the ORM's onupdate: only when something changes)
            WHEN c.status NOT IN ({_ONWARD}) AND c.status <> $2 THEN now()
            WHEN c.broker_order_id IS DISTINCT FROM
                 coalesce(CAST($4 AS bigint), c.broker_order_id) THEN now()
            WHEN c.perm_id IS DISTINCT FROM coalesce(CAST($5 AS bigint), c.perm_id)
                THEN now()
            ELSE c.updated_at END
    FROM lk WHERE c.order_ref = $1
    RETURNING c.position_id
),
e AS (
    INSERT INTO exit_events (position_id, kind, order_ref, contracts_remaining, detail)
    SELECT lk.id, $3, $1, lk.remaining, $6 FROM lk, o
    RETURNING 1
)
SELECT position_id FROM o
"""


# Orders sent (no broker ids yet), in one statement: those not yet further along take the
# status, and the audit trail says so.
_SENT_MANY_SQL = f"""
WITH sent AS (
    UPDATE close_orders SET status = $2, updated_at = now()
    WHERE order_ref = ANY($1) AND status NOT IN ({_ONWARD})
    RETURNING order_ref, position_id
)
INSERT INTO exit_events (position_id, kind, order_ref, contracts_remaining)
SELECT sent.position_id, 'order ' || $2, sent.order_ref, p.remaining
FROM sent JOIN positions p ON p.id = sent.position_id
"""


# One execution in one statement, under the position's row lock taken first (as every
# writer does): the fill row (none if its exec_id is known), the order's filled, paid,
# average and status, the position's remaining, profit closed, stage and status, and the
# audit row. The CHECKs refuse an over-fill. No row back: not applied here.
_FILL_SQL = """
WITH lk AS (
    SELECT p.id FROM positions p JOIN close_orders c ON c.position_id = p.id
    WHERE c.order_ref = $2
    FOR NO KEY UPDATE OF p
),
f AS (
    INSERT INTO fills (exec_id, order_ref, quantity, price, commission, time)
    SELECT $1, $2, $3, $4, $5, $6
    WHERE EXISTS (SELECT 1 FROM lk)
    ON CONFLICT (exec_id) DO NOTHING
    RETURNING exec_id
),
o AS (
    UPDATE close_orders c SET
        filled = c.filled + $3,
        paid = c.paid + CAST($4 AS numeric) * $3,
        avg_price = round((c.paid + CAST($4 AS numeric) * $3) / (c.filled + $3), 6),
        status = CASE WHEN c.filled + $3 = c.quantity THEN 'filled'
                      ELSE 'partially_filled' END,
        updated_at = now()
    WHERE c.order_ref = $2 AND EXISTS (SELECT 1 FROM f)
    RETURNING c.position_id, c.reason, c.label, c.stage, c.status, c.filled
),
p AS (
    UPDATE positions p SET
        remaining = p.remaining - $3,
        profit_closed = p.profit_closed
            + CASE WHEN o.reason = 'profit_target' THEN $3 ELSE 0 END,
        stage = CASE WHEN o.reason = 'profit_target' AND o.status = 'filled'
                          AND o.stage IS NOT NULL
                     THEN greatest(p.stage, o.stage + 1) ELSE p.stage END,
        status = CASE WHEN p.remaining - $3 = 0 THEN 'closed'
                      WHEN o.status = 'filled' THEN 'open' ELSE p.status END,
        closed_at = CASE WHEN p.remaining - $3 = 0 THEN CAST($6 AS timestamptz)
                         ELSE p.closed_at END,
        version = p.version + 1
    FROM o WHERE p.id = o.position_id
    RETURNING p.id, p.remaining, p.entry_credit, p.multiplier
),
e AS (
    INSERT INTO exit_events (position_id, kind, reason, label, order_ref, mark, pnl,
                             pct_of_max, contracts_closed, contracts_remaining, detail)
    SELECT p.id, 'filled', o.reason, o.label, $2, $4,
           round((p.entry_credit - $4) * p.multiplier * $3, 2),
           round((p.entry_credit - $4) / p.entry_credit, 2),
           $3, p.remaining, 'execution ' || CAST($1 AS text)
    FROM p, o
    RETURNING 1
)
SELECT p.remaining, o.filled, o.status FROM p, o
"""
