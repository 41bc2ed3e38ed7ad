"""Clocks for the live loop: the wall clock, or one that runs ``speed`` times faster."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta


class SpeedClock:
    """Market time from ``start``, ``speed`` times as fast as the wall clock (1: real time).

    :meth:`restart` sets the start again at the current wall instant (the daemon
    calls it as its loop begins, so time spent starting up is not skipped).
    """

    def __init__(self, start: datetime | None = None, speed: float = 1.0) -> None:
        if speed <= 0:
            raise ValueError(f"speed: {speed} is not > 0")
        self.start = (start or datetime.now(UTC)).astimezone(UTC)
        self.speed = speed
        self._wall0 = time.monotonic()

    def restart(self) -> None:
        self._wall0 = time.monotonic()

    def now(self) -> datetime:
        return self.start + timedelta(seconds=(time.monotonic() - self._wall0) * self.speed)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(seconds, 0.0) / self.speed)


class ManualClock:
    """Market time set by the caller (``clock.now_ = t``); a sleeper wakes when the time
    it waits for is set."""

    def __init__(self, start: datetime) -> None:
        self._now = start
        self._sleepers: list[tuple[datetime, asyncio.Future[None]]] = []

    @property
    def now_(self) -> datetime:
        return self._now

    @now_.setter
    def now_(self, t: datetime) -> None:
        self._now = t
        due = [f for at, f in self._sleepers if at <= t]
        self._sleepers = [(at, f) for at, f in self._sleepers if at > t]
        for f in due:
            if not f.done():
                f.set_result(None)

    def now(self) -> datetime:
        return self._now

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._sleepers.append((self._now + timedelta(seconds=seconds), future))
        await future
