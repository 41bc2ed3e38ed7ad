"""The parts built and wired together: :func:`assemble`, and the :class:`App` it returns.

Who needs what is passed at construction, once, and only downward: the
monitor puts decisions on the desk's queue and asks its policy; the desk
applies events to the position book's exit states and feeds the read model;
the reconciler reads the broker through the gateway port. Nothing calls back.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from rules.books import BookPolicy
from rules.clock import MarketTime
from rules.greeks import Rates
from rules.machine import Close
from rules.pricing import RepriceSchedule
from rules.watch import PositionWatch
from service.app.book import PositionBook
from service.app.holdings import HoldingsCheck
from service.app.intake import Intake
from service.app.monitor import Monitor
from service.app.readmodel import ReadModel
from service.app.runner import Runner
from service.orders.desk import OrderDesk
from service.orders.execute import Attempts, DryRunExecutor, Executor, LiveExecutor
from service.orders.intents import Intents
from service.orders.policy import ClosePolicy
from service.orders.reconcile import Reconciler
from service.orders.working import WorkingOrders
from service.ports import (
    Admits,
    Admitted,
    Clock,
    Feed,
    LegKey,
    LegUpdate,
    OrderEvent,
    OrderGateway,
    Store,
    StoredPosition,
)


@dataclass(frozen=True)
class App:
    """The assembled service, and the three ways to drive it: :meth:`load` on start, then
    :meth:`run` live or :meth:`step` by step. Its parts are read directly; the few views
    below are for drivers (the demo, tests, benchmarks)."""

    book: PositionBook
    monitor: Monitor
    desk: OrderDesk
    views: ReadModel
    runner: Runner
    intake: Intake
    holdings: HoldingsCheck

    async def load(self, now: datetime, only: set[str] | None = None) -> list[str]:
        return await self.runner.load(now, only)

    async def step(
        self,
        now: datetime,
        updates: Sequence[LegUpdate] = (),
        events: Sequence[OrderEvent] = (),
    ) -> None:
        await self.runner.step(now, updates, events)

    async def run(self, feed: Feed, clock: Clock, stop: asyncio.Event) -> None:
        await self.runner.run(feed, clock, stop)

    async def housekeeping(self, now: datetime) -> None:
        await self.runner.housekeeping(now)

    def at_close(self) -> list[str]:
        """Once a day, at the close (the daemon's): the book lets go of the day's closed
        positions and every part forgets them; the read model's lists keep the session
        just ended and no more (the store keeps it all). The positions let go."""
        closed = self.book.prune_closed()
        self.monitor.forget(closed)
        self.desk.turn_day(closed)
        self.views.turn_day(closed)
        return closed

    def on_events(self, events: Iterable[OrderEvent]) -> None:
        self.desk.on_events(events)

    # Views for drivers ------------------------------------------------------------------

    @property
    def watches(self) -> dict[str, PositionWatch]:
        return self.book.watches

    @property
    def decisions(self) -> list[tuple[datetime, str, Close]]:
        """The closes sent (the newest the read model keeps)."""
        return list(self.views.decisions)

    @property
    def attention(self) -> dict[str, str]:
        """The positions no order goes for until a human looks, and why."""
        return self.views.attention

    @property
    def updates(self) -> int:
        return self.views.updates

    @property
    def screened(self) -> int:
        return self.views.screened

    @property
    def evaluations(self) -> int:
        return self.views.evaluations

    @property
    def sent_latency(self) -> list[float]:
        return list(self.views.sent_latency)

    def remaining(self) -> dict[str, int]:
        return self.book.remaining()

    def staleness(self, now: datetime) -> dict[str, float]:
        return self.book.staleness(now)

    def expected_holdings(self, legs: Iterable[LegKey] | None = None) -> dict[LegKey, int]:
        return self.book.expected_holdings(legs)

    def watched_legs(self) -> list[LegKey]:
        return self.book.watched_legs()


def book_schedules(
    book: PositionBook, books: Mapping[str, BookPolicy]
) -> Callable[[str], RepriceSchedule | None]:
    """A position's repricing schedule: its book's now (None: a position not watched)."""
    schedules = {name: policy.schedule() for name, policy in books.items()}

    def of(position_id: str) -> RepriceSchedule | None:
        watch = book.watch(position_id)
        return None if watch is None else schedules.get(watch.state.position.book)

    return of


def assemble(
    store: Store,
    gateway: OrderGateway,
    books: Mapping[str, BookPolicy],
    *,
    schedule: RepriceSchedule | None = None,
    subscribe: Callable[[LegKey], None],
    market_time: Callable[[datetime], MarketTime],
    unsubscribe: Callable[[LegKey], None] | None = None,
    rates: Rates | None = None,
    workers: int = 4,
    dry_run: bool = False,
    admits: Admits | None = None,
    connected: Callable[[], bool] = lambda: True,
    poll: float = 30.0,
    reconcile: float = 60.0,
) -> App:
    """Every part on ``store`` and the broker's ``gateway``; ``dry_run``: closes are
    recorded as they would be made, and nothing is sent. ``admits``: the broker that
    gets ready to watch positions (the gateway, when it does); ``connected``: whether the
    broker is there now; ``poll`` and ``reconcile``: seconds between the store's polls
    for changes and between holdings checks, at most; ``schedule``: the repricing of every
    book's closes (None: each book's own, :meth:`rules.books.BookPolicy.schedule`)."""
    book = PositionBook(books, subscribe=subscribe, unsubscribe=unsubscribe)
    views = ReadModel(book)
    intents, policy = Intents(), ClosePolicy()
    if schedule is None:  # each book's walks
        working = WorkingOrders(gateway, RepriceSchedule(), book_schedules(book, books))
    else:  # (tests, the demo: one schedule for every book)
        working = WorkingOrders(gateway, schedule)
    attempts = Attempts(store)
    executor: Executor = (
        DryRunExecutor(store) if dry_run else LiveExecutor(store, gateway, working, attempts, book)
    )
    desk = OrderDesk(
        store, working, executor, intents=intents, policy=policy, book=book, views=views
    )
    monitor = Monitor(book, intents, policy, views, market_time=market_time, rates=rates)
    views.working, views.rates, views.market_time = working.shown, monitor.rates, market_time
    reconciler = Reconciler(store, gateway, working, attempts)
    venue = admits if admits is not None else _Admitted()
    intake = Intake(store, venue, book, monitor, policy, views, books)
    holdings = HoldingsCheck(gateway, store, book, intake, connected)
    gateway.on_positions(holdings.wake.set)
    runner = Runner(
        store, book, monitor, desk, reconciler, views, intake, holdings,
        workers=workers, poll=poll, reconcile=reconcile,
    )  # fmt: skip
    return App(book, monitor, desk, views, runner, intake, holdings)


class _Admitted:
    """A broker with nothing to get ready: every position admitted as it is."""

    async def admit(self, positions: Sequence[StoredPosition]) -> Admitted:
        return Admitted({}, {})
