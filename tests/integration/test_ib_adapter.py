"""The IB adapter (ib_async) against the fake gateway over TCP on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from brokers.ib.broker import IbBroker, NotPaper
from brokers.ib.fake import FakeGateway
from brokers.sim.market import SimMarket, Underlying
from rules.model import Right
from service.clock import SpeedClock
from service.orders.closing import closing_order
from service.ports import LegKey, LegUpdate, OrderEvent
from service.settings import IbSettings
from tests.factories import LOOP_T0 as T0
from tests.factories import STORE_EXPIRY as EXPIRY
from tests.factories import vertical

SHORT = LegKey("SPY", EXPIRY, Right.PUT, Decimal(450))
LONG = LegKey("SPY", EXPIRY, Right.PUT, Decimal(445))
POSITION = vertical()  # SPY 450/445 P x10, expiry 2027-04-16


@dataclass
class Seen:
    quotes: list[LegUpdate] = field(default_factory=list)
    events: list[OrderEvent] = field(default_factory=list)
    problems: list[tuple[LegKey, str]] = field(default_factory=list)  # legs IB cannot serve

    def problem(self, leg: LegKey, why: str) -> None:
        self.problems.append((leg, why))

    async def until(self, check: Callable[[], bool], seconds: float = 5.0) -> None:
        for _ in range(int(seconds / 0.02)):
            if check():
                return
            await asyncio.sleep(0.02)
        raise AssertionError("timed out waiting")


Work = Callable[[IbBroker, FakeGateway, Seen], Awaitable[Any]]


def commission_of(fill: OrderEvent, events: list[OrderEvent]) -> Decimal:
    """A fill's commission: what it came with, and every report passed on after it."""
    assert fill.execution is not None
    exec_id = fill.execution.exec_id
    later = [e.commission.amount for e in events
             if e.commission is not None and e.commission.exec_id == exec_id]  # fmt: skip
    return (fill.execution.commission or Decimal(0)) + sum(later, Decimal(0))


@contextlib.asynccontextmanager
async def on_fake(
    *underlyings: Underlying, account: str = "DU1234567", **settings: Any
) -> AsyncIterator[tuple[IbBroker, FakeGateway]]:
    """An adapter connected to a fake gateway (its market stepped at 20x the wall from T0,
    on ``underlyings``, SPY by default), closed after."""
    clock = SpeedClock(T0, speed=20)
    market = SimMarket(list(underlyings) or [Underlying("SPY", 470.0, vol=0.15)], T0, seed=3)
    gateway = FakeGateway(market, clock, account=account)
    port = await gateway.start("127.0.0.1", 0)
    ticking = asyncio.create_task(gateway.run())
    broker = IbBroker(IbSettings(port=port, timeout=5, **settings))
    try:
        await broker.connect()
        yield broker, gateway
    finally:
        await broker.close()
        ticking.cancel()
        await gateway.close()


def session(work: Work, *, account: str = "DU1234567", **settings: Any) -> Any:
    async def main() -> Any:
        async with on_fake(account=account, **settings) as (broker, gateway):
            seen = Seen()
            await broker.qualify([SHORT, LONG])
            streaming = asyncio.create_task(
                broker.run(seen.quotes.extend, seen.events.extend, seen.problem)
            )
            try:
                return await work(broker, gateway, seen)
            finally:
                streaming.cancel()

    return asyncio.run(main())


def test_a_live_account_is_refused_unless_allowed() -> None:
    async def nothing(broker: IbBroker, gateway: FakeGateway, seen: Seen) -> Any:
        return broker.account

    with pytest.raises(NotPaper, match="U7654321 is not a paper account"):
        session(nothing, account="U7654321")
    assert session(nothing, account="U7654321", allow_live=True) == "U7654321"


def test_quotes_arrive_as_decimals_with_the_model_delta() -> None:
    async def work(broker: IbBroker, gateway: FakeGateway, seen: Seen) -> Any:
        broker.subscribe(SHORT)
        await seen.until(lambda: any(u.quote.delta is not None for u in seen.quotes))
        return [u for u in seen.quotes if u.quote.delta is not None][-1]

    update = session(work)
    q = update.quote
    assert update.leg == SHORT
    assert isinstance(q.bid, Decimal)
    assert isinstance(q.ask, Decimal)
    assert 0 < q.bid < q.ask
    assert q.delta is not None
    assert -0.5 < q.delta < 0
    assert q.underlying_price is not None


