"""Alerts to webhooks on 127.0.0.1: exactly the ones expected, and never in the loop's way
(the loop on the in-memory store; the webhooks real HTTP servers)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from decimal import Decimal
from typing import Any

from brokers.sim.broker import SimBroker
from brokers.sim.gateway import SimVenue
from service.alerts.alerter import Alerter, payload
from service.clock import ManualClock
from service.settings import Webhook
from service.store.memory import InMemoryStore
from tests.factories import LOOP_POSITION as POSITION
from tests.factories import LOOP_SCHEDULE as SCHEDULE
from tests.factories import LOOP_T0 as T0
from tests.factories import SELLOFF, market
from tests.fakes import WebhookReceiver
from tests.loop import monitor_on, run_for
from tests.support import closing


def test_the_webhooks_get_exactly_the_alerts_and_a_bad_one_slows_nothing() -> None:
    """A session with a broker outage (disconnected past the threshold, quotes stale), then
    a selloff whose first stop order is rejected and whose second fills. The good webhook
    gets each alert once; a hanging one and a failing one get them too, without holding
    up the loop (it finishes while the hanging requests are still open)."""

    async def main() -> Any:
        good, hanging, failing = WebhookReceiver(), WebhookReceiver("hang"), WebhookReceiver("fail")
        urls = [r.start() for r in (good, hanging, failing)]
        store = InMemoryStore()
        try:
            await store.import_positions([POSITION], "DU1")
            refused: list[str] = []

            def reject(order: Any) -> str | None:
                if refused:
                    return None
                refused.append(order.order_ref)
                return "201: no trading permissions"

            broker = SimBroker(fill_size=5, reject=reject)
            broker.hold_spreads(POSITION, 10)
            clock = ManualClock(T0)
            venue = SimVenue(market(), broker, clock)
            monitor = await monitor_on(store, venue, SCHEDULE)
            await monitor.load(T0)
            hooks = [
                Webhook(url=urls[0], format="json"),
                Webhook(url=urls[1], format="slack"),
                Webhook(url=urls[2], format="discord"),
            ]
            alerter = Alerter(
                hooks, monitor.views, connected=venue.connected, disconnect_after=0.2, every=0.02
            )
            stop = asyncio.Event()
            alerting = asyncio.create_task(alerter.run(stop))

            await run_for(monitor, venue, clock, 5)
            broker.drop()
            await run_for(monitor, venue, clock, 150)  # stale after 120 s without quotes
            await asyncio.sleep(0.4)  # past the disconnect threshold
            broker.reconnect()
            await run_for(monitor, venue, clock, 1)
            await run_for(
                monitor,
                venue,
                clock,
                (T0 + SELLOFF.duration + timedelta(minutes=3) - clock.now_).total_seconds(),
            )
            await asyncio.sleep(0.3)
            still_hanging = hanging.hanging
            loop_done = monitor.remaining() == {"P1": 0}
            stop.set()
            hanging.release.set()
            await alerting
            return good.bodies, hanging.bodies, failing.bodies, still_hanging, loop_done, alerter
        finally:
            for r in (good, hanging, failing):
                r.stop()

    good, _, failing, still_hanging, loop_done, alerter = asyncio.run(main())
    kinds = sorted(
        (b["kind"], b["fields"].get("order_ref", b["fields"].get("position", "")))
        for b in good
        if b["kind"] != "fill"
    )
    assert kinds == [
        ("disconnected", ""),
        ("reconnected", ""),
        ("rejected", "P1:stop:1"),
        ("stale", "P1"),
        ("stop", "P1:stop:1"),
        ("stop", "P1:stop:2"),
    ]
    stop = next(b for b in good if b["fields"].get("order_ref") == "P1:stop:2")
    assert closing([stop["text"]])[0].startswith("SPY put_credit - Loss Stop")
    fills = [b for b in good if b["kind"] == "fill"]  # the stop's fills, all 10 contracts
    assert all(" FILLED: P1 SPY put_credit - " in b["text"] for b in fills)
    assert sum(b["fields"]["contracts"] for b in fills) == 10
    realised = sum(Decimal(b["fields"]["realised"]) for b in fills)
    assert fills[-1]["fields"]["position_realised"] == str(realised)
    # the simulated broker says each fill's commission with it: none pending
    assert all(not b["fields"]["commission_pending"] for b in fills)
    assert all(b["fields"]["commission"] is not None for b in fills)
    assert loop_done  # the loop went on to the end ...
    assert still_hanging >= 1  # ... while the hanging webhook held its first request
    assert failing[0] == failing[1] == failing[2] != failing[3]  # three tries, then the next
    assert all(set(b) == {"content"} for b in failing)  # discord's shape
    assert alerter.failed >= 1
    assert alerter.dropped == 0


def test_payload_shapes() -> None:
    from service.alerts.alerter import Alert  # noqa: PLC0415

    a = Alert("stop", "CLOSING: x", {"order_ref": "P1:stop:1"}, "2027-03-02T15:00:00+00:00")
    assert payload(a, "slack") == {"text": "CLOSING: x"}
    assert payload(a, "discord") == {"content": "CLOSING: x"}
    assert payload(a, "json") == {
        "kind": "stop",
        "text": "CLOSING: x",
        "fields": {"order_ref": "P1:stop:1"},
        "at": "2027-03-02T15:00:00+00:00",
    }
