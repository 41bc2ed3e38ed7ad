"""A long run stays flat: the daemon on the simulated venue for a simulated week.

    DATABASE_URL=postgresql://... .venv/bin/python benchmarks/soak.py \
        [--positions 1000] [--days 7] [--speed 1000]

Without DATABASE_URL it uses a throwaway embedded PostgreSQL; with it, the database
must be empty (it is filled here). It stores ``--positions`` open put spreads (10
contracts, 5 wide, sold at their mid, on 20 underlyings), then runs ``spreadwatch run``
as a user does, on the simulated market from a Monday's open at ``--speed`` (nights
and the weekend included: a week is 168 simulated hours). While it runs, positions are
added through ``spreadwatch positions import`` as others close, to keep
``--positions`` open (the running daemon takes each new one from the store).

At each simulated day's close (16:00 New York; the daemon's clock is taken to start
when its process does, so a sample may fall up to a few seconds of wall time, minutes
of market time, after it) it prints the daemon's resident memory, open file
descriptors, the database's connections, log bytes per simulated hour, the asyncio
tasks alive in it (its ``/metrics``), the positions open and those added so far. Then
whether resident memory and descriptors at the last close are within 10% of the first
close's: met or not met.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import psutil
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.databases import on_database
from benchmarks.spreads import put_spread_at_mid
from brokers.sim import seed
from brokers.sim.market import SimMarket, Underlying
from rules.clock import new_york
from rules.model import Position
from service.store import database

START = datetime(2027, 3, 1, 9, 31, tzinfo=new_york())  # a Monday, a minute after the open
EXPIRY = date(2027, 5, 21)  # 81 days on: no time stop fires in a week
UNDERLYINGS = [f"U{k:02d}" for k in range(20)]
FIRST_SHORT = Decimal(95)  # each underlying's first short: the market starts at 99.75
TARGET = 0.10  # resident memory and descriptors within 10% of the first close's
OPEN_POSITIONS = text(
    "SELECT count(*) FROM positions WHERE status <> 'closed' AND void_reason IS NULL"
)
CONNECTIONS = text(
    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
    "AND pid <> pg_backend_pid()"
)


@dataclass
class Sample:
    day: date
    rss_mb: float
    fds: int
    connections: int
    log_bytes_per_hour: float
    tasks: int
    open_positions: int
    added: int


def market() -> SimMarket:
    """The daemon's market for these positions (``brokers.sim.seed``: each underlying 5%
    out of the money of its first short), rebuilt here to price the positions added."""
    spot = float(FIRST_SHORT) * 1.05
    return SimMarket([Underlying(u, spot, vol=seed.VOL) for u in UNDERLYINGS], START,
                     seed=seed.SEED)  # fmt: skip


def toml_of(positions: list[Position]) -> str:
    out = []
    for p in positions:
        legs = ", ".join(
            f'{{ right = "{leg.right.value}", strike = {leg.strike}, expiry = "{leg.expiry}", '
            f'side = "{leg.side.value}" }}'
            for leg in p.legs
        )
        out.append(
            f'[[positions]]\nid = "{p.id}"\nbook = "{p.book}"\nunderlying = "{p.underlying}"\n'
            f'strategy = "{p.strategy.value}"\ncontracts = {p.contracts}\n'
            f'entry_credit = {p.entry_credit}\nopened_at = "{p.opened_at.isoformat()}"\n'
            f"legs = [{legs}]\n"
        )
    return "\n".join(out)


def opened(first: int, n: int, quotes: SimMarket, at: datetime) -> list[Position]:
    """``n`` put spreads from number ``first`` on, each 5% out of the money at ``at``."""
    out = []
    for k in range(first, first + n):
        u = UNDERLYINGS[k % len(UNDERLYINGS)]
        if k < len(UNDERLYINGS):
            short = FIRST_SHORT
        else:
            if at > quotes.now:
                quotes.step(at)  # (nothing subscribed: the paths move on when asked)
            short = (Decimal(str(quotes.spot(u) * 0.95)) * 2).quantize(Decimal(1)) / 2
        out.append(put_spread_at_mid(f"S{k:06d}", u, short, EXPIRY, quotes, at))
    return out


def spreadwatch(*args: str, env: dict[str, str]) -> None:
    exe = Path(sys.executable).with_name("spreadwatch")
    done = subprocess.run([str(exe), *args], check=False, env=env, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"spreadwatch {' '.join(args)}: exit {done.returncode}: {done.stderr}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def tasks_of(port: int) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
            body = r.read().decode()
    except OSError:
        return -1
    line = next((x for x in body.splitlines() if x.startswith("spreadwatch_asyncio_tasks ")), "")
    return int(float(line.split()[1])) if line else -1


async def counts(engine: AsyncEngine) -> tuple[int, int]:
    """The positions open (not closed, not void) and the database's other connections."""
    async with engine.connect() as c:
        open_ = await c.scalar(OPEN_POSITIONS)
        conns = await c.scalar(CONNECTIONS)
    return int(open_ or 0), int(conns or 0)


