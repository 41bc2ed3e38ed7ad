"""``spreadwatch positions sync`` in-process against the fake IB gateway over TCP (in a
thread of its own: the command runs its own event loop) and a real PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest

from brokers.ib.fake import FakeGateway
from brokers.sim.market import SimMarket, Underlying
from rules.model import Leg, Position, Right, Side, Strategy
from service.clock import SpeedClock
from service.store.repository import SqlStore
from tests.factories import LOOP_T0 as T0
from tests.factories import STORE_EXPIRY as EXPIRY
from tests.factories import vertical
from tests.support import Run, StoreRun

Cli = Callable[..., Run]

PUTS = replace(vertical("p"), contracts=2, entry_credit=Decimal("1.15"))  # SPY 450/445 P
CALLS = Position(
    "c", "PRIMARY", "SPY", Strategy.CALL_CREDIT,
    (Leg(Right.CALL, Decimal(500), EXPIRY, Side.SHORT),
     Leg(Right.CALL, Decimal(505), EXPIRY, Side.LONG)),
    3, Decimal("0.85"), T0,
)  # fmt: skip
CONDOR = Position(
    "ic", "PRIMARY", "QQQ", Strategy.IRON_CONDOR,
    (Leg(Right.PUT, Decimal(395), EXPIRY, Side.SHORT),
     Leg(Right.PUT, Decimal(390), EXPIRY, Side.LONG),
     Leg(Right.CALL, Decimal(450), EXPIRY, Side.SHORT),
     Leg(Right.CALL, Decimal(455), EXPIRY, Side.LONG)),
    4, Decimal("2.15"), T0,
)  # fmt: skip
HAND = Position(
    "HAND1", "PRIMARY", "SPY", Strategy.PUT_CREDIT,
    (Leg(Right.PUT, Decimal(430), EXPIRY, Side.SHORT),
     Leg(Right.PUT, Decimal(425), EXPIRY, Side.LONG)),
    1, Decimal("0.90"), T0,
)  # fmt: skip
HAND_LEGS = ("--leg", "P:430:2027-04-16:short", "--leg", "P:425:2027-04-16:long")


@pytest.fixture
def gateway() -> Iterator[FakeGateway]:
    """A fake IB gateway listening on 127.0.0.1 (its port in ``gateway.port``), served by
    an event loop in a thread; its account holds the scenario's legs."""
    market = SimMarket([Underlying("SPY", 470.0, vol=0.15), Underlying("QQQ", 420.0)], T0)
    gw = FakeGateway(market, SpeedClock(T0))
    ready, box = threading.Event(), {}

    def serve() -> None:
        async def main() -> None:
            box["loop"], box["stop"] = asyncio.get_running_loop(), asyncio.Event()
            box["port"] = await gw.start("127.0.0.1", 0)
            ready.set()
            await box["stop"].wait()
            await gw.close()

        asyncio.run(main())

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    assert ready.wait(5)
    gw.port = box["port"]  # type: ignore[attr-defined]
    yield gw
    box["loop"].call_soon_threadsafe(box["stop"].set)
    thread.join(5)


def _option(gw: FakeGateway, symbol: str, right: Right, strike: int) -> Any:
    return gw.instrument(symbol, "OPT", EXPIRY, right, Decimal(strike))


@pytest.fixture
def ib_cli(db_url: str, gateway: FakeGateway, monkeypatch: pytest.MonkeyPatch, cli: Cli) -> Cli:
    """The CLI on this test's database and the fake gateway; the account holds two
    verticals, an iron condor, a naked short, a debit spread and a hand-entered spread
    (held at costs that give each spread's credit exactly: SimBroker.hold_spreads)."""
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.setenv("SPREADWATCH_BROKER", "ib")
    monkeypatch.setenv("SPREADWATCH_IB__HOST", "127.0.0.1")
    monkeypatch.setenv("SPREADWATCH_IB__PORT", str(gateway.port))  # type: ignore[attr-defined]
    monkeypatch.setenv("SPREADWATCH_SYNC__BOOKS", json.dumps({"QQQ": "INCOME_POP"}))
    for position in (PUTS, CALLS, CONDOR):
        gateway.hold_spreads(position, position.contracts)
    gateway.hold_spreads(HAND, 1)
    gateway.hold(_option(gateway, "SPY", Right.PUT, 400), -1, Decimal("310"))  # naked
    gateway.hold(_option(gateway, "SPY", Right.CALL, 520), 1, Decimal("400"))  # debit:
    gateway.hold(_option(gateway, "SPY", Right.CALL, 525), -1, Decimal("250"))  # 520/525 C
    return cli


