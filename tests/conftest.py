"""Shared paths, the CLI in-process, and a PostgreSQL, for every tier of tests."""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from service import native

native.use_sources()  # SPREADWATCH_PURE=1: the suite on the .py sources beside a compiled build

from service.cli.main import main  # noqa: E402
from service.store import database  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"


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


@dataclass
class Run:
    """What one ``spreadwatch`` command did: exit code, stdout, stderr."""

    code: int
    out: str
    err: str

    @property
    def exits(self) -> list[dict[str, object]]:
        return [json.loads(line) for line in self.out.splitlines()]

    @property
    def err_lines(self) -> list[str]:
        return self.err.splitlines()


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., Run]:
    """Run the CLI in-process, as a user would from the shell."""

    def run(*argv: str | Path) -> Run:
        code = main([str(a) for a in argv])
        captured = capsys.readouterr()
        return Run(code, captured.out, captured.err)

    return run


# A real PostgreSQL for the tests that need one: TEST_DATABASE_URL's server, or an embedded
# one. The session migrates one template database with Alembic; each test gets a fresh
# database copied from it (CREATE DATABASE ... TEMPLATE), dropped after.


def _plain(url: str) -> str:
    """An asyncpg-style URL (no +driver) for administrative connections."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _with_db(url: str, name: str) -> str:
    return make_url(url).set(database=name).render_as_string(hide_password=False)


async def _admin(url: str, *statements: str) -> None:
    conn = await asyncpg.connect(_plain(url))
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


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
    asyncio.run(_admin(server_url, f"DROP DATABASE IF EXISTS {name}", f"CREATE DATABASE {name}"))
    url = _with_db(server_url, name)
    asyncio.run(database.upgrade(url))
    yield url
    asyncio.run(_admin(server_url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


def new_database(server_url: str, template: str | None = None) -> str:
    name = f"sw_{uuid.uuid4().hex[:12]}"
    suffix = f" TEMPLATE {make_url(template).database}" if template else ""
    asyncio.run(_admin(server_url, f"CREATE DATABASE {name}{suffix}"))
    return _with_db(server_url, name)


@pytest.fixture
def empty_url(server_url: str) -> Iterator[str]:
    """A database with no schema at all."""
    url = new_database(server_url)
    yield url
    asyncio.run(_admin(server_url, f"DROP DATABASE {make_url(url).database} WITH (FORCE)"))


@pytest.fixture
def db_url(server_url: str, template_url: str) -> Iterator[str]:
    """A database migrated to head, this test's own."""
    url = new_database(server_url, template_url)
    yield url
    asyncio.run(_admin(server_url, f"DROP DATABASE {make_url(url).database} WITH (FORCE)"))
