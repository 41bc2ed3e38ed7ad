"""Orders an earlier run left working, found at start: one placed before the executions IB
reports (today's only; a daemon down overnight after a late fill cannot learn from IB
whether it filled), one IB lists among today's completed orders, one another client
works. The loop on the IB adapter, over TCP to the fake gateway, on PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from brokers.ib.broker import IbBroker
from brokers.ib.fake import FakeGateway
from service.clock import SpeedClock
from service.orders.closing import closing_order
from service.ports import CloseIntent, Store, leg_key
from service.store.repository import SqlStore
from tests.factories import LOOP_BESIDE as P2
from tests.factories import LOOP_POSITION as P1
from tests.factories import LOOP_T0 as T0
from tests.integration.test_ib_reconcile import on_ib
from tests.support import admin, on_database


async def left_working(
    store: Any, url: str, position: Any, ref: str, placed: Any, perm_id: int = 900
) -> None:
    """An order an earlier run placed at ``placed`` and left as working in the store."""
    intent = CloseIntent(ref, position.id, 0, 1, "profit_target", "Profit Target (50%)",
                         Decimal("0.40"), 4, Decimal("0.40"))  # fmt: skip
    await store.record_intent(intent)
    await store.order_sent(ref, "working", broker_order_id=90, perm_id=perm_id)
    await admin(url, f"UPDATE close_orders SET created_at = '{placed.isoformat()}' "
                f"WHERE order_ref = '{ref}'")  # fmt: skip


def test_an_order_placed_before_today_that_no_longer_works_is_decided_by_the_account(
    db_url: str,
) -> None:
    """P1's and P2's orders were placed yesterday; IB works neither and reports no execution
    of either (its executions are today's). The account holds all of P1 still: its order
    did not fill, and P1 trades on. P2's legs moved by 2 spreads (a fill while the daemon
    was down): P2 needs attention, with the holdings. Before, both were ended as cancelled
    and traded on as if nothing had happened (stop 24), then both needed attention."""

    async def work(app: Any, venue: IbBroker, gateway: FakeGateway, clock: SpeedClock) -> Any:
        gateway.trade_outside(leg_key(P2, 0), 2)  # short -5 -> -3
        gateway.trade_outside(leg_key(P2, 1), -2)  # long 5 -> 3
        return app, await app.load(clock.now())

    async def go(store: Store) -> Any:
        assert isinstance(store, SqlStore)
        await store.import_positions([P1, P2], "DU1234567")
        await left_working(store, db_url, P1, "P1:0:1", T0 - timedelta(days=1))
        await left_working(store, db_url, P2, "P2:0:1", T0 - timedelta(days=1, hours=-1))
        app, lines = await on_ib(store, work)
        return app, lines, await store.detail(P1.id), await store.detail(P2.id)

    app, lines, p1, p2 = on_database(db_url)(go)
    unknown = "no longer works at the broker, which reports today's executions only"
    assert f"P1:0:1, placed 2027-03-01 15:00 UTC, {unknown}" in " ".join(lines)
    assert "P1:0:1: the account holds what the open positions imply on its legs: it did not " \
        "fill" in lines  # fmt: skip
    why = (
        f"order P2:0:1, placed 2027-03-01 16:00 UTC, {unknown}, and the account moved (SPY "
        "2027-04-16 P 440: the account holds -3, the open positions imply -5; SPY 2027-04-16 "
        "P 435: the account holds 3, the open positions imply 5): it may have filled unseen; "
        "compare the account (`spreadwatch positions sync`), then void or resume the position"
    )
    assert f"P2:0:1: {why}: its position needs attention" in lines
    assert p2.stored.attention == why
    assert app.views.attention == {P2.id: why}
    assert p1.stored.attention is None
    assert [o.status for o in p1.orders] == [o.status for o in p2.orders] == ["cancelled"]


@pytest.mark.ib_errors(r"^Error 202, ")  # (IB's word on the cancel)
def test_an_order_ib_lists_as_completed_today_is_ended_as_ib_says(db_url: str) -> None:
    """P1's order was placed yesterday after the close (IB holds such a DAY order for the
    open) and cancelled at IB this morning: IB lists it among today's completed orders,
    Cancelled with nothing filled, and it is ended so, by its perm id, with no unknown
    outcome. Before, an order placed before today was always "outcome unknown"."""
    from ib_async import LimitOrder  # noqa: PLC0415

    async def cancelled_at_ib(store: Store, venue: IbBroker) -> None:
        """P1:0:1 placed by the same client id as the daemon's, then cancelled at IB."""
        await venue.qualify([leg_key(P1, 0), leg_key(P1, 1)])
        bag = venue._bag(
            closing_order(P1, "P1:0:1", 4, Decimal("0.05"))
        )  # (as the earlier run placed it: same client id)
        trade = venue.ib.placeOrder(bag, LimitOrder("BUY", 4, 0.05, orderRef="P1:0:1"))
        while trade.orderStatus.status != "Submitted":
            await asyncio.sleep(0.05)
        venue.ib.cancelOrder(trade.order)
        while not trade.isDone():
            await asyncio.sleep(0.05)
        await left_working(store, db_url, P1, "P1:0:1", T0 - timedelta(hours=17),
                           perm_id=trade.order.permId)  # fmt: skip

    async def go(store: Store) -> Any:
        await store.import_positions([P1, P2], "DU1234567")

        async def work(app: Any, venue: IbBroker, gateway: FakeGateway, clock: Any) -> Any:
            await cancelled_at_ib(store, venue)
            return app, await app.load(clock.now())

        app, lines = await on_ib(store, work)
        return app, lines, await store.detail(P1.id)

    app, lines, p1 = on_database(db_url)(go)
    assert "P1:0:1: Cancelled at the broker with 0 filled (its completed orders): ended as " \
        "cancelled" in lines  # fmt: skip
    assert not any("today's executions only" in line for line in lines)
    assert p1.stored.attention is None
    assert app.views.attention == {}
    assert [o.status for o in p1.orders] == ["cancelled"]


