"""The admin side of the SQL store: positions imported, read, detailed, closed by hand, and
the broker's contract ids of their legs (:class:`service.ports.PositionStore`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ARRAY, Text, any_, bindparam, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from rules.machine import Phase
from rules.model import Position, Right, Side
from service.errors import StoreRefused
from service.ports import (
    LegKey,
    PositionControl,
    PositionDetail,
    RealisedRow,
    StoredLeg,
    StoredPosition,
)
from service.store import changes, rows
from service.store.driver import edge
from service.store.schema import (
    FINAL_ORDER_STATUSES,
    CloseOrderRow,
    ExitEventRow,
    FillRow,
    LegRow,
    PositionRow,
)

ARRAY_OF_TEXT = ARRAY(Text)


class SqlBase:
    """What every part of the SQL store shares: the engine and its sessions."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)
        self._engine = engine
        self.epoch: int | None = None  # the trading lease's, written with each close order
        self.holding: Callable[[], bool] | None = None  # asked first by each call (edge)

    @staticmethod
    async def _lock(s: AsyncSession, position_id: str) -> PositionRow:
        """The position's row, locked (every writer locks the position first)."""
        row = await s.scalar(
            select(PositionRow).where(PositionRow.id == position_id).with_for_update(key_share=True)
        )
        if row is None:
            raise changes.no_position(position_id)
        return row

    @staticmethod
    async def _notify(s: AsyncSession, position_id: str) -> None:
        """Tell the listening daemons (delivered when the transaction commits)."""
        await s.execute(select(func.pg_notify(changes.CHANNEL, position_id)))

    async def _controlled(self, s: AsyncSession, position_id: str) -> PositionRow:
        """The position's row, locked, refused when it is closed or void."""
        row = await self._lock(s, position_id)
        changes.controllable(rows.stored_of(row, []))
        return row


WATCHED = (PositionRow.status != Phase.CLOSED.value) & PositionRow.void_reason.is_(None)