@pytest.mark.parametrize("bad", ["-1", "nan"])
def test_minus_one_and_nan_quotes_are_never_passed_on_as_prices(bad: str) -> None:
    async def work(broker: IbBroker, gateway: FakeGateway, seen: Seen) -> Any:
        gateway.bad_quotes = bad
        broker.subscribe(SHORT)
        await seen.until(lambda: len(seen.quotes) >= 2)
        return seen.quotes

    quotes = session(work)
    assert all(u.quote.bid is None and u.quote.ask is None for u in quotes)


def test_a_close_is_placed_fills_and_the_positions_follow() -> None:
    async def work(broker: IbBroker, gateway: FakeGateway, seen: Seen) -> Any:
        gateway.hold_spreads(POSITION, 10)  # short 450 P, long 445 P
        await broker.ib.reqPositionsAsync()
        order = closing_order(POSITION, "P1:stop:1", 4, Decimal("9.99"))
        await broker.place(order)
        await seen.until(lambda: any(e.status == "filled" for e in seen.events))
        await asyncio.sleep(0.2)
        return seen.events, await broker.positions(), await broker.executions()

    events, positions, executions = session(work)
    fills = [e for e in events if e.execution is not None]
    assert [(e.order_ref, e.status, e.execution.quantity) for e in fills] == [  # type: ignore[union-attr]
        ("P1:stop:1", "filled", 4)
    ]
    assert positions == {SHORT: -6, LONG: 6}
    assert [(x.order_ref, x.quantity, x.exec_id) for x in executions] == [
        ("P1:stop:1", 4, fills[0].execution.exec_id)  # type: ignore[union-attr]
    ]
    # commissions: the legs' reports, live (with the fill, or after it: IB's reports
    # trail their executions) and from reqExecutions alike
    assert commission_of(fills[0], events) == executions[0].commission == Decimal("5.20")


@pytest.mark.ib_errors(r"^Error 202, ")
def test_a_working_close_is_repriced_then_cancelled() -> None:
    async def work(broker: IbBroker, gateway: FakeGateway, seen: Seen) -> Any:
        await broker.place(closing_order(POSITION, "P1:0:1", 4, Decimal("0.01")))
        await seen.until(lambda: any(e.status == "working" for e in seen.events))
        await broker.modify("P1:0:1", Decimal("0.02"))
        await asyncio.sleep(0.2)
        limit = gateway.order("P1:0:1").limit  # type: ignore[union-attr]
        await broker.cancel("P1:0:1")
        await seen.until(lambda: any(e.status == "cancelled" for e in seen.events))
        return limit, [e.status for e in seen.events]

    limit, statuses = session(work)
    assert limit == Decimal("0.02")
    assert statuses[-1] == "cancelled"


@pytest.mark.ib_errors(r"^Error 201, ")
def test_a_rejection_reaches_the_service_with_its_reason() -> None:
    async def work(broker: IbBroker, gateway: FakeGateway, seen: Seen) -> Any:
        gateway.reject = "no trading permissions"
        await broker.place(closing_order(POSITION, "P1:0:1", 4, Decimal("0.50")))
        await seen.until(lambda: any(e.status == "rejected" for e in seen.events))
        return [e for e in seen.events if e.status == "rejected"]

    (rejected,) = session(work)
    assert rejected.order_ref == "P1:0:1"
    assert rejected.reason == "201: Order rejected - reason:no trading permissions"


@pytest.mark.ib_errors("^Peer closed connection")
def test_a_dropped_connection_blanks_the_quotes_reconnects_and_brings_the_missed_fill() -> None:
    """The socket drops while a marketable close is on its way to a fill: the legs are said
    to have no quote, the adapter reconnects (backoff), resubscribes, and hands over the
    execution that happened in the gap."""

    async def work(broker: IbBroker, gateway: FakeGateway, seen: Seen) -> Any:
        broker.subscribe(SHORT)
        await seen.until(lambda: any(u.quote.bid is not None for u in seen.quotes))
        gateway.broker.latency = timedelta(seconds=1)  # it works at the broker, then fills
        await broker.place(closing_order(POSITION, "P1:stop:1", 2, Decimal("9.99")))
        await seen.until(lambda: gateway.order("P1:stop:1") is not None)
        gateway.drop()
        await seen.until(lambda: any(e.execution is not None for e in seen.events))
        blanked = any(u.quote.bid is None for u in seen.quotes)
        n = len(seen.quotes)
        await seen.until(lambda: any(u.quote.bid is not None for u in seen.quotes[n:]))
        await asyncio.sleep(0.5)  # (the reports trail the fill)
        fills = [e for e in seen.events if e.execution is not None]
        return blanked, broker.reconnects, fills, seen.events

    blanked, reconnects, fills, seen_events = session(work)
    assert blanked
    assert reconnects == 1
    assert [(e.order_ref, e.status, e.execution.quantity) for e in fills] == [  # type: ignore[union-attr]
        ("P1:stop:1", "filled", 2)
    ]
    assert commission_of(fills[0], seen_events) == Decimal("2.60")


