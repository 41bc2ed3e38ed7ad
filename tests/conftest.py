"""Fixtures for every tier of tests: the CLI in-process, a PostgreSQL, a store on its own
database, and the replay's input files. (Builders are in tests/factories.py, fakes in
tests/fakes.py, the loop's drivers in tests/loop.py, paths and helpers in tests/support.py.)"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest
from sqlalchemy.engine import make_url

from service import native

native.use_sources()  # SPREADWATCH_PURE=1: the suite on the .py sources beside a compiled build

from service.cli.main import main  # noqa: E402
from service.store import database  # noqa: E402
from service.store.repository import SqlStore  # noqa: E402
from tests.factories import HEADER  # noqa: E402
from tests.support import EXAMPLES, Run, admin, new_database, on_database, with_db  # noqa: E402

T = TypeVar("T")


def pytest_sessionstart(session: pytest.Session) -> None:
    """Refuse to test a compiled module older than its source (an editable install keeps
    the extension it built: see setup.py)."""
    if not os.environ.get(native.PURE_ENV) and (stale := native.stale()):
        pytest.exit(
            f"compiled modules older than their sources: {', '.join(stale)}; "
            "run `pip install -e .` again (or set SPREADWATCH_PURE=1)",
            returncode=2,
        )


@pytest.fixture(autouse=True)
def free_http_port(monkeypatch: pytest.MonkeyPatch) -> None:
    """The daemon's health server on any free port in tests (8080 may be taken)."""
    monkeypatch.setenv("SPREADWATCH_HTTP_PORT", "0")


@pytest.fixture
def examples() -> Path:
    return EXAMPLES


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., Run]:
    """Run the CLI in-process, as a user would from the shell."""

    def run(*argv: str | Path) -> Run:
        code = main([str(a) for a in argv])
        captured = capsys.readouterr()
        return Run(code, captured.out, captured.err)

    return run


@pytest.fixture
def files(tmp_path: Path) -> Callable[..., tuple[Path, Path]]:
    """Write POSITIONS.toml and TICKS.csv (header added) into a temp dir."""

    def write(positions: str, ticks: list[str]) -> tuple[Path, Path]:
        p = tmp_path / "positions.toml"
        t = tmp_path / "ticks.csv"
        p.write_text(positions)
        t.write_text("\n".join([HEADER, *ticks]) + "\n")
        return p, t

    return write


# A real PostgreSQL for the tests that need one: TEST_DATABASE_URL's server, or an embedded
# one. The session migrates one template database with Alembic; each test gets a fresh
# database copied from it (CREATE DATABASE ... TEMPLATE), dropped after.


@pytest.fixture(scope="session")
def server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    given = os.environ.get("TEST_DATABASE_URL")
    if given:
        yield database.async_url(given)
        return
    with database.EmbeddedPostgres(tmp_path_factory.mktemp("pg") / "postgres") as embedded:
        yield embedded.url


@pytest.fixture(scope="session")
def template_url(server_url: str) -> Iterator[str]:
    name = f"sw_template_{os.getpid()}"
    asyncio.run(admin(server_url, f"DROP DATABASE IF EXISTS {name}", f"CREATE DATABASE {name}"))
    url = with_db(server_url, name)
    asyncio.run(database.upgrade(url))
    yield url
    asyncio.run(admin(server_url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


@pytest.fixture
def empty_url(server_url: str) -> Iterator[str]:
    """A database with no schema at all."""
    url = new_database(server_url)
    yield url
    asyncio.run(admin(server_url, f"DROP DATABASE {make_url(url).database} WITH (FORCE)"))


@pytest.fixture
def db_url(server_url: str, template_url: str) -> Iterator[str]:
    """A database migrated to head, this test's own."""
    url = new_database(server_url, template_url)
    yield url
    asyncio.run(admin(server_url, f"DROP DATABASE {make_url(url).database} WITH (FORCE)"))


@pytest.fixture
def run(db_url: str) -> Callable[[Callable[[SqlStore], Awaitable[T]]], T]:
    """Run ``fn(store)`` in a fresh event loop with its own engine, on this test's database."""
    return on_database(db_url)


@pytest.fixture
def sql(db_url: str) -> Callable[[str], None]:
    """Run one SQL statement directly (to try what the schema refuses)."""

    def go(statement: str) -> None:
        asyncio.run(admin(db_url, statement))

    return go
