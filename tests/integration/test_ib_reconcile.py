"""Reconciliation that never stops, and quarantine, on the IB path: the loop on the IB
adapter, over TCP to the fake gateway, on PostgreSQL.

The fake gateway's account holds P1 (SPY 450/445 P x10, sold at 0.80) and P2 (SPY
440/435 P x5); a 5% selloff starts a minute in (market time, 20x the wall).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest

from brokers.ib.broker import IbBroker
from brokers.ib.fake import FakeGateway
from rules.books import DEFAULT_BOOKS
from service import bootstrap
from service.alerts.alerter import Alerter
from service.clock import SpeedClock
from service.ports import Store, leg_key
from service.settings import IbSettings, Settings, Webhook
from tests.factories import LOOP_BESIDE as P2
from tests.factories import LOOP_POSITION as P1
from tests.factories import LOOP_SCHEDULE, market
from tests.factories import LOOP_T0 as T0
from tests.loop import run_until
from tests.support import on_database

UNKNOWN = replace(P1, id="Z1", underlying="ZZZZ")  # no such underlying at the gateway


async def loop_on(store: Store, venue: IbBroker, clock: SpeedClock) -> Any:
    """The daemon's loop on ``venue`` (connected here), built as the composition root
    builds it (holdings checked every second), not yet loaded."""
    await venue.connect()
    app = await bootstrap.build(
        Settings(reconcile=1.0),
        store=store,
        venue=venue,
        books=dict(DEFAULT_BOOKS),
        schedule=LOOP_SCHEDULE,
        clock=clock,
    )
    return app.loop


@contextlib.asynccontextmanager
async def holding_both() -> AsyncIterator[tuple[FakeGateway, SpeedClock, int]]:
    """A fake gateway whose account holds P1 and P2, its market stepped at 20x the wall
    from T0: the gateway, its clock and its port; closed after."""
    clock = SpeedClock(T0, speed=20)
    gateway = FakeGateway(market(), clock, account="DU1234567")
    for p in (P1, P2):
        gateway.hold_spreads(p, p.contracts)
    port = await gateway.start("127.0.0.1", 0)
    ticking = asyncio.create_task(gateway.run())
    try:
        yield gateway, clock, port
    finally:
        ticking.cancel()
        await gateway.close()


async def on_ib(store: Store, work: Any) -> Any:
    async with holding_both() as (gateway, clock, port):
        venue = IbBroker(IbSettings(port=port, timeout=5), now=clock.now)
        try:
            return await work(await loop_on(store, venue, clock), venue, gateway, clock)
        finally:
            await venue.close()


@pytest.mark.ib_errors(r"^Error 104, ")
def test_legs_closed_at_the_broker_behind_our_back_need_attention_and_no_order(
    db_url: str,
) -> None:
    """The trader buys 4 of P1's short puts back in TWS: IB tells the adapter the new
    holding; once the difference has held, P1 needs attention (in the store, said once,
    an alert), no order goes for it in the selloff, and P2 still closes."""

    async def work(app: Any, venue: IbBroker, gateway: FakeGateway, clock: SpeedClock) -> Any:
        await app.load(clock.now())
        gateway.trade_outside(leg_key(P1, 0), 4)  # -10 -> -6, outside the API

        def done(a: Any) -> bool:
            return P1.id in a.views.attention and a.book.watches[P2.id].state.remaining == 0

        await run_until(app, venue, clock, done, limit=60)
        alerter = Alerter([Webhook(url="http://127.0.0.1:9/")], app.views, connected=lambda: True)
        alerter.check()
        return app, [alerter.queues[0].get_nowait() for _ in range(alerter.queues[0].qsize())]

    async def go(store: Store) -> Any:
        await store.import_positions([P1, P2], "DU1234567")
        app, alerts = await on_ib(store, work)
        return app, alerts, await store.detail(P1.id), await store.detail(P2.id)

    app, alerts, p1, p2 = on_database(db_url)(go)
    why = app.views.attention[P1.id]
    assert why.startswith("the account holds -6 of SPY 2027-04-16 P 450")
    assert why.endswith("the open positions imply -10")
    assert p1.orders == []
    assert p1.stored.shown_status() == f"needs attention: {why}"
    assert [e.detail for e in p1.events if e.kind == "needs attention"] == [why]
    assert (p2.stored.remaining, [o.status for o in p2.orders][-1]) == (0, "filled")
    (attention,) = [a for a in alerts if a.kind == "attention"]
    assert attention.text == f"NEEDS ATTENTION: P1: {why}"


@pytest.mark.ib_errors(r"^Error 200, ", r"^Error 104, ")
def test_a_contract_ib_knows_not_is_quarantined_and_the_rest_watched(db_url: str) -> None:
    """IB answers error 200 for Z1's legs: Z1 needs attention (with its id and the leg),
    P1 and P2 are watched, subscribed and close in the selloff; no exception."""

    async def work(app: Any, venue: IbBroker, gateway: FakeGateway, clock: SpeedClock) -> Any:
        lines = await app.load(clock.now())

        def done(a: Any) -> bool:
            return all(a.book.watches[p.id].state.remaining < p.contracts for p in (P1, P2))

        await run_until(app, venue, clock, done, limit=60)
        return app, lines

    async def go(store: Store) -> Any:
        await store.import_positions([P1, P2, UNKNOWN], "DU1234567")
        app, lines = await on_ib(store, work)
        return app, lines, await store.detail(UNKNOWN.id), await store.contract_ids(P1.id)

    app, lines, z1, con_ids = on_database(db_url)(go)
    why = "contract unknown to IB: ZZZZ 2027-04-16 P 450"
    assert f"needs attention: Z1: {why}" in lines
    assert z1.stored.attention == why
    assert UNKNOWN.id not in app.book.watches
    assert app.intake.outside == {UNKNOWN.id: why}
    assert all(c is not None for c in con_ids.values())


@pytest.mark.ib_errors(r"^Error 104, ")
def test_commissions_ib_reports_seconds_after_the_fills_reach_the_stored_fills(
    db_url: str,
) -> None:
    """The selloff closes P1 and P2 on IB while each commission report trails its
    execution by 2 s (past the fill's short wait): each fill is stored at once, commission
    pending, and each leg's report is added to it when it comes, once; realised P&L is
    net of them."""

    async def work(app: Any, venue: IbBroker, gateway: FakeGateway, clock: SpeedClock) -> Any:
        gateway.commission_delay = 2.0
        await app.load(clock.now())

        def done(a: Any) -> bool:
            closed = all(a.book.watches[p.id].state.remaining == 0 for p in (P1, P2))
            return closed and a.views.commissions == 2 * a.views.fills

        await run_until(app, venue, clock, done, limit=90)
        return app

    async def go(store: Store) -> Any:
        await store.import_positions([P1, P2], "DU1234567")
        app = await on_ib(store, work)
        details = [await store.detail(p.id) for p in (P1, P2)]
        return app, details, await store.realised()

    app, details, realised = on_database(db_url)(go)
    fills = [f for d in details for f in d.fills]
    assert sum(f.quantity for f in fills) == P1.contracts + P2.contracts
    # 0.65 a contract, two legs a spread: every report in, none twice
    assert all(f.commission == f.quantity * 2 * Decimal("0.65") for f in fills)
    assert sum(r.commission for r in realised) == (P1.contracts + P2.contracts) * Decimal("1.30")
    assert app.views.commissions == 2 * len(fills)
