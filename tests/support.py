"""What the tests share that is neither a fixture nor a builder: the project's paths, what
one CLI command did, the stores' runner types, and PostgreSQL administration."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

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


def start(*argv: str, **env: str) -> subprocess.Popen[str]:
    """``spreadwatch ARGV`` as a process, on this tree (cwd, PYTHONPATH and SPREADWATCH_PURE
    as the tests', ``env`` over them; an empty value unsets)."""
    merged = {**os.environ, **env}
    return subprocess.Popen(
        [sys.executable, "-m", "service.cli", *argv],
        cwd=ROOT,
        env={k: v for k, v in merged.items() if v},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def spreadwatch(*argv: str, **env: str) -> Run:
    """``spreadwatch ARGV`` as a process, to its end (two minutes at most)."""
    proc = start(*argv, **env)
    out, err = proc.communicate(timeout=120)
    return Run(proc.returncode, out, err)


class Daemon:
    """``spreadwatch run`` as a process: its output lines kept as they come."""

    def __init__(self, env: dict[str, str], *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "service.cli", "run", *args],
            cwd=ROOT,
            env={**os.environ, "SPREADWATCH_HTTP": "false", **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.out: list[str] = []
        self.log: list[dict[str, Any]] = []
        self.errors: list[str] = []
        for stream, sink in ((self.proc.stdout, self.out), (self.proc.stderr, self.errors)):
            threading.Thread(target=self._read, args=(stream, sink), daemon=True).start()

    def _read(self, stream: Any, sink: list[str]) -> None:
        for line in stream:
            sink.append(line)
            if line.startswith("{"):
                self.log.append(json.loads(line))

    def logged(self, event: str, position: str | None = None) -> bool:
        return any(
            e.get("event") == event and position in (None, e.get("position_id")) for e in self.log
        )

    def until(self, what: Callable[[], bool], seconds: float = 20.0) -> None:
        deadline = time.monotonic() + seconds
        while not what():
            assert self.proc.poll() is None, "".join(self.out + self.errors)
            assert time.monotonic() < deadline, "".join(self.out + self.errors[-30:])
            time.sleep(0.05)

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        self.code: int = self.proc.wait(timeout=20)
        return self.code


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
