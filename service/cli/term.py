"""A term as the holder of the account's trading lease (``spreadwatch run``): the store
fenced by the lease's epoch, the broker connected (again and again while IB still
holds the client id for the last holder), the loop run until a stop or until the lease
is lost. A term ended by a stop drains as ever; one ended by the lease lost stops at
once, its broker connection closed first (see :mod:`service.app.lease`)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import TextIO

from rules.books import BookPolicy
from service import bootstrap, logs
from service.app.lease import Lease
from service.calendar import Calendar
from service.clock import SpeedClock
from service.errors import ClientIdInUse, NotHolding, SpreadwatchError
from service.http.server import Ops
from service.inputs import load_positions
from service.ports import Store
from service.settings import Settings
from service.shipped import shipped

_log = logs.get_logger("spreadwatch.daemon")
EXAMPLES = shipped("examples") / "positions.toml"
RETAKE = 1.0  # seconds between connections to a broker that refuses the client id
# the loop of a term: run until the event is set (a stop), on the app and its sessions
RunLoop = Callable[[bootstrap.App, Calendar, asyncio.Event], Awaitable[None]]


def said(out: TextIO) -> Callable[[str], None]:
    def say(line: str) -> None:
        out.write(line + "\n")
        out.flush()

    return say


class Term:
    """One term as the lease's holder: the store fenced by its epoch, the broker connected
    (again, while IB still holds the client id for the last holder), the positions loaded
    and reconciled, and the loop run until ``stop``, or until the lease is lost."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        books: dict[str, BookPolicy],
        lease: Lease,
        ops: Ops | None,
        out: TextIO,
        stop: asyncio.Event,
        run: RunLoop,
        *,
        dry_run: bool = False,
        clock: SpeedClock | None = None,
    ) -> None:
        self.settings, self.store, self.books, self.lease = settings, store, books, lease
        self.ops, self.out, self.stop, self.run = ops, out, stop, run
        self.dry_run, self.clock = dry_run, clock
        self.app: bootstrap.App | None = None  # the term's loop, once built

    async def trade(self) -> bool:
        """Trade while the lease is held: True when it was lost (stand by again), False
        when stopped. A stop drains as ever (orders being sent are finished); a lease lost
        ends the term at once: nothing more is sent or written (the fence refuses it)."""
        lease, self.app = self.lease, None
        bootstrap.fence(self.store, lease.seat.epoch, lease.holding)
        ended = asyncio.Event()  # this term's end by a stop (SIGINT, SIGTERM, --for)
        self.out.write(f"trading lease held (epoch {lease.seat.epoch}, as {lease.name})\n")
        try:
            async with asyncio.TaskGroup() as tg:
                term = tg.create_task(self._hold(ended), name="term")
                keeper = tg.create_task(lease.keep(), name="lease")
                relay = tg.create_task(_relay(self.stop, ended), name="stop")
                await asyncio.wait({term, keeper}, return_when=asyncio.FIRST_COMPLETED)
                if keeper.done() and self.app is not None:  # lost: the broker let go first
                    await self.app.closing.aclose()  # (its client id free for the new holder)
                for task in (term, keeper, relay):
                    task.cancel()  # (the lease lost: the term ends now, without draining)
        except BaseExceptionGroup as group:
            fenced, rest = group.split(NotHolding)
            if rest is not None:  # (one SpreadwatchError, as itself: one line, exit code 2)
                raise _lone(rest) from None
            if fenced is not None and not lease.lost_why:  # (a fence saw it before the keeper)
                lease.drop(f"refused: {fenced.exceptions[0]}")
        if not lease.lost_why:
            return False
        self.out.write(
            f"LEASE LOST: {lease.lost_why}: this process sends and writes nothing more and "
            "stands by; the new holder reconciles and trades\n"
        )
        self.out.flush()
        return True

    async def _hold(self, ended: asyncio.Event) -> None:
        settings, store, out = self.settings, self.store, self.out
        # (the store is bound to the simulated venue already: see run)
        if settings.broker == "sim" and not await store.all_positions() and EXAMPLES.exists():
            await store.import_positions(load_positions(EXAMPLES, self.books), settings.account)
            out.write(f"no positions: imported the examples ({EXAMPLES})\n")
        sessions = Calendar(settings.data_dir)
        app = self.app = await self._build(sessions, ended)
        if app is None:
            return
        async with app:
            sessions.around(app.start)  # (loaded before the loop: it may take a second)
            bootstrap.serve_loop(self.ops, app)
            try:
                await self.run(app, sessions, ended)
            finally:
                bootstrap.serve_loop(self.ops, None)
            working = len(await app.store.live_orders())
        out.write(f"stopped: {working} orders left working at the broker, recorded as such\n")
        _log.info("daemon.stopped", working_orders=working)

    async def _build(self, sessions: Calendar, ended: asyncio.Event) -> bootstrap.App | None:
        """The loop, its broker connected; while the broker refuses the client id (the last
        holder's connection not yet gone), again every second (None: the term ended)."""
        said = False
        while not ended.is_set():
            try:
                return await bootstrap.build(
                    self.settings,
                    store=self.store,
                    clock=self.clock,
                    books=self.books,
                    hours=sessions.market_time,
                    start=None if self.clock is None else self.clock.start,
                    dry_run=self.dry_run,
                    out=self.out,
                    fence=self.lease.holding,
                )
            except ClientIdInUse as exc:
                if not said:
                    self.out.write(f"taking over: {exc}: trying again every second\n")
                    self.out.flush()
                    said = True
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(RETAKE):
                        await ended.wait()
        return None


def _lone(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The one exception of ``group`` if it holds one SpreadwatchError (nested or not), so it
    is said as the command's one line; else ``group`` itself."""
    leaves: list[BaseException] = []
    pending: list[BaseException] = [group]
    while pending:
        exc = pending.pop()
        if isinstance(exc, BaseExceptionGroup):
            pending.extend(exc.exceptions)
        else:
            leaves.append(exc)
    if len(leaves) == 1 and isinstance(leaves[0], SpreadwatchError):
        return leaves[0]
    return group


async def _relay(stop: asyncio.Event, ended: asyncio.Event) -> None:
    await stop.wait()
    ended.set()
