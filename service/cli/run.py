"""``spreadwatch run``: the daemon, on the simulated market (the built-in default).

Its parts come from :mod:`service.bootstrap`. With no settings it uses the
embedded PostgreSQL (migrated by itself, being spreadwatch's own) and imports
the shipped example positions when the database has none (on the simulated
market only: never on a real account). The first run binds the database to its
venue and account (``sim``, ``ib:<account>``); a run with another is refused.

The simulated market quotes each underlying from a spot placed so that the
first spread on it starts out of the money (5% from its short strike), and
moves it by geometric Brownian motion. The clock is the wall clock, or runs
``speed`` times faster from ``start``; with a broker (``broker = "ib"``) it is
the broker's time, and ``start`` and ``speed`` are refused. Orders go out only
in the exchange's regular hours (NYSE sessions, holidays and early closes
included); outside them a decision waits for the open, and the wait is said once.

Of the daemons of one database (one account), one trades: the holder of the
trading lease (:mod:`service.app.lease`). A daemon stands by until it holds
it (``standby: ... holds the trading lease``), trades while it holds it (its
store and its orders fenced by the lease's epoch), and stands by again if it
loses it (``LEASE LOST: ...``): a term ended that way stops at once, without
draining, and its broker connection is closed first. A clean stop releases
the lease, so a standby takes over within a second.

SIGINT and SIGTERM stop it between two steps: nothing is half-written, and
orders still working are left working (they are in the store as such). The
exit code is 130 after SIGINT (Ctrl-C, as at any other time), 0 after SIGTERM.
``--dry-run`` evaluates and sends nothing; each close it would make is said
(``WOULD CLOSE: ...``) and recorded (``would close (dry run)`` in the audit
trail) once per decision change.
"""

from __future__ import annotations

import asyncio
import gc
import signal
import socket
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TextIO

from service import bootstrap, logs
from service.app.readmodel import ReadModel
from service.calendar import Calendar
from service.cli.term import Term, said
from service.clock import SpeedClock
from service.errors import INTERRUPTED, NotHolding
from service.http.server import Ops
from service.inputs import load_books
from service.ports import Clock
from service.settings import Settings

_log = logs.get_logger("spreadwatch.daemon")
STEP = timedelta(milliseconds=250)


async def run_daemon(
    settings: Settings,
    out: TextIO,
    *,
    dry_run: bool = False,
    speed: float | None = None,
    start: datetime | None = None,
    duration: timedelta | None = None,
) -> int:
    clock = bootstrap.daemon_clock(settings, start, speed)  # None: the broker's time
    settings.check_http_token()  # beyond loopback: a token, or no start
    sock = bootstrap.bind_http(settings)  # first: a port in use is said before anything starts
    try:
        return await _start(settings, out, sock, dry_run, clock, duration)
    finally:
        if sock is not None:
            sock.close()  # (served, aiohttp closed it already: closing again is harmless)


async def _start(
    settings: Settings,
    out: TextIO,
    sock: socket.socket | None,
    dry_run: bool,
    clock: SpeedClock | None,
    duration: timedelta | None,
) -> int:
    """Stand by until this process holds the account's trading lease, trade while it holds
    it, stand by again if it is lost; until SIGINT or SIGTERM (or ``duration``)."""
    application = f"spreadwatch {bootstrap.lease_name(settings)}"  # (pg_stat_activity's)
    async with bootstrap.open_store(settings, application=application) as store:
        books = load_books(settings.books_file)
        if settings.broker == "sim":  # (before anything starts: another venue's is refused)
            await bootstrap.bind_venue(store, "sim")
        lease = bootstrap.lease(settings, store)
        bootstrap.fence(store, None, lease.holding)  # (nothing but the lease's until held)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        stopped_by: list[signal.Signals] = []
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, _stopper(stop, stopped_by, sig))
        ops: Ops | None = None
        try:
            ops = await bootstrap.serve_http(settings, store, out, sock, lease.seat)

            async def run(app: bootstrap.App, sessions: Calendar, ended: asyncio.Event) -> None:
                await _run(app, clock, sessions, out, dry_run, duration, ended)

            term = Term(settings, store, books, lease, ops, out, stop, run, dry_run=dry_run,
                        clock=clock)  # fmt: skip
            while await lease.acquire(stop, said(out)) is not None and await term.trade():
                pass  # the lease was lost: stand by again
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
            await lease.release()
            if ops is not None:
                await ops.stop()
    # Ctrl-C: the shell's 130, as at any other time; SIGTERM (a service manager's stop): 0
    return INTERRUPTED if signal.SIGINT in stopped_by else 0


