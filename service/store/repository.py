"""The store on PostgreSQL: :class:`SqlStore`, the service's :class:`service.ports.Store`.

It is composed of its parts by role: :class:`~service.store.positions.SqlPositions`
(the admin side), :class:`~service.store.orders.SqlOrders` (the order path) and the
connections' control here (hold, warm, ping). Rows become the domain's values in
:mod:`service.store.rows`. Every method is one transaction. Money is Decimal end to
end (``Numeric`` columns). Changes to a position take its row lock first, so two
writers applying fills to the same position queue up and both land exactly; a fill
is recorded by its execution id, and applying the same one again changes nothing.
Database errors come out as :class:`service.errors.StoreRefused` (a refusal) or
:class:`service.errors.StoreUnavailable` (a database lost or out of reach).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import literal, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from service.errors import StoreUnavailable
from service.store import changes, driver, sql
from service.store.driver import edge
from service.store.lease import SqlLease
from service.store.orders import SqlOrders
from service.store.positions import SqlPositions
from service.store.schema import VenueBindingRow

__all__ = ["LISTENER", "SqlStore"]

LISTENER = "spreadwatch-listen"  # the listening connection's application_name
HEARTBEAT = 5.0  # seconds between the listening connection's checks


class SqlStore(SqlPositions, SqlOrders, SqlLease):
    """The system of record on PostgreSQL (SQLAlchemy 2, asyncpg), and the account's
    trading lease (:class:`service.ports.LeaseBoard`)."""

    def fence(self, epoch: int | None, holding: Callable[[], bool] | None = None) -> None:
        """From now, each close order is written with the trading lease's ``epoch`` (the
        database refuses it once that epoch is not live), and each call of the store first
        asks ``holding``: a process that lost the lease writes and reads nothing more
        (:class:`service.errors.NotHolding`). None, None: unfenced (a tool, a test)."""
        self.epoch, self.holding = epoch, holding

    def hold(self) -> contextlib.AbstractAsyncContextManager[None]:
        """Inside (a long-running task), the order path's statements run on one connection
        the task keeps: see :mod:`service.store.driver`."""
        return driver.hold(self._engine)

    @edge
    async def warm(self, connections: int) -> None:
        """Open ``connections`` pooled connections now, each with the order path's statements
        prepared, so that none is opened or prepared while orders go out (a new connection
        costs ~15 ms of connecting and type introspection, a first statement a few ms of
        planning). Each statement is a no-op here: empty batches, no such order."""

        async def one() -> AsyncConnection:
            conn = await self._engine.connect()
            raw: Any = (await conn.get_raw_connection()).driver_connection
            await raw.fetch(sql.INTENTS, "[]", None)
            await raw.execute(sql.SENT_MANY, [], "queued", "")
            await raw.fetchrow(sql.SENT, "", "working", "", None, None, None)
            await raw.fetchrow(sql.FILL_READ, "", "")
            zero, now = Decimal(0), datetime.now(UTC)
            fill = ("", "", 0, zero, zero, now, "", 0)  # no position of version 0: no write
            change = (0, zero, zero, "", 0, 0, 0, "", None, "", "", "", zero, zero, "")
            reports: list[list[Any]] = [[], []]  # (the reports' ids, their amounts)
            await raw.fetchval(sql.FILL_WRITE, *fill, *change, *reports)
            return conn

        opened = await asyncio.gather(*(one() for _ in range(connections)))
        for conn in opened:  # back to the pool, which keeps them
            await conn.close()

    @edge
    async def bind(self, venue: str) -> str:
        async with self._sessions.begin() as s:
            await s.execute(
                pg_insert(VenueBindingRow).values(id=1, venue=venue).on_conflict_do_nothing()
            )
            return str(await s.scalar(select(VenueBindingRow.venue)))

    async def ping(self, timeout: float = 2.0) -> bool:
        """The database answers (a ``SELECT 1`` within ``timeout`` seconds)."""
        try:
            async with asyncio.timeout(timeout), self._engine.connect() as conn:
                await conn.execute(select(literal(1)))
        except (OSError, TimeoutError, DBAPIError):
            return False
        return True

    @edge
    async def listen(self, changed: Callable[[str], None]) -> None:
        """LISTEN on the changes' channel on a connection of its own (its
        ``application_name`` is :data:`LISTENER`), checked every :data:`HEARTBEAT`
        seconds: a connection lost without a word (a dropped network) is found too."""
        conn = await self._engine.connect()
        try:
            raw: Any = (await conn.get_raw_connection()).driver_connection
            await raw.execute(f"SET application_name = '{LISTENER}'")
            lost = asyncio.Event()
            raw.add_termination_listener(lambda _conn: lost.set())
            await raw.add_listener(changes.CHANNEL, lambda _c, _pid, _ch, said: changed(said))
            changed(changes.EVERY)  # listening: anything may have changed before
            while not lost.is_set():
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(HEARTBEAT):
                        await lost.wait()
                if not lost.is_set():
                    async with asyncio.timeout(HEARTBEAT):
                        await raw.execute("SELECT 1")
        finally:  # never back to the pool: it is this listener's, or lost
            with contextlib.suppress(Exception):
                await conn.invalidate()
            with contextlib.suppress(Exception):
                await conn.close()
        raise StoreUnavailable("listen: the listening connection was lost")
