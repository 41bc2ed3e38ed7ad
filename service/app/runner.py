"""The runner: start-up, then the monitor and the order desk beside the broker's feed.

:meth:`Runner.load` tells the broker which executions the store holds (never passed on
again), reconciles the store's live orders with the broker, then
builds the exit states from the store (what remains, what profit targets have
closed, which order still works), then says where the account's holdings
differ from what the open positions imply.

Live, :meth:`Runner.run` runs in one ``asyncio.TaskGroup`` until ``stop`` is
set: the feed, the evaluation (in slices, waiting for decided closes to be
written), a few order workers, one event follower, and every half second of
market time the housekeeping (repricing, staleness). Tests, the demo and the
benchmarks drive the same pieces one step at a time with :meth:`Runner.step`.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta

from service.app.book import PositionBook
from service.app.holdings import HoldingsCheck
from service.app.intake import Intake
from service.app.monitor import Monitor
from service.app.readmodel import ReadModel
from service.logs import get_logger
from service.orders.desk import OrderDesk
from service.orders.failures import ORDER_FAILURES, said
from service.orders.reconcile import Reconciler
from service.ports import Clock, Feed, LegKey, LegUpdate, OrderEvent, Store, leg_key
from service.turns import TURN

_log = get_logger("spreadwatch.monitor")
SLICE = 64  # legs evaluated between two turns of the event loop, live
# close decisions between two turns (each costs ~50 us: a burst of them would keep the
# order workers' database round trips waiting)
SLICE_CLOSES = 8
# the longest evaluation waits for decided closes' intents to commit (a database that
# does not answer must not stop the stops being evaluated)
WRITE_WAIT = 0.05
HOUSEKEEPING = 0.5  # seconds of market time between repricing and staleness rounds
WARM_BESIDE_WORKERS = 4  # connections opened at start beside the order workers' (see load)


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """No cyclic garbage collection inside (it would walk the new objects again and again:
    half of a 10,000-position load); the collector runs as before afterwards."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class Runner:
    def __init__(
        self,
        store: Store,
        book: PositionBook,
        monitor: Monitor,
        desk: OrderDesk,
        reconciler: Reconciler,
        views: ReadModel,
        intake: Intake,
        holdings: HoldingsCheck,
        *,
        workers: int = 4,
        poll: float = 30.0,
        reconcile: float = 60.0,
    ) -> None:
        self.store = store
        self.book = book
        self.monitor = monitor
        self.desk = desk
        self.reconciler = reconciler
        self.views = views
        self.intake = intake
        self.holdings = holdings
        self.workers = workers
        self.poll = poll
        self.reconcile = reconcile

    async def load(self, now: datetime, only: set[str] | None = None) -> list[str]:
        """Reconcile the store's live orders with the broker, then watch every open position
        (or those of ``only``) and subscribe its legs. Returns the reconciliation's lines."""
        # every connection the running loop will use, opened now (not on the order path, and
        # the process's descriptors are flat from here): the order workers', the event
        # follower's, the listener's, and the pool's for the lease's renewals, the intake's
        # polls and the health checks
        await self.store.warm(self.workers + WARM_BESIDE_WORKERS)
        await self._stored_fills(now)
        done = await self.reconciler.orders(now)
        live = {o.position_id: o for o in await self.store.live_orders()}
        # (one not working at the broker has been ended by the reconciliation)
        working = {pid: o for pid, o in live.items() if self.desk.live_for(pid) is not None}
        stored = await self.store.open_positions()
        if only is not None:
            stored = [s for s in stored if s.position.id in only]
        admitted = await self.intake.admit(stored)  # the others quarantined
        done += [f"needs attention: {pid}: {why}" for pid, why in self.intake.outside.items()]
        with _collector_paused():  # thousands of new objects, all kept: none to collect
            self.book.load(admitted, working, only)
        self.monitor.positions_changed()
        expected = self.book.expected_holdings()
        decided, attention = await self.reconciler.unseen(expected, self._legs_of)
        for pid, why in attention.items():
            await self.intake.quarantine(pid, why)
        done += decided
        done += await self.reconciler.holdings(expected)
        self.views.realised_before(await self.store.realised())  # FILLED lines' totals
        return done

    async def _stored_fills(self, now: datetime) -> None:
        """The broker told which executions the store holds, before it reconciles and before
        its stream starts: none is passed on as missed (a day before the earliest it reports:
        a gateway's day may start before New York's)."""
        gateway = self.reconciler.gateway
        since = gateway.executions_from(now)
        day = None if since is None else since - timedelta(days=1)
        gateway.stored_executions(await self.store.fill_ids(day))

    def _legs_of(self, position_id: str) -> list[LegKey]:
        """The contracts of a watched position (none: not watched)."""
        watch = self.book.watch(position_id)
        if watch is None:
            return []
        position = watch.state.position
        return [leg_key(position, i) for i in range(len(position.legs))]

    async def step(
        self,
        now: datetime,
        updates: Sequence[LegUpdate] = (),
        events: Sequence[OrderEvent] = (),
    ) -> None:
        """One step, in order: the broker's events, the evaluation of the updates, the
        orders decided, repricing. Deterministic: for tests, the demo and benchmarks."""
        self.desk.on_events(events)
        await self.desk.follow()
        self.monitor.on_quotes(updates)
        self.monitor.evaluate(now)
        await self.desk.work()
        await self.housekeeping(now)

    async def housekeeping(self, now: datetime) -> None:
        """Reprice the live orders toward their natural; say which positions went stale."""
        self.views.beat()
        await self.desk.reprice(now, self.book.natural_of)
        await self.monitor.check_stale(now)

    async def run(self, feed: Feed, clock: Clock, stop: asyncio.Event) -> None:
        """Run live until ``stop`` is set.

        On stop: the feed, evaluation and housekeeping end; decisions not yet taken up
        are dropped (nothing of them is written; they are decided again on restart);
        orders being sent are finished (intent, order, "sent"); the events already
        received are applied. Orders still working are left working."""
        desk = self.desk
        async with asyncio.TaskGroup() as tg:
            upstream = [
                tg.create_task(
                    feed.run(self.monitor.on_quotes, desk.on_events, self.intake.leg_problem),
                    name="feed",
                ),
                tg.create_task(self._evaluating(clock), name="evaluate"),
                tg.create_task(self._housekeeping(clock), name="housekeeping"),
            ]
            workers = [
                tg.create_task(desk.serve_decisions(), name=f"orders-{k}")
                for k in range(self.workers)
            ]
            follower = tg.create_task(desk.serve_events(), name="events")
            upstream += [
                tg.create_task(self.intake.listening(), name="listen"),
                tg.create_task(self.intake.polling(self.poll), name="poll"),
                tg.create_task(self.intake.applying(), name="changes"),
                tg.create_task(self.holdings.run(clock, self.reconcile), name="holdings"),
            ]
            await stop.wait()
            for task in upstream:
                task.cancel()
            desk.drop_queued()
            await desk.intents.join()
            for task in workers:
                task.cancel()
            await desk.events_applied()
            follower.cancel()

    async def _evaluating(self, clock: Clock) -> None:
        monitor, intents = self.monitor, self.desk.intents
        while True:
            await monitor.wake.wait()
            monitor.wake.clear()
            while monitor.backlog():
                monitor.evaluate(clock.now(), SLICE, SLICE_CLOSES, time.perf_counter() + TURN)
                if intents.unwritten:  # what was decided is written before more is evaluated
                    # (asyncio.timeout, not wait_for: in 3.11 wait_for can swallow a
                    # cancel that comes as the event is set, and the loop never stops)
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(WRITE_WAIT):
                            await intents.written.wait()
                await asyncio.sleep(0)  # the workers' and the follower's I/O in between

    async def _housekeeping(self, clock: Clock) -> None:
        while True:
            await clock.sleep(HOUSEKEEPING)
            try:
                await self.housekeeping(clock.now())
            except ORDER_FAILURES as exc:  # (said; the next round tries again)
                _log.error("housekeeping.failed", detail=said(exc))
