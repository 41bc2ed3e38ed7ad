"""IB's time over a real socket: the fake gateway answers reqCurrentTime from its clock as IB
does (whole seconds), and the adapter on IB's time (``IbBroker.on_ib_time``, the daemon's)
runs on it: its offset from this machine's clock, a fast fake gateway's rate, the drift
said once, asked afresh after a reconnect; no answer, one line."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from ib_async import IB

from brokers.ib.broker import BrokerClock, IbBroker
from brokers.ib.fake import FakeGateway, server
from brokers.sim.market import SimMarket, Underlying
from service.clock import SpeedClock
from service.errors import BrokerUnavailable
from service.settings import IbSettings

MONDAY = datetime(2026, 12, 7, 15, 0, tzinfo=UTC)  # 10:00 New York

Work = Callable[[IbBroker, BrokerClock, FakeGateway, list[str]], Awaitable[Any]]


def on_ib_time(work: Work, *, start: datetime = MONDAY, speed: float = 1.0) -> Any:
    """``work`` with the adapter on IB's time, connected to a fake gateway whose clock
    starts at ``start`` and runs ``speed`` times the wall's; the human lines it said."""

    async def main() -> Any:
        clock = SpeedClock(start, speed)
        market = SimMarket([Underlying("SPY", 470.0, vol=0.15)], start, seed=3)
        gateway = FakeGateway(market, clock)
        port = await gateway.start("127.0.0.1", 0)
        said: list[str] = []
        broker, ib_time = IbBroker.on_ib_time(IbSettings(port=port, timeout=5), said.append)
        try:
            await broker.connect()
            return await work(broker, ib_time, gateway, said)
        finally:
            await broker.close()
            await gateway.close()

    return asyncio.run(main())


def test_the_fake_gateway_answers_its_clocks_time_in_whole_seconds() -> None:
    """reqCurrentTime, as IB answers it: the server's time in whole seconds (truncated),
    here the fake gateway's simulated clock, not this machine's."""

    async def main() -> tuple[datetime, datetime, datetime]:
        clock = SpeedClock(MONDAY + timedelta(seconds=0.7), 1.0)
        gateway = FakeGateway(SimMarket([Underlying("SPY", 470.0)], MONDAY, seed=1), clock)
        port = await gateway.start("127.0.0.1", 0)
        ib = IB()
        try:
            await ib.connectAsync("127.0.0.1", port, clientId=4, timeout=5)
            before = clock.now()
            answer = await ib.reqCurrentTimeAsync()
            return before, answer, clock.now()
        finally:
            ib.disconnect()
            await gateway.close()

    before, answer, after = asyncio.run(main())
    assert answer.microsecond == 0
    assert before.replace(microsecond=0) <= answer <= after


def test_on_ib_time_the_clock_is_the_gateways_and_the_drift_is_said_once() -> None:
    async def work(
        broker: IbBroker, clock: BrokerClock, gateway: FakeGateway, said: list[str]
    ) -> Any:
        for _ in range(3):
            await clock.sync()
        return clock.now(), gateway.clock.now(), list(said)

    ours, theirs, said = on_ib_time(work)
    assert abs((ours - theirs).total_seconds()) <= 1.0
    ahead = "ahead of" if datetime.now(UTC) < MONDAY else "behind"
    assert len(said) == 1
    assert said[0].startswith("CLOCK: IB's time is ")
    assert said[0].endswith(f" {ahead} this machine's; the daemon runs on IB's time\n")


def test_on_ib_time_a_fast_fake_gateway_is_followed_at_its_speed() -> None:
    """``fake-gateway --speed 200``: measured at the connection; the clock then advances
    200 times the wall's and stays with the gateway's (its quotes are stamped by it)."""

    async def work(
        broker: IbBroker, clock: BrokerClock, gateway: FakeGateway, said: list[str]
    ) -> Any:
        began = clock.now()
        await asyncio.sleep(0.5)
        return clock.speed, clock.now() - began, clock.now() - gateway.clock.now(), said

    speed, advanced, apart, said = on_ib_time(work, speed=200)
    assert abs(speed - 200) < 4
    assert timedelta(seconds=90) < advanced < timedelta(seconds=130)
    assert abs(apart.total_seconds()) < 5
    assert said[-1] == (
        f"CLOCK: IB's time runs {speed:.3g} times as fast as this machine's (a fake "
        "gateway's --speed?); the daemon follows it\n"
    )


@pytest.mark.ib_errors("^Peer closed connection")
def test_after_a_reconnect_ib_time_is_asked_afresh() -> None:
    """The gateway's clock set back while the connection was down (another gateway): the
    reconnected adapter takes its time, though behind what it said before."""

    async def work(
        broker: IbBroker, clock: BrokerClock, gateway: FakeGateway, said: list[str]
    ) -> Any:
        before = clock.now()
        gateway.clock = SpeedClock(MONDAY - timedelta(days=7), 1.0)
        streaming = asyncio.create_task(broker.run(lambda updates: None, lambda events: None))
        await asyncio.sleep(0.2)
        gateway.drop()
        for _ in range(100):
            await asyncio.sleep(0.05)
            if broker.reconnects and broker.connected():
                break
        await asyncio.sleep(0.6)  # (the connection's answers)
        streaming.cancel()
        return before, clock.now(), broker.reconnects

    before, after, reconnects = on_ib_time(work)
    assert reconnects == 1
    assert before - after > timedelta(days=6)


def test_a_gateway_that_does_not_say_its_time_is_refused_in_one_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A connection whose reqCurrentTime gets no answer (ib_async's request would wait for
    good) ends at ib.timeout with one line saying so."""
    monkeypatch.delitem(server._HANDLERS, 49)

    async def main() -> None:
        clock = SpeedClock(MONDAY, 1.0)
        gateway = FakeGateway(SimMarket([Underlying("SPY", 470.0)], MONDAY, seed=1), clock)
        port = await gateway.start("127.0.0.1", 0)
        broker, _ = IbBroker.on_ib_time(IbSettings(port=port, timeout=0.5))
        try:
            await broker.connect()
        finally:
            await broker.close()
            await gateway.close()

    with pytest.raises(BrokerUnavailable) as refused:
        asyncio.run(main())
    assert str(refused.value).endswith(
        "no answer to a request for its time within 0.5 s (ib.timeout): is the gateway logged in?"
    )
