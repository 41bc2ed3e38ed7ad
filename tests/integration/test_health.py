"""The health, readiness and metrics server over HTTP on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from brokers.sim.broker import SimBroker
from brokers.sim.gateway import SimVenue
from service.app.lease import HOLDER, Seat
from service.clock import ManualClock
from service.http.server import Ops
from service.ports import LeaseHeld
from service.store import database
from service.store.repository import SqlStore
from tests.factories import LOOP_POSITION as POSITION
from tests.factories import LOOP_SCHEDULE as SCHEDULE
from tests.factories import LOOP_T0 as T0
from tests.factories import SELLOFF, market
from tests.loop import monitor_on, run_for


async def get(port: int, path: str) -> tuple[int, str]:
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"http://127.0.0.1:{port}{path}") as response,
    ):
        return response.status, await response.text()


def metrics(text: str) -> dict[str, float]:
    """Each sample as ``name{label="v"}`` -> value."""
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
            out[f"{s.name}{{{labels}}}" if labels else s.name] = s.value
    return out


def test_health_readiness_and_metrics_follow_the_loop(db_url: str) -> None:
    """Through a selloff, step by step: the server says ready while the broker and the
    database are there and quotes are fresh; not ready when the broker connection drops,
    when the database is unreachable, and when quotes go stale; the metrics move as
    updates, decisions and fills happen."""

    async def main() -> dict[str, Any]:
        engine = database.engine(db_url)
        stopped_db = database.engine("postgresql+asyncpg://postgres@127.0.0.1:9/none")
        seen: dict[str, Any] = {}
        try:
            store = SqlStore(engine)
            await store.import_positions([POSITION], "DU1")
            broker = SimBroker(fill_size=4)
            broker.hold_spreads(POSITION, 10)
            clock = ManualClock(T0)
            venue = SimVenue(market(), broker, clock)
            monitor = await monitor_on(store, venue, SCHEDULE)
            await monitor.load(T0)
            database_up = [True]

            async def database_ok() -> bool:
                return await (store if database_up[0] else SqlStore(stopped_db)).ping(1.0)

            ops = Ops(
                monitor.views, clock.now, broker_connected=venue.connected, database_ok=database_ok
            )
            port = await ops.start("127.0.0.1", 0)

            try:
                await run_for(monitor, venue, clock, 5)
                seen["ready"] = await get(port, "/readyz")
                seen["healthy"] = await get(port, "/healthz")
                seen["before"] = metrics((await get(port, "/metrics"))[1])
                seen["tasks"] = len(asyncio.all_tasks())
                broker.drop()
                seen["dropped"] = await get(port, "/readyz")
                await run_for(
                    monitor, venue, clock, 180
                )  # no quotes for 3 minutes of market time: stale
                seen["stale"] = await get(port, "/readyz")
                broker.reconnect()
                await run_for(monitor, venue, clock, 1)
                database_up[0] = False
                seen["no_db"] = await get(port, "/readyz")
                database_up[0] = True
                selloff_done = T0 + SELLOFF.duration + timedelta(minutes=3)
                await run_for(monitor, venue, clock, (selloff_done - clock.now_).total_seconds())
                seen["after"] = metrics((await get(port, "/metrics"))[1])
                await monitor.intake.quarantine("P1", "the account holds -6")
                seen["attention"] = metrics((await get(port, "/metrics"))[1])
                seen["attention_ready"] = await get(port, "/readyz")
                monitor.views.heartbeat -= 60  # the loop stalled for a minute
                seen["stalled"] = await get(port, "/healthz")
            finally:
                await ops.stop()
            return seen
        finally:
            await engine.dispose()
            await stopped_db.dispose()

    seen = asyncio.run(main())
    assert seen["ready"][0] == 200
    assert json.loads(seen["ready"][1]) == {
        "status": "ready",
        "broker_connected": True,
        "database": True,
        "stale_positions": [],
        "needs_attention": [],
    }
    assert seen["healthy"][0] == 200
    assert (seen["dropped"][0], json.loads(seen["dropped"][1])["broker_connected"]) == (503, False)
    assert (seen["stale"][0], json.loads(seen["stale"][1])["stale_positions"]) == (503, ["P1"])
    assert (seen["no_db"][0], json.loads(seen["no_db"][1])["database"]) == (503, False)
    assert seen["stalled"][0] == 503
    before, after = seen["before"], seen["after"]
    assert before["spreadwatch_updates_total"] > 0
    assert after["spreadwatch_updates_total"] > before["spreadwatch_updates_total"]
    assert after["spreadwatch_evaluations_total"] > before["spreadwatch_evaluations_total"] > 0
    assert before["spreadwatch_screened_total"] > 0  # calm quotes, admitted by the screen
    assert before["spreadwatch_screened_total"] <= before["spreadwatch_updates_total"]
    assert before.get('spreadwatch_decisions_total{reason="loss_stop"}', 0) == 0
    assert after['spreadwatch_decisions_total{reason="loss_stop"}'] == 1
    assert after['spreadwatch_order_events_total{status="filled"}'] == 1
    assert after["spreadwatch_fill_latency_seconds_count"] == 3  # fills of 4, 4, 2
    assert (before["spreadwatch_open_positions"], after["spreadwatch_open_positions"]) == (1, 0)
    assert (
        before["spreadwatch_contracts_remaining"],
        after["spreadwatch_contracts_remaining"],
    ) == (
        10,
        0,
    )
    assert before['spreadwatch_quote_age_seconds{position="P1"}'] < 1
    assert after["spreadwatch_reconnects_total"] == 0
    assert before["spreadwatch_positions_needing_attention"] == 0
    # the tasks alive: this test's and the server's, and the scrape's own while it runs
    assert before["spreadwatch_asyncio_tasks"] == seen["tasks"] + 1
    assert seen["attention"]["spreadwatch_positions_needing_attention"] == 1
    status, body = seen["attention_ready"]  # (listed, not a failure: the rest trade)
    assert (status, json.loads(body)["needs_attention"]) == (
        200,
        [{"position": "P1", "reason": "the account holds -6"}],
    )


def test_a_standby_says_its_role_and_serves_no_positions() -> None:
    """A process that does not hold the trading lease: ``/readyz`` 200 ``standby`` while
    the database answers, 503 ``not ready`` when it does not, 503 ``starting`` once it
    holds the lease and its loop is not up yet; no positions (503); ``/healthz`` by its
    looks at the lease; ``spreadwatch_role`` says which, ``spreadwatch_lease_epoch`` the
    epoch held."""

    async def main() -> dict[str, Any]:
        database_up = [True]

        async def database_ok() -> bool:
            return database_up[0]

        seat = Seat("B", held=LeaseHeld("A", 3, T0, 4.2))
        ops = Ops(None, lambda: T0, broker_connected=lambda: False, database_ok=database_ok,
                  seat=seat)  # fmt: skip
        port = await ops.start("127.0.0.1", 0)
        seen: dict[str, Any] = {}
        try:
            seen["standby"] = await get(port, "/readyz")
            seen["healthy"] = await get(port, "/healthz")
            seen["api"] = await get(port, "/api/positions")
            seen["metrics"] = metrics((await get(port, "/metrics"))[1])
            database_up[0] = False
            seen["no_db"] = await get(port, "/readyz")
            database_up[0] = True
            seat.role, seat.epoch = HOLDER, 4
            seen["starting"] = await get(port, "/readyz")
            seen["holder"] = metrics((await get(port, "/metrics"))[1])
        finally:
            await ops.stop()
        return seen

    seen = asyncio.run(main())
    assert seen["standby"][0] == 200
    assert json.loads(seen["standby"][1]) == {
        "status": "standby", "database": True, "role": "standby", "name": "B",
        "lease_holder": "A", "epoch": 3,
    }  # fmt: skip
    assert seen["healthy"][0] == 200
    assert seen["api"][0] == 503
    assert json.loads(seen["api"][1])["role"] == "standby"
    assert seen["metrics"]['spreadwatch_role{role="standby"}'] == 1
    assert seen["metrics"]['spreadwatch_role{role="holder"}'] == 0
    assert "spreadwatch_lease_epoch" not in seen["metrics"]
    assert "spreadwatch_updates_total" not in seen["metrics"]  # (no loop: nothing counted)
    assert (seen["no_db"][0], json.loads(seen["no_db"][1])["status"]) == (503, "not ready")
    starting = json.loads(seen["starting"][1])
    assert (seen["starting"][0], starting["status"], starting["role"]) == (503, "starting", HOLDER)
    assert (starting["lease_holder"], starting["epoch"]) == ("B", 4)
    assert seen["holder"]['spreadwatch_role{role="holder"}'] == 1
    assert seen["holder"]["spreadwatch_lease_epoch"] == 4
