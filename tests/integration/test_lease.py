"""The trading lease on a real PostgreSQL (migration 0008): one holder at a time, its
epoch raised at every change of holder, and close orders fenced by it in the database
itself: a process that lost the lease (paused, cut off) cannot write an intent, even
if it believes it still holds the lease."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from service.app.lease import HOLDER, STANDBY, Lease
from service.errors import NotHolding, StoreUnavailable
from service.ports import LeaseHeld
from service.store.repository import SqlStore
from tests.factories import intent, vertical
from tests.support import StoreRun as Run

TTL = 30.0  # (long: these tests end a lease by hand, never by waiting)


async def _lapse(store: SqlStore) -> None:
    """The lease lapsed (its holder paused or cut off past its ttl)."""
    async with store._engine.begin() as conn:
        await conn.exec_driver_sql("UPDATE trading_lease SET expires_at = clock_timestamp()")


async def _orders(store: SqlStore) -> list[Any]:
    async with store._engine.connect() as conn:
        result = await conn.exec_driver_sql(
            "SELECT order_ref, lease_epoch FROM close_orders ORDER BY order_ref"
        )
        return [tuple(r) for r in result]


def test_one_holder_at_a_time_and_the_epoch_rises_at_every_change(run: Run) -> None:
    async def go(store: SqlStore) -> list[Any]:
        first = await store.acquire_lease("A", TTL)
        refused = await store.acquire_lease("B", TTL)  # A's is live
        held = await store.lease_held()
        await _lapse(store)
        renewed_late = await store.renew_lease("A", 1, TTL)  # lapsed: not A's any more
        taken = await store.acquire_lease("B", TTL)
        stale = await store.renew_lease("A", 1, TTL)
        renewed = await store.renew_lease("B", 2, TTL)
        again = await store.acquire_lease("B", TTL)  # B restarted: its own, at once
        await store.release_lease("B", 3)
        after_release = await store.acquire_lease("A", TTL)
        return [first, refused, held, renewed_late, taken, stale, renewed, again, after_release]

    first, refused, held, late, taken, stale, renewed, again, released = run(go)
    assert (first, refused) == (1, None)
    assert isinstance(held, LeaseHeld)
    assert (held.holder, held.epoch, held.live) == ("A", 1, True)
    assert 0 < held.left <= TTL
    assert (late, taken, stale, renewed) == (False, 2, False, True)
    assert (again, released) == (3, 4)


def test_an_intent_of_a_lost_epoch_is_refused_by_the_database_and_nothing_is_written(
    run: Run,
) -> None:
    """A holder that believes it still holds the lease (its clock says so: a paused
    process) writes with its old epoch after a standby took over: the database refuses
    it, with the position untouched; the new holder's epoch writes."""

    async def go(store: SqlStore) -> list[Any]:
        await store.import_positions([vertical("P1"), vertical("P2")], "DU1")
        old = await store.acquire_lease("A", TTL)
        store.fence(old, lambda: True)
        await store.record_intent(intent("P1"))
        await _lapse(store)
        new = await store.acquire_lease("B", TTL)
        refused: list[str] = []
        try:
            await store.record_intent(intent("P2"))  # A's epoch: stale
        except NotHolding as exc:
            refused.append(str(exc))
        (p2,) = await store.positions(["P2"])
        status = p2.status
        store.fence(new, lambda: True)
        await store.record_intent(intent("P2"))
        return [old, new, refused, status, await _orders(store)]

    old, new, refused, status, orders = run(go)
    assert (old, new) == (1, 2)
    assert len(refused) == 1
    assert "fenced" in refused[0], refused
    assert status.value == "open"  # (its intent's position change rolled back with it)
    assert orders == [("P1:0:1", 1), ("P2:0:1", 2)]


def test_an_intent_without_an_epoch_is_refused_while_a_holder_trades(run: Run) -> None:
    """A tool's (unfenced) write goes in while no daemon holds the lease, not beside one."""

    async def go(store: SqlStore) -> list[Any]:
        await store.import_positions([vertical("P1"), vertical("P2")], "DU1")
        await store.record_intent(intent("P1"))  # no lease ever taken
        await store.acquire_lease("A", TTL)
        with pytest.raises(NotHolding, match="A holds the trading lease"):
            await store.record_intent(intent("P2"))
        return await _orders(store)

    assert run(go) == [("P1:0:1", None)]


def test_a_store_whose_lease_is_not_held_touches_nothing(run: Run) -> None:
    """Fenced by a lease this process no longer holds (by its own clock), every call of the
    store is refused before it reaches the database, reads included."""

    async def go(store: SqlStore) -> list[str]:
        await store.import_positions([vertical("P1")], "DU1")
        store.fence(1, lambda: False)
        said = []
        for call in (store.record_intent(intent("P1")), store.open_positions()):
            with pytest.raises(NotHolding) as caught:
                await call
            said.append(str(caught.value))
        store.fence(None, None)
        (p1,) = await store.positions(["P1"])
        assert p1.status.value == "open"
        return said

    said = run(go)
    assert said[0].startswith("record_intent: this process does not hold the trading lease")
    assert said[1].startswith("open_positions: ")


class _Board:
    """A lease board whose renewals fail from ``failing`` on (the database away)."""

    def __init__(self) -> None:
        self.failing = False
        self.renewals = 0

    async def acquire_lease(self, holder: str, ttl: float) -> int | None:
        return 7

    async def renew_lease(self, holder: str, epoch: int, ttl: float) -> bool:
        self.renewals += 1
        if self.failing:
            raise StoreUnavailable("renew: database unavailable")
        return True

    async def release_lease(self, holder: str, epoch: int) -> None: ...

    async def lease_held(self) -> LeaseHeld | None:
        return None


def test_a_holder_whose_renewals_fail_stops_holding_within_one_ttl() -> None:
    """Renewals that fail (the database away) end the lease by this process's own clock
    within ``ttl`` of the last one that went through, whatever the database says after."""

    async def go() -> tuple[list[str], float, float, str, int]:
        board = _Board()
        lease = Lease(board, "A", ttl=0.6, renew=0.1)
        roles = []
        assert await lease.acquire(asyncio.Event(), print) == 7
        roles.append(lease.seat.role)
        keeping = asyncio.create_task(lease.keep())
        await asyncio.sleep(0.35)
        assert lease.holding()
        assert board.renewals >= 2
        board.failing = True
        cut = asyncio.get_running_loop().time()
        why = await keeping
        ended = asyncio.get_running_loop().time() - cut
        roles.append(lease.seat.role)
        return roles, ended, lease.ttl, why, board.renewals

    roles, ended, ttl, why, renewals = asyncio.run(go())
    assert roles == [HOLDER, STANDBY]
    assert ended <= ttl + 0.15, ended  # (the last renewal was at most `renew` before the cut)
    assert "not renewed within 0.6 s" in why
    assert renewals >= 4