class SqlPositions(SqlBase):
    """Positions on PostgreSQL: one transaction per change."""

    @edge
    async def import_positions(self, positions: Sequence[Position], account: str) -> None:
        """All of ``positions`` or none: an id already stored is an error, not a duplicate."""
        if not positions:
            return
        new = [rows.new_stored(p, account) for p in positions]
        async with self._sessions.begin() as s:
            ids = [p.id for p in positions]
            taken = (await s.scalars(select(PositionRow.id).where(PositionRow.id.in_(ids)))).all()
            if taken:
                raise changes.already_stored(sorted(taken)[0])
            try:
                await s.execute(insert(PositionRow), [rows.position_values(n) for n in new])
                await s.execute(insert(LegRow), [v for p in positions for v in rows.leg_values(p)])
                await s.execute(
                    insert(ExitEventRow),
                    [rows.imported_values(p) for p in positions],
                )
                await self._notify(s, changes.EVERY)
            except IntegrityError as exc:  # a concurrent import of the same id
                raise StoreRefused(f"positions: not stored: {exc.orig}") from exc

    @edge
    async def open_positions(self) -> list[StoredPosition]:
        """Every position not closed nor void, with its legs (what the service loads on
        start)."""
        return await self._positions(WATCHED)

    @edge
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
            found = (await conn.execute(query)).all()
            leg_rows = (await conn.execute(of_legs.order_by(legs.c.index))).all()
        by_position: dict[str, list[Any]] = {}
        for leg in leg_rows:
            by_position.setdefault(leg.position_id, []).append(leg)
        return [rows.stored_of(r, by_position.get(r.id, [])) for r in found]

    @edge
    async def detail(self, position_id: str) -> PositionDetail:
        """A position with its legs, close orders, fills and audit trail."""
        async with self._sessions() as s:
            row = await s.get(PositionRow, position_id)
            if row is None:
                raise changes.no_position(position_id)
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
            stored=rows.stored_of(row, legs),
            orders=[rows.order_of(o) for o in orders],
            fills=[rows.fill_of(f) for f in fills],
            events=[rows.event_of(e) for e in events],
        )

    @edge
    async def request_manual_close(self, position_id: str, reason: str) -> None:
        """Mark an open position for the service to close (all that remains)."""
        async with self._sessions.begin() as s:
            row = await self._controlled(s, position_id)
            row.manual_close = reason
            row.version += 1
            s.add(ExitEventRow(**rows.manual_close_values(position_id, reason, row.remaining)))
            await self._notify(s, position_id)

    @edge
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
                    raise changes.no_leg(position_id, index)

    @edge
    async def stored_legs(self) -> list[StoredLeg]:
        """The legs of every watched position (not closed, not void), with their contract
        ids."""
        positions, legs = PositionRow.__table__, LegRow.__table__
        query = (
            select(legs, positions.c.underlying)
            .join(positions, positions.c.id == legs.c.position_id)
            .where(WATCHED)
            .order_by(legs.c.position_id, legs.c.index)
        )
        async with self._engine.connect() as conn:
            found = (await conn.execute(query)).all()
        return [
            StoredLeg(
                r.position_id,
                LegKey(r.underlying, r.expiry, Right(r.right), rows.plain(r.strike)),
                Side(r.side),
                r.con_id,
            )
            for r in found
        ]

    @edge
    async def contract_ids(self, position_id: str) -> dict[int, int | None]:
        async with self._sessions() as s:
            found = (
                await s.execute(
                    select(LegRow.index, LegRow.con_id).where(LegRow.position_id == position_id)
                )
            ).all()
        return dict(found)

    # Control: a human's changes, and what needs one ------------------------------------

    @edge
    async def positions(self, ids: Sequence[str]) -> list[StoredPosition]:
        """(``= ANY`` of one array, not ``IN`` with a parameter per id: one statement for
        any number of ids, where each number was a statement of its own that every
        connection prepared and kept; the soak saw them pile up for days.)"""
        if not ids:
            return []
        return await self._positions(
            PositionRow.id == any_(bindparam("ids", list(ids), ARRAY_OF_TEXT))
        )

    @edge
    async def controls(self) -> dict[str, PositionControl]:
        t = PositionRow.__table__
        query = select(t.c.id, t.c.book, t.c.manual_close, t.c.attention).where(WATCHED)
        async with self._engine.connect() as conn:
            found = (await conn.execute(query)).all()
        return {r.id: PositionControl(r.book, r.manual_close, r.attention) for r in found}

    async def _change(
        self, position_id: str, kind: str, detail: str, *, idle: bool = False, **values: Any
    ) -> None:
        """Set ``values`` on a watched position, with its audit row, and tell the daemons;
        ``idle``: refused while a close order of it is live (checked under the row's lock,
        which every intent's writer takes first)."""
        async with self._sessions.begin() as s:
            row = await self._controlled(s, position_id)
            if idle:
                live = await s.scalar(
                    select(CloseOrderRow.order_ref).where(
                        CloseOrderRow.position_id == position_id,
                        CloseOrderRow.status.not_in(FINAL_ORDER_STATUSES),
                    )
                )
                if live is not None:
                    raise changes.order_working(position_id, live)
            audit = rows.control_values(position_id, kind, detail, row.remaining)
            for name, value in values.items():
                setattr(row, name, value)
            row.version += 1
            s.add(ExitEventRow(**audit))
            await self._notify(s, position_id)

    @edge
    async def void(self, position_id: str, reason: str) -> None:
        now = datetime.now(UTC)
        await self._change(
            position_id, changes.VOIDED, reason, idle=True, void_reason=reason, voided_at=now
        )

    @edge
    async def set_book(self, position_id: str, book: str) -> None:
        async with self._sessions() as s:
            before = await s.scalar(select(PositionRow.book).where(PositionRow.id == position_id))
        await self._change(position_id, changes.BOOK_CHANGED, f"{before} -> {book}", book=book)

    @edge
    async def resume(self, position_id: str) -> None:
        await self._change(position_id, changes.RESUMED, "resumed by hand", attention=None)

    @edge
    async def mark_attention(self, position_id: str, why: str) -> bool:
        async with self._sessions.begin() as s:
            row = await self._lock(s, position_id)
            if row.attention == why or row.status == Phase.CLOSED or row.void_reason:
                return False
            row.attention = why
            row.version += 1
            audit = rows.control_values(position_id, changes.ATTENTION, why, row.remaining)
            s.add(ExitEventRow(**audit))
        return True

    @edge
    async def realised(self, since: datetime | None = None) -> list[RealisedRow]:
        """Fills joined to their close orders and positions, in one query."""
        f, o, p = FillRow.__table__, CloseOrderRow.__table__, PositionRow.__table__
        query = (
            select(f, o.c.reason, p.c.id, p.c.book, p.c.entry_credit, p.c.multiplier)
            .join(o, o.c.order_ref == f.c.order_ref)
            .join(p, p.c.id == o.c.position_id)
            .order_by(f.c.time, f.c.exec_id)
        )
        if since is not None:
            query = query.where(f.c.time >= since)
        async with self._engine.connect() as conn:
            found = (await conn.execute(query)).all()
        return [rows.realised_of(r, r, r.reason) for r in found]

    @edge
    async def close_expired(self, position_id: str, detail: str) -> None:
        now = datetime.now(UTC)
        await self._change(
            position_id, changes.EXPIRED, detail, idle=True,
            remaining=0, status=Phase.CLOSED.value, closed_at=now,
        )  # fmt: skip
