"""The live loop with the store in place: updates per second and latencies.

    DATABASE_URL=postgresql://... .venv/bin/python benchmarks/bench_loop.py [--positions 1000]

Without DATABASE_URL it uses a throwaway embedded PostgreSQL. It opens
``--positions`` put spreads on 50 simulated underlyings (each at its market
mid), pre-computes a stream of leg quotes from the simulated market (BSM
pricing is the market's cost, not the loop's), then feeds the stream through
the monitor, the order desk, the simulated broker and the store, in steps
of 250 ms of market time. The market rallies half the underlyings 8% so
that profit targets fire and orders flow.

Prints leg updates per second through the loop, p50/p99 of a step's time per
update, p50/p99 from a close decision to its order sent (decision and intent
rows committed to PostgreSQL, order placed), and the peak resident memory.
The loop's logs are dropped; ``BENCH_LOG=FILE`` keeps them.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import resource
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiohttp

from benchmarks.databases import on_database
from benchmarks.spreads import put_spread_at_mid
from brokers.sim.broker import SimBroker
from brokers.sim.gateway import SimGateway
from brokers.sim.market import Move, SimMarket, Underlying
from rules.books import DEFAULT_BOOKS
from rules.model import Position
from service import bootstrap, logs
from service.app.assembly import App as Loop
from service.clock import ManualClock
from service.http.server import Ops
from service.orders.execute import LiveExecutor
from service.ports import (
    Admitted,
    EventSink,
    LegKey,
    LegUpdate,
    ProblemSink,
    QuoteSink,
    StoredPosition,
    leg_key,
)

T0 = datetime(2027, 3, 2, 15, 0, tzinfo=UTC)
EXPIRY = date(2027, 4, 16)


def positions(n: int, market: SimMarket) -> list[Position]:
    return [
        put_spread_at_mid(
            f"B{k:05d}",
            f"U{k % 50:02d}",
            Decimal(round((100.0 + k % 50) * 0.95 - (k // 50) % 10)),
            EXPIRY,
            market,
            T0,
        )
        for k in range(n)
    ]


def stream(
    n: int, minutes: float, local: bool
) -> tuple[list[Position], list[tuple[datetime, list[LegUpdate]]]]:
    """``n`` spreads at their market mid, and the market's steps for ``minutes`` (the
    market's cost, paid before timing); ``local``: the broker sends no Greeks."""
    underlyings = [
        Underlying(
            f"U{k:02d}",
            100.0 + k,
            vol=0.15,
            moves=[Move("rally", T0 + timedelta(minutes=1), 0.08, timedelta(minutes=4))]
            if k % 2
            else [],
        )
        for k in range(50)
    ]
    market = SimMarket(underlyings, T0, seed=5)
    opened = positions(n, market)
    for p in opened:
        for i in range(2):
            market.subscribe(leg_key(p, i))
    steps: list[tuple[datetime, list[LegUpdate]]] = []
    t = T0
    while t < T0 + timedelta(minutes=minutes):
        t += timedelta(milliseconds=250)
        steps.append((t, market.step(t)))
    if local:  # delta comes from the leg's price (vollib)
        for _, updates in steps:
            for k, u in enumerate(updates):
                updates[k] = LegUpdate(u.leg, u.quote._replace(delta=None))
    return opened, steps


class Timings:
    """The loop's evaluation time per update and its order batches, timed in place."""

    def __init__(self, loop: Loop) -> None:
        self.per_update: list[float] = []
        self.batches: list[tuple[int, float]] = []
        views, evaluate = loop.views, loop.monitor.evaluate
        executor = loop.desk.executor
        assert isinstance(executor, LiveExecutor)
        self.executor, execute = executor, executor.execute

        def timed(
            now: datetime, limit: int | None = None, closes: int | None = None, until: Any = None
        ) -> int:
            before = views.updates
            t1 = time.perf_counter()
            decided = evaluate(now, limit, closes, until)
            if views.updates > before:
                self.per_update.append((time.perf_counter() - t1) / (views.updates - before))
            return decided

        async def timed_many(requests: Any, written: Any = None) -> Any:
            t1 = time.perf_counter()
            out = await execute(requests, written)
            self.batches.append((len(requests), time.perf_counter() - t1))
            return out

        loop.monitor.evaluate = timed  # type: ignore[method-assign]
        executor.execute = timed_many  # type: ignore[method-assign]


async def drive(loop: Loop, feed: ReplayFeed, clock: ManualClock) -> float:
    """The stream through the loop until every decision is taken up: seconds taken."""
    stop = asyncio.Event()
    started = time.perf_counter()
    async with asyncio.TaskGroup() as tg:
        tg.create_task(loop.run(feed, clock, stop))
        await feed.done.wait()
        while loop.monitor.backlog() or not loop.desk.intents.empty():
            await asyncio.sleep(0.001)
        await loop.desk.intents.join()
        stop.set()
    return time.perf_counter() - started


def pct(xs: list[float], q: int) -> float:
    return statistics.quantiles(xs, n=100)[q - 1] * 1e3 if len(xs) > 1 else float("nan")


