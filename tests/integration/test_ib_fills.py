"""Combo fills and their commissions as real IB sends them (issue 18, adapter items 4-6),
against the fake gateway over TCP with ib_async: commission reports that trail their
executions by seconds or come before them, legs stamped after their BAG, fills with no
BAG execution, a BAG fill at a credit. Each behaviour's source is in docs/ib.md, "IB
behaviour catalogue"."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from structlog.testing import capture_logs

from brokers.ib.broker import IbBroker
from brokers.ib.fake import FakeGateway
from service.orders.closing import closing_order
from service.ports import Action, ComboLeg, ComboOrder, OrderEvent
from tests.integration.test_ib_adapter import (
    LONG,
    POSITION,
    SHORT,
    Seen,
    session,
)

LEG_REPORT = Decimal("2.60")  # a leg's commission for 4 spreads: 4 x 0.65


def fills(seen: Seen) -> list[OrderEvent]:
    return [e for e in seen.events if e.execution is not None]


def commissions(seen: Seen) -> list[OrderEvent]:
    return [e for e in seen.events if e.commission is not None]


async def close_four(broker: IbBroker, gateway: FakeGateway, seen: Seen) -> None:
    """A marketable close of 4 spreads, and its fill passed on."""
    gateway.hold_spreads(POSITION, 10)
    await broker.place(closing_order(POSITION, "P1:stop:1", 4, Decimal("9.99")))
    await seen.until(lambda: bool(fills(seen)))


def test_commission_reports_later_than_the_wait_are_added_to_the_fill_when_they_come() -> None:
    """IB's reports are messages of their own and may trail the execution by seconds:
    the fill is passed on (its commission pending), each report after it, once."""

    async def work(broker: IbBroker, gateway: FakeGateway, seen: Seen) -> Any:
        gateway.commission_delay = 3.0  # past the adapter's old 2 s wait
        await close_four(broker, gateway, seen)
        passed = fills(seen)[0].execution
        await seen.until(lambda: len(commissions(seen)) == 2, seconds=10)
        await asyncio.sleep(0.5)
        return passed, commissions(seen), await broker.executions()

    passed, late, executions = session(work)
    assert passed is not None
    assert passed.commission is None
    assert [(e.order_ref, e.commission.exec_id, e.commission.amount) for e in late] == [  # type: ignore[union-attr]
        ("P1:stop:1", passed.exec_id, LEG_REPORT),
        ("P1:stop:1", passed.exec_id, LEG_REPORT),
    ]
    assert len({e.commission.report_id for e in late}) == 2  # type: ignore[union-attr]
    # once the reports are in, reqExecutions gives them with the fill (restart)
    assert [(x.exec_id, x.commission) for x in executions] == [(passed.exec_id, 2 * LEG_REPORT)]


def test_commission_reports_before_their_execution_are_not_lost() -> None:
    """A report IB sends before its execution is dropped by ib_async (no fill known for
    it): the adapter asks reqExecutions again, and the commission comes all the same."""

    async def work(broker: IbBroker, gateway: FakeGateway, seen: Seen) -> Any:
        gateway.commission_first = True
        await close_four(broker, gateway, seen)
        await seen.until(lambda: len(commissions(seen)) == 2, seconds=12)
        await asyncio.sleep(0.3)
        return fills(seen), commissions(seen)

    passed, late = session(work)
    assert len(passed) == 1
    assert passed[0].execution.commission is None  # type: ignore[union-attr]
    assert sum(e.commission.amount for e in late) == 2 * LEG_REPORT  # type: ignore[union-attr]


def test_legs_stamped_a_second_after_their_bag_keep_their_commissions_after_a_restart() -> None:
    """A fill's legs stamped a second after its BAG (as IB does at times), read back from
    reqExecutions by a new adapter (a restart, or a reconnect's missed fills): the legs are
    matched to the BAG by execId prefix and order, and the fill carries their commissions,
    live and on reading back alike."""

    async def work(broker: IbBroker, gateway: FakeGateway, seen: Seen) -> Any:
        await close_four(broker, gateway, seen)
        await seen.until(lambda: len(commissions(seen)) == 2 or bool(
            fills(seen)[0].execution.commission))  # type: ignore[union-attr]  # fmt: skip
        await broker.close()
        await asyncio.sleep(0.1)
        again = IbBroker(broker.settings)
        await again.connect()
        try:
            return fills(seen), commissions(seen), await again.executions()
        finally:
            await again.close()

    passed, late, executions = session(work)
    live = (passed[0].execution.commission or Decimal(0)) + sum(  # type: ignore[union-attr]
        e.commission.amount  # type: ignore[union-attr]
        for e in late
    )
    assert live == 2 * LEG_REPORT
    assert [(x.exec_id, x.commission) for x in executions] == [
        (passed[0].execution.exec_id, 2 * LEG_REPORT)  # type: ignore[union-attr]
    ]
    assert len(executions[0].reports) == 2  # each leg's report, by its execId


@pytest.mark.ib_errors("^Peer closed connection")
def test_a_fill_while_disconnected_is_passed_on_after_the_reconnect_with_its_commissions() -> None:
    """The socket drops while a close works; it fills in the gap: after the reconnect the
    fill comes from reqExecutions with its legs' commissions (legs a second after)."""

    async def work(broker: IbBroker, gateway: FakeGateway, seen: Seen) -> Any:
        gateway.hold_spreads(POSITION, 10)
        gateway.broker.latency = timedelta(seconds=1)  # it works at the broker, then fills
        await broker.place(closing_order(POSITION, "P1:stop:1", 4, Decimal("9.99")))
        await seen.until(lambda: gateway.order("P1:stop:1") is not None)
        gateway.drop()
        await seen.until(lambda: bool(fills(seen)), seconds=10)
        await asyncio.sleep(0.5)
        return fills(seen), commissions(seen), broker.reconnects

    passed, late, reconnects = session(work)
    assert reconnects >= 1
    assert len(passed) == 1
    total = passed[0].execution.commission or Decimal(0)  # type: ignore[union-attr]
    assert total + sum(e.commission.amount for e in late) == 2 * LEG_REPORT  # type: ignore[union-attr]


@pytest.mark.ib_errors("^Peer closed connection")
def test_leg_only_fills_are_fills_counted_once_and_the_order_is_not_said_cancelled() -> None:
    """No BAG execution (legs only): the fill is the legs' (4 spreads at the bought leg
    less the sold one), with their commissions; after a reconnect it is not counted
    again, and the filled order is not said cancelled."""

    async def work(broker: IbBroker, gateway: FakeGateway, seen: Seen) -> Any:
        gateway.leg_only_fills = True
        await close_four(broker, gateway, seen)
        await asyncio.sleep(0.5)
        gateway.drop()
        await seen.until(lambda: broker.reconnects >= 1, seconds=10)
        await asyncio.sleep(1.0)
        order = gateway.order("P1:stop:1")
        return seen.events, order, await broker.executions()

    events, order, executions = session(work)
    passed = [e for e in events if e.execution is not None]
    assert [(e.order_ref, e.status, e.execution.quantity) for e in passed] == [  # type: ignore[union-attr]
        ("P1:stop:1", "filled", 4)
    ]
    assert order is not None
    assert passed[0].execution.price == order.last_price  # type: ignore[union-attr]
    assert passed[0].execution.commission == 2 * LEG_REPORT  # type: ignore[union-attr]
    assert "cancelled" not in [e.status for e in events]
    assert [(x.exec_id, x.quantity) for x in executions] == [
        (passed[0].execution.exec_id, 4)  # type: ignore[union-attr]
    ]


def test_a_bag_fill_at_a_credit_is_passed_on_and_said_not_dropped() -> None:
    """IB's combo prices may be negative (a credit): a BAG bought and filled at a credit
    is a fill at that negative price, said in the log, never dropped silently."""
    credit = ComboOrder(
        "P1:stop:1",
        (ComboLeg(LONG, Action.BUY), ComboLeg(SHORT, Action.SELL)),  # the spread the other way
        1,
        Decimal("0.00"),
    )

    async def work(broker: IbBroker, gateway: FakeGateway, seen: Seen) -> Any:
        gateway.hold_spreads(POSITION, 10)
        with capture_logs() as logs:
            await broker.place(credit)
            await seen.until(lambda: bool(fills(seen)))
        return fills(seen), logs

    passed, logs = session(work)
    (fill,) = passed
    assert fill.execution is not None
    assert fill.execution.price < 0
    said = [e for e in logs if e["event"] == "ib.fill_at_credit"]
    assert [(e["order_ref"], e["price"]) for e in said] == [
        ("P1:stop:1", str(fill.execution.price))
    ]


def test_an_execution_ib_corrects_is_not_a_second_fill_and_its_positions_need_a_human() -> None:
    """IB corrects an execution with an execId that differs only after the final period
    (".02" corrects ".01"), without saying whether it replaces or adds. Before, the
    correction was a second fill of 4 (8 closed of 4 ordered); now the fill stands as it
    was, and the legs' positions are told to need a human, with both execution ids."""

    async def work(broker: IbBroker, gateway: FakeGateway, seen: Seen) -> Any:
        await close_four(broker, gateway, seen)
        [first] = fills(seen)
        gateway.correct("P1:stop:1", Decimal("1.50"))
        await seen.until(lambda: len(seen.problems) == 2)
        await asyncio.sleep(0.5)
        return first, fills(seen), seen.problems, await broker.executions()

    first, passed, problems, executions = session(work)
    assert first.execution is not None
    assert passed == [first]
    assert {leg for leg, _ in problems} == {SHORT, LONG}
    original = first.execution.exec_id
    why = problems[0][1]
    assert why.startswith(f"IB corrected execution {original} of order P1:stop:1 with "
                          f"{original[:-2]}02 (BOT 4 at 1.5): ")  # fmt: skip
    assert [e.exec_id for e in executions] == [original]