@pytest.mark.ib_errors(r"^Error 110[01], ")
def test_ib_1100_blanks_the_quotes_and_1101_opens_the_lines_again() -> None:
    """1100 (IB lost connectivity): every leg is said to have no quote. 1101 (restored,
    data lost): the lines are opened again and quotes flow."""

    async def work(broker: IbBroker, gateway: FakeGateway, seen: Seen) -> Any:
        broker.subscribe(SHORT)
        await seen.until(lambda: any(u.quote.bid is not None for u in seen.quotes))
        await asyncio.sleep(0.5)  # the stream's start opens the lines afresh (paced requests)
        gateway.say(1100, "Connectivity between IB and Trader Workstation has been lost.")
        await seen.until(lambda: seen.quotes[-1].quote.bid is None)
        lines_before = len(gateway._leg_lines)
        gateway.say(1101, "Connectivity restored - data lost.")
        n = len(seen.quotes)
        await seen.until(lambda: any(u.quote.bid is not None for u in seen.quotes[n:]))
        await asyncio.sleep(0.1)
        return lines_before, sum(gateway._leg_lines.values())

    lines_before, lines_after = session(work)
    assert lines_before == 1
    assert lines_after == 1  # the old line replaced, not doubled


def test_each_underlying_streams_on_one_line_beside_its_legs() -> None:
    async def work(broker: IbBroker, gateway: FakeGateway, seen: Seen) -> Any:
        broker.subscribe(SHORT)
        broker.subscribe(LONG)

        def lines() -> list[str]:
            return sorted(ins.sec_type for s in gateway._sessions for ins in s.lines.values())

        await seen.until(lambda: bool(broker._spot.get("SPY")) and len(lines()) == 3)
        opened = lines()
        broker.unsubscribe(SHORT)
        broker.unsubscribe(LONG)
        await seen.until(lambda: not lines())
        closed = lines()
        return opened, broker._spot["SPY"], closed

    opened, spot, closed = session(work)
    assert opened == ["OPT", "OPT", "STK"]
    assert 400 < spot < 550
    assert closed == []  # lines released with the last leg of the underlying


@pytest.mark.ib_errors(r"^Error 354, ")
@pytest.mark.parametrize(("allowed", "quoted"), [("delayed", True), ("live", False)])
def test_delayed_data_is_used_only_when_the_settings_allow_it(allowed: str, quoted: bool) -> None:
    """Only delayed data at the gateway: with ``market_data = "delayed"`` quotes flow (type
    3, said in the log); with "live" the line is refused (354) and nothing is passed on."""

    async def work(broker: IbBroker, gateway: FakeGateway, seen: Seen) -> Any:
        gateway.delayed_only = True
        broker.subscribe(SHORT)
        await asyncio.sleep(0.5)
        return [u for u in seen.quotes if u.quote.bid is not None], broker._types.get(SHORT)

    got, kind = session(work, market_data=allowed)
    assert bool(got) is quoted
    assert kind == (3 if quoted else None)


def test_frozen_quotes_are_never_passed_on() -> None:
    async def work(broker: IbBroker, gateway: FakeGateway, seen: Seen) -> Any:
        gateway.frozen = True
        broker.subscribe(SHORT)
        await asyncio.sleep(0.5)
        return seen.quotes, broker._types.get(SHORT)

    quotes, kind = session(work)
    assert (quotes, kind) == ([], 2)


@pytest.mark.ib_errors(r"^Error 202, ")
def test_a_new_adapter_adopts_the_working_order_it_finds_by_order_ref() -> None:
    """A restart: a second adapter, same client id, finds the working close by its orderRef
    among the open orders and can reprice and cancel it."""

    async def work(broker: IbBroker, gateway: FakeGateway, seen: Seen) -> Any:
        await broker.place(closing_order(POSITION, "P1:0:1", 4, Decimal("0.01")))
        await seen.until(lambda: any(e.status == "working" for e in seen.events))
        await broker.close()
        await asyncio.sleep(0.1)
        again = IbBroker(broker.settings)
        again_seen = Seen()
        await again.connect()
        streaming = asyncio.create_task(
            again.run(again_seen.quotes.extend, again_seen.events.extend)
        )
        try:
            found = await again.open_orders()
            await again.modify("P1:0:1", Decimal("0.03"))
            await asyncio.sleep(0.2)
            limit = gateway.order("P1:0:1").limit  # type: ignore[union-attr]
            await again.cancel("P1:0:1")
            await again_seen.until(lambda: any(e.status == "cancelled" for e in again_seen.events))
            return found, limit
        finally:
            streaming.cancel()
            await again.close()

    found, limit = session(work)
    assert [(e.order_ref, e.status, e.remaining) for e in found] == [("P1:0:1", "working", 4)]
    assert limit == Decimal("0.03")