def closes(days: int) -> list[datetime]:
    """Each simulated day's close (16:00 New York), from the first day's."""
    first = START.replace(hour=16, minute=0)
    return [first + timedelta(days=d) for d in range(days)]


async def soak(url: str, n: int, days: int, speed: float, work: Path) -> list[Sample]:
    env = {**os.environ, "DATABASE_URL": url, "SPREADWATCH_HTTP_PORT": str(free_port())}
    env.pop("SPREADWATCH_BROKER", None)
    quotes = market()
    first = work / "positions.toml"
    first.write_text(toml_of(opened(0, n, quotes, START)))
    spreadwatch("positions", "import", str(first), env=env)
    engine = database.engine(url)
    out, err = (work / "stdout.log").open("wb"), (work / "stderr.log").open("wb")
    argv = [str(Path(sys.executable).with_name("spreadwatch")), "run", "--start",
            START.isoformat(), "--speed", str(speed)]  # fmt: skip
    daemon = subprocess.Popen(argv, env=env, stdout=out, stderr=err)
    t0, proc = time.monotonic(), psutil.Process(daemon.pid)
    samples: list[Sample] = []
    added, logged = n, 0
    try:
        for close in closes(days):
            while START + timedelta(seconds=(time.monotonic() - t0) * speed) < close:
                if daemon.poll() is not None:
                    raise SystemExit(f"the daemon stopped (exit {daemon.returncode}): {err.name}")
                open_, _ = await counts(engine)
                if open_ < n - 10:
                    now = START + timedelta(seconds=(time.monotonic() - t0) * speed)
                    batch = work / f"added-{added}.toml"
                    batch.write_text(toml_of(opened(added, n - open_, quotes, now)))
                    spreadwatch("positions", "import", str(batch), env=env)
                    added += n - open_
                await asyncio.sleep(1.0)
            open_, conns = await counts(engine)
            size = sum(p.stat().st_size for p in (work / "stdout.log", work / "stderr.log"))
            samples.append(Sample(close.date(), proc.memory_info().rss / 2**20, proc.num_fds(),
                                  conns, (size - logged) / 24, tasks_of(int(env[
                                      "SPREADWATCH_HTTP_PORT"])), open_, added - n))  # fmt: skip
            logged = size
            print(row(samples[-1]), flush=True)
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=60)
        out.close()
        err.close()
        await engine.dispose()
    return samples


def row(s: Sample) -> str:
    return (f"{s.day} {s.day:%a}  rss {s.rss_mb:7.1f} MB  fds {s.fds:4d}  db conns "
            f"{s.connections:3d}  log {s.log_bytes_per_hour:9.0f} B/h  tasks {s.tasks:4d}  "
            f"open {s.open_positions:5d}  added {s.added:5d}")  # fmt: skip


def verdict(samples: list[Sample]) -> str:
    first, last = samples[0], samples[-1]
    lines = []
    for name, a, b in (("resident memory", first.rss_mb, last.rss_mb),
                       ("file descriptors", first.fds, last.fds)):  # fmt: skip
        change = (b - a) / a if a else 0.0
        met = "met" if abs(change) <= TARGET else "NOT MET"
        lines.append(f"{name}: first close {a:.1f}, last close {b:.1f} ({change:+.1%}): "
                     f"target within {TARGET:.0%}: {met}")  # fmt: skip
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--positions", type=int, default=1000)
    ap.add_argument("--days", type=int, default=7, help="simulated days (closes sampled)")
    ap.add_argument("--speed", type=float, default=1000.0, help="market time x wall (>= 200)")
    args = ap.parse_args()
    start = f"{START:%a %Y-%m-%d %H:%M} New York"
    print(f"soak: {args.positions} positions, {args.days} simulated days from {start} at "
          f"{args.speed:g}x", flush=True)  # fmt: skip

    def run(url: str) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            samples = asyncio.run(soak(url, args.positions, args.days, args.speed, Path(tmp)))
        print(verdict(samples))

    on_database(run)


if __name__ == "__main__":
    main()
