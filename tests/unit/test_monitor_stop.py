"""The live evaluation task stops when cancelled, even at the instant it is let go on."""

from __future__ import annotations

import asyncio
from datetime import date
from decimal import Decimal

from brokers.sim.broker import SimBroker
from brokers.sim.gateway import SimGateway
from rules.books import DEFAULT_BOOKS
from rules.clock import market_time
from rules.model import Quote, Right
from rules.pricing import RepriceSchedule
from service.app.assembly import assemble
from service.clock import ManualClock
from service.ports import LegKey, LegUpdate
from service.store.memory import InMemoryStore
from tests.factories import LOOP_T0 as T0


def test_a_cancel_that_comes_as_the_intents_commit_still_stops_evaluation() -> None:
    """Evaluation waits for decided closes to be written; the stop (a cancel) can come in
    the same turn as the commit that lets it go on. The task must end: with
    asyncio.wait_for (Python 3.11) the cancel was swallowed and the loop never stopped."""

    async def main() -> bool:
        store = InMemoryStore()
        clock = ManualClock(T0)
        app = assemble(
            store,
            SimGateway(SimBroker(), clock.now),
            dict(DEFAULT_BOOKS),
            schedule=RepriceSchedule(),
            subscribe=lambda leg: None,
            market_time=market_time,
        )
        intents = app.desk.intents
        key = LegKey("SPY", date(2027, 4, 16), Right.PUT, Decimal(450))  # held by no one
        intents._unwritten = 1  # a decided close whose intent is being written
        intents.written.clear()
        task = asyncio.create_task(app.runner._evaluating(clock))
        app.monitor.on_quotes([LegUpdate(key, Quote(None, None, T0, None, None))])
        for _ in range(3):
            await asyncio.sleep(0)  # evaluated, now waiting for the write
        intents.settle(1)  # the intent commits...
        task.cancel()  # ...as the stop comes
        for _ in range(5):
            await asyncio.sleep(0)
        stopped = task.done()
        if not stopped:
            task.cancel()
        return stopped

    assert asyncio.run(main())
