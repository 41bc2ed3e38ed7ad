"""Taking turns on the event loop: a long run of work gives the loop back now and then.

The monitor's tasks share one event loop. A coroutine that does not await
real I/O (a burst of order events none of which needs the database, a round
of repricing on a broker that answers at once) holds the loop for as long as
it runs, and every database round trip of the order path waits behind it. A
decided close waits for its intent to commit, so no task may hold the loop
for long: :class:`Turns` gives the loop a turn once a run of work has lasted
its budget.
"""

from __future__ import annotations

import asyncio
import time

TURN = 0.0005  # seconds of work before the loop gets a turn


class Turns:
    __slots__ = ("_budget", "_since")

    def __init__(self, budget: float = TURN) -> None:
        self._budget = budget
        self._since = time.perf_counter()

    def began(self) -> None:
        """The loop has just had a turn (the task waited): a new run of work starts."""
        self._since = time.perf_counter()

    async def take(self) -> None:
        """Give the loop a turn if this run of work has lasted the budget."""
        if time.perf_counter() - self._since >= self._budget:
            await asyncio.sleep(0)
            self._since = time.perf_counter()