async def _run(
    app: bootstrap.App,
    simulated: SpeedClock | None,
    sessions: Calendar,
    out: TextIO,
    dry_run: bool,
    duration: timedelta | None,
    stop: asyncio.Event,
) -> None:
    service, clock = app.loop, app.clock
    await _load(app, out, dry_run)
    t0 = app.start
    _log.info(
        "daemon.started", positions=len(service.book.watches), dry_run=dry_run, clock=t0.isoformat()
    )
    report = _Report(service.views, sessions, out, lambda: _at_the_close(app))
    if simulated is not None:  # (a broker's time does not wait for the start-up)
        simulated.restart()
    end = None if duration is None else clock.now() + duration  # (from the loop's start)
    try:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(service.run(app.venue, clock, stop), name="monitor")
            tg.create_task(report.run(clock, stop, end), name="report")
            alerter = bootstrap.alerter(app)
            if alerter is not None:
                tg.create_task(alerter.run(stop), name="alerts")
    except* NotHolding:
        raise  # (not a crash: the lease is another's)
    except* Exception as group:
        for exc in group.exceptions:
            _log.error("daemon.crashed", detail=f"{type(exc).__name__}: {exc}")
        raise
    report.closes()  # those sent while stopping


async def _load(app: bootstrap.App, out: TextIO, dry_run: bool) -> None:
    """Reconcile and load the positions, and say what is monitored."""
    service = app.loop
    for line in await service.load(app.start):
        out.write(f"reconciled: {line}\n")
    # What is loaded lives as long as the daemon: out of the collector's full walks, which
    # would otherwise visit every position's objects and hold the loop for milliseconds.
    gc.freeze()
    mode = " (dry run: nothing is sent)" if dry_run else ""
    broker = app.settings.broker if app.settings else "sim"
    where = "Interactive Brokers" if broker == "ib" else "the simulated market"
    out.write(f"monitoring {len(service.book.watches)} positions on {where}{mode}\n")
    if not service.book.watches and not service.intake.outside:
        out.write(
            "no open positions: bring the account's in with `spreadwatch positions sync "
            "--apply` (or `positions add`, `positions import`); the running daemon takes "
            "them up\n"
        )
    out.flush()


def _at_the_close(app: bootstrap.App) -> None:
    """Once a day, at the close (no decision waits on it): the book lets go of the day's
    closed positions, and what start-up froze out of the collector's walks (gc.freeze in
    _load) is walked once, so their cycles are collected, then frozen again. Without it the
    closed positions stayed for the process's life: a creep the soak showed (about 14 KB
    for each position closed)."""
    pruned = len(app.loop.at_close())
    gc.unfreeze()
    gc.collect()
    gc.freeze()
    _log.info("book.pruned", closed_positions=pruned)


def _stopper(
    stop: asyncio.Event, stopped_by: list[signal.Signals], sig: signal.Signals
) -> Callable[[], None]:
    def handle() -> None:
        stopped_by.append(sig)
        stop.set()

    return handle


class _Report:
    """What the loop does, said on ``out``: each close's line, each fill's, the market
    closing (once per closed spell)."""

    def __init__(
        self, views: ReadModel, sessions: Calendar, out: TextIO, at_close: Callable[[], None]
    ) -> None:
        self.views = views
        self.at_close = at_close  # once a day, as the market closes
        self.sessions = sessions
        self.out = out
        self.shown = 0
        self.fills_shown = 0
        self.commissions_shown = 0
        self.would_shown = 0
        self.attention_shown = 0
        self.resolved_shown = 0
        self.closed_said = False

    def closes(self) -> None:
        """Each close sent, each fill applied, each position that needs attention and each
        that no longer does, since the last call."""
        views = self.views
        self.out.writelines(line + "\n" for line in views.close_lines(self.shown))
        self.shown = views.closes
        self.out.writelines(line + "\n" for line in views.would_close_lines(self.would_shown))
        self.would_shown = views.would_closes
        self.out.writelines(line + "\n" for line in views.fill_lines(self.fills_shown))
        self.fills_shown = views.fills
        self.out.writelines(line + "\n" for line in views.commission_lines(self.commissions_shown))
        self.commissions_shown = views.commissions
        for pid, why in views.attention_since(self.attention_shown):
            self.out.write(
                f"NEEDS ATTENTION: {pid}: {why}: no order goes for it; "
                f"`spreadwatch positions show {pid}`, then void, sync or resume it\n"
            )
        self.attention_shown = views.attentions
        for pid, was, how in views.resolved_since(self.resolved_shown):
            self.out.write(f"RESOLVED: {pid}: {how}: it needed attention ({was})\n")
        self.resolved_shown = views.resolutions
        self.out.flush()

    async def run(self, clock: Clock, stop: asyncio.Event, end: datetime | None) -> None:
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
                _log.info("market.closed", next_open=opens.isoformat())
                self.at_close()
                if await self.sessions.keep_ahead(t):  # (off the loop: a worker thread)
                    _log.info("calendar.loaded", last_session=self.sessions.around(t).last)
            self.closed_said = not regular
            self.closes()
            await clock.sleep(STEP.total_seconds())  # (a stop is seen within a step)
