"""The IB adapter's orders as real IB treats them (issue 18), against the fake gateway
over TCP: statuses ib_async gives (ValidationError, Inactive), IB's order errors with
their codes and texts, a read-only API, cancels through the order ib_async knows.
Each behaviour's source is in docs/ib.md, "IB behaviour catalogue"."""

from __future__ import annotations

import asyncio
import logging
from decimal import Decimal
from typing import Any

import pytest
from ib_async import IB, LimitOrder
from structlog.testing import capture_logs

from brokers.ib.broker import IbBroker
from brokers.ib.fake import FakeGateway
from brokers.sim.market import SimMarket, Underlying
from service.clock import SpeedClock
from service.errors import BrokerRefused
from service.orders.closing import closing_order
from service.settings import IbSettings
from tests.factories import LOOP_T0 as T0
from tests.integration.test_ib_adapter import (
    POSITION,
    Seen,
    session,
)

READ_ONLY_TEXT = (
    "Error validating request:-'bh' : cause - The API interface is currently in Read-Only mode."
)
OFF_TICK_TEXT = "The price does not conform to the minimum price variation for this contract."


def statuses(seen: Seen, ref: str) -> list[str]:
    return [e.status for e in seen.events if e.order_ref == ref]


def test_a_close_refused_by_a_read_only_api_is_a_rejection_with_ibs_text() -> None:
    """IB answers placeOrder on a read-only API with 321, which ib_async makes the status
    ValidationError: the close never went out, and the service hears a rejection."""

    async def work(broker: IbBroker, gateway: FakeGateway, seen: Seen) -> Any:
        gateway.read_only = True  # (switched after the connect's own check)
        await broker.place(closing_order(POSITION, "P1:0:1", 4, Decimal("0.50")))
        await seen.until(lambda: "rejected" in statuses(seen, "P1:0:1"))
        return seen.events, gateway.order("P1:0:1")

    events, at_ib = session(work)
    (rejected,) = events
    assert (rejected.status, rejected.reason) == ("rejected", f"321: {READ_ONLY_TEXT}")
    assert at_ib is None


def test_a_warning_on_a_working_order_is_logged_with_ibs_code_and_the_order_works_on() -> None:
    """A modify at a price off the increment gets IB's 110, a warning on a working order
    (ib_async: ValidationError): logged with the code and IB's text; no event, the order
    works at IB as it did."""

    async def work(broker: IbBroker, gateway: FakeGateway, seen: Seen) -> Any:
        await broker.place(closing_order(POSITION, "P1:0:1", 4, Decimal("0.01")))
        await seen.until(lambda: "working" in statuses(seen, "P1:0:1"))
        with capture_logs() as logs:
            await broker.modify("P1:0:1", Decimal("0.015"))
            await seen.until(lambda: any(e["event"] == "ib.order_warning" for e in logs))
            await asyncio.sleep(0.3)
        at_ib = gateway.order("P1:0:1")
        assert at_ib is not None
        return statuses(seen, "P1:0:1"), logs, (at_ib.status, at_ib.limit)

    seen_statuses, logs, at_ib = session(work)
    (warning,) = [e for e in logs if e["event"] == "ib.order_warning"]
    assert (warning["order_ref"], warning["code"], warning["detail"]) == (
        "P1:0:1",
        110,
        OFF_TICK_TEXT,
    )
    assert set(seen_statuses) == {"working"}
    assert at_ib == ("Submitted", Decimal("0.01"))


def test_a_read_only_api_stops_the_connect_in_one_line_that_says_how_to_fix_it() -> None:
    """IB Gateway's API is read-only by default; a what-if order at connect (IB refuses it
    with 321 as any placeOrder) finds it before anything is decided."""

    async def main() -> None:
        clock = SpeedClock(T0, speed=20)
        gateway = FakeGateway(SimMarket([Underlying("SPY", 470.0, vol=0.15)], T0, seed=3), clock)
        gateway.read_only = True
        port = await gateway.start("127.0.0.1", 0)
        broker = IbBroker(IbSettings(port=port, timeout=5))
        try:
            await broker.connect()
        finally:
            await broker.close()
            await gateway.close()

    with pytest.raises(BrokerRefused) as refused:
        asyncio.run(main())
    line = str(refused.value)
    assert "\n" not in line
    assert 'Configure > Settings > API > Settings, uncheck "Read-Only API"' in line
    assert READ_ONLY_TEXT in line


@pytest.mark.ib_errors(r"^Error 110, ")
def test_an_order_ib_refuses_is_a_rejection_with_its_code_and_text() -> None:
    """IB's 110 on a new order (ib_async: an error, the trade Cancelled with the error in
    its log) reaches the service as a rejection with IB's code and text, not a silent
    cancel."""

    async def work(broker: IbBroker, gateway: FakeGateway, seen: Seen) -> Any:
        await broker.place(closing_order(POSITION, "P1:0:1", 4, Decimal("0.015")))
        await seen.until(lambda: bool(statuses(seen, "P1:0:1")))
        await asyncio.sleep(0.2)
        return seen.events

    (ended,) = session(work)
    assert (ended.status, ended.reason) == ("rejected", f"110: {OFF_TICK_TEXT}")


