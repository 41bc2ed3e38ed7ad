"""``spreadwatch run``: the daemon, on the simulated market (the built-in default).

The composition root: settings, database, store, calendar, market, broker
and the assembled service (:func:`service.app.assembly.assemble`) are built
here and nowhere else. With no settings it uses the embedded PostgreSQL
(migrated by itself, being spreadwatch's own) and imports the shipped example
positions when the database has none.

The simulated market quotes each underlying from a spot placed so that the
first spread on it starts out of the money (5% from its short strike), and
moves it by geometric Brownian motion. The clock is the wall clock, or runs
``speed`` times faster from ``start``. Orders go out only in the exchange's
regular hours (NYSE sessions, holidays and early closes included); outside
them a decision waits for the open, and the wait is said once.

SIGINT and SIGTERM stop it between two steps: nothing is half-written, and
orders still working are left working (they are in the store as such).
``--dry-run`` evaluates and records every close it would make ("would
close" in the audit trail) and sends nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import signal
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import TextIO

from brokers.ib.adapter import IbBroker
from brokers.sim.broker import SimBroker
from brokers.sim.gateway import SimVenue
from brokers.sim.market import SimMarket, Underlying
from rules import greeks
from rules.books import BookPolicy
from rules.clock import MarketTime
from rules.model import Position, Right, Side
from rules.pricing import RepriceSchedule
from service import logs
from service.alerts.alerter import Alerter
from service.app.assembly import App, assemble
from service.calendar import Sessions, load_sessions
from service.clock import SpeedClock
from service.errors import InputError
from service.http.server import Ops
from service.inputs import load_books, load_positions
from service.ports import Feed, leg_key
from service.settings import Settings
from service.shipped import shipped
from service.store import database
from service.store.repository import SqlStore

_log = logs.get_logger("spreadwatch.daemon")
EXAMPLES = shipped("examples") / "positions.toml"
STEP = timedelta(milliseconds=250)


def spot_for(position: Position) -> float:
    """A spot 5% out of the money of the position's short strikes."""
    shorts = [leg for leg in position.legs if leg.side is Side.SHORT]
    puts = [float(leg.strike) for leg in shorts if leg.right is Right.PUT]
    calls = [float(leg.strike) for leg in shorts if leg.right is Right.CALL]
    if puts and calls:
        return (max(puts) + min(calls)) / 2
    return max(puts) * 1.05 if puts else min(calls) / 1.05


async def run_daemon(
    settings: Settings,
    out: TextIO,
    *,
    dry_run: bool = False,
    speed: float = 1.0,
    start: datetime | None = None,
    duration: timedelta | None = None,
) -> int:
    with database.database(
        None if settings.database_url is None else settings.database_url.get_secret_value(),
        settings.data_dir,
    ) as db:
        if settings.database_url is None:
            await database.upgrade(db.url)
        await database.require_head(db.url)
        engine = database.engine(db.url)
        try:
            return await _run(SqlStore(engine), settings, out, dry_run, speed, start, duration)
        finally:
            await engine.dispose()


async def _run(
    store: SqlStore,
    settings: Settings,
    out: TextIO,
    dry_run: bool,
    speed: float,
    start: datetime | None,
    duration: timedelta | None,
) -> int:
    logs.configure()
    books = load_books(settings.books_file)
    if not await store.all_positions() and EXAMPLES.exists():
        await store.import_positions(load_positions(EXAMPLES, books), settings.account)
        out.write(f"no positions: imported the examples ({EXAMPLES})\n")
    clock = SpeedClock(start, speed)
    t0 = clock.start
    sessions = load_sessions(settings.data_dir, t0.date())
    app, venue, close = await _compose(
        store, out, books, settings, dry_run, clock, sessions.market_time
    )
    mode = " (dry run: nothing is sent)" if dry_run else ""
    where = "Interactive Brokers" if settings.broker == "ib" else "the simulated market"
    out.write(f"monitoring {len(app.book.watches)} positions on {where}{mode}\n")
    out.flush()
    _log.info("started", positions=len(app.book.watches), dry_run=dry_run, clock=t0.isoformat())
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    end = None if duration is None else t0 + duration
    report = _Report(app, sessions, out)
    ops: Ops | None = None
    try:
        ops = await _serve_ops(settings, app, venue, store, clock, out)
        clock.restart()
        async with asyncio.TaskGroup() as tg:
            tg.create_task(app.run(venue, clock, stop), name="monitor")
            tg.create_task(report.run(clock, stop, end), name="report")
            if settings.webhooks:
                alerter = Alerter(
                    settings.webhooks,
                    app.views,
                    connected=venue.connected,
                    disconnect_after=settings.disconnect_alert_after,
                )
                tg.create_task(alerter.run(stop), name="alerts")
    except* Exception as group:
        for exc in group.exceptions:
            _log.error("crashed", detail=f"{type(exc).__name__}: {exc}")
        raise
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        if ops is not None:
            await ops.stop()
        await close()
    report.closes()  # those sent while stopping
    working = len(await store.live_orders())
    out.write(f"stopped: {working} orders left working at the broker, recorded as such\n")
    _log.info("stopped", working_orders=working)
    return 0


