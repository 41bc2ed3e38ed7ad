"""The account's trading lease, held or waited for: which of an account's daemons trades.

Two ``spreadwatch run`` on one database (one account) agree through a lease row
(:class:`service.ports.LeaseBoard`): the holder trades and renews it every
``renew`` seconds for ``ttl`` seconds more, by the database's clock; the other
stands by, looking every ``renew`` seconds, and takes it once it has lapsed.

The holder knows, by its own monotonic clock, until when it surely holds the
lease: ``ttl`` from the moment it *sent* its last successful renewal (the
database counted from later). :meth:`Lease.holding` says so; the fenced
gateway and store ask it before every order sent and every statement, so a
process paused past its lease (SIGSTOP, a VM frozen) or cut off from the
database stops trading within one ``ttl``, before a standby can take over,
and sends nothing when it wakes. The database refuses, besides, any close
order written with an epoch that is not live (migration 0008): the fence that
does not depend on this process's clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from service.errors import StoreUnavailable
from service.logs import get_logger
from service.ports import LeaseBoard, LeaseHeld

_log = get_logger("spreadwatch.lease")

HOLDER, STANDBY = "holder", "standby"


def default_name() -> str:
    """This process's name as a lease holder: host and pid (a restart is another holder,
    which waits out the last one's lease; give ``lease.name`` to take it back at once)."""
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass
class Seat:
    """What this process is, for ``/readyz`` and ``/metrics``: its role, the epoch it
    holds (a holder), who holds the lease (a standby), and when it last looked."""

    name: str
    role: str = STANDBY
    epoch: int | None = None
    held: LeaseHeld | None = None
    beat: float = field(default_factory=time.monotonic)

    def body(self) -> dict[str, object]:
        holder = self.name if self.role == HOLDER else (self.held and self.held.holder)
        epoch = self.epoch if self.role == HOLDER else (self.held and self.held.epoch)
        return {"role": self.role, "name": self.name, "lease_holder": holder, "epoch": epoch}


class Lease:
    """This process's side of the lease on ``board``: :meth:`acquire` (standing by until
    it is free), :meth:`keep` (renewing until it is lost), :meth:`holding`, :meth:`release`."""

    def __init__(
        self,
        board: LeaseBoard,
        name: str,
        *,
        ttl: float = 5.0,
        renew: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.board = board
        self.ttl = ttl
        self.renew = renew
        self.clock = clock
        self.seat = Seat(name)
        self._until: float | None = None  # held surely until then (monotonic)
        self.lost_why = ""

    @property
    def name(self) -> str:
        return self.seat.name

    def holding(self) -> bool:
        """Surely held now (by this process's clock): orders may be written and sent."""
        return self._until is not None and self.clock() < self._until

    async def acquire(self, stop: asyncio.Event, say: Callable[[str], None]) -> int | None:
        """Stand by until the lease is this process's: its epoch; None once ``stop`` is set.
        Who holds it is said on ``say`` when that changes (and logged)."""
        shown: tuple[str, int] | None = None
        while not stop.is_set():
            sent = self.clock()
            epoch: int | None = None
            held: LeaseHeld | None = None
            with contextlib.suppress(StoreUnavailable, TimeoutError):
                async with asyncio.timeout(self.ttl):
                    epoch = await self.board.acquire_lease(self.name, self.ttl)
                    held = None if epoch is not None else await self.board.lease_held()
            if epoch is not None:
                self._hold(epoch, sent)
                return epoch
            self.seat.beat = self.clock()
            if held is not None and (held.holder, held.epoch) != shown:
                shown = (held.holder, held.epoch)
                self.seat.held = held
                say(f"standby: {held.holder} holds the trading lease (epoch {held.epoch}); "
                    f"this process trades if it lapses ({self.ttl:g} s unrenewed)")  # fmt: skip
                _log.info("lease.standby", holder=held.holder, epoch=held.epoch)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.renew):
                    await stop.wait()
        return None

    def _hold(self, epoch: int, sent: float) -> None:
        self._until = sent + self.ttl
        self.seat.role, self.seat.epoch, self.seat.held = HOLDER, epoch, None
        self.seat.beat = self.clock()
        self.lost_why = ""
        _log.info("lease.acquired", holder=self.name, epoch=epoch)

    async def keep(self) -> str:
        """Renew every ``renew`` seconds while held; returns why it was lost: taken (the
        database says another holds it) or not renewed in time (the database away)."""
        epoch = self.seat.epoch
        assert epoch is not None
        while True:
            await asyncio.sleep(max(0.0, min(self.renew, self._left())))
            if not self.holding():
                return self._lost(f"not renewed within {self.ttl:g} s (the database away?)")
            sent = self.clock()
            renewed = await self._renewal(epoch)
            if renewed is None:
                continue
            if not renewed:
                return self._lost("another process holds it now")
            self._until = sent + self.ttl
            self.seat.beat = self.clock()

    async def _renewal(self, epoch: int) -> bool | None:
        """Renewed (True), or not this process's any more (False); None: no answer while
        the lease surely lasts. It is judged by the clock: a renewal that hangs (a database
        cut off) is left to end by itself, not waited for."""
        renewal = asyncio.ensure_future(self.board.renew_lease(self.name, epoch, self.ttl))
        renewal.add_done_callback(_retrieved)
        try:
            done, _ = await asyncio.wait({renewal}, timeout=max(0.01, self._left()))
        finally:
            renewal.cancel()  # (none left behind: done, or no longer of use)
        if not done:
            _log.warning("lease.renew_unanswered", epoch=epoch)
            return None
        try:
            return renewal.result()
        except StoreUnavailable as exc:
            _log.warning("lease.renew_failed", epoch=epoch, detail=str(exc))
            return None

    def drop(self, why: str) -> None:
        """Lost, as something else found (the database refused an order of this epoch)."""
        self._lost(why)

    def _left(self) -> float:
        return 0.0 if self._until is None else self._until - self.clock()

    def _lost(self, why: str) -> str:
        epoch = self.seat.epoch
        self._until = None
        self.seat.role, self.seat.epoch = STANDBY, None
        self.lost_why = f"the trading lease (epoch {epoch}) is lost: {why}"
        _log.error("lease.lost", epoch=epoch, detail=why)
        return self.lost_why

    async def release(self) -> None:
        """Let the lease lapse now (a clean stop), if held: a standby takes over at once."""
        epoch = self.seat.epoch
        if epoch is None or not self.holding():
            return
        self._until = None
        self.seat.role, self.seat.epoch = STANDBY, None
        with contextlib.suppress(StoreUnavailable, TimeoutError):
            async with asyncio.timeout(self.renew):
                await self.board.release_lease(self.name, epoch)
        _log.info("lease.released", epoch=epoch)


def _retrieved(task: asyncio.Future[bool]) -> None:
    """A renewal's end, whatever it is, taken (never "exception was never retrieved")."""
    if not task.cancelled():
        task.exception()
