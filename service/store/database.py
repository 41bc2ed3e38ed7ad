"""Where the database is, and its schema's revision.

``DATABASE_URL`` (any ``postgresql://`` URL; the driver is set to asyncpg
here) names a server. Without it spreadwatch starts an embedded PostgreSQL
(the ``pgserver`` package) in its data directory, so that it runs with no
server installed. Alembic works the schema: ``upgrade`` to head, ``current``
revision, and ``require_head``, which the service calls before it starts.
"""

from __future__ import annotations

import asyncio
import atexit
import shutil
import subprocess
import warnings
from collections.abc import Iterator
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

import asyncpg
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import event
from sqlalchemy.engine import Connection, ExceptionContext, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from service.errors import InputError, StoreRefused, StoreUnavailable
from service.shipped import shipped

MIGRATIONS = shipped("migrations")


class SchemaNotAtHead(StoreRefused):
    """The database's schema is not the one this version of spreadwatch needs."""


class Unreachable(StoreUnavailable):
    """The database cannot be reached (no server, no such database, a login refused):
    ``why`` and what to check, on one line."""

    def __init__(self, where: str, why: str) -> None:
        super().__init__(f"{where}: {why}")
        self.why = why


def async_url(url: str) -> str:
    """``url`` with the asyncpg driver (postgres://, postgresql:// or +psycopg given)."""
    parsed = make_url(url.replace("postgres://", "postgresql://", 1))
    if parsed.get_backend_name() != "postgresql":
        raise InputError(f"DATABASE_URL: not a PostgreSQL URL: {parsed.render_as_string()}")
    return parsed.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)


def redacted(url: str) -> str:
    """``url`` fit for a log line: the password hidden."""
    return make_url(url).render_as_string(hide_password=True)


class EmbeddedPostgres(AbstractContextManager["EmbeddedPostgres"]):
    """A PostgreSQL server of spreadwatch's own, in ``directory`` (kept between runs).

    It is started on entry if it is not running, and stopped on exit when no
    other spreadwatch process still uses it. The first start makes the cluster
    in a sibling directory (``postgres.partial``), renamed into place when it is
    whole: a first start interrupted (Ctrl-C during ``initdb``) leaves no
    cluster behind, only a partial one that the next start makes again.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._server: Any = None

    def __enter__(self) -> EmbeddedPostgres:
        self.directory.parent.mkdir(parents=True, exist_ok=True)
        with warnings.catch_warnings():  # platformdirs: "XDG_RUNTIME_DIR is not set" in containers
            warnings.simplefilter("ignore")
            import pgserver  # noqa: PLC0415  (a second to import; only when it is used)

            try:
                if not (self.directory / "PG_VERSION").exists():
                    self._make(pgserver)
                self._server = pgserver.get_server(self.directory, cleanup_mode="stop")  # type: ignore[attr-defined]
            except (subprocess.SubprocessError, OSError, AssertionError) as exc:
                raise StoreUnavailable(
                    f"{self.where()}: cannot start: {_why(exc)}; {self.fix()}"
                ) from exc
        return self

    def _make(self, pgserver: Any) -> None:
        """The cluster, made aside and renamed into place once whole (started and stopped
        once: pgserver makes a cluster as it starts it)."""
        partial = self.directory.with_name(self.directory.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)  # (an interrupted first start's)
        if self.directory.exists() and not any(self.directory.iterdir()):
            self.directory.rmdir()  # (an empty one: made by an earlier version, say)
        server = pgserver.get_server(partial, cleanup_mode="stop")
        server.cleanup()
        atexit.unregister(server._cleanup)  # (stopped: nothing left to do at exit)
        partial.rename(self.directory)

    def where(self) -> str:
        return f"the embedded database in {self.directory}"

    def fix(self) -> str:
        return (
            f"its log is {self.directory / 'log'}; to start it afresh remove {self.directory} "
            "(its positions are lost), or set DATABASE_URL to a server"
        )

    @property
    def url(self) -> str:
        return async_url(self._server.get_uri())

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                self._server.cleanup()
            self._server = None


def _why(exc: BaseException) -> str:
    """An error's own words on one line (a process's: its command's name and exit status)."""
    if isinstance(exc, subprocess.CalledProcessError):
        return f"{Path(str(exc.cmd[0])).name} exited with status {exc.returncode}"
    if isinstance(exc, subprocess.TimeoutExpired):
        return f"{Path(str(exc.cmd[0])).name} did not finish in {exc.timeout} s"
    said = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    return " ".join(said.split()) or type(exc).__name__


