"""A running ``spreadwatch run`` takes up what a human changes in another process, on a
real PostgreSQL: positions added, closes asked, voids; by NOTIFY, by the poll when a
notification is missed, and after its listening connection is dropped. On IB (the fake
gateway, a process too), a position whose contract IB knows not and one whose book is
missing are quarantined while the daemon runs on.

The daemon runs on the simulated market from Tuesday 2027-03-02, 10:00 New York, its
clock 10 times the wall's. P1 (SPY 450/445 P x10 sold at 1.00) starts at a mid debit of
about 1.05: no rule fires on its own.
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest

from service.store.repository import LISTENER, SqlStore
from tests.e2e.test_run import fake_gateway
from tests.factories import vertical
from tests.support import ROOT, Daemon, Run, StoreRun, closing

Cli = Callable[..., Run]
START = ("--start", "2027-03-02T10:00:00-05:00")
P1 = vertical("P1")


def add(pid: str, short: int) -> tuple[str, ...]:
    """``positions add`` of a SPY put spread ``short``/``short - 5`` x3 sold at 1.00."""
    return (
        "positions", "add", "--id", pid, "--underlying", "SPY", "--strategy", "put_credit",
        "--contracts", "3", "--credit", "1.00", "--opened-at", "2027-03-01T10:00:00-05:00",
        "--leg", f"P:{short}:2027-04-16:short", "--leg", f"P:{short - 5}:2027-04-16:long",
    )  # fmt: skip


def closed(run: StoreRun[Any], pid: str) -> Callable[[], bool]:
    async def detail(store: SqlStore) -> Any:
        return await store.detail(pid)

    return lambda: run(detail).stored.remaining == 0


@pytest.mark.slow
def test_the_running_daemon_takes_up_adds_closes_and_voids_by_notify(
    db_url: str, monkeypatch: pytest.MonkeyPatch, cli: Cli, run: StoreRun[Any], sql: Any
) -> None:
    """The poll is an hour away: every change is taken up by its notification, within
    seconds; after its listening connection is killed the daemon listens again and takes
    up what changed meanwhile."""
    monkeypatch.setenv("DATABASE_URL", db_url)

    async def seed(store: SqlStore) -> None:
        await store.import_positions([P1], "paper")

    run(seed)
    daemon = Daemon(
        {"DATABASE_URL": db_url, "SPREADWATCH_POLL": "3600", "SPREADWATCH_RECONCILE": "3600"},
        *START,
        "--speed",
        "10",
    )
    try:
        daemon.until(lambda: any("monitoring 1 positions" in line for line in daemon.out))
        assert cli(*add("P2", 440)).code == 0
        daemon.until(lambda: daemon.logged("position.added", "P2"), 10)
        assert cli("positions", "close", "P2").code == 0
        daemon.until(closed(run, "P2"), 20)  # subscribed, decided, sent, filled, applied
        assert cli("positions", "void", "P1", "--reason", "closed in TWS").code == 0
        daemon.until(lambda: daemon.logged("position.dropped", "P1"), 10)
        sql(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            f"WHERE application_name = '{LISTENER}'")  # fmt: skip
        daemon.until(lambda: daemon.logged("changes.listen_lost"), 15)
        assert cli(*add("P3", 430)).code == 0
        daemon.until(lambda: daemon.logged("position.added", "P3"), 15)
    finally:
        code = daemon.stop()
    assert code == 0, "".join(daemon.errors[-20:])

    async def details(store: SqlStore) -> Any:
        return await store.detail("P1"), await store.detail("P2")

    p1, p2 = run(details)
    assert p1.orders == []
    assert p1.stored.shown_status() == "void"
    assert [(o.reason, o.label, o.status) for o in p2.orders][-1] == (
        "manual",
        "Manual Close",
        "filled",
    )
    assert sum(f.quantity for f in p2.fills) == 3
    assert any(line.startswith("SPY put_credit - Manual Close") for line in closing(daemon.out))


@pytest.mark.slow
def test_a_missed_notification_is_taken_up_by_the_poll(
    db_url: str, run: StoreRun[Any], sql: Any
) -> None:
    """A close asked by a write that notifies no one (as a notification lost with its
    connection): the poll, every second here, finds it and the position closes."""

    async def seed(store: SqlStore) -> None:
        await store.import_positions([P1], "paper")

    run(seed)
    daemon = Daemon({"DATABASE_URL": db_url, "SPREADWATCH_POLL": "1"}, *START, "--speed", "10")
    try:
        daemon.until(lambda: any("monitoring 1 positions" in line for line in daemon.out))
        sql("UPDATE positions SET manual_close = 'manual' WHERE id = 'P1'")  # no NOTIFY
        daemon.until(lambda: daemon.logged("position.close_asked", "P1"), 10)
        daemon.until(closed(run, "P1"), 20)
    finally:
        code = daemon.stop()
    assert code == 0, "".join(daemon.errors[-20:])


@pytest.mark.slow
def test_on_ib_an_unknown_contract_and_a_missing_book_are_quarantined_and_the_rest_run(
    db_url: str, monkeypatch: pytest.MonkeyPatch, cli: Cli, run: StoreRun[Any]
) -> None:
    """The examples and two bad positions: one on an underlying IB knows not (error 200),
    one whose book is not in the books file. Each is said in one line with its id and no
    order goes for it; the daemon runs on and the XLF example's time stop closes."""
    gateway, port = fake_gateway("--start", "2026-12-07T10:00:00-05:00", "--speed", "500")
    env = {"DATABASE_URL": db_url, "SPREADWATCH_BROKER": "ib", "SPREADWATCH_IB__PORT": port}
    try:
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        assert cli("positions", "import", str(ROOT / "examples" / "positions.toml")).code == 0
        unknown = add("ZZ1", 440)
        unknown = tuple("ZZZZ" if a == "SPY" else a for a in unknown)
        assert cli(*unknown).code == 0

        async def lose_its_book(store: SqlStore) -> None:  # (a books file edited since)
            await store.import_positions([replace(vertical("NB1"), book="GONE")], "paper")

        run(lose_its_book)
        daemon = Daemon(env)  # (on the fake gateway's time)
        try:
            daemon.until(lambda: any("CLOSING: XLF-P-3" in line for line in daemon.out), 60)
        finally:
            code = daemon.stop()
    finally:
        gateway.send_signal(signal.SIGTERM)
        gateway.communicate(timeout=10)
    assert code == 0, "".join(daemon.errors[-20:])
    lines = [line.rstrip("\n") for line in daemon.out]
    assert any(line.startswith("XLF put_credit - Time Stop (14 DTE)") for line in closing(lines))
    assert "monitoring 7 positions on Interactive Brokers" in lines
    assert "reconciled: needs attention: NB1: book 'GONE' is not in the books file" in lines
    assert any(
        line.startswith("reconciled: needs attention: ZZ1: contract unknown to IB: ZZZZ")
        for line in lines
    ), lines
    assert "Traceback" not in "".join(daemon.errors)

    async def bad(store: SqlStore) -> Any:
        return await store.detail("ZZ1"), await store.detail("NB1")

    for detail in run(bad):
        assert detail.orders == []
        assert detail.stored.shown_status().startswith("needs attention: ")
    listed = cli("positions", "list").out
    assert "needs attention: book 'GONE' is not in the books file" in listed
