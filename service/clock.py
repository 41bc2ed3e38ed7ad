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
    """Market time set by the caller (``clock.now_ = ...``); sleeping takes no time."""

    def __init__(self, start: datetime) -> None:
        self.now_ = start

    def now(self) -> datetime:
        return self.now_

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(0)
