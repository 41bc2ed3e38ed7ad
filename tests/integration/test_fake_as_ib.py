"""The fake gateway as IB: its contracts (an option IB does not list is error 200, "No
security definition has been found", with nothing else), its connection notices, its
market data lines (changes only, their parameters first, no option quotes outside
regular hours). Through the unmodified ib_async client over TCP on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from ib_async import IB, Option, Stock

from brokers.ib.fake import FakeGateway
from brokers.sim.market import SimMarket, Underlying
from service.clock import SpeedClock
from tests.factories import LOOP_T0 as T0
from tests.factories import STORE_EXPIRY as EXPIRY


@contextlib.asynccontextmanager
async def connected(start: datetime = T0) -> AsyncIterator[tuple[IB, list[tuple[int, str]]]]:
    """ib_async connected to a fake gateway on SPY's market from ``start`` (20x the wall),
    and each (code, text) the gateway sends it, as they come."""
    clock = SpeedClock(start, speed=20)
    gateway = FakeGateway(SimMarket([Underlying("SPY", 470.0)], start, seed=3), clock)
    port = await gateway.start("127.0.0.1", 0)
    ticking = asyncio.create_task(gateway.run())
    ib = IB()
    said: list[tuple[int, str]] = []
    ib.errorEvent += lambda req_id, code, text, *rest: said.append((code, text))
    try:
        await ib.connectAsync("127.0.0.1", port, clientId=7, timeout=5)
        yield ib, said
    finally:
        ib.disconnect()
        ticking.cancel()
        await gateway.close()


def details(contract: Option) -> tuple[int, list[int]]:
    """How many contract details IB's fake gives for ``contract``, and the codes it sent."""

    async def main() -> tuple[int, list[int]]:
        async with connected() as (ib, said):
            found = await ib.reqContractDetailsAsync(contract)
            return len(found), [c for c, _ in said if not 2100 <= c < 2200]  # (farms': no)

    return asyncio.run(main())


def spy_put(expiry: date, strike: float) -> Option:
    return Option("SPY", f"{expiry:%Y%m%d}", strike, "P", "SMART", currency="USD")


SATURDAY = EXPIRY + timedelta(days=(5 - EXPIRY.weekday()) % 7 or 7)
EXPIRED = T0.date() - timedelta(days=7)


@pytest.mark.parametrize(
    ("contract", "why"),
    [
        (spy_put(EXPIRY, 451.37), "a strike off the grid"),
        (spy_put(SATURDAY, 450), "a Saturday expiry"),
        (spy_put(EXPIRED, 450), "an expiry past"),
    ],
)
def test_an_option_ib_does_not_list_is_error_200_and_nothing_else(contract: Any, why: str) -> None:
    assert details(contract) == (0, [200]), why


def test_a_listed_option_has_its_details() -> None:
    assert details(spy_put(EXPIRY, 450)) == (1, [])
    assert details(spy_put(EXPIRY, 452.5)) == (1, [])


def test_a_line_streams_changes_its_parameters_first_and_the_farms_are_said() -> None:
    """As IB: the data farms' notices (2104, 2106, 2158) once the API starts; a line's
    parameters (tickReqParams) before its ticks; a tick only when its value changed (the
    fake resent every quote four times a second, moved or not)."""

    async def main() -> tuple[list[int], Any, list[tuple[int, float]]]:
        ticks: list[tuple[int, float]] = []
        async with connected() as (ib, said):
            (contract,) = await ib.qualifyContractsAsync(spy_put(EXPIRY, 450))
            ticker = ib.reqMktData(contract, "", False, False)
            ticker.updateEvent += lambda t: ticks.extend((k.tickType, k.price) for k in t.ticks)
            await asyncio.sleep(2.0)
            return [code for code, _ in said], ticker, ticks

    codes, ticker, ticks = asyncio.run(main())
    assert codes[:3] == [2104, 2106, 2158]
    assert (ticker.minTick, ticker.bboExchange, ticker.snapshotPermissions) == (0.01, "9c0001", 3)
    prices = [(kind, price) for kind, price in ticks if kind in (1, 2)]  # bid, ask
    assert len(prices) > 4
    last: dict[int, float] = {}
    repeated = 0
    for kind, price in prices:
        repeated += last.get(kind) == price
        last[kind] = price
    assert repeated == 0, prices


SATURDAY_NOON = datetime(2027, 3, 6, 17, 0, tzinfo=UTC)  # 12:00 New York


@pytest.mark.parametrize(("start", "quoted"), [(T0, True), (SATURDAY_NOON, False)])
def test_options_are_quoted_in_regular_hours_only(start: datetime, quoted: bool) -> None:
    """Options trade in regular hours only: outside them IB streams no live option quotes
    (the stock still streams). The fake streamed them at any hour."""

    async def main() -> tuple[Any, Any]:
        async with connected(start) as (ib, _):
            option, stock = await ib.qualifyContractsAsync(spy_put(EXPIRY, 450), Stock("SPY"))
            put, spy = ib.reqMktData(option), ib.reqMktData(stock)
            await asyncio.sleep(1.5)
            return put, spy

    put, spy = asyncio.run(main())
    assert (put.bid > 0) is quoted
    assert 0 < spy.bid < spy.ask


MONDAY_BEFORE_THE_OPEN = datetime(2027, 3, 8, 14, 29, 50, tzinfo=UTC)  # 09:29:50 New York