def report(loop: Loop, timings: Timings, offered: int, seconds: float, local: bool) -> None:
    views, per_update, batches = loop.views, timings.per_update, timings.batches
    total = views.updates  # legs evaluated: a quote superseded before its turn is not
    sent = list(views.sent_latency)
    intent = list(timings.executor.intent_latency)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    greeks = "local Greeks (vollib)" if local else "broker Greeks"
    n = len(loop.book.watches)
    print(
        f"loop ({greeks}): {n} positions, {offered:,} leg updates offered in {seconds:.2f}s "
        f"({offered / seconds:,.0f}/s); {total:,} evaluated ({total / seconds:,.0f}/s; the "
        f"rest superseded by a newer quote of their leg first); {views.closes} closes"
    )
    print(
        f"update to decision (evaluation time per update): p50 {pct(per_update, 50):.3f} ms, "
        f"p99 {pct(per_update, 99):.3f} ms"
    )
    print(
        f"decision to intent committed: p50 {pct(intent, 50):.2f} ms, p99 {pct(intent, 99):.2f} ms"
    )
    print(
        f"decision to order sent (intent committed, placed, 'sent' committed): "
        f"p50 {pct(sent, 50):.2f} ms, p99 {pct(sent, 99):.2f} ms ({len(sent)} orders)"
    )
    sizes = sorted(n for n, _ in batches)
    print(
        f"bursts: {len(batches)} order batches, size p50 {sizes[len(sizes) // 2]}, "
        f"max {sizes[-1]}; batch time p50 {pct([t for _, t in batches], 50):.1f} ms, "
        f"p99 {pct([t for _, t in batches], 99):.1f} ms"
    ) if batches else None
    print(f"peak memory: {rss:.0f} MB")


async def watch_page(views: Any, now: Callable[[], datetime], seen: list[int]) -> None:
    """The status page's stream, open through the run: the daemon's HTTP server on
    loopback and one client reading ``/api/events`` (``seen[0]``: events read)."""
    ops = Ops(views, now, broker_connected=lambda: True, database_ok=_ok)
    port = await ops.start("127.0.0.1", 0)
    try:
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"http://127.0.0.1:{port}/api/events") as stream,
        ):
            async for chunk in stream.content.iter_any():  # (an event of 1000s of positions
                seen[0] += chunk.count(b"event: positions")  # is longer than a line may be)
    finally:
        await ops.stop()


async def _ok() -> bool:
    return True


async def bench(
    url: str, n: int, minutes: float, local: bool, pace: float | None, page: bool = False
) -> None:
    opened, steps = stream(n, minutes, local)
    async with bootstrap.sql_store(url) as store:
        await store.import_positions(opened, "BENCH")
        gc.collect()
        gc.freeze()  # the pre-computed stream is the harness's, not the loop's: out of GC's walks
        broker = SimBroker()
        for p in opened:
            broker.hold_spreads(p, 10)
        clock = ManualClock(T0)
        feed = ReplayFeed(steps, broker, clock, pace)
        app = await bootstrap.build(
            None, store=store, venue=feed, clock=clock, books=dict(DEFAULT_BOOKS)
        )
        loop = app.loop
        await loop.load(T0)
        feed.backlog = loop.monitor.backlog
        timings = Timings(loop)
        seen = [0]
        watching = asyncio.create_task(watch_page(loop.views, clock.now, seen)) if page else None
        seconds = await drive(loop, feed, clock)
        if watching is not None:
            watching.cancel()
    report(loop, timings, sum(len(u) for _, u in steps), seconds, local)
    if page:
        print(f"the status page's stream was open: {seen[0]} events read")


class ReplayFeed(SimGateway):
    """A venue whose :class:`service.ports.Feed` plays pre-computed steps as fast as the
    loop takes them, with the simulated broker trading on each (and taking the orders);
    ``done`` is set after the last."""

    def __init__(
        self,
        steps: list[tuple[datetime, list[LegUpdate]]],
        broker: SimBroker,
        clock: ManualClock,
        pace: float | None = None,
        backlog: Callable[[], int] = lambda: 0,
    ) -> None:
        super().__init__(broker, clock.now)
        self.pace = pace
        self.backlog = backlog
        self.steps = steps
        self.broker = broker
        self.clock = clock
        self.done = asyncio.Event()

    def connected(self) -> bool:
        return True

    def subscribe(self, leg: LegKey) -> None:
        pass

    def unsubscribe(self, leg: LegKey) -> None:
        pass

    async def admit(self, positions: Sequence[StoredPosition]) -> Admitted:
        """Every position as it is: the broker holds them already (``hold_spreads``)."""
        return Admitted({}, {})

    async def run(
        self, quotes: QuoteSink, events: EventSink, problems: ProblemSink | None = None
    ) -> None:
        wall0 = time.perf_counter()
        for at, updates in self.steps:
            if self.pace:  # market seconds per wall second
                due = wall0 + (at - T0).total_seconds() / self.pace
                await asyncio.sleep(max(0.0, due - time.perf_counter()))
            self.clock.now_ = at
            quotes(updates)
            happened = self.broker.trade(updates, at)
            if happened:
                events(happened)
            await asyncio.sleep(0)
            while not self.pace and self.backlog():  # as fast as the loop takes them
                await asyncio.sleep(0)
        self.done.set()
        await asyncio.Event().wait()


def main() -> None:
    logs.configure(open(os.environ.get("BENCH_LOG", os.devnull), "w"), json=True)  # noqa: SIM115  (the loop's logs, dropped)
    ap = argparse.ArgumentParser()
    ap.add_argument("--positions", type=int, default=1000)
    ap.add_argument("--minutes", type=float, default=6)
    ap.add_argument(
        "--pace",
        type=float,
        help="market seconds per wall second (default: as fast as the loop takes them)",
    )
    ap.add_argument("--local-greeks", action="store_true", help="the broker sends no delta")
    ap.add_argument(
        "--page", action="store_true", help="with the status page's event stream open (one client)"
    )
    args = ap.parse_args()
    on_database(
        lambda url: asyncio.run(
            bench(url, args.positions, args.minutes, args.local_greeks, args.pace, args.page)
        )
    )


if __name__ == "__main__":
    main()