def test_an_order_another_client_works_puts_its_position_before_a_human(db_url: str) -> None:
    """P1:0:1 works at IB under client id 99 (another spreadwatch, or TWS): its ids are that
    client's, so this daemon can neither reprice nor cancel it. P1 needs attention, saying
    so; the order is neither adopted nor ended. Before, it was said in the JSON log only,
    and P1 traded on beside an order it could not manage."""
    from ib_async import IB, LimitOrder  # noqa: PLC0415

    async def go(store: Store) -> Any:
        await store.import_positions([P1, P2], "DU1234567")

        async def work(app: Any, venue: IbBroker, gateway: FakeGateway, clock: Any) -> Any:
            other = IB()
            await other.connectAsync("127.0.0.1", venue.settings.port, clientId=99, timeout=5)
            try:
                await venue.qualify([leg_key(P1, 0), leg_key(P1, 1)])
                bag = venue._bag(closing_order(P1, "P1:0:1", 4, Decimal("0.05")))
                trade = other.placeOrder(bag, LimitOrder("BUY", 4, 0.05, orderRef="P1:0:1"))
                while trade.orderStatus.status != "Submitted":
                    await asyncio.sleep(0.05)
                await left_working(store, db_url, P1, "P1:0:1", T0 - timedelta(minutes=5),
                                   perm_id=trade.order.permId)  # fmt: skip
                return app, await app.load(clock.now())
            finally:
                other.disconnect()

        app, lines = await on_ib(store, work)
        return app, lines, await store.detail(P1.id)

    app, lines, p1 = on_database(db_url)(go)
    why = p1.stored.attention
    assert why is not None
    assert why.startswith("order P1:0:1 works at IB under another client (client id 99, ")
    assert f"P1:0:1: {why}: its position needs attention" in lines
    assert app.views.attention == {P1.id: why}
    assert [o.status for o in p1.orders] == ["working"]
    assert app.desk.live_for(P1.id) is None
