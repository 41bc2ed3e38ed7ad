"""An order is ``queued`` in the store until IB acknowledges it (issue 19, item 4): the
loop on the IB adapter, over TCP to the fake gateway, on PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from decimal import Decimal
from typing import Any

from brokers.ib.broker import IbBroker
from brokers.ib.fake import FakeGateway
from rules.clock import market_time
from rules.machine import Close, ExitReason
from service.clock import SpeedClock
from service.ports import CloseIntent, OrderEvent, OrderStatus, Store
from service.settings import IbSettings
from service.store.repository import SqlStore
from tests.factories import LOOP_BESIDE as P2
from tests.factories import LOOP_POSITION as P1
from tests.factories import LOOP_T0 as T0
from tests.integration.test_ib_reconcile import loop_on, on_ib
from tests.support import admin, on_database

BEHIND = 120  # requests ahead of the order in ib_async's queue (8 each 0.2 s: 3 s)


def _close() -> Close:
    """A profit close of 1 spread at a debit the market does not reach (it stays working)."""
    return Close(contracts=1, reason=ExitReason.PROFIT_TARGET, label="50% profit target",
                 target=Decimal("0.50"), tranche=0, debit=Decimal("0.01"), pnl=Decimal(79),
                 pct_of_max=Decimal("0.99"), triggers=(ExitReason.PROFIT_TARGET,))  # fmt: skip


async def _until(check: Any, seconds: float = 10.0) -> None:
    for _ in range(int(seconds / 0.02)):
        if check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("timed out waiting")


def test_an_order_behind_the_client_s_queue_is_queued_until_ib_acknowledges_it(
    db_url: str,
) -> None:
    """At start-up IB's client paces its requests, and an order waits behind the market
    data requests. While the gateway has not seen it, the store says ``queued`` (it said
    ``submitted``: a kill then left a "submitted" order IB never saw); once IB acknowledges
    it (PreSubmitted, Submitted: working at IB), the store says so."""

    async def work(app: Any, venue: IbBroker, gateway: FakeGateway, clock: SpeedClock) -> Any:
        await app.load(clock.now())
        events: list[OrderEvent] = []
        streaming = asyncio.create_task(venue.run(lambda _: None, events.extend))
        try:
            await _until(venue.connected)
            for _ in range(BEHIND):  # the client's queue filled, as at start-up
                venue.ib.client.reqCurrentTime()
            (stored,) = [s for s in await app.desk.store.open_positions() if s.position.id == P1.id]
            ref = await app.desk.close(stored, _close(), Decimal("0.60"), market_time(clock.now()))
            before = (await app.desk.store.detail(P1.id)).orders[-1].status, gateway.order(ref)
            await _until(lambda: any(e.status is OrderStatus.WORKING and e.order_ref == ref
                                     for e in events))  # fmt: skip
            app.desk.on_events(events)
            await app.desk.follow()
            after = await app.desk.store.detail(P1.id)
            return ref, before, after
        finally:
            streaming.cancel()

    async def go(store: Store) -> Any:
        await store.import_positions([P1, P2], "DU1234567")
        return await on_ib(store, work)

    ref, (status, seen), after = on_database(db_url)(go)
    assert seen is None  # the gateway had not seen it (the test is not vacuous)
    assert status == "queued"
    assert [o.status for o in after.orders] == ["working"]
    kinds = [e.kind for e in after.events if e.order_ref == ref]
    assert kinds[:3] == ["close intent", "order queued", "order working"]  # (then again)


def test_a_queued_order_the_broker_does_not_know_is_ended_on_start_without_alarm(
    db_url: str,
) -> None:
    """A kill left P2's order queued (handed to IB's client, never acknowledged); IB
    neither works it nor reports an execution of it: on start it is ended as cancelled,
    said as never having reached the broker, and nothing needs a human."""

    async def work(app: Any, venue: IbBroker, gateway: FakeGateway, clock: SpeedClock) -> Any:
        return app, await app.load(clock.now())

    async def go(store: Store) -> Any:
        assert isinstance(store, SqlStore)
        await store.import_positions([P1, P2], "DU1234567")
        intent = CloseIntent("P2:0:1", P2.id, 0, 1, "profit_target", "Profit Target (50%)",
                             Decimal("0.40"), 4, Decimal("0.40"))  # fmt: skip
        await store.record_intent(intent)
        await store.orders_sent(["P2:0:1"], "queued")
        placed = (T0 - timedelta(minutes=5)).isoformat()
        await admin(db_url, f"UPDATE close_orders SET created_at = '{placed}'")
        app, lines = await on_ib(store, work)
        return app, lines, await store.detail(P2.id)

    app, lines, p2 = on_database(db_url)(go)
    line = "P2:0:1: queued, never acknowledged: never reached the broker: ended as cancelled"
    assert line in lines
    assert [o.status for o in p2.orders] == ["cancelled"]
    assert p2.stored.attention is None
    assert app.views.attention == {}


def test_a_queued_order_the_broker_works_is_adopted_as_acknowledged_on_start(
    db_url: str,
) -> None:
    """A kill came after IB had P1's order but before its acknowledgement was written (the
    store says ``queued``): on start the order is adopted, as one working at the broker is,
    and recorded as acknowledged (``submitted``), not ended."""

    async def first(app: Any, venue: IbBroker, gateway: FakeGateway, clock: SpeedClock) -> Any:
        await app.load(clock.now())
        (stored,) = [s for s in await app.desk.store.open_positions() if s.position.id == P1.id]
        ref = await app.desk.close(stored, _close(), Decimal("0.60"), market_time(clock.now()))
        await _until(lambda: gateway.order(ref) is not None)  # IB has it; nothing streamed
        before = (await app.desk.store.detail(P1.id)).orders[-1].status
        await venue.close()  # (the kill: no acknowledgement written)
        venue = IbBroker(IbSettings(port=venue.settings.port, timeout=5), now=clock.now)
        try:
            second = await loop_on(app.desk.store, venue, clock)
            lines = await second.load(clock.now())
        finally:
            await venue.close()
        return ref, before, lines, second

    async def go(store: Store) -> Any:
        await store.import_positions([P1, P2], "DU1234567")
        return *await on_ib(store, first), await store.detail(P1.id)

    ref, before, lines, second, p1 = on_database(db_url)(go)
    assert before == "queued"
    assert f"{ref}: working at the broker: adopted" in lines
    assert [o.status for o in p1.orders] == ["submitted"]
    assert second.desk.live_for(P1.id) == ref
    assert p1.stored.attention is None


def test_an_order_in_the_client_s_queue_never_leaves_once_the_lease_is_lost(
    db_url: str,
) -> None:
    """The failover tests met it: an order ib_async held back behind other requests (its
    pacing) left from a timer after the process woke from a pause, its lease lost by then.
    Fenced at the client's door (``IbBroker.fence_sends``), nothing queued leaves once the
    lease is not held: the gateway never sees the order, nor anything asked after."""

    async def work(app: Any, venue: IbBroker, gateway: FakeGateway, clock: SpeedClock) -> Any:
        holding = [True]
        venue.fence_sends(lambda: holding[0])
        await app.load(clock.now())
        streaming = asyncio.create_task(venue.run(lambda _: None, lambda _: None))
        try:
            await _until(venue.connected)
            for _ in range(BEHIND):  # the client's queue filled
                venue.ib.client.reqCurrentTime()
            (stored,) = [s for s in await app.desk.store.open_positions() if s.position.id == P1.id]
            ref = await app.desk.close(stored, _close(), Decimal("0.60"), market_time(clock.now()))
            holding[0] = False  # the lease lost, the order still in the client's queue
            queued, received = gateway.order(ref), len(gateway.received)
            await asyncio.sleep(BEHIND / 8 * 0.2 + 1.0)  # (the queue's time, and more)
            return ref, queued, gateway.order(ref), len(gateway.received) - received
        finally:
            streaming.cancel()

    async def go(store: Store) -> Any:
        await store.import_positions([P1, P2], "DU1234567")
        return await on_ib(store, work)

    ref, queued, after, more = on_database(db_url)(go)
    assert ref
    assert queued is None  # it was in the client's queue (the test is not vacuous)
    assert after is None  # and never reached the gateway
    assert more == 0
