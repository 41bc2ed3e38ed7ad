"""The store's tests: a store on its own database (see tests/conftest.py), positions, and
a monitor on a venue."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import TypeVar

import pytest

from brokers.ib.broker import IbBroker
from brokers.sim.gateway import SimVenue
from rules.books import DEFAULT_BOOKS
from rules.model import Leg, Position, Right, Side, Strategy
from rules.pricing import RepriceSchedule
from service import bootstrap
from service.app.assembly import App
from service.clock import ManualClock
from service.ports import Store
from service.settings import Settings
from service.store import database
from service.store.repository import SqlStore
from tests.conftest import _admin, _plain, new_database

__all__ = ["_plain", "new_database"]  # (the store's tests import them from here)

T = TypeVar("T")


Run = Callable[[Callable[[SqlStore], Awaitable[T]]], T]


@pytest.fixture
def run(db_url: str) -> Callable[[Callable[[SqlStore], Awaitable[T]]], T]:
    """Run ``fn(store)`` in a fresh event loop with its own engine."""

    def go(fn: Callable[[SqlStore], Awaitable[T]]) -> T:
        async def main() -> T:
            engine = database.engine(db_url)
            try:
                return await fn(SqlStore(engine))
            finally:
                await engine.dispose()

        return asyncio.run(main())

    return go


@pytest.fixture
def sql(db_url: str) -> Callable[[str], None]:
    """Run one SQL statement directly (to try what the schema refuses)."""

    def go(statement: str) -> None:
        asyncio.run(_admin(db_url, statement))

    return go


# Positions the store's tests use -------------------------------------------------

OPENED = datetime(2027, 3, 1, 15, 0, tzinfo=UTC)  # 10:00 New York
EXPIRY = date(2027, 4, 16)  # 46 days after the session of 2027-03-01


def vertical(pid: str = "P1", contracts: int = 10, credit: str = "1.00") -> Position:
    return Position(
        id=pid,
        book="PRIMARY",
        underlying="SPY",
        strategy=Strategy.PUT_CREDIT,
        legs=(
            Leg(Right.PUT, Decimal("450"), EXPIRY, Side.SHORT),
            Leg(Right.PUT, Decimal("445"), EXPIRY, Side.LONG),
        ),
        contracts=contracts,
        entry_credit=Decimal(credit),
        opened_at=OPENED,
    )


def condor(pid: str = "C1") -> Position:
    return Position(
        id=pid,
        book="INCOME_POP",
        underlying="QQQ",
        strategy=Strategy.IRON_CONDOR,
        legs=(
            Leg(Right.PUT, Decimal("395.5"), EXPIRY, Side.LONG),
            Leg(Right.PUT, Decimal("400.5"), EXPIRY, Side.SHORT),
            Leg(Right.CALL, Decimal("450"), EXPIRY, Side.SHORT),
            Leg(Right.CALL, Decimal("455"), EXPIRY, Side.LONG),
        ),
        contracts=4,
        entry_credit=Decimal("2.15"),
        opened_at=OPENED,
        multiplier=100,
    )


async def monitor_on(store: Store, venue: SimVenue | IbBroker, schedule: RepriceSchedule) -> App:
    """The loop the composition root builds on ``store`` and a venue (simulated, or IB):
    the default books, NYSE hours."""
    app = await bootstrap.build(
        Settings(), store=store, venue=venue, books=dict(DEFAULT_BOOKS), schedule=schedule
    )
    return app.loop


async def run_for(monitor: App, venue: SimVenue, clock: ManualClock, seconds: float) -> None:
    """``seconds`` of market time in 250 ms steps; while the simulated broker's connection
    is down only the housekeeping runs (no quotes, no order events reach the monitor)."""
    end = clock.now_ + timedelta(seconds=seconds)
    while clock.now_ < end:
        clock.now_ += timedelta(milliseconds=250)
        if venue.connected():
            await monitor.step(clock.now_, *venue.step(clock.now_))
        else:
            await monitor.housekeeping(clock.now_)
        await asyncio.sleep(0)  # other tasks (an alerter, a server) get their turn
