"""Each store the port has, for one suite of its contract: in memory, and on PostgreSQL
(a database of the test's own: see tests/conftest.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta
from decimal import Decimal
from typing import TypeVar

import pytest

from rules.machine import Close, ExitReason
from service.ports import CloseIntent, Fill, Store, order_ref
from service.store import database
from service.store.memory import InMemoryStore
from service.store.repository import SqlStore
from tests.store.conftest import OPENED

T = TypeVar("T")

Run = Callable[[Callable[[Store], Awaitable[T]]], T]


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
    db_url: str = request.getfixturevalue("db_url")

    def on_postgres(fn: Callable[[Store], Awaitable[T]]) -> T:
        async def main() -> T:
            engine = database.engine(db_url)
            try:
                return await fn(SqlStore(engine))
            finally:
                await engine.dispose()

        return asyncio.run(main())

    return on_postgres


# What the suite writes ----------------------------------------------------------------


def intent(
    pid: str = "P1", quantity: int = 4, stage: int | None = 0, reason: str = "profit_target"
) -> CloseIntent:
    return CloseIntent(
        order_ref=order_ref(pid, stage, 1),
        position_id=pid,
        stage=stage,
        attempt=1,
        reason=reason,
        label="50% profit target" if reason == "profit_target" else "loss stop",
        target=Decimal("0.50") if reason == "profit_target" else None,
        quantity=quantity,
        limit_price=Decimal("0.50"),
        quotes={"legs": [{"bid": "0.61", "ask": "0.63"}, {"bid": "0.11", "ask": "0.13"}]},
    )


PROFIT_CLOSE = Close(
    contracts=4,
    reason=ExitReason.PROFIT_TARGET,
    label="50% profit target",
    target=Decimal("0.50"),
    tranche=0,
    debit=Decimal("0.48"),
    pnl=Decimal("208.00"),
    pct_of_max=Decimal("0.52"),
    triggers=(ExitReason.PROFIT_TARGET,),
)


def fill(exec_id: str, quantity: int, price: str = "0.50", order_ref: str = "P1:0:1") -> Fill:
    return Fill(
        exec_id=exec_id,
        order_ref=order_ref,
        quantity=quantity,
        price=Decimal(price),
        time=OPENED + timedelta(days=3),
        commission=Decimal("1.30"),
    )