def database(url: str | None, data_dir: Path) -> AbstractContextManager[Any]:
    """A context giving the URL to use: ``url`` as given, or an embedded server's."""
    if url is not None:
        return nullcontext(_Given(async_url(url)))
    return EmbeddedPostgres(data_dir / "postgres")


class _Given:
    def __init__(self, url: str) -> None:
        self.url = url


POOL = 10  # connections kept: the order workers, the event follower, health and spare


def engine(url: str, application: str = "spreadwatch") -> AsyncEngine:
    """The engine on ``url``; its connections name themselves ``application`` to the server
    (``pg_stat_activity``: which daemon holds which connection)."""
    # A ping on each checkout: a connection the server dropped (a restart) is replaced, not
    # handed out. The order path does not pay it: the monitor's tasks keep their connections
    # (service.store.driver.hold), and one that fails is dropped and the write retried
    # (order events) or decided again (closes). Connections are renewed every half hour.
    eng = create_async_engine(
        url,
        pool_recycle=1800,
        pool_size=POOL,
        pool_pre_ping=True,
        connect_args={"server_settings": {"application_name": application[:63]}},
    )
    event.listen(eng.sync_engine, "handle_error", _lost_is_a_disconnect)
    return eng


# asyncpg's words for a connection that is gone or unusable: its dialect in SQLAlchemy
# knows only "connection is closed", and would put the others back in the pool
_LOST = (
    asyncpg.PostgresConnectionError,  # class 08
    asyncpg.OperatorInterventionError,  # class 57: the server terminated it, shuts down
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,  # left mid-operation
    OSError,
)


def _lost_is_a_disconnect(context: ExceptionContext) -> None:
    """A lost connection is a disconnect: SQLAlchemy drops it (and the pool's older ones)."""
    exc: BaseException | None = context.original_exception
    while exc is not None:
        if isinstance(exc, _LOST):
            context.is_disconnect = True
            return
        exc = exc.__cause__


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def head() -> str:
    heads = ScriptDirectory.from_config(alembic_config("postgresql://")).get_heads()
    if len(heads) != 1:
        raise RuntimeError(f"migrations have {len(heads)} heads: {heads}")
    return str(heads[0])


async def upgrade(url: str, revision: str = "head") -> None:
    """Migrate the schema to ``revision`` (env.py runs its own loop: a thread)."""
    try:
        await asyncio.to_thread(command.upgrade, alembic_config(url), revision)
    except Exception as exc:
        said = unreachable(url, exc)
        if said is None:
            raise
        raise said from exc


async def downgrade(url: str, revision: str) -> None:
    await asyncio.to_thread(command.downgrade, alembic_config(url), revision)


def _causes(exc: BaseException) -> Iterator[BaseException]:
    seen: BaseException | None = exc
    while seen is not None:
        yield seen
        orig = getattr(seen, "orig", None)
        seen = orig if isinstance(orig, BaseException) else (seen.__cause__ or seen.__context__)


_LOGIN = (asyncpg.InvalidAuthorizationSpecificationError, asyncpg.InvalidPasswordError)


def unreachable(url: str, exc: BaseException) -> Unreachable | None:
    """``exc`` as a failure to reach the database at ``url``, with what to check; None if
    it is something else."""
    where = f"database {redacted(url)}"
    for seen in _causes(exc):
        if isinstance(seen, asyncpg.InvalidCatalogNameError):
            name = make_url(url).database
            return Unreachable(where, f"no such database: create it (createdb {name}) or "
                               "correct DATABASE_URL")  # fmt: skip
        if isinstance(seen, _LOGIN):
            return Unreachable(where, f"login refused: {_why(seen)}: check the user and "
                               "password of DATABASE_URL")  # fmt: skip
        if isinstance(seen, (OSError, asyncpg.CannotConnectNowError)):
            why = "connection refused" if isinstance(seen, ConnectionRefusedError) else _why(seen)
            return Unreachable(where, f"cannot connect ({why}): is PostgreSQL running there, "
                               "and DATABASE_URL's host and port right?")  # fmt: skip
    return None


def _current(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


async def current(url: str) -> str | None:
    """The database's revision, None before the first upgrade."""
    eng = engine(url)
    try:
        async with eng.connect() as conn:
            return await conn.run_sync(_current)
    except Exception as exc:
        said = unreachable(url, exc)
        if said is None:
            raise
        raise said from exc
    finally:
        await eng.dispose()


async def require_head(url: str) -> None:
    """Refuse a schema that is not at head, saying which command fixes it."""
    have, want = await current(url), head()
    if have != want:
        state = "no schema" if have is None else f"schema revision {have}"
        raise SchemaNotAtHead(
            f"database {redacted(url)}: {state}, this version needs {want}: "
            "run `spreadwatch db upgrade`"
        )
