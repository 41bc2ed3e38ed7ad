"""What the tests share that is neither a fixture nor a builder: the project's paths, what
one CLI command did, the stores' runner types, and PostgreSQL administration."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import asyncpg
from sqlalchemy.engine import make_url

from service.ports import Store
from service.store.repository import SqlStore

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"

T = TypeVar("T")

# ``run(fn)``: ``fn(store)`` in a fresh event loop (the fixtures ``run`` of tests/conftest.py
# and tests/integration/contract/conftest.py).
StoreRun = Callable[[Callable[[SqlStore], Awaitable[T]]], T]
PortRun = Callable[[Callable[[Store], Awaitable[T]]], T]


def closing(lines: Iterable[str]) -> list[str]:
    """The daemon's CLOSING lines as the spec's line reads on from the position id (the
    exchange time and the id dropped): ``XLF put_credit - Time Stop (14 DTE) - ...``."""
    return [
        line.split(" CLOSING: ", 1)[1].split(" ", 1)[1] for line in lines if " CLOSING: " in line
    ]


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


def plain_url(url: str) -> str:
    """An asyncpg-style URL (no +driver) for administrative connections."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def with_db(url: str, name: str) -> str:
    return make_url(url).set(database=name).render_as_string(hide_password=False)


async def admin(url: str, *statements: str) -> None:
    conn = await asyncpg.connect(plain_url(url))
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


def new_database(server_url: str, template: str | None = None) -> str:
    name = f"sw_{uuid.uuid4().hex[:12]}"
    suffix = f" TEMPLATE {make_url(template).database}" if template else ""
    asyncio.run(admin(server_url, f"CREATE DATABASE {name}{suffix}"))
    return with_db(server_url, name)


def on_database(url: str) -> StoreRun[T]:
    """Run ``fn(store)`` in a fresh event loop with a :class:`SqlStore` on ``url`` (its own
    engine, disposed after)."""
    from service.store import database  # noqa: PLC0415

    def go(fn: Callable[[SqlStore], Awaitable[T]]) -> T:
        async def main() -> T:
            engine = database.engine(url)
            try:
                return await fn(SqlStore(engine))
            finally:
                await engine.dispose()

        return asyncio.run(main())

    return go