def _rows(out: str) -> dict[str, list[str]]:
    """The found table's rows by id (columns split on two spaces or more)."""
    table = out.split("cannot place:", maxsplit=1)[0]
    rows = [line.split("  ") for line in table.splitlines()[3:] if line.strip()]
    return {r[0]: [c.strip() for c in r if c.strip()] for r in rows}


def test_sync_finds_imports_once_and_says_what_it_cannot_place(
    ib_cli: Cli, run: StoreRun[Any]
) -> None:
    added = ib_cli("positions", "add", "--id", "HAND1", "--underlying", "SPY", "--strategy",
                   "put_credit", "--contracts", "1", "--credit", "0.90", "--opened-at",
                   "2027-03-01T10:00:00-05:00", *HAND_LEGS)  # fmt: skip
    assert added.code == 0, added.err
    looked = ib_cli("positions", "sync")
    assert looked.code == 0, looked.err
    rows = _rows(looked.out)
    assert rows == {
        "QQQ-20270416-IC395-390-450-455": ["QQQ-20270416-IC395-390-450-455", "iron_condor",
            "-P395 +P390 -C450 +C455", "4", "2.15", "INCOME_POP",
            "time of sync (no executions)", "new: would import"],
        "SPY-20270416-C500-505": ["SPY-20270416-C500-505", "call_credit", "-C500 +C505", "3",
            "0.85", "PRIMARY", "time of sync (no executions)", "new: would import"],
        "SPY-20270416-P430-425": ["SPY-20270416-P430-425", "put_credit", "-P430 +P425", "1",
            "0.90", "-", "time of sync (no executions)", "already stored as HAND1"],
        "SPY-20270416-P450-445": ["SPY-20270416-P450-445", "put_credit", "-P450 +P445", "2",
            "1.15", "PRIMARY", "time of sync (no executions)", "new: would import"],
    }  # fmt: skip
    unplaced = looked.out.split("cannot place:")[1]
    assert "SPY 2027-04-16 P400  -1   310.00    naked short" in unplaced
    assert unplaced.count("debit spread: long C520 below short C525") == 2
    assert looked.out.endswith("3 new: run with --apply to import them\n")
    assert _ids(run) == ["HAND1"]  # nothing written without --apply

    applied = ib_cli("positions", "sync", "--apply")
    assert applied.code == 0, applied.err
    assert applied.out.endswith("\nimported 3 positions\n")
    assert _rows(applied.out)["SPY-20270416-C500-505"][-1] == "imported"
    stored = {s.position.id: s.position for s in run(_positions)}
    assert {k: (p.entry_credit, p.contracts, p.book) for k, p in stored.items()} == {
        "HAND1": (Decimal("0.90"), 1, "PRIMARY"),
        "QQQ-20270416-IC395-390-450-455": (Decimal("2.15"), 4, "INCOME_POP"),
        "SPY-20270416-C500-505": (Decimal("0.85"), 3, "PRIMARY"),
        "SPY-20270416-P450-445": (Decimal("1.15"), 2, "PRIMARY"),
    }
    assert stored["QQQ-20270416-IC395-390-450-455"].strategy is Strategy.IRON_CONDOR

    again = ib_cli("positions", "sync", "--apply")
    assert again.code == 0, again.err
    assert again.out.endswith("\nimported 0 positions\n")
    statuses = {r[-1] for r in _rows(again.out).values()}
    assert all(s.startswith("already stored as ") for s in statuses)
    assert len(run(_positions)) == 4


def test_an_unknown_sync_book_is_one_line_and_exit_2(
    ib_cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SPREADWATCH_SYNC__BOOK", "NOPE")
    refused = ib_cli("positions", "sync", "--apply")
    assert (refused.code, refused.out) == (2, "")
    assert refused.err == (
        "spreadwatch: settings: sync.book: unknown book 'NOPE' (known: INCOME_POP, PRIMARY)\n"
    )


async def _positions(store: SqlStore) -> Any:
    return await store.all_positions()


def _ids(run: StoreRun[Any]) -> list[str]:
    return [s.position.id for s in run(_positions)]