async def spy_close(ib: IB) -> Any:
    """The BAG that closes the SPY 450/445 put spread: buy the short, sell the long."""
    from ib_async import ComboLeg, Contract  # noqa: PLC0415

    short, long = await ib.qualifyContractsAsync(spy_put(EXPIRY, 450), spy_put(EXPIRY, 445))
    return Contract(secType="BAG", symbol="SPY", exchange="SMART", currency="USD",
                    comboLegs=[ComboLeg(conId=short.conId, ratio=1, action="BUY",
                                        exchange="SMART"),
                               ComboLeg(conId=long.conId, ratio=1, action="SELL",
                                        exchange="SMART")])  # fmt: skip


def place_a_close(start: datetime, wait: float) -> tuple[list[str], list[tuple[int, str]], int]:
    """A marketable closing BAG placed at ``start`` (market time, 20x the wall): its
    statuses as ib_async logged them, the errors IB sent for it, how many openOrder."""
    from ib_async import LimitOrder  # noqa: PLC0415

    async def main() -> tuple[list[str], list[tuple[int, str]], int]:
        async with connected(start) as (ib, said):
            opened: list[Any] = []
            ib.openOrderEvent += opened.append
            bag = await spy_close(ib)
            trade = ib.placeOrder(bag, LimitOrder("BUY", 2, 9.99, orderRef="T:1"))
            for _ in range(int(wait / 0.05)):  # (at most ``wait`` seconds: until it is done)
                await asyncio.sleep(0.05)
                if trade.isDone():
                    break
            return [e.status for e in trade.log], [x for x in said if x[0] < 2100], len(opened)

    return asyncio.run(main())


def test_an_order_is_presubmitted_then_submitted_and_each_change_has_its_open_order() -> None:
    """As IB: PreSubmitted (accepted), Submitted (at the exchange), then Filled, each change
    told with an openOrder and an orderStatus (the fake said Submitted at once, and no
    openOrder after the first)."""
    statuses, said, opened = place_a_close(T0, 10.0)
    changes = [s for k, s in enumerate(statuses) if k == 0 or statuses[k - 1] != s]
    assert [s for s in changes if s != "PendingSubmit"] == ["PreSubmitted", "Submitted", "Filled"]
    assert said == []
    assert opened >= 3


def test_a_day_order_before_the_open_waits_presubmitted_with_ib_s_399() -> None:
    """Placed at 09:29:50: IB holds it (PreSubmitted) with warning 399, "will not be
    placed at the exchange until" the open, sends it at 09:30, and only then can it fill.
    The fake filled it at once."""
    statuses, said, _ = place_a_close(MONDAY_BEFORE_THE_OPEN, 0.3)  # (09:29:56)
    assert "Filled" not in statuses
    assert statuses[-1] in ("PreSubmitted", "ValidationError")  # (ib_async's word on a 399)
    ((code, text),) = said
    assert code == 399
    assert text.endswith("will not be placed at the exchange until 2027-03-08 09:30:00 US/Eastern")
    later, _, _ = place_a_close(MONDAY_BEFORE_THE_OPEN, 10.0)  # (after 09:30: filled)
    assert "Filled" in later


def test_a_chain_query_lists_the_chain_and_a_snapshot_ends() -> None:
    """reqContractDetails with the strike and right left out lists every listed option of
    that expiry (the fake answered 200); a snapshot request gets what there is, then
    tickSnapshotEnd (the fake streamed on and never ended it)."""

    async def main() -> tuple[list[Any], bool]:
        async with connected() as (ib, _):
            chain = Option("SPY", f"{EXPIRY:%Y%m%d}", 0.0, "", "SMART", currency="USD")
            found = await ib.reqContractDetailsAsync(chain)
            (put,) = await ib.qualifyContractsAsync(spy_put(EXPIRY, 450))
            snapshot = await asyncio.wait_for(ib.reqTickersAsync(put), 5)
            return found, bool(snapshot)

    found, ended = asyncio.run(main())
    strikes = {(d.contract.right, d.contract.strike) for d in found}
    assert {("P", 450.0), ("C", 450.0), ("P", 452.5)} <= strikes
    assert len(strikes) == len(found) > 500  # both rights, the half-dollar strikes
    assert {d.contract.lastTradeDateOrContractMonth for d in found} == {f"{EXPIRY:%Y%m%d}"}
    assert ended


def test_completed_orders_list_the_day_s_filled_and_cancelled_orders() -> None:
    """reqCompletedOrders lists the orders done today, each with its final status and the
    quantity filled (IB's completedOrder); the fake answered with its end alone."""
    from ib_async import LimitOrder  # noqa: PLC0415

    async def main() -> list[tuple[str, str, float, bool]]:
        async with connected() as (ib, _):
            bag = await spy_close(ib)
            filled = ib.placeOrder(bag, LimitOrder("BUY", 2, 9.99, orderRef="T:1"))
            working = ib.placeOrder(bag, LimitOrder("BUY", 3, 0.01, orderRef="T:2"))
            while not filled.isDone() or working.orderStatus.status != "Submitted":
                await asyncio.sleep(0.05)
            ib.cancelOrder(working.order)
            while not working.isDone():
                await asyncio.sleep(0.05)
            done = await ib.reqCompletedOrdersAsync(apiOnly=True)
            return [(t.order.orderRef, t.orderStatus.status, t.order.filledQuantity,
                     t.order.permId == p.order.permId) for t, p in zip(done, (filled, working),
                                                                       strict=True)]  # fmt: skip

    assert asyncio.run(main()) == [("T:1", "Filled", 2.0, True), ("T:2", "Cancelled", 0.0, True)]
