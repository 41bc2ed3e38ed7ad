"""A restart on the IB path: the loop on the IB adapter, over TCP to one fake gateway that
outlives two daemons, on one PostgreSQL."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from brokers.ib.broker import IbBroker
from brokers.ib.fake import FakeGateway
from service.clock import SpeedClock
from service.ports import Store
from service.settings import IbSettings
from tests.factories import LOOP_BESIDE as P2
from tests.factories import LOOP_POSITION as P1
from tests.factories import LOOP_T0 as T0
from tests.factories import market
from tests.integration.test_ib_reconcile import loop_on
from tests.loop import run_until
from tests.support import on_database


@pytest.mark.ib_errors(r"^Error 104, ")  # (a reprice racing its fill, at 20x the wall)
def test_a_restart_replays_none_of_the_day_s_executions_as_missed(db_url: str) -> None:
    """The first daemon closes what the selloff stops (fills at the gateway and in the
    store). The second, on the same gateway and store, applies nothing again and passes
    nothing on as missed: the executions it takes as unapplied are none, the holdings it
    expects are the account's, and no position is held for a difference. (Issue 19 saw
    restarts count the day's executions as missed, under SIGKILLs in flight; this holds a
    clean restart to none.)"""

    async def go(store: Store) -> Any:
        await store.import_positions([P1, P2], "DU1234567")
        clock = SpeedClock(T0, speed=20)
        gateway = FakeGateway(market(), clock, account="DU1234567")
        for p in (P1, P2):
            gateway.hold_spreads(p, p.contracts)
        port = await gateway.start("127.0.0.1", 0)
        ticking = asyncio.create_task(gateway.run())
        try:
            venue = IbBroker(IbSettings(port=port, timeout=5), now=clock.now)
            first = await loop_on(store, venue, clock)
            await first.load(clock.now())

            def filled(a: Any) -> bool:
                return any(w.state.remaining < w.state.position.contracts
                           for w in a.book.watches.values())  # fmt: skip

            await run_until(first, venue, clock, filled, limit=60)
            await venue.close()
            venue = IbBroker(IbSettings(port=port, timeout=5), now=clock.now)
            second = await loop_on(store, venue, clock)
            lines = await second.load(clock.now())
            unapplied: list[dict[str, int]] = []  # each time any execution awaits applying

            async def look(a: Any) -> None:
                if a.book._unapplied:
                    unapplied.append(dict(a.book._unapplied))

            await run_until(second, venue, clock, lambda a: False, limit=2.0, meanwhile=look)
            held = await venue.positions()
            expected = second.book.expected_holdings()
            await venue.close()
            return lines, second, held, expected, unapplied
        finally:
            ticking.cancel()
            await gateway.close()

    lines, second, held, expected, unapplied = on_database(db_url)(go)
    assert not [line for line in lines if "applied missed execution" in line], lines
    assert unapplied == []  # nothing passed on as missed, not even for a moment
    assert {leg: n for leg, n in expected.items() if n or held.get(leg)} == {
        leg: n for leg, n in held.items() if leg in expected and (n or expected[leg])
    }
    assert second.views.attention == {}
