"""The monitor live on the IB path: ib_async against the fake gateway over TCP, real
combo orders, the store on PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from brokers.ib.broker import IbBroker
from brokers.ib.fake import FakeGateway
from brokers.sim import demo
from brokers.sim.market import SimMarket, Underlying
from rules.model import Position
from rules.pricing import RepriceSchedule
from service.clock import SpeedClock
from service.ports import leg_key
from service.settings import IbSettings
from service.store import database
from service.store.repository import SqlStore
from tests.factories import LOOP_POSITION as POSITION
from tests.factories import LOOP_SCHEDULE as SCHEDULE
from tests.factories import LOOP_T0 as T0
from tests.factories import SELLOFF
from tests.loop import monitor_on


async def on_ib(
    db_url: str,
    market: SimMarket,
    positions: list[Position],
    *,
    speed: float = 60,
    schedule: RepriceSchedule = SCHEDULE,
    wall: float = 30.0,
    faults: Callable[[FakeGateway], None] = lambda gateway: None,
) -> Any:
    """``positions`` held at a fake gateway on ``market``, watched live through ib_async
    until all are closed or ``wall`` seconds have passed. Returns the monitor, each
    position's detail, the gateway, and what the account then holds."""
    clock = SpeedClock(market.now, speed=speed)
    gateway = FakeGateway(market, clock)
    faults(gateway)
    legs = [leg_key(p, i) for p in positions for i in range(len(p.legs))]
    for p in positions:
        gateway.hold_spreads(p, p.contracts)
    port = await gateway.start("127.0.0.1", 0)
    ticking = asyncio.create_task(gateway.run())
    engine = database.engine(db_url)
    broker = IbBroker(IbSettings(port=port, timeout=5), now=clock.now)
    try:
        store = SqlStore(engine)
        await store.import_positions(positions, "DU1234567")
        await broker.connect()
        await broker.qualify(legs)
        monitor = await monitor_on(store, broker, schedule)
        await monitor.load(clock.now())
        stop = asyncio.Event()

        async def watch() -> None:
            for _ in range(int(wall / 0.02)):
                if not any(monitor.remaining().values()):
                    break
                await asyncio.sleep(0.02)
            await asyncio.sleep(0.2)
            stop.set()

        async with asyncio.TaskGroup() as tg:
            tg.create_task(monitor.run(broker, clock, stop))
            tg.create_task(watch())
        held = await broker.positions()
        details = {p.id: await store.detail(p.id) for p in positions}
        return monitor, details, gateway, held
    finally:
        await broker.close()
        ticking.cancel()
        await gateway.close()
        await engine.dispose()


async def selloff_on_ib(
    db_url: str, *, fill_size: int | None = None, bad_quotes: str = "", wall: float = 30.0
) -> Any:
    """P1 through the selloff on IB; its detail instead of all details."""

    def faults(gateway: FakeGateway) -> None:
        gateway.broker.fill_size = fill_size  # partial fills: each lands as it comes
        gateway.bad_quotes = bad_quotes

    market = SimMarket([Underlying("SPY", 470.0, vol=0.15, moves=[SELLOFF])], T0, seed=3)
    monitor, details, gateway, held = await on_ib(
        db_url, market, [POSITION], wall=wall, faults=faults
    )
    return monitor, details["P1"], gateway, held


@pytest.mark.ib_errors(r"^Error 104, ")
@pytest.mark.parametrize(("fill_size", "fills"), [(None, [10]), (3, [3, 3, 3, 1])])
def test_a_selloff_closes_everything_through_ib_combo_orders(
    db_url: str, fill_size: int | None, fills: list[int]
) -> None:
    """The same loss stop as on the simulated broker, through IB: the legs are qualified
    and streamed over the TWS API, the stop goes out as a BAG limit order with its
    order_ref, walks to the natural, fills at the fake gateway; the BAG executions land in
    the store once each and the account no longer holds the spread."""
    monitor, detail, gateway, held = asyncio.run(selloff_on_ib(db_url, fill_size=fill_size))
    (order,) = detail.orders
    assert (order.reason, order.status, order.filled) == ("loss_stop", "filled", 10)
    ib_order = gateway.order(order.order_ref)  # the orderRef IB knows it by
    assert ib_order is not None
    assert (order.broker_order_id, order.perm_id) == (ib_order.order_id, ib_order.perm_id)
    # one stored fill per combo fill at IB (not one per leg execution), by execution id
    assert len(gateway._fills) == len({f.exec_id for f in detail.fills}) == len(fills)
    assert [f.quantity for f in detail.fills] == fills
    # IB's commission reports are per leg: $0.65 a contract, two legs
    assert [f.commission for f in detail.fills] == [Decimal("1.30") * n for n in fills]
    assert (detail.stored.remaining, detail.stored.status) == (0, "closed")
    assert held == {}
    assert monitor.remaining() == {"P1": 0}


@pytest.mark.slow
def test_nan_quotes_from_ib_are_never_acted_on(db_url: str) -> None:
    """The same selloff, but IB sends NaN for every option bid and ask: nothing is
    decided, nothing is sent, the position keeps its 10 spreads."""
    monitor, detail, gateway, held = asyncio.run(selloff_on_ib(db_url, bad_quotes="nan", wall=7.0))
    assert (monitor.decisions, detail.orders, gateway._orders) == ([], [], {})
    assert detail.stored.remaining == 10
    assert held == {leg_key(POSITION, 0): -10, leg_key(POSITION, 1): 10}


@pytest.mark.ib_errors(r"^Error 104, ")
@pytest.mark.slow
def test_the_demo_s_every_exit_type_through_ib(db_url: str) -> None:
    """The demo's five spreads and scripted market, served by the fake gateway, watched
    live through ib_async: profit tranches 4/4/2, a single profit exit, a loss stop, a
    delta stop and a time stop, each through real BAG orders, each filled."""

    market = demo.demo_market()
    positions = demo.demo_positions("ib", market)
    _, details, _, _ = asyncio.run(
        on_ib(db_url, market, positions, schedule=demo.SCHEDULE, wall=40.0)
    )
    exits = {
        pid.split("-")[1]: [(o.reason, o.filled) for o in d.orders if o.filled]
        for pid, d in details.items()
    }
    assert exits == {
        "SPY": [("profit_target", 4), ("profit_target", 4), ("profit_target", 2)],
        "DIA": [("profit_target", 2)],
        "QQQ": [("loss_stop", 6)],
        "IWM": [("delta_stop", 5)],
        "XLF": [("time_stop", 3)],
    }
    assert all(d.stored.remaining == 0 for d in details.values())
    ids = [f.exec_id for d in details.values() for f in d.fills]
    assert len(ids) == len(set(ids))  # each combo fill once, by IB's execution id
    for d in details.values():  # and only the combo fills (not the legs' executions)
        assert sum(f.quantity for f in d.fills) == sum(o.filled for o in d.orders)
