"""The admin side of the SQL store: positions imported, read, detailed, closed by hand, and
the broker's contract ids of their legs (:class:`service.ports.PositionStore`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from rules.machine import Phase
from rules.model import Position, Right, Side
from service.errors import StoreRefused
from service.ports import LegKey, PositionDetail, StoredLeg, StoredPosition
from service.store import changes, rows
from service.store.driver import edge
from service.store.schema import CloseOrderRow, ExitEventRow, FillRow, LegRow, PositionRow


class SqlBase:
    """What every part of the SQL store shares: the engine and its sessions."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)
        self._engine = engine

    @staticmethod
    async def _lock(s: AsyncSession, position_id: str) -> PositionRow:
        """The position's row, locked (every writer locks the position first)."""
        row = await s.scalar(
            select(PositionRow).where(PositionRow.id == position_id).with_for_update(key_share=True)
        )
        if row is None:
            raise changes.no_position(position_id)
        return row


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
            except IntegrityError as exc:  # a concurrent import of the same id
                raise StoreRefused(f"positions: not stored: {exc.orig}") from exc

    @edge
    async def open_positions(self) -> list[StoredPosition]:
        """Every position not closed, with its legs (what the service loads on start)."""
        return await self._positions(PositionRow.status != Phase.CLOSED.value)

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
            row = await self._lock(s, position_id)
            if row.status == Phase.CLOSED:
                raise changes.already_closed(position_id)
            row.manual_close = reason
            row.version += 1
            s.add(ExitEventRow(**rows.manual_close_values(position_id, reason, row.remaining)))

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
        """The legs of every position not settled (closed), with their contract ids."""
        positions, legs = PositionRow.__table__, LegRow.__table__
        query = (
            select(legs, positions.c.underlying)
            .join(positions, positions.c.id == legs.c.position_id)
            .where(positions.c.status.not_in([s.value for s in changes.SETTLED]))
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
