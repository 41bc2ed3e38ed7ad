"""A restart on the IB path: the loop on the IB adapter, over TCP to one fake gateway that
outlives two daemons, on one PostgreSQL."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import pytest

from brokers.ib.broker import IbBroker
from rules.clock import market_time
from rules.machine import Close, ExitReason
from service.clock import SpeedClock
from service.ports import OrderEvent, Store
from service.settings import IbSettings
from tests.factories import LOOP_BESIDE as P2
from tests.factories import LOOP_POSITION as P1
from tests.integration.test_ib_reconcile import holding_both, loop_on
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
        async with holding_both() as (_, clock, port):
            await _first_fills(store, clock, port)
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

    lines, second, held, expected, unapplied = on_database(db_url)(go)
    assert not [line for line in lines if "applied missed execution" in line], lines
    assert unapplied == []  # nothing passed on as missed, not even for a moment
    assert {leg: n for leg, n in expected.items() if n or held.get(leg)} == {
        leg: n for leg, n in held.items() if leg in expected and (n or expected[leg])
    }
    assert second.views.attention == {}


async def _first_fills(store: Store, clock: SpeedClock, port: int) -> None:
    """A first daemon runs until the selloff has filled a close (fills at the gateway and in
    the store), and stops."""
    venue = IbBroker(IbSettings(port=port, timeout=5), now=clock.now)
    first = await loop_on(store, venue, clock)
    await first.load(clock.now())

    def filled(a: Any) -> bool:
        return any(w.state.remaining < w.state.position.contracts for w in a.book.watches.values())

    await run_until(first, venue, clock, filled, limit=60)
    await venue.close()


def _on_gateway(db_url: str, work: Any) -> Any:
    """``work`` with a new adapter, connected, after a first daemon's fills."""

    async def go(store: Store) -> Any:
        await store.import_positions([P1, P2], "DU1234567")
        async with holding_both() as (_, clock, port):
            await _first_fills(store, clock, port)
            venue = IbBroker(IbSettings(port=port, timeout=5), now=clock.now)
            await venue.connect()
            return await work(store, clock, venue)

    return on_database(db_url)(go)


@pytest.mark.ib_errors(r"^Error 104, ")
def test_an_adapter_told_the_stored_fills_passes_none_of_them_on_as_missed(db_url: str) -> None:
    """Issue 19, item 3: a new adapter, told on start which executions the store holds,
    passes none of them on as events when its stream starts (its first resume asks IB for
    the day's executions), whether or not anything asked it for executions before."""

    async def work(store: Store, clock: SpeedClock, venue: IbBroker) -> Any:
        stored = await store.fill_ids()
        venue.stored_executions(stored)
        events: list[OrderEvent] = []
        streaming = asyncio.create_task(venue.run(lambda _: None, events.extend))
        try:
            await asyncio.sleep(2.5)  # the first resume, and FILL_WAIT, are over
        finally:
            streaming.cancel()
            await venue.close()
        return stored, events

    stored, events = _on_gateway(db_url, work)
    assert stored  # the day's executions are in the store (the test is not vacuous)
    assert [e for e in events if e.execution is not None] == []


@pytest.mark.ib_errors(r"^Error 104, ")
def test_a_restart_tells_the_adapter_the_stored_fills_before_it_reconciles(db_url: str) -> None:
    """Issue 19, item 3: on start the daemon's load tells the broker every execution the
    store holds for the day, before the reconciliation asks for executions and before the
    stream starts: the adapter's seen set is the store's, not empty."""

    async def work(store: Store, clock: SpeedClock, venue: IbBroker) -> Any:
        told: list[tuple[set[str], bool]] = []
        asked: list[str] = []
        tell, ask = venue.stored_executions, venue.executions

        def stored_executions(exec_ids: Any) -> None:
            told.append((set(exec_ids), bool(asked)))
            tell(exec_ids)

        async def executions() -> Any:
            asked.append("executions")
            return await ask()

        venue.stored_executions = stored_executions  # type: ignore[method-assign]
        venue.executions = executions  # type: ignore[method-assign]
        second = await loop_on(store, venue, clock)
        await second.load(clock.now())
        await venue.close()
        return told, await store.fill_ids()

    told, stored = _on_gateway(db_url, work)
    assert stored
    assert told == [(stored, False)]  # all of them, before executions were asked for


@pytest.mark.ib_errors(r"^Error 104, ")
def test_a_fill_that_comes_before_the_stream_starts_is_passed_on_when_it_starts(
    db_url: str,
) -> None:
    """Between the start's reconciliation and the stream's start (an adopted order filling
    then), IB sends a fill: it is passed on by the stream's first resume. (It was marked
    seen with no one to pass it to, and dropped: the store never had it.)"""

    async def work(store: Store, clock: SpeedClock, venue: IbBroker) -> Any:
        app = await loop_on(store, venue, clock)
        await app.load(clock.now())
        (stored,) = [s for s in await store.open_positions() if s.position.id == P1.id]
        close = Close(contracts=1, reason=ExitReason.PROFIT_TARGET, label="50% profit target",
                      target=Decimal("0.50"), tranche=0, debit=Decimal("1.00"),
                      pnl=Decimal(0), pct_of_max=Decimal(0),
                      triggers=(ExitReason.PROFIT_TARGET,))  # fmt: skip
        ref = await app.desk.close(stored, close, Decimal("1.00"), market_time(clock.now()))
        await asyncio.sleep(2.5)  # filled at IB, its reports in, FILL_WAIT over: no stream yet
        events: list[OrderEvent] = []
        streaming = asyncio.create_task(venue.run(lambda _: None, events.extend))
        try:
            await asyncio.sleep(2.0)  # the first resume
        finally:
            streaming.cancel()
            await venue.close()
        return ref, [e for e in events if e.order_ref == ref and e.execution is not None]

    ref, fills = _on_gateway(db_url, work)
    assert ref is not None
    assert [e.execution.quantity for e in fills if e.execution is not None] == [1]