@pytest.mark.ib_errors(r"^Error 101, ")
def test_the_line_limit_names_the_leg_it_refused() -> None:
    """Two lines allowed: the short leg and its underlying take them; the long leg's line
    is refused (101), and the adapter says which leg."""

    async def work(broker: IbBroker, gateway: FakeGateway, seen: Seen) -> Any:
        gateway.line_limit = 2
        broker.subscribe(SHORT)
        await seen.until(lambda: bool(seen.quotes))
        broker.subscribe(LONG)
        await seen.until(lambda: bool(broker.refused))
        return broker.refused

    assert session(work) == {LONG}


@pytest.mark.ib_errors(r"^Error 110[02], ")
def test_after_1102_quotes_flow_again_on_the_same_lines() -> None:
    async def work(broker: IbBroker, gateway: FakeGateway, seen: Seen) -> Any:
        broker.subscribe(SHORT)
        await seen.until(lambda: any(u.quote.bid is not None for u in seen.quotes))
        ticker = broker._tickers[SHORT]
        gateway.say(1100, "Connectivity between IB and Trader Workstation has been lost.")
        await seen.until(lambda: seen.quotes[-1].quote.bid is None)
        n = len(seen.quotes)
        await asyncio.sleep(0.2)
        during = seen.quotes[n:]
        gateway.say(1102, "Connectivity restored - data maintained.")
        await seen.until(lambda: any(u.quote.bid is not None for u in seen.quotes[n:]))
        return during, broker._tickers[SHORT] is ticker

    during, same_line = session(work)
    assert during == []  # nothing while IB had no connectivity
    assert same_line


def test_a_delta_ib_stopped_updating_is_dropped_for_a_local_one() -> None:
    """IB's Greeks stop coming while quotes go on: past ``greeks_stale_after`` the quote
    carries no delta, so the rules compute it from the price."""

    async def work(broker: IbBroker, gateway: FakeGateway, seen: Seen) -> Any:
        broker.subscribe(SHORT)
        await seen.until(lambda: any(u.quote.delta is not None for u in seen.quotes))
        gateway.greeks = False
        await asyncio.sleep(0.8)
        return seen.quotes[-1].quote

    last = session(work, greeks_stale_after=0.3)
    assert last.bid is not None
    assert last.delta is None


@pytest.mark.ib_errors("^Peer closed connection")
def test_an_order_that_ended_while_disconnected_is_said_cancelled_on_reconnect() -> None:
    async def work(broker: IbBroker, gateway: FakeGateway, seen: Seen) -> Any:
        await broker.place(closing_order(POSITION, "P1:0:1", 4, Decimal("0.01")))
        await seen.until(lambda: any(e.status == "working" for e in seen.events))
        gateway.drop()
        gateway.end_at_ib("P1:0:1")  # IB ends it in the gap
        await seen.until(lambda: any(e.status == "cancelled" for e in seen.events))
        return [e for e in seen.events if e.status == "cancelled"]

    (cancelled,) = session(work)
    assert (cancelled.order_ref, cancelled.reason) == (
        "P1:0:1",
        "not working at IB after the reconnect",
    )


def test_a_burst_of_subscriptions_stays_under_ibs_50_messages_a_second() -> None:
    """80 legs subscribed at once (a restart with 40 spreads): the requests reach the
    gateway paced, never more than 50 in any second."""
    strikes = [Decimal(k) for k in range(400, 480)]
    legs = [LegKey("SPY", EXPIRY, Right.PUT, k) for k in strikes]

    async def work(broker: IbBroker, gateway: FakeGateway, seen: Seen) -> Any:
        gateway.line_limit = 200
        await broker.qualify(legs)
        start = len(gateway.received)
        for leg in legs:
            broker.subscribe(leg)
        await seen.until(lambda: len(gateway.received) - start >= len(legs) + 1, 10)
        return gateway.received[start:]

    times = session(work)
    worst = max(sum(1 for t in times if t0 <= t < t0 + 1.0) for t0 in times)
    assert worst <= 50
    assert len(times) >= 81  # 80 options and the underlying
