"""The order manager against the simulated broker, on the in-memory store."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from brokers.sim.broker import SimBroker
from brokers.sim.gateway import SimGateway
from rules.clock import MarketTime
from rules.machine import Close, ExitReason
from rules.model import Quote
from rules.pricing import RepriceSchedule
from service.orders.closing import NotAClose
from service.orders.desk import OrderDesk
from service.orders.execute import Attempts, DryRunExecutor, LiveExecutor, WouldClose
from service.orders.intents import CloseRequest
from service.orders.working import WorkingOrders
from service.ports import Commission, Execution, LegUpdate, OrderEvent, OrderStatus, Store, leg_key
from service.store.memory import InMemoryStore
from tests.factories import LOOP_T0 as T0  # Tuesday 10:00 New York
from tests.factories import vertical

POSITION = vertical()  # P1: short 450 P, long 445 P, 10 contracts, credit 1.00
SHORT, LONG = leg_key(POSITION, 0), leg_key(POSITION, 1)
SCHEDULE = RepriceSchedule(
    steps=4, interval=timedelta(seconds=10), stop_interval=timedelta(seconds=2)
)


def profit_close(contracts: int = 4, debit: str = "0.50") -> Close:
    gain = Decimal("1.00") - Decimal(debit)
    return Close(
        contracts=contracts,
        reason=ExitReason.PROFIT_TARGET,
        label="50% profit target",
        target=Decimal("0.50"),
        tranche=0,
        debit=Decimal(debit),
        pnl=gain * 100 * contracts,
        pct_of_max=gain,
        triggers=(ExitReason.PROFIT_TARGET,),
    )


def loss_stop(contracts: int, debit: str = "1.50", *, replaces: bool = False) -> Close:
    gain = Decimal("1.00") - Decimal(debit)
    return Close(
        contracts=contracts,
        reason=ExitReason.LOSS_STOP,
        label="loss stop",
        target=None,
        tranche=None,
        debit=Decimal(debit),
        pnl=gain * 100 * contracts,
        pct_of_max=gain,
        triggers=(ExitReason.LOSS_STOP,),
        replaces=replaces,
    )


class Desk:
    """A store, a simulated broker holding the position, a clock and the manager."""

    def __init__(self, store: Store, **broker: Any) -> None:
        self.now = T0
        self.store = store
        self.broker = SimBroker(**broker)
        self.broker.hold_spreads(POSITION, 10)
        gateway = SimGateway(self.broker, lambda: self.now)
        working = WorkingOrders(gateway, SCHEDULE)
        executor = LiveExecutor(store, gateway, working, Attempts(store))
        self.manager = OrderDesk(store, working, executor)

    def at(self, *, regular: bool = True) -> MarketTime:
        return MarketTime(self.now, self.now.date(), regular, T0 if regular else None)

    async def stored(self) -> Any:
        (s,) = await self.store.open_positions() or await self.store.all_positions()
        return s

    async def tick(
        self,
        seconds: float,
        short: tuple[str, str],
        long: tuple[str, str],
        *,
        broker_first: bool = False,
    ) -> None:
        """Time passes; both legs quote; the broker works its orders; events reach the store.
        ``broker_first``: the broker sees the quotes before the manager reprices (as in the
        monitor's step), so a limit is one quote behind a moving market."""
        self.now += timedelta(seconds=seconds)
        updates = [
            LegUpdate(SHORT, Quote(Decimal(short[0]), Decimal(short[1]), self.now, -0.2, 460.0)),
            LegUpdate(LONG, Quote(Decimal(long[0]), Decimal(long[1]), self.now, -0.1, 460.0)),
        ]
        natural = Decimal(short[1]) - Decimal(long[0])
        if not broker_first:
            await self.manager.reprice(self.now, {"P1": natural}.get)
        self.broker.on_market(updates, self.now)
        for event in self.broker.events():
            await self.manager.on_event(event)
        if broker_first:
            await self.manager.reprice(self.now, {"P1": natural}.get)


@pytest.fixture
def desk() -> Callable[..., Any]:
    def run(work: Callable[[Desk], Awaitable[Any]], **broker: Any) -> Any:
        async def main() -> Any:
            store = InMemoryStore()
            await store.import_positions([POSITION], "DU1")
            return await work(Desk(store, **broker))

        return asyncio.run(main())

    return run


def test_a_profit_close_is_written_sent_and_filled(desk: Callable[..., Any]) -> None:
    async def work(d: Desk) -> Any:
        ref = await d.manager.close(await d.stored(), profit_close(), Decimal("0.52"), d.at())
        await d.tick(0.3, ("0.60", "0.61"), ("0.11", "0.12"))  # natural 0.50: marketable
        return ref, await d.store.detail("P1")

    ref, detail = desk(work)
    assert ref == "P1:0:1"
    (order,) = detail.orders
    assert (order.status, order.filled, order.limit_price) == ("filled", 4, Decimal("0.5"))
    assert (detail.stored.remaining, detail.stored.stage, detail.stored.status) == (6, 1, "open")
    kinds = [e.kind for e in detail.events]
    assert kinds == [
        "imported",
        "decision",
        "close intent",
        "order queued",
        "order submitted",
        "order working",
        "filled",
    ]


def test_an_order_below_the_natural_is_repriced_to_a_fill(desk: Callable[..., Any]) -> None:
    """Mark 0.50, natural 0.58: not marketable at first; after 4 x 10 s the limit is the
    natural and it fills there."""

    async def work(d: Desk) -> Any:
        await d.manager.close(await d.stored(), profit_close(), Decimal("0.58"), d.at())
        limits = []
        for _ in range(5):
            await d.tick(10, ("0.68", "0.70"), ("0.12", "0.14"))
            detail = await d.store.detail("P1")
            limits.append(d.broker._orders["P1:0:1"].limit)
        return limits, detail

    limits, detail = desk(work)
    assert limits[:4] == [Decimal("0.52"), Decimal("0.54"), Decimal("0.56"), Decimal("0.58")]
    assert detail.orders[0].status == "filled"
    assert detail.orders[0].avg_price == Decimal("0.58")
    assert detail.stored.remaining == 6


def test_partial_fills_take_contracts_off_at_once(desk: Callable[..., Any]) -> None:
    async def work(d: Desk) -> Any:
        await d.manager.close(await d.stored(), profit_close(3), Decimal("0.50"), d.at())
        remaining = []
        for _ in range(3):
            await d.tick(0.3, ("0.60", "0.61"), ("0.11", "0.12"))
            remaining.append((await d.stored()).remaining)
        return remaining, await d.store.detail("P1")

    remaining, detail = desk(work, fill_size=1)
    assert remaining == [9, 8, 7]
    assert len(detail.fills) == 3
    assert detail.orders[0].status == "filled"


def test_a_rejection_ends_the_order_and_the_position_is_open_again(
    desk: Callable[..., Any],
) -> None:
    async def work(d: Desk) -> Any:
        await d.manager.close(await d.stored(), profit_close(), Decimal("0.52"), d.at())
        await d.tick(0.3, ("0.60", "0.61"), ("0.11", "0.12"))
        return await d.store.detail("P1"), d.manager.live_for("P1")

    detail, live = desk(work, reject=lambda order: "201: order rejected")
    assert detail.orders[0].status == "rejected"
    assert (detail.stored.status, detail.stored.remaining, live) == ("open", 10, None)
    assert "201: order rejected" in [e.detail for e in detail.events]


def test_nothing_is_sent_outside_regular_hours(desk: Callable[..., Any]) -> None:
    async def work(d: Desk) -> Any:
        ref = await d.manager.close(
            await d.stored(), profit_close(), Decimal("0.52"), d.at(regular=False)
        )
        return ref, await d.store.detail("P1")

    ref, detail = desk(work)
    assert (ref, detail.orders) == (None, [])


def test_an_order_larger_than_the_account_holds_is_refused_and_not_written(
    desk: Callable[..., Any],
) -> None:
    async def work(d: Desk) -> Any:
        d.broker.hold(SHORT, 8)  # the account now holds only 2 short puts
        with pytest.raises(NotAClose, match="account holds only -2"):
            await d.manager.close(await d.stored(), profit_close(4), Decimal("0.52"), d.at())
        return await d.store.detail("P1")

    detail = desk(work)
    assert detail.orders == []


def test_a_stop_replaces_a_working_profit_close(desk: Callable[..., Any]) -> None:
    """A profit close works below the market; a loss stop comes: the profit close is
    cancelled, and the stop then closes all that remains, walking fast to the natural."""

    async def work(d: Desk) -> Any:
        await d.manager.close(await d.stored(), profit_close(), Decimal("0.80"), d.at())
        await d.tick(0.3, ("1.70", "1.72"), ("0.20", "0.22"))  # natural 1.52: far away
        replaced = await d.manager.close(
            await d.stored(), loss_stop(10, replaces=True), Decimal("1.52"), d.at()
        )
        await d.tick(0.3, ("1.70", "1.72"), ("0.20", "0.22"))  # the cancel is confirmed
        stop = await d.manager.close(await d.stored(), loss_stop(10), Decimal("1.52"), d.at())
        for _ in range(5):  # a stop walks every 2 s: at the natural after 8 s
            await d.tick(2, ("1.70", "1.72"), ("0.20", "0.22"))
        return replaced, stop, await d.store.detail("P1")

    replaced, stop, detail = desk(work)
    assert (replaced, stop) == (None, "P1:stop:1")
    assert [(o.order_ref, o.status) for o in detail.orders] == [
        ("P1:0:1", "cancelled"),
        ("P1:stop:1", "filled"),
    ]
    assert (detail.stored.remaining, detail.stored.status) == (0, "closed")


def test_at_the_last_step_the_limit_follows_the_natural(desk: Callable[..., Any]) -> None:
    """A stop reaches the natural after 4 x 2 s, but the market has moved on by then: from
    there the limit follows the natural each time it moves, and fills once it catches it."""

    async def work(d: Desk) -> Any:
        await d.manager.close(await d.stored(), loss_stop(10), Decimal("1.52"), d.at())
        for short_ask in ("1.72", "1.73", "1.74", "1.75", "1.76", "1.77", "1.77", "1.77"):
            await d.tick(2, ("1.70", short_ask), ("0.20", "0.22"), broker_first=True)
        return await d.store.detail("P1")

    detail = desk(work)
    assert detail.orders[0].status == "filled"
    assert detail.fills[0].price == Decimal("1.57")


def test_a_dry_run_records_and_says_each_close_once_per_decision_change() -> None:
    """The same close decided three times is one record and one WouldClose; a different
    one (a stop after a profit close) is recorded and said again. Nothing is sent."""

    async def main() -> Any:
        store = InMemoryStore()
        await store.import_positions([POSITION], "DU1")
        (stored,) = await store.open_positions()
        dry = DryRunExecutor(store)
        at = MarketTime(T0, T0.date(), True, T0)
        results = []
        for close in (profit_close(), profit_close(), profit_close(), loss_stop(10)):
            request = CloseRequest(stored, close, Decimal("0.52"), at)
            results += await dry.execute([request])
        return results, await store.detail("P1")

    results, detail = asyncio.run(main())
    assert results == [WouldClose(), None, None, WouldClose()]
    assert [(e.kind, e.reason) for e in detail.events if e.kind != "imported"] == [
        ("would close (dry run)", "profit_target"),
        ("would close (dry run)", "loss_stop"),
    ]
    assert detail.orders == []


def test_a_commission_reported_after_its_fill_is_added_to_it_once(
    desk: Callable[..., Any],
) -> None:
    """A fill passed on with its commission pending (IB's reports trail it), then each
    leg's report as an event of its own: added to the stored fill once each, even when
    it comes again."""

    async def work(d: Desk) -> Any:
        await d.manager.close(await d.stored(), profit_close(), Decimal("0.52"), d.at())
        await d.store.order_sent("P1:0:1", "working")
        at = d.now
        execution = Execution("E1", "P1:0:1", 4, Decimal("0.50"), None, at)
        await d.manager.on_event(OrderEvent("P1:0:1", OrderStatus.FILLED, 4, 0, at,
                                            execution=execution))  # fmt: skip
        for report_id in ("E1.1", "E1.2", "E1.2"):  # the second leg's twice
            report = Commission("E1", report_id, Decimal("1.30"))
            await d.manager.on_event(
                OrderEvent("P1:0:1", OrderStatus.FILLED, 4, 0, at, commission=report)
            )
        return await d.store.detail("P1")

    detail = desk(work)
    (fill,) = detail.fills
    assert fill.commission == Decimal("2.60")
    assert detail.stored.remaining == 6
