"""Turns (service/turns.py): a long run of work gives the event loop a turn now and then."""

from __future__ import annotations

import asyncio
import time

from service.turns import Turns


def busy(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


async def turns_seen(take: bool) -> int:
    """How many turns another task got while 40 pieces of 0.25 ms of work ran."""
    turns = 0
    done = False

    async def other() -> None:
        nonlocal turns
        while not done:
            turns += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(other())
    await asyncio.sleep(0)
    start = turns
    pacer = Turns(budget=0.001)
    for _ in range(40):
        busy(0.00025)
        if take:
            await pacer.take()
    seen = turns - start
    done = True
    await task
    return seen


def test_work_that_takes_turns_lets_the_others_run_about_once_a_budget() -> None:
    """10 ms of work with a 1 ms budget: the other task runs about ten times, not forty
    (a turn only once the budget is spent), and not never."""
    assert 5 <= asyncio.run(turns_seen(take=True)) <= 30


def test_work_that_takes_no_turns_holds_the_loop() -> None:
    assert asyncio.run(turns_seen(take=False)) == 0


def test_a_wait_starts_a_new_run() -> None:
    """After 2 ms of work a take() gives a turn; the same work followed by a wait
    (began) does not: the run of work starts again from the wait."""

    async def turned(waited: bool) -> bool:
        ran = False

        async def other() -> None:
            nonlocal ran
            ran = True

        pacer = Turns(budget=0.001)
        busy(0.002)
        if waited:
            pacer.began()
        task = asyncio.create_task(other())
        await pacer.take()
        seen = ran
        await task
        return seen

    assert asyncio.run(turned(waited=False))
    assert not asyncio.run(turned(waited=True))
