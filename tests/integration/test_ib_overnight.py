"""An order placed before the executions IB reports (today's only): a daemon down overnight
after a late fill cannot learn from IB whether it filled. The loop on the IB adapter, over
TCP to the fake gateway, on PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from brokers.ib.broker import IbBroker
from brokers.ib.fake import FakeGateway
from service.clock import SpeedClock
from service.ports import CloseIntent, Store
from service.store.repository import SqlStore
from tests.factories import LOOP_BESIDE as P2
from tests.factories import LOOP_POSITION as P1
from tests.factories import LOOP_T0 as T0
from tests.integration.test_ib_reconcile import on_ib
from tests.support import admin, on_database


async def left_working(store: SqlStore, url: str, position: Any, ref: str, placed: Any) -> None:
    """An order an earlier run placed at ``placed`` and left as working in the store."""
    intent = CloseIntent(ref, position.id, 0, 1, "profit_target", "Profit Target (50%)",
                         Decimal("0.40"), 4, Decimal("0.40"))  # fmt: skip
    await store.record_intent(intent)
    await store.order_sent(ref, "working", broker_order_id=90, perm_id=900)
    await admin(url, f"UPDATE close_orders SET created_at = '{placed.isoformat()}' "
                f"WHERE order_ref = '{ref}'")  # fmt: skip


def test_an_order_placed_before_today_that_no_longer_works_needs_a_human(db_url: str) -> None:
    """P1's order was placed yesterday, P2's an hour ago; IB works neither and reports no
    execution of either (its executions are today's). P2's order ended unfilled today
    (IB would report a fill of today's): cancelled, as before. P1's may have filled after
    the daemon went down: ended with that said, and P1 needs attention, where before it
    was ended as cancelled and traded on as if its contracts were all still held."""

    async def work(app: Any, venue: IbBroker, gateway: FakeGateway, clock: SpeedClock) -> Any:
        return app, await app.load(clock.now())

    async def go(store: Store) -> Any:
        assert isinstance(store, SqlStore)
        await store.import_positions([P1, P2], "DU1234567")
        await left_working(store, db_url, P1, "P1:0:1", T0 - timedelta(days=1))
        await left_working(store, db_url, P2, "P2:0:1", T0 - timedelta(hours=1))
        app, lines = await on_ib(store, work)
        return app, lines, await store.detail(P1.id), await store.detail(P2.id)

    app, lines, p1, p2 = on_database(db_url)(go)
    why = (
        "order P1:0:1, placed 2027-03-01 15:00 UTC, no longer works at the broker, which "
        "reports today's executions only: whether it filled is unknown; compare the account "
        "(`spreadwatch positions sync`), then void or resume the position"
    )
    assert f"P1:0:1: {why}: ended, its position needs attention" in lines
    assert "P2:0:1: not working at the broker on start: ended as cancelled" in lines
    assert p1.stored.attention == why
    assert app.views.attention == {P1.id: why}
    assert p2.stored.attention is None
    assert [o.status for o in p1.orders] == [o.status for o in p2.orders] == ["cancelled"]