def test_inactive_then_submitted_is_working_again_and_can_be_modified() -> None:
    """IB's Inactive may pass (ib_async counts it done): the order is not ended, a modify
    while it is Inactive goes out (no AssertionError), and Submitted makes it working."""

    async def work(broker: IbBroker, gateway: FakeGateway, seen: Seen) -> Any:
        gateway.inactive_then_submitted = True
        await broker.place(closing_order(POSITION, "P1:0:1", 4, Decimal("0.01")))
        trade = broker.ib.trades()[-1]
        await seen.until(lambda: trade.orderStatus.status == "Inactive")
        await broker.modify("P1:0:1", Decimal("0.02"))
        # (IB said PreSubmitted before Inactive: working already; Submitted comes after)
        await seen.until(lambda: trade.orderStatus.status == "Submitted")
        await broker.modify("P1:0:1", Decimal("0.03"))
        await asyncio.sleep(0.2)
        at_ib = gateway.order("P1:0:1")
        assert at_ib is not None
        return statuses(seen, "P1:0:1"), (at_ib.status, at_ib.limit)

    seen_statuses, at_ib = session(work)
    assert set(seen_statuses) == {"working"}  # never rejected, never cancelled
    assert at_ib == ("Submitted", Decimal("0.03"))


@pytest.mark.ib_errors(r"^Error 202, ")
def test_a_cancel_goes_through_the_order_ib_async_knows(caplog: pytest.LogCaptureFixture) -> None:
    """ib_async's cancelOrder finds the trade by the order's client and order id: it sets
    PendingCancel, and never logs "Unknown orderId"."""

    async def work(broker: IbBroker, gateway: FakeGateway, seen: Seen) -> Any:
        await broker.place(closing_order(POSITION, "P1:0:1", 4, Decimal("0.01")))
        await seen.until(lambda: "working" in statuses(seen, "P1:0:1"))
        trade = broker.ib.trades()[-1]
        await broker.cancel("P1:0:1")
        await seen.until(lambda: "cancelled" in statuses(seen, "P1:0:1"))
        return [entry.status for entry in trade.log]

    with caplog.at_level(logging.INFO, logger="ib_async"):
        trade_log = session(work)
    assert "PendingCancel" in trade_log
    assert not [r for r in caplog.records if "Unknown orderId" in r.getMessage()]


@pytest.mark.ib_errors(r"^Error 10147, ")
def test_a_cancel_of_an_order_ib_does_not_know_ends_it_with_ibs_10147() -> None:
    """IB answers a cancel of an order it does not know with 10147 (ib_async: the trade
    Cancelled, the error in its log): the service hears the end with IB's code and text."""

    async def work(broker: IbBroker, gateway: FakeGateway, seen: Seen) -> Any:
        await broker.place(closing_order(POSITION, "P1:0:1", 4, Decimal("0.01")))
        await seen.until(lambda: "working" in statuses(seen, "P1:0:1"))
        at_ib = gateway.order("P1:0:1")
        assert at_ib is not None
        del gateway._orders[at_ib.key]  # IB has lost it (say, its orders reset)
        await broker.cancel("P1:0:1")
        await seen.until(lambda: "cancelled" in statuses(seen, "P1:0:1"))
        return [e for e in seen.events if e.status == "cancelled"], at_ib.order_id

    (ended,), order_id = session(work)
    assert ended.reason == (f"10147: OrderId {order_id} that needs to be cancelled is not found.")


def test_an_order_ref_already_placed_is_not_placed_twice() -> None:
    """IB takes any orderRef, a reused one too: a second close with the same reference
    would be a second order at IB. The adapter refuses it; IB holds one order."""

    async def work(broker: IbBroker, gateway: FakeGateway, seen: Seen) -> Any:
        await broker.place(closing_order(POSITION, "P1:0:1", 4, Decimal("0.01")))
        await seen.until(lambda: "working" in statuses(seen, "P1:0:1"))
        with pytest.raises(BrokerRefused, match="P1:0:1 is already at IB"):
            await broker.place(closing_order(POSITION, "P1:0:1", 4, Decimal("0.01")))
        await asyncio.sleep(0.3)
        return statuses(seen, "P1:0:1"), [o.ref for o in gateway._orders.values()]

    seen_statuses, at_ib = session(work)
    assert set(seen_statuses) == {"working"}
    assert at_ib == ["P1:0:1"]


def test_an_open_order_of_another_client_is_said_once_and_left_alone() -> None:
    """Order ids are the placing client's (Order.ClientId, "the API client id which placed
    the order"): a modify with another client's id would be a new order at IB, and a cancel
    would not reach it. Such an order is reported once, never modified nor cancelled."""

    async def work(broker: IbBroker, gateway: FakeGateway, seen: Seen) -> Any:
        other = IB()
        await other.connectAsync("127.0.0.1", broker.settings.port, clientId=99, timeout=5)
        try:
            contract = broker._bag(closing_order(POSITION, "P1:0:1", 4, Decimal("0.01")))
            other.placeOrder(contract, LimitOrder("BUY", 4, 0.01, orderRef="P1:0:1"))
            await seen.until(lambda: gateway.order("P1:0:1") is not None)
            with capture_logs() as logs:
                found = await broker.open_orders()
                await broker.open_orders()
            with pytest.raises(BrokerRefused, match="not placed by this client"):
                await broker.modify("P1:0:1", Decimal("0.05"))
            with pytest.raises(BrokerRefused, match="not placed by this client"):
                await broker.cancel("P1:0:1")
            await asyncio.sleep(0.3)
            orders = [(o.client_id, o.status, o.limit) for o in gateway._orders.values()]
            return found, logs, orders
        finally:
            other.disconnect()

    found, logs, orders = session(work)
    assert [(e.order_ref, e.status) for e in found] == [("P1:0:1", "working")]
    assert found[0].foreign.startswith("order P1:0:1 works at IB under another client (client "
                                       "id 99, perm id ")  # fmt: skip
    said = [e for e in logs if e["event"] == "ib.foreign_order"]
    assert [(e["order_ref"], e["client_id"]) for e in said] == [("P1:0:1", 99)]
    assert orders == [(99, "Submitted", Decimal("0.01"))]
