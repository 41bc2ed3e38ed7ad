"""The order path's statements, straight on the driver (asyncpg).

Through SQLAlchemy a statement costs about 0.15 ms of CPU beyond asyncpg's own
(the compiled-statement cache, result processing, the greenlet bridge), and a
pool checkout about 0.08 ms more. The live loop runs those statements on the
core its ticks need, several per order (its intent, "sent", each broker
status, each fill), so the store runs them straight on asyncpg: on a
connection from the engine's pool, or, inside :func:`hold`, on one connection
the calling task keeps for its life (the monitor's order workers and its event
follower do). asyncpg prepares each statement once per connection.

Errors come out as SQLAlchemy's, as from the rest of the store: a refusal of
the database (a CHECK, a unique index) as ``IntegrityError``, a lost
connection as ``OperationalError``. The store's public methods then translate
them at its edge (:func:`edge`): a refusal into
:class:`service.errors.StoreRefused`, a database lost or out of reach into
:class:`service.errors.StoreUnavailable` (which the callers retry).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextvars import ContextVar
from typing import Any, ParamSpec, TypeVar

import asyncpg
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, OperationalError, ProgrammingError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from service.errors import NotHolding, SpreadwatchError, StoreRefused, StoreUnavailable

_REFUSALS = (asyncpg.IntegrityConstraintViolationError, asyncpg.DataError)
FENCED = "SW409"  # the SQLSTATE of an order refused by the trading lease (migration 0008)
_ERRORS = (
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,  # (a connection left mid-operation by a lost server)
    OSError,
    TimeoutError,
)


class _Held:
    """One connection a task keeps checked out of ``engine``'s pool (opened on first use,
    and again after one was lost)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._conn: AsyncConnection | None = None
        self._raw: Any = None

    async def driver(self) -> Any:
        if self._raw is None:
            self._conn = await self.engine.connect()
            self._raw = (await self._conn.get_raw_connection()).driver_connection
        return self._raw

    async def close(self, *, broken: bool = False) -> None:
        conn, self._conn, self._raw = self._conn, None, None
        if conn is None:
            return
        with contextlib.suppress(Exception):  # (closing what is gone already)
            if broken:
                await conn.invalidate()  # never back into the pool
            await conn.close()


_HELD: ContextVar[_Held | None] = ContextVar("spreadwatch_held_connection", default=None)


@contextlib.asynccontextmanager
async def hold(engine: AsyncEngine) -> AsyncIterator[None]:
    """Inside, the calling task's statements through :func:`driver` run on one connection
    it keeps (returned to the pool on the way out)."""
    held = _Held(engine)
    token = _HELD.set(held)
    try:
        yield
    finally:
        _HELD.reset(token)
        await held.close()


def _translated(exc: BaseException, statement: str) -> DBAPIError:
    if isinstance(exc, asyncpg.IntegrityConstraintViolationError):
        return IntegrityError(statement, None, exc)
    if isinstance(exc, asyncpg.DataError):
        return DataError(statement, None, exc)
    if isinstance(exc, asyncpg.SyntaxOrAccessError):
        return ProgrammingError(statement, None, exc)
    return OperationalError(statement, None, exc)  # lost, timed out, shut down...


@contextlib.asynccontextmanager
async def driver(engine: AsyncEngine, what: str) -> AsyncIterator[Any]:
    """An asyncpg connection of ``engine``'s for one statement outside any transaction (the
    statement is atomic by itself): the task's held one, or one from the pool. ``what``
    names the statement in errors. A connection that fails other than by the database
    refusing the statement (lost, cancelled mid-statement) is never used again."""
    held = _HELD.get()
    if held is None or held.engine is not engine:
        held = _Held(engine)  # one from the pool, for this statement
        owned = True
    else:
        owned = False
    try:
        try:
            yield await held.driver()
        except _REFUSALS:
            raise  # the connection is fine: the statement was refused
        except BaseException as exc:
            if getattr(exc, "sqlstate", None) == FENCED:  # (refused: the connection is fine)
                raise NotHolding(f"{what}: refused by the database: {exc}") from exc
            await held.close(broken=True)
            raise
    except _ERRORS as exc:
        raise _translated(exc, what) from exc
    finally:
        if owned:
            await held.close()


P = ParamSpec("P")
R = TypeVar("R")


def _refusal(exc: BaseException) -> bool:
    """The database (or the driver, for a value it cannot send) refused the statement: a
    CHECK, a unique index, a value out of range; through SQLAlchemy's wrapping."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, (IntegrityError, DataError, *_REFUSALS)):
            return True
        seen = seen.orig if isinstance(seen, DBAPIError) else seen.__cause__
    return False


def edge(method: Callable[P, Awaitable[R]]) -> Callable[P, Coroutine[Any, Any, R]]:
    """A store method whose database errors come out by kind: a refusal (a CHECK, a unique
    index, a value out of range) as :class:`StoreRefused`, a lost or unreachable database
    as :class:`StoreUnavailable`. A statement the database cannot parse is a bug: it
    comes out as it is. On a store fenced by a trading lease this process no longer
    holds, the method is refused before it starts (:class:`NotHolding`)."""

    @functools.wraps(method)
    async def translated(*args: P.args, **kwargs: P.kwargs) -> R:
        holding = getattr(args[0], "holding", None)  # (the store, fenced: SqlStore.fence)
        if holding is not None and not holding():
            raise NotHolding(f"{method.__name__}: this process does not hold the trading lease")
        try:
            return await method(*args, **kwargs)
        except SpreadwatchError:
            raise
        except ProgrammingError:
            raise
        except (DBAPIError, *_ERRORS) as exc:
            if _refusal(exc):
                raise StoreRefused(f"{method.__name__}: refused: {_said(exc)}") from exc
            raise StoreUnavailable(f"{method.__name__}: database unavailable: {exc}") from exc

    return translated


def _said(exc: BaseException) -> str:
    """The database's (or the driver's) own words, on one line."""
    said = exc.orig if isinstance(exc, DBAPIError) else exc
    return " ".join(str(said).split())
