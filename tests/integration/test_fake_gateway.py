"""The fake IB gateway against the unmodified ib_async client, over TCP on 127.0.0.1."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from ib_async import IB, ComboLeg, Contract, LimitOrder, Option, Stock
from vollib.black_scholes_merton.greeks import analytical

from brokers.ib.fake import FakeGateway
from brokers.sim.market import SimMarket, Underlying
from rules.clock import years_to_expiry
from rules.model import Right
from service.clock import SpeedClock
from service.ports import LegKey
from tests.factories import LOOP_POSITION
from tests.factories import LOOP_T0 as T0
from tests.factories import STORE_EXPIRY as EXPIRY

PUT_450 = LegKey("SPY", EXPIRY, Right.PUT, Decimal(450))

Session = Callable[[Callable[[IB, FakeGateway], Awaitable[Any]]], Any]


@pytest.fixture
def session(caplog: pytest.LogCaptureFixture) -> Session:
    """Run ``work(ib, gateway)`` with ib_async connected to a fresh fake gateway; then check
    that ib_async logged no error (no decoder failure, no unknown message)."""

    def run(work: Callable[[IB, FakeGateway], Awaitable[Any]], **options: Any) -> Any:
        async def main() -> Any:
            clock = SpeedClock(T0, speed=20)
            market = SimMarket([Underlying("SPY", 470.0, vol=0.15)], T0, seed=3)
            gateway = FakeGateway(market, clock, **options)
            port = await gateway.start("127.0.0.1", 0)
            ticking = asyncio.create_task(gateway.run())
            ib = IB()
            try:
                await ib.connectAsync("127.0.0.1", port, clientId=7, timeout=5)
                return await work(ib, gateway)
            finally:
                ib.disconnect()
                ticking.cancel()
                await gateway.close()

        with caplog.at_level(logging.INFO, logger="ib_async"):
            result = asyncio.run(main())
        errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
        assert not [e for e in errors if "Error handling fields" in e or "Unknown" in e], errors
        assert not any("timed out" in e for e in errors), errors
        return result

    return run


def test_ib_async_connects_and_synchronises(session: Session) -> None:
    async def work(ib: IB, gateway: FakeGateway) -> Any:
        return ib.managedAccounts(), ib.client.serverVersion(), ib.isConnected()

    assert session(work) == (["DU1234567"], 176, True)


def test_a_second_client_with_the_same_id_is_refused(session: Session) -> None:
    async def work(ib: IB, gateway: FakeGateway) -> Any:
        other = IB()
        with pytest.raises((ConnectionError, TimeoutError)):
            await other.connectAsync("127.0.0.1", ib.client.port, clientId=7, timeout=2)
        return ib.isConnected()

    assert session(work) is True


def test_contracts_qualify_with_stable_con_ids(session: Session) -> None:
    async def work(ib: IB, gateway: FakeGateway) -> Any:
        put = Option("SPY", "20270416", 450, "P", "SMART")
        stock = Stock("SPY", "SMART", "USD")
        qualified = await ib.qualifyContractsAsync(put, stock)
        again = await ib.qualifyContractsAsync(Option("SPY", "20270416", 450, "P", "SMART"))
        missing = await ib.qualifyContractsAsync(Option("QQQ", "20270416", 400, "P", "SMART"))
        return qualified, again, missing

    (put, stock), (again,), missing = session(work)
    assert put.conId == again.conId > 0
    assert stock.conId not in (0, put.conId)
    assert (put.localSymbol, put.multiplier, put.right) == ("SPY   270416P00450000", "100", "P")
    assert missing in ([], [None])


def test_market_data_streams_bid_ask_and_model_greeks(session: Session) -> None:
    """The option's bid, ask and model delta are the simulated market's; its Greeks are
    IB's computations: the model's at the market's volatility, the bid's and the ask's at
    the volatility each price implies (so the bid's is below the model's, the ask's
    above), gamma, vega (a vol point's worth) and theta (a day's) as vollib computes them
    at those volatilities; the stock streams bid, ask and last."""

    async def work(ib: IB, gateway: FakeGateway) -> Any:
        (put,) = await ib.qualifyContractsAsync(Option("SPY", "20270416", 450, "P", "SMART"))
        (stock,) = await ib.qualifyContractsAsync(Stock("SPY", "SMART", "USD"))
        ticker = ib.reqMktData(put)
        spy = ib.reqMktData(stock)
        for _ in range(100):
            await asyncio.sleep(0.02)
            if ticker.modelGreeks is not None and not math.isnan(spy.last):
                break
        expected = gateway.market.quote(PUT_450, gateway.market.now)
        return ticker, spy, expected

    ticker, spy, expected = session(work)
    # the market may have moved a step between the last tick and ``expected``
    assert 0 < ticker.bid < ticker.ask
    assert float(expected.bid) == pytest.approx(ticker.bid, abs=0.02)
    assert float(expected.ask) == pytest.approx(ticker.ask, abs=0.02)
    greeks = ticker.modelGreeks
    assert greeks is not None
    assert ticker.bidGreeks is not None  # tick types 10 and 11 as well
    assert ticker.askGreeks is not None
    assert ticker.bidSize == ticker.askSize == 10
    assert expected.delta == pytest.approx(greeks.delta, abs=0.002)
    assert greeks.impliedVol == pytest.approx(0.15)
    bid_iv, ask_iv = ticker.bidGreeks.impliedVol, ticker.askGreeks.impliedVol
    assert bid_iv is not None
    assert ask_iv is not None
    assert bid_iv < greeks.impliedVol < ask_iv
    assert 400 < greeks.undPrice < 550
    for computed in (greeks, ticker.bidGreeks, ticker.askGreeks):
        assert computed.impliedVol is not None
        assert computed.undPrice is not None
        args = ("p", computed.undPrice, 450.0, years_to_expiry(EXPIRY, T0), 0.04,
                computed.impliedVol, 0.0)  # fmt: skip
        assert computed.gamma == pytest.approx(analytical.gamma(*args), rel=0.05)
        assert computed.vega == pytest.approx(analytical.vega(*args), rel=0.05)
        assert computed.theta == pytest.approx(analytical.theta(*args), rel=0.05)
        assert computed.theta < 0 < computed.vega
    assert spy.bid < spy.last < spy.ask


def test_the_line_limit_answers_error_101(session: Session) -> None:
    async def work(ib: IB, gateway: FakeGateway) -> Any:
        errors: list[int] = []
        ib.errorEvent += lambda req_id, code, *rest: errors.append(code)
        contracts = [Option("SPY", "20270416", k, "P", "SMART") for k in (440, 445, 450)]
        qualified = await ib.qualifyContractsAsync(*contracts)
        for c in qualified:
            ib.reqMktData(c)
        await asyncio.sleep(0.3)
        return errors

    assert session(work, line_limit=2) == [101]


def test_delayed_only_data_is_refused_live_and_flagged_delayed(session: Session) -> None:
    """With only delayed data: a live request gets 354 and no quotes; after
    reqMarketDataType(3) the line opens with 10167 and delayed ticks."""

    async def work(ib: IB, gateway: FakeGateway) -> Any:
        gateway.delayed_only = True
        errors: list[int] = []
        ib.errorEvent += lambda req_id, code, *rest: errors.append(code)
        (put,) = await ib.qualifyContractsAsync(Option("SPY", "20270416", 450, "P", "SMART"))
        live = ib.reqMktData(put)
        await asyncio.sleep(0.3)
        live_bid = live.bid
        ib.cancelMktData(put)
        ib.reqMarketDataType(3)
        delayed = ib.reqMktData(put)
        for _ in range(100):
            await asyncio.sleep(0.02)
            if delayed.bid > 0:
                break
        return errors, live_bid, delayed

    errors, live_bid, delayed = session(work)
    assert errors[:2] == [354, 10167]
    assert math.isnan(live_bid)  # nothing came
    assert delayed.marketDataType == 3
    assert delayed.bid > 0


async def spread(ib: IB) -> tuple[Contract, Contract, Contract]:
    """The 450/445 put spread's legs, qualified, and the BAG that closes it (buy back the
    short 450, sell the long 445)."""
    short, long_ = await ib.qualifyContractsAsync(
        Option("SPY", "20270416", 450, "P", "SMART"), Option("SPY", "20270416", 445, "P", "SMART")
    )
    bag = Contract(
        secType="BAG",
        symbol="SPY",
        exchange="SMART",
        currency="USD",
        comboLegs=[
            ComboLeg(conId=short.conId, ratio=1, action="BUY", exchange="SMART"),
            ComboLeg(conId=long_.conId, ratio=1, action="SELL", exchange="SMART"),
        ],
    )
    return short, long_, bag


async def until(check: Callable[[], bool], seconds: float = 5.0) -> None:
    for _ in range(int(seconds / 0.02)):
        if check():
            return
        await asyncio.sleep(0.02)


def test_a_marketable_combo_fills_with_bag_and_leg_executions(session: Session) -> None:
    """A closing combo at a limit above the natural fills at the natural: ib_async sees the
    BAG execution and one per leg (leg prices summing to the BAG's), commissions per leg,
    and the account's positions move."""

    async def work(ib: IB, gateway: FakeGateway) -> Any:
        short, long_, bag = await spread(ib)
        gateway.hold(gateway.instrument("SPY", "OPT", EXPIRY, Right.PUT, Decimal(450)), -10)  # type: ignore[arg-type]
        gateway.hold(gateway.instrument("SPY", "OPT", EXPIRY, Right.PUT, Decimal(445)), 10)  # type: ignore[arg-type]
        trade = ib.placeOrder(bag, LimitOrder("BUY", 4, 9.99, orderRef="P1:0:1"))
        await until(lambda: trade.orderStatus.status == "Filled")
        await asyncio.sleep(0.1)
        positions = {p.contract.conId: p.position for p in await ib.reqPositionsAsync()}
        return trade, short, long_, positions

    trade, short, long_, positions = session(work)
    assert trade.orderStatus.status == "Filled"
    assert (trade.orderStatus.filled, trade.orderStatus.remaining) == (4, 0)
    kinds = sorted((f.contract.secType, f.execution.side, f.execution.shares) for f in trade.fills)
    assert kinds == [("BAG", "BOT", 4), ("OPT", "BOT", 4), ("OPT", "SLD", 4)]
    bag_fill = next(f for f in trade.fills if f.contract.secType == "BAG")
    leg_price = {
        f.execution.side: f.execution.price for f in trade.fills if f.contract.secType == "OPT"
    }
    assert bag_fill.execution.price == pytest.approx(leg_price["BOT"] - leg_price["SLD"])
    assert all(f.execution.orderRef == "P1:0:1" for f in trade.fills)
    assert [f.commissionReport.commission for f in trade.fills if f.contract.secType == "OPT"] == [
        pytest.approx(2.6),
        pytest.approx(2.6),
    ]
    assert positions == {short.conId: -6, long_.conId: 6}


def test_a_working_order_is_modified_cancelled_and_found_after_a_reconnect(
    session: Session,
) -> None:
    """An order below the market works; a new ib_async client (same client id, after the
    first one went away) finds it by reqAllOpenOrders with its orderRef; a placeOrder with
    its order id modifies it; cancelOrder ends it (202)."""

    async def work(ib: IB, gateway: FakeGateway) -> Any:
        _, _, bag = await spread(ib)
        trade = ib.placeOrder(bag, LimitOrder("BUY", 4, 0.01, orderRef="P1:0:1"))
        await until(lambda: trade.orderStatus.status == "Submitted")
        port = ib.client.port
        ib.disconnect()
        await asyncio.sleep(0.1)
        await ib.connectAsync("127.0.0.1", port, clientId=7, timeout=5)
        found = await ib.reqAllOpenOrdersAsync()
        (again,) = [t for t in found if t.order.orderRef == "P1:0:1"]
        again.order.lmtPrice = 0.02
        ib.placeOrder(again.contract, again.order)
        await asyncio.sleep(0.1)
        limit = gateway.order("P1:0:1").limit  # type: ignore[union-attr]
        errors: list[int] = []
        ib.errorEvent += lambda req_id, code, *rest: errors.append(code)
        ib.cancelOrder(again.order)
        await until(lambda: again.orderStatus.status == "Cancelled")
        return again, limit, errors

    again, limit, errors = session(work)
    assert (again.order.totalQuantity, again.order.permId > 0) == (4, True)
    assert [leg.action for leg in again.contract.comboLegs] == ["BUY", "SELL"]
    assert limit == Decimal("0.02")
    assert again.orderStatus.status == "Cancelled"
    assert 202 in errors


def test_executions_missed_while_disconnected_are_there_on_reconnect(session: Session) -> None:
    async def work(ib: IB, gateway: FakeGateway) -> Any:
        _, _, bag = await spread(ib)
        port = ib.client.port
        trade = ib.placeOrder(bag, LimitOrder("BUY", 2, 9.99, orderRef="P2:stop:1"))
        await until(lambda: trade.orderStatus.status == "Submitted")
        ib.disconnect()
        await asyncio.sleep(0.6)  # it fills while no one listens
        await ib.connectAsync("127.0.0.1", port, clientId=7, timeout=5)
        return await ib.reqExecutionsAsync()

    fills = session(work)
    assert sorted(f.contract.secType for f in fills) == ["BAG", "OPT", "OPT"]
    assert {f.execution.orderRef for f in fills} == {"P2:stop:1"}


def test_a_rejection_is_error_201_and_the_order_inactive(session: Session) -> None:
    async def work(ib: IB, gateway: FakeGateway) -> Any:
        gateway.reject = "the fake gateway was told to"
        errors: list[tuple[int, str]] = []
        ib.errorEvent += lambda req_id, code, msg, *rest: errors.append((code, msg))
        _, _, bag = await spread(ib)
        trade = ib.placeOrder(bag, LimitOrder("BUY", 2, 1.0, orderRef="P3:0:1"))
        await until(lambda: trade.orderStatus.status == "Inactive")
        return trade, errors

    trade, errors = session(work)
    assert trade.orderStatus.status == "Inactive"
    assert errors == [(201, "Order rejected - reason:the fake gateway was told to")]


def test_positions_carry_their_average_cost_per_contract_exactly(session: Session) -> None:
    """reqPositions gives each leg's avgCost (a contract's, the multiplier included) as the
    gateway was told it, for any leg held: here a naked short beside a spread's legs."""

    async def work(ib: IB, gateway: FakeGateway) -> Any:
        naked = gateway.instrument("SPY", "OPT", EXPIRY, Right.PUT, Decimal(440))
        assert naked is not None
        gateway.hold(naked, -2, Decimal("157.5"))
        gateway.hold_spreads(LOOP_POSITION, 3)  # 450/445 P sold at 0.80
        return await ib.reqPositionsAsync()

    held = {(p.contract.strike, p.position, p.avgCost) for p in session(work)}
    assert held == {(440.0, -2.0, 157.5), (450.0, -3.0, 130.0), (445.0, 3.0, 50.0)}


def test_an_order_ref_is_free_text_as_at_ib(session: Session) -> None:
    """IB takes any orderRef: one already used, none at all, and orders that are not
    combos; each is an order of its own (by client and order id, and perm id)."""

    async def work(ib: IB, gateway: FakeGateway) -> Any:
        short, _, bag = await spread(ib)
        errors: list[int] = []
        ib.errorEvent += lambda req_id, code, *rest: errors.append(code)
        trades = [
            ib.placeOrder(bag, LimitOrder("BUY", 1, 0.01, orderRef="P1:0:1")),
            ib.placeOrder(bag, LimitOrder("BUY", 1, 0.01, orderRef="P1:0:1")),
            ib.placeOrder(bag, LimitOrder("BUY", 1, 0.01)),
            ib.placeOrder(short, LimitOrder("BUY", 1, 0.01, orderRef="single")),
        ]
        await until(lambda: all(t.orderStatus.status == "Submitted" for t in trades))
        return trades, errors

    trades, errors = session(work)
    assert [t.orderStatus.status for t in trades] == ["Submitted"] * 4
    assert len({t.order.permId for t in trades}) == 4
    assert errors == []


def test_a_cancel_of_an_order_ib_does_not_know_is_10147(session: Session) -> None:
    """IB's message codes: 10147 "OrderId ... that needs to be cancelled is not found";
    10148 (cannot be cancelled, with its state) is for an order IB has, done."""

    async def work(ib: IB, gateway: FakeGateway) -> Any:
        errors: list[tuple[int, int, str]] = []
        ib.errorEvent += lambda req_id, code, msg, *rest: errors.append((req_id, code, msg))
        ib.client.cancelOrder(4242, "")
        await until(lambda: bool(errors))
        return errors

    assert session(work) == [(4242, 10147, "OrderId 4242 that needs to be cancelled is not found.")]


def test_a_read_only_api_answers_placeorder_and_what_if_with_321(session: Session) -> None:
    """IB Gateway's "Read-Only API": every placeOrder, a what-if too, gets 321."""

    async def work(ib: IB, gateway: FakeGateway) -> Any:
        _, _, bag = await spread(ib)
        errors: list[tuple[int, str]] = []
        ib.errorEvent += lambda req_id, code, msg, *rest: errors.append((code, msg))
        gateway.read_only = True
        ib.placeOrder(bag, LimitOrder("BUY", 1, 0.01, orderRef="P1:0:1"))
        asking = asyncio.ensure_future(ib.whatIfOrderAsync(bag, LimitOrder("BUY", 1, 0.01)))
        await until(lambda: len(errors) == 2)
        asking.cancel()
        return errors, gateway.order("P1:0:1")

    errors, order = session(work)
    assert [code for code, _ in errors] == [321, 321]
    assert all("Read-Only mode" in msg for _, msg in errors)
    assert order is None


def test_a_what_if_is_answered_with_its_margin_and_nothing_placed(session: Session) -> None:
    async def work(ib: IB, gateway: FakeGateway) -> Any:
        _, _, bag = await spread(ib)
        state = await asyncio.wait_for(ib.whatIfOrderAsync(bag, LimitOrder("BUY", 1, 0.5)), 5)
        return state, list(gateway._orders)

    state, orders = session(work)
    assert float(state.initMarginChange) > 0
    assert orders == []


# Combo fills and commission reports as IB sends them (issue 18) --------------------

UNSET_DOUBLE = 1.7976931348623157e308  # IB's "no value" double (ibapi: UNSET_DOUBLE)
COMBO_CON_ID = 28812380  # IB's conId of a USD combo


def watch(ib: IB) -> list[tuple[str, float, Any]]:
    """Every execDetails and commissionReport as it comes, raw (before ib_async turns
    IB's "no value" into 0): (kind, monotonic time, what)."""
    seen: list[tuple[str, float, Any]] = []
    executions, reports = ib.wrapper.execDetails, ib.wrapper.commissionReport

    def execution(req_id: int, contract: Any, ex: Any) -> None:
        seen.append(("execution", time.monotonic(), (contract, ex)))
        executions(req_id, contract, ex)

    def report(r: Any) -> None:
        seen.append(("report", time.monotonic(), r.realizedPNL))
        reports(r)

    ib.wrapper.execDetails = execution  # type: ignore[method-assign]
    ib.wrapper.commissionReport = report  # type: ignore[method-assign]
    return seen


async def fill_four(ib: IB, gateway: FakeGateway) -> Any:
    _, _, bag = await spread(ib)
    trade = ib.placeOrder(bag, LimitOrder("BUY", 4, 9.99, orderRef="P1:0:1"))
    await until(lambda: trade.orderStatus.status == "Filled")
    return trade


def test_a_combo_fill_is_sent_as_ib_sends_it(session: Session) -> None:
    """The BAG execution carries IB's combo conId; the legs' execIds share the BAG's
    leading part and may be stamped later; each leg's commission report is a message of
    its own, after the executions, with IB's "no value" for the realised P&L."""

    async def work(ib: IB, gateway: FakeGateway) -> Any:
        seen = watch(ib)
        trade = await fill_four(ib, gateway)
        await until(lambda: sum(k == "report" for k, _, _ in seen) == 2)
        return trade, seen

    _, seen = session(work)
    executions = [what for kind, _, what in seen if kind == "execution"]
    (bag,) = [(c, ex) for c, ex in executions if c.secType == "BAG"]
    legs = [(c, ex) for c, ex in executions if c.secType != "BAG"]
    assert bag[0].conId == COMBO_CON_ID  # the combo's own conId, not 0
    ids = [ex.execId for _, ex in executions]
    assert len(set(ids)) == 3
    assert ids[1][:9] == ids[0][:9] == ids[2][:9]  # they share their leading part
    assert all(ex.time >= bag[1].time for _, ex in legs)  # a leg may be stamped later
    # each report a message of its own, after the executions, trailing them
    kinds = [kind for kind, _, _ in seen]
    assert kinds == ["execution"] * 3 + ["report"] * 2
    last_execution = max(t for kind, t, _ in seen if kind == "execution")
    assert all(t > last_execution for kind, t, _ in seen if kind == "report")
    assert [pnl for kind, _, pnl in seen if kind == "report"] == [UNSET_DOUBLE] * 2


def test_req_executions_answers_the_days_executions_only(session: Session) -> None:
    """IB: reqExecutions gives the executions of the current day (since midnight in the
    gateway's time zone); yesterday's are not among them."""

    async def work(ib: IB, gateway: FakeGateway) -> Any:
        await fill_four(ib, gateway)
        today = await ib.reqExecutionsAsync()
        gateway.clock.start += timedelta(days=1)  # type: ignore[attr-defined]
        tomorrow = await ib.reqExecutionsAsync()
        return today, tomorrow

    today, tomorrow = session(work)
    assert sorted(f.contract.secType for f in today) == ["BAG", "OPT", "OPT"]
    assert tomorrow == []


def test_commission_delay_holds_each_report_back(session: Session) -> None:
    async def work(ib: IB, gateway: FakeGateway) -> Any:
        gateway.commission_delay = 0.5
        seen = watch(ib)
        await fill_four(ib, gateway)
        await until(lambda: sum(k == "report" for k, _, _ in seen) == 2)
        return seen

    seen = session(work)
    last_execution = max(t for kind, t, _ in seen if kind == "execution")
    reports = [t for kind, t, _ in seen if kind == "report"]
    assert min(reports) - last_execution >= 0.4


def test_commission_first_sends_the_reports_before_their_executions(session: Session) -> None:
    async def work(ib: IB, gateway: FakeGateway) -> Any:
        gateway.commission_first = True
        seen = watch(ib)
        await fill_four(ib, gateway)
        await asyncio.sleep(0.2)
        return seen

    seen = session(work)
    assert [kind for kind, _, _ in seen] == ["report"] * 2 + ["execution"] * 3


def test_leg_only_fills_send_no_bag_execution(session: Session) -> None:
    async def work(ib: IB, gateway: FakeGateway) -> Any:
        gateway.leg_only_fills = True
        seen = watch(ib)
        await fill_four(ib, gateway)
        await until(lambda: sum(k == "report" for k, _, _ in seen) == 2)
        return seen

    seen = session(work)
    executions = [what for kind, _, what in seen if kind == "execution"]
    assert sorted(c.secType for c, _ in executions) == ["OPT", "OPT"]