async def _serve_ops(
    settings: Settings,
    app: App,
    venue: Feed,
    store: SqlStore,
    clock: SpeedClock,
    out: TextIO,
) -> Ops | None:
    """The health and metrics server, when on."""
    if not settings.http:
        return None
    ops = Ops(
        app.views,
        clock.now,
        broker_connected=venue.connected,
        database_ok=store.ping,
        reconnects=lambda: int(getattr(venue, "reconnects", 0)),
    )
    host = settings.http_host
    try:
        port = await ops.start(host, settings.http_port)
    except OSError as exc:
        raise InputError(
            f"http_port: cannot listen on {host}:{settings.http_port}: {exc.strerror}"
        ) from exc
    out.write(f"health and metrics on http://{host}:{port}/ (healthz, readyz, metrics)\n")
    _log.info("http", host=host, port=port)
    return ops


class _Report:
    """What the loop does, said on ``out``: each close's line, the market closing (once
    per closed spell)."""

    def __init__(self, app: App, sessions: Sessions, out: TextIO) -> None:
        self.views = app.views
        self.sessions = sessions
        self.out = out
        self.shown = 0
        self.closed_said = False

    def closes(self) -> None:
        self.out.writelines(line + "\n" for line in self.views.close_lines(self.shown))
        self.shown = self.views.closes
        self.out.flush()

    async def run(self, clock: SpeedClock, stop: asyncio.Event, end: datetime | None) -> None:
        """Until ``stop``; sets it at ``end``."""
        while not stop.is_set():
            t = clock.now()
            if end is not None and t >= end:
                stop.set()
                break
            regular = self.sessions.market_time(t).regular_hours
            if not regular and not self.closed_said:
                opens = self.sessions.next_open(t)
                self.out.write(
                    f"market closed: decisions wait for the open, {opens:%Y-%m-%d %H:%M}Z\n"
                )
                _log.info("market closed", next_open=opens.isoformat())
            self.closed_said = not regular
            self.closes()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), STEP.total_seconds() / clock.speed)


async def _compose(
    store: SqlStore,
    out: TextIO,
    books: dict[str, BookPolicy],
    settings: Settings,
    dry_run: bool,
    clock: SpeedClock,
    market_time: Callable[[datetime], MarketTime],
) -> tuple[App, Feed, Callable[[], Awaitable[None]]]:
    """The broker (the simulated venue, or IB), the assembled service (reconciled with
    the broker and loaded), and what closes the broker."""
    stored = await store.open_positions()
    greeks.load()  # before the clock starts: the first quote would wait a second for it
    venue: SimVenue | IbBroker
    if settings.broker == "ib":
        venue = IbBroker(settings.ib, now=clock.now)
        await venue.connect()
        for s in stored:
            legs = [leg_key(s.position, i) for i in range(len(s.position.legs))]
            con_ids = await venue.qualify(legs)
            await store.record_contract_ids(
                s.position.id, {i: con_ids[leg] for i, leg in enumerate(legs)}
            )
        out.write(f"connected to IB at {settings.ib.host}:{settings.ib.port}, "
                  f"account {venue.account}\n")  # fmt: skip
    else:
        spots: dict[str, float] = {}
        for s in stored:
            spots.setdefault(s.position.underlying, spot_for(s.position))
        market = SimMarket(
            [Underlying(u, spot, vol=0.20) for u, spot in spots.items()], clock.start, seed=11
        )
        broker = SimBroker()
        for s in stored:
            broker.hold_spreads(s.position, s.remaining)
        venue = SimVenue(market, broker, clock)
    app = assemble(
        store,
        venue,
        books,
        schedule=RepriceSchedule(),
        subscribe=venue.subscribe,
        unsubscribe=venue.unsubscribe,
        market_time=market_time,
        dry_run=dry_run,
    )
    for line in await app.load(clock.start):
        out.write(f"reconciled: {line}\n")
    # What is loaded lives as long as the daemon: out of the collector's full walks, which
    # would otherwise visit every position's objects and hold the loop for milliseconds.
    gc.freeze()

    async def close() -> None:
        if isinstance(venue, IbBroker):
            await venue.close()

    return app, venue, close
