"""Each store the port has, for one suite of its contract: in memory, and on PostgreSQL
(a database of the test's own: see tests/conftest.py). What the suite writes is built by
tests/factories.py."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import pytest

from service.ports import Store
from service.store.memory import InMemoryStore
from tests.support import on_database

T = TypeVar("T")


@pytest.fixture(params=["memory", "sql"])
def run(request: pytest.FixtureRequest) -> Callable[[Callable[[Store], Awaitable[T]]], T]:
    """Run ``fn(store)`` in a fresh event loop on this test's store: one
    :class:`InMemoryStore` for the test, or a :class:`SqlStore` on the test's own database
    (an engine per call)."""
    if request.param == "memory":
        memory = InMemoryStore()

        def in_memory(fn: Callable[[Store], Awaitable[T]]) -> T:
            return asyncio.run(fn(memory))  # type: ignore[arg-type]

        return in_memory
    return on_database(request.getfixturevalue("db_url"))  # type: ignore[return-value]
