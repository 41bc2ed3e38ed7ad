"""Close decisions on their way to the order desk: one queue, taken in batches.

The monitor puts each decision here (:meth:`Intents.put`); the desk's workers
take them a batch at a time (one burst of decisions, one transaction of
intents). Until a decision's intent has committed (or will not) it counts as
unwritten: live, evaluation waits for :attr:`Intents.written` before it goes
on, so what was decided is written before more is evaluated.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

from rules.clock import MarketTime
from rules.machine import Close
from rules.watch import PositionWatch
from service.ports import StoredPosition

BATCH = 64  # decisions whose intents commit in one transaction, at most


@dataclass(frozen=True)
class CloseRequest:
    """A close decision to act on, with what it was made on."""

    stored: StoredPosition
    decision: Close
    natural: Decimal
    at: MarketTime
    quotes: dict[str, Any] | None = None
    decided: float | None = None  # time.perf_counter() at the decision


@dataclass(frozen=True, slots=True)
class Decided:
    """A close the monitor decided, queued: the position's watch and what it was made on."""

    watch: PositionWatch
    stored: StoredPosition
    close: Close
    at: MarketTime
    natural: Decimal
    quotes: dict[str, Any]
    clock: float  # perf_counter at the decision

    def request(self) -> CloseRequest:
        """The request, on the contracts that remain now (fills may have come since)."""
        stored = replace(self.stored, remaining=self.watch.state.remaining)
        return CloseRequest(stored, self.close, self.natural, self.at, self.quotes, self.clock)


class Intents:
    """The queue of decisions, and how many of them are not written yet."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[Decided] = asyncio.Queue()
        self._unwritten = 0
        self.written = asyncio.Event()  # set while every decision queued is written
        self.written.set()

    def put(self, item: Decided) -> None:
        self._queue.put_nowait(item)
        self._unwritten += 1
        self.written.clear()

    @property
    def unwritten(self) -> int:
        return self._unwritten

    def settle(self, n: int) -> None:
        """``n`` decisions' intents are committed (or will not be): evaluation may go on."""
        self._unwritten -= n
        if self._unwritten <= 0:
            self._unwritten = 0
            self.written.set()

    def empty(self) -> bool:
        return self._queue.empty()

    async def get(self) -> Decided:
        return await self._queue.get()

    def get_nowait(self) -> Decided:
        return self._queue.get_nowait()

    def batch(self, first: Decided) -> list[Decided]:
        """``first`` and what else is queued now, up to BATCH."""
        items = [first]
        while len(items) < BATCH and not self._queue.empty():
            items.append(self._queue.get_nowait())
        return items

    def done(self, n: int) -> None:
        """``n`` taken decisions are acted on."""
        for _ in range(n):
            self._queue.task_done()

    async def join(self) -> None:
        """Until every decision taken is acted on."""
        await self._queue.join()
