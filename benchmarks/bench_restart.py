"""A restart with many open positions: time back to monitoring, and resident memory.

    DATABASE_URL=postgresql://... .venv/bin/python benchmarks/bench_restart.py [--positions 10000]

Without DATABASE_URL it uses a throwaway embedded PostgreSQL. The database
must be empty (it is filled here). It stores ``--positions`` open put spreads
(1% of them with a close order working at the simulated broker), then starts
a fresh Python process that does what the daemon does on start: imports the
service, connects, reconciles the store's live orders with the broker,
loads every open position into the monitor and subscribes its legs. That
process prints the time from its own start to monitoring, the part of it
spent in the start itself (reconcile + load), and its resident memory then.
Then it monitors them live (the daemon's TaskGroup) on the simulated market
for ``--monitor`` wall seconds in real time, every leg quoted about four
times a second, and prints its peak resident memory.
"""

# ruff: noqa: E402  (the clock starts before the imports: a restart pays for them)
from __future__ import annotations

import time

T_START = time.perf_counter()

import argparse
import asyncio
import os
import pickle
import subprocess
import sys
import tempfile
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.databases import on_database
from benchmarks.spreads import put_spread_at_mid
from brokers.sim.broker import SimBroker
from brokers.sim.gateway import SimVenue
from brokers.sim.market import SimMarket, Underlying
from rules.books import DEFAULT_BOOKS
from rules.model import Position
from service import bootstrap, logs
from service.clock import SpeedClock
from service.orders.closing import closing_order
from service.ports import CloseIntent, order_ref
from service.store import database
from service.store.repository import SqlStore

T_IMPORTED = time.perf_counter()

T0 = datetime(2027, 3, 2, 15, 0, tzinfo=UTC)
EXPIRY = date(2027, 4, 16)


def rss_mb(field: str = "VmRSS") -> float:
    """This process's resident memory now (VmRSS) or at its peak (VmHWM), in MB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def market() -> SimMarket:
    """50 underlyings at 100, vol 20%: the same quotes in both processes."""
    return SimMarket([Underlying(f"U{k:02d}", 100.0, vol=0.2) for k in range(50)], T0, seed=1)


def positions(n: int) -> list[Position]:
    """``n`` put spreads 5 wide, shorts from 94 down to 89.125, each sold at its mid (so
    they are calm at the start: nothing to close while they are monitored)."""
    quotes = market()
    return [
        put_spread_at_mid(
            f"R{k:05d}",
            f"U{k % 50:02d}",
            Decimal(94) - Decimal(k // 50 % 40) / 8,
            EXPIRY,
            quotes,
            T0,
        )
        for k in range(n)
    ]


async def fill(url: str, n: int, broker_file: Path) -> None:
    """Store ``n`` positions; 1% get a close order working at the broker."""
    opened = positions(n)
    engine = database.engine(url)
    store = SqlStore(engine)
    for k in range(0, n, 1000):
        await store.import_positions(opened[k : k + 1000], "BENCH")
    broker = SimBroker()
    for p in opened:
        broker.hold_spreads(p, 10)
    for p in opened[::100]:
        ref = order_ref(p.id, 0, 1)
        intent = CloseIntent(
            ref, p.id, 0, 1, "profit_target", "50%", Decimal("0.5"), 4, Decimal("0.50")
        )
        await store.record_intent(intent)
        broker.place(closing_order(p, ref, 4, Decimal("0.50")), T0)
        await store.order_sent(ref, "submitted")
    await engine.dispose()
    broker_file.write_bytes(pickle.dumps(broker))


async def restart(url: str, broker_file: Path, monitor_for: float) -> None:
    """The daemon's start: connect, reconcile, load, subscribe; then monitor for a while."""

    logs.configure(open(os.devnull, "w"), json=True)  # noqa: SIM115  (dropped)
    broker = pickle.loads(broker_file.read_bytes())
    imported = T_IMPORTED
    engine = database.engine(url)
    store = SqlStore(engine)
    clock = SpeedClock(T0)
    quotes = market()
    venue = SimVenue(quotes, broker, clock)
    app = (
        await bootstrap.build(
            None, store=store, venue=venue, clock=clock, books=dict(DEFAULT_BOOKS)
        )
    ).loop
    lines = await app.load(T0)
    done = time.perf_counter()
    print(
        f"restart: {len(app.book.watches):,} open positions, "
        f"{len(quotes.subscribed):,} legs subscribed, {len(lines)} orders reconciled"
    )
    print(
        f"back to monitoring {done - T_START:.2f}s after the process started "
        f"(imports {imported - T_START:.2f}s, reconcile + load {done - imported:.2f}s)"
    )
    print(f"resident memory then: {rss_mb():.0f} MB")
    clock.restart()
    stop = asyncio.Event()
    async with asyncio.TaskGroup() as tg:
        tg.create_task(app.run(venue, clock, stop))
        await asyncio.sleep(monitor_for)
        stop.set()
    await engine.dispose()
    print(
        f"monitored {monitor_for:.0f}s live: {app.views.updates:,} leg updates "
        f"({app.views.screened:,} screened), {app.views.closes} closes; "
        f"peak resident memory {rss_mb('VmHWM'):.0f} MB"
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--positions", type=int, default=10_000)
    ap.add_argument("--monitor", type=float, default=30.0, help="seconds to monitor live")
    ap.add_argument("--child", nargs=2, metavar=("URL", "BROKER"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        asyncio.run(restart(args.child[0], Path(args.child[1]), args.monitor))
        return

    def run(url: str) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            broker_file = Path(tmp) / "broker.pickle"
            asyncio.run(fill(url, args.positions, broker_file))
            me = Path(__file__).resolve()
            child = [sys.executable, me, "--child", url, broker_file]
            child += ["--monitor", str(args.monitor)]
            subprocess.run(child, check=True)

    on_database(run)


if __name__ == "__main__":
    main()
