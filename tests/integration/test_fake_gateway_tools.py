"""The fake gateway's tools for tests and humans, against the unmodified ib_async client:
its ledger (``--ledger``: what IB saw, as it happened) and its scripted moves
(``--script``: prices driven to given levels at given times)."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from ib_async import IB, LimitOrder, Stock

from brokers.ib.fake import FakeGateway
from brokers.ib.fake.ledger import Ledger
from brokers.ib.fake.script import Script, load_script
from brokers.sim.market import SimMarket, Underlying
from rules.model import Right
from service.clock import SpeedClock
from tests.factories import LOOP_T0 as T0
from tests.factories import STORE_EXPIRY as EXPIRY
from tests.integration.test_fake_gateway import Session, session, spread, until

__all__ = ["session"]  # (the fixture, shared with test_fake_gateway)


def ledger(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_the_ledger_has_each_order_received_and_each_execution_sent(
    session: Session, tmp_path: Path
) -> None:
    """A combo of 4 filled 2 at a time: one ``place`` line (ids, orderRef, action, quantity,
    limit, the legs by conId), a ``modify`` for its new limit, and one ``execution`` line
    per execution sent (the BAG's and each leg's), the BAG's execIds those ib_async got;
    the order and its new limit name the API connection that sent them, and its
    ``disconnect`` ends the ledger."""
    path = tmp_path / "ledger.jsonl"

    async def work(ib: IB, gateway: FakeGateway) -> Any:
        gateway.ledger, gateway.broker.fill_size = Ledger(path), 2
        short, long_, bag = await spread(ib)
        trade = ib.placeOrder(bag, LimitOrder("BUY", 4, 0.01, orderRef="P1:0:1"))
        await until(lambda: trade.orderStatus.status == "Submitted")
        trade.order.lmtPrice = 9.99
        ib.placeOrder(bag, trade.order)
        await until(lambda: trade.orderStatus.status == "Filled")
        await asyncio.sleep(0.1)
        return trade, short, long_

    trade, short, long_ = session(work)
    lines = ledger(path)
    place, modify, *executions, disconnect = lines
    order_id, client_id = trade.order.orderId, trade.order.clientId
    assert (disconnect["kind"], disconnect["clientId"]) == ("disconnect", client_id)
    assert place["connection"] == modify["connection"] == disconnect["connection"] >= 1
    assert place["kind"] == "place"
    assert (place["orderId"], place["clientId"], place["orderRef"]) == (order_id, client_id,
                                                                        "P1:0:1")  # fmt: skip
    assert (place["action"], place["quantity"], place["limit"], place["secType"]) == (
        "BUY", 4, "0.01", "BAG"
    )  # fmt: skip
    assert place["legs"] == [
        {"conId": short.conId, "ratio": 1, "action": "BUY"},
        {"conId": long_.conId, "ratio": 1, "action": "SELL"},
    ]
    assert (modify["kind"], modify["orderId"], modify["limit"]) == ("modify", order_id, "9.99")
    assert {e["kind"] for e in executions} == {"execution"}
    assert len(executions) == 6  # two fills: the BAG's and two legs' each
    bags = [e for e in executions if e["secType"] == "BAG"]
    assert [e["shares"] for e in bags] == [2, 2]
    assert {e["execId"] for e in bags} == {
        f.execution.execId for f in trade.fills if f.contract.secType == "BAG"
    }
    legs = [(e["conId"], e["side"], e["shares"]) for e in executions if e["secType"] == "OPT"]
    assert sorted(legs) == sorted([(short.conId, "BOT", 2), (long_.conId, "SLD", 2)] * 2)
    assert all(e["orderRef"] == "P1:0:1" and e["orderId"] == order_id for e in executions)


def test_the_ledger_writes_executions_while_no_client_is_connected(
    session: Session, tmp_path: Path
) -> None:
    """Fills that happen with the client gone are in the ledger as they happen (IB sends
    them to no one), the same executions a client that comes back gets by reqExecutions."""
    path = tmp_path / "ledger.jsonl"

    async def work(ib: IB, gateway: FakeGateway) -> Any:
        gateway.ledger, gateway.broker.fill_size = Ledger(path), 1
        _, _, bag = await spread(ib)
        trade = ib.placeOrder(bag, LimitOrder("BUY", 10, 9.99, orderRef="P1:stop:1"))
        await until(lambda: trade.orderStatus.status != "PendingSubmit")
        port = ib.client.port
        ib.disconnect()
        await until(lambda: gateway.order("P1:stop:1").status == "Filled")  # type: ignore[union-attr]
        other = IB()
        await other.connectAsync("127.0.0.1", port, clientId=8, timeout=5)
        try:
            return await other.reqExecutionsAsync(), len(trade.fills)
        finally:
            other.disconnect()

    fills, heard = session(work)
    assert heard < 10  # (the client was gone for some of them)
    bags = [e for e in ledger(path) if e["kind"] == "execution" and e["secType"] == "BAG"]
    assert sum(e["shares"] for e in bags) == 10
    assert sorted(e["execId"] for e in bags) == sorted(
        f.execution.execId for f in fills if f.contract.secType == "BAG"
    )


def test_scripted_moves_set_a_price_then_move_it_by_a_percentage(tmp_path: Path) -> None:
    """``--script``: SPY (at 470) set to 400 a minute after the start, then moved by -10%
    two minutes after; its quotes say so at those times (the walk in between is small)."""
    script = tmp_path / "moves.toml"
    script.write_text(
        '[[moves]]\nafter = 1\nunderlying = "SPY"\nprice = 400.00\n\n'
        f'[[moves]]\nat = {(T0 + timedelta(minutes=2)).isoformat()}\nunderlying = "SPY"\n'
        "percent = -10\n"
    )

    async def main() -> list[tuple[float, float]]:
        clock = SpeedClock(T0, speed=600)  # a minute: 0.1 s
        gateway = FakeGateway(SimMarket([Underlying("SPY", 470.0, vol=0.15)], T0, seed=3), clock)
        gateway.script = Script(load_script(script, T0, gateway.market.underlyings))
        port = await gateway.start("127.0.0.1", 0)
        ticking = asyncio.create_task(gateway.run())
        ib = IB()
        seen: list[tuple[float, float]] = []  # (market minutes, SPY's price)
        try:
            await ib.connectAsync("127.0.0.1", port, clientId=7, timeout=5)
            (stock,) = await ib.qualifyContractsAsync(Stock("SPY", "SMART", "USD"))
            ticker = ib.reqMktData(stock)
            while (minutes := (clock.now() - T0) / timedelta(minutes=1)) < 2.6:
                seen.append((minutes, ticker.marketPrice()))
                await asyncio.sleep(0.02)
        finally:
            ib.disconnect()
            ticking.cancel()
            await gateway.close()
        return seen

    seen = asyncio.run(main())
    before = [p for m, p in seen if 0.3 < m < 0.9]
    between = [p for m, p in seen if 1.3 < m < 1.9]
    after = [p for m, p in seen if m > 2.3]
    assert before
    assert between
    assert after
    assert all(abs(p - 470) < 470 * 0.01 for p in before), before
    assert all(abs(p - 400) < 400 * 0.01 for p in between), between
    assert all(abs(p - 360) < 360 * 0.01 for p in after), after


def test_a_put_spread_s_quotes_follow_a_scripted_gap(tmp_path: Path) -> None:
    """The options follow the underlying's scripted price: SPY's 450 put, far out of the
    money at 470, is worth far more after a gap to 440."""
    script = tmp_path / "moves.toml"
    script.write_text('[[moves]]\nafter = 1\nunderlying = "SPY"\nprice = 440\n')
    market = SimMarket([Underlying("SPY", 470.0, vol=0.15)], T0, seed=3)
    play = Script(load_script(script, T0, market.underlyings))
    from service.ports import LegKey  # noqa: PLC0415

    put = LegKey("SPY", EXPIRY, Right.PUT, Decimal(450))
    market.subscribe(put)
    market.step(T0 + timedelta(seconds=30))
    early = market.quote(put, market.now)
    play.play(market, T0 + timedelta(minutes=1))
    market.step(T0 + timedelta(minutes=1))
    late = market.quote(put, market.now)
    assert early.underlying_price is not None
    assert late.underlying_price is not None
    assert abs(early.underlying_price - 470) < 5
    assert abs(late.underlying_price - 440) < 0.5
    assert late.bid is not None
    assert early.ask is not None
    assert late.bid > early.ask * 2
