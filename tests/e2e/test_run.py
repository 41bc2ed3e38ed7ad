"""``spreadwatch run`` and ``spreadwatch fake-gateway`` as processes: signals, the daemon on
IB through the fake gateway, a real PostgreSQL. (The command in-process:
tests/integration/test_run_command.py.)"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest

from service.store.repository import SqlStore
from tests.support import ROOT, Daemon, Run, StoreRun, closing, spreadwatch

Cli = Callable[..., Run]
# Monday 2026-12-07, 10:00 New York: the XLF example (INCOME_POP, expiry 2026-12-18) is
# past its 14-DTE time stop; the clock runs 500 times faster than the wall.
FAST = ("--start", "2026-12-07T10:00:00-05:00", "--speed", "500", "--for", "5")


@pytest.mark.slow
def test_sigterm_stops_the_daemon_cleanly(db_url: str) -> None:
    """A real process on the wall clock: SIGTERM between two steps ends it with exit 0
    and the closing line, within a few seconds."""
    env = {**os.environ, "DATABASE_URL": db_url}
    proc = subprocess.Popen(
        [sys.executable, "-m", "service.cli", "run", "--start", "2026-12-07T10:00:00-05:00"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + 60
    seen = ""
    while "monitoring" not in seen and time.monotonic() < deadline:
        seen += proc.stdout.readline()
    assert "monitoring 7 positions" in seen
    health = seen.splitlines()[0]  # (served from the start, whatever the role)
    assert health.startswith("health and metrics on http://127.0.0.1:"), health
    assert seen.splitlines()[1].startswith("trading lease held (epoch 1, as ")
    base = health.split()[4]
    time.sleep(1)
    with urllib.request.urlopen(base + "healthz", timeout=5) as response:
        assert response.status == 200
    with urllib.request.urlopen(base + "metrics", timeout=5) as response:
        assert b"spreadwatch_updates_total" in response.read()
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert out.splitlines()[-1].startswith("stopped: ")
    assert "Traceback" not in err


@pytest.mark.slow
def test_run_on_ib_against_the_fake_gateway_closes_through_combo_orders(
    db_url: str, monkeypatch: pytest.MonkeyPatch, cli: Cli, run: StoreRun[Any]
) -> None:
    """Two processes, as a user runs them: ``spreadwatch fake-gateway`` on an accelerated
    clock and ``spreadwatch run`` with ``broker = ib``, on IB's time: the fake gateway's,
    followed at its speed. The XLF example's time stop goes out over the TWS API as a BAG
    order and fills at the fake gateway; the conIds are stored on the legs; the fill lands
    in the store once."""
    gateway, port = fake_gateway(*FAST[:4])
    env = {"DATABASE_URL": db_url, "SPREADWATCH_BROKER": "ib", "SPREADWATCH_IB__PORT": port}
    try:
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        assert cli("positions", "import", str(ROOT / "examples" / "positions.toml")).code == 0
        daemon = Daemon(env)  # (no clock flags: they are the fake gateway's)
        try:
            daemon.until(lambda: any("FILLED: XLF-P-3" in line for line in daemon.out), 60)
        finally:
            code = daemon.stop()
    finally:
        gateway.send_signal(signal.SIGTERM)
        gateway_out, gateway_err = gateway.communicate(timeout=10)
    assert code == 0, "".join(daemon.errors[-20:])
    lines = [line.rstrip("\n") for line in daemon.out]
    assert f"connected to IB at 127.0.0.1:{port}, account DU1234567" in lines
    assert "monitoring 7 positions on Interactive Brokers" in lines
    assert any(line.startswith("XLF put_credit - Time Stop (14 DTE)") for line in closing(lines))
    assert gateway.returncode == 0, gateway_err
    assert gateway_out.splitlines()[-1] == "fake IB gateway stopped"

    async def xlf(store: SqlStore) -> Any:
        return await store.detail("XLF-P-3"), await store.contract_ids("XLF-P-3")

    detail, con_ids = run(xlf)
    (order,) = detail.orders
    assert (order.reason, order.status, order.filled) == ("time_stop", "filled", 3)
    # one fill of the combo (not one per leg execution IB sends), by IB's execution id
    assert [(f.quantity, bool(f.exec_id)) for f in detail.fills] == [(3, True)]
    assert all(c is not None and c >= 700_000 for c in con_ids.values())


@pytest.mark.slow
def test_a_commission_ib_reports_late_is_added_to_the_fill_when_it_comes(
    db_url: str, monkeypatch: pytest.MonkeyPatch, cli: Cli, run: StoreRun[Any]
) -> None:
    """IB's commission reports trail their executions, by seconds at times (here 3 s
    each, ``--commission-delay 3``): the fill is recorded and said at once ("commission
    pending"), each leg's report is added to it when it comes, said in a COMMISSION line,
    and the store's fill, its realised P&L and ``spreadwatch report`` carry it."""
    flags = (*FAST[:4], "--commission-delay", "3")
    with on_the_fake_gateway(db_url, monkeypatch, cli, *flags) as (daemon, _):
        said = lambda: sum("COMMISSION: XLF-P-3" in line for line in daemon.out)  # noqa: E731
        daemon.until(lambda: said() == 2, 60)
    assert daemon.code == 0, "".join(daemon.errors[-20:])
    lines = [line.rstrip("\n") for line in daemon.out]
    (filled,) = [line for line in lines if "FILLED: XLF-P-3" in line]
    assert "commission pending" in filled
    late = [line for line in lines if "COMMISSION: XLF-P-3" in line]
    assert "$1.95 more on fill" in late[0]  # 3 contracts x 0.65, one leg's report
    assert "its commission $3.90" in late[1]

    async def xlf(store: SqlStore) -> Any:
        return await store.detail("XLF-P-3"), await store.realised()

    detail, realised = run(xlf)
    (fill,) = detail.fills
    assert fill.commission == Decimal("3.90")
    (row,) = [r for r in realised if r.position_id == "XLF-P-3"]
    assert row.commission == Decimal("3.90")
    report = cli("report")
    assert report.code == 0
    assert "$3.90" in report.out


def fake_gateway(*flags: str) -> tuple[subprocess.Popen[str], str]:
    """``spreadwatch fake-gateway`` on a free port: the process and its port."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "service.cli", "fake-gateway", "--port", "0", *flags],
        cwd=ROOT,
        env={k: v for k, v in os.environ.items() if k != "DATABASE_URL"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    banner = proc.stdout.readline()
    assert banner.startswith("fake IB gateway on 127.0.0.1:"), banner
    return proc, banner.split(":")[1].split()[0]


@contextlib.contextmanager
def on_the_fake_gateway(
    db_url: str, monkeypatch: pytest.MonkeyPatch, cli: Cli, *flags: str
) -> Iterator[tuple[Daemon, subprocess.Popen[str]]]:
    """``spreadwatch fake-gateway`` (with ``flags``) and ``spreadwatch run`` on it with
    ``broker = ib``, as a user runs them, the examples imported: the daemon and the
    gateway (to signal); after, the daemon stopped (its exit code in ``daemon.code``), then
    the gateway."""
    gateway, port = fake_gateway(*flags)
    env = {"DATABASE_URL": db_url, "SPREADWATCH_BROKER": "ib", "SPREADWATCH_IB__PORT": port}
    try:
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        assert cli("positions", "import", str(ROOT / "examples" / "positions.toml")).code == 0
        daemon = Daemon(env)
        try:
            yield daemon, gateway
        finally:
            daemon.stop()
    finally:
        gateway.send_signal(signal.SIGTERM)
        gateway.communicate(timeout=10)


def run_on_a_fake_gateway(db_url: str, *flags: str) -> tuple[Run, str]:
    """``spreadwatch run --for 5`` with ``broker = ib`` on ``fake-gateway`` with ``flags``:
    what it said, and the gateway's port."""
    gateway, port = fake_gateway(*flags)
    try:
        env = {"DATABASE_URL": db_url, "SPREADWATCH_BROKER": "ib", "SPREADWATCH_IB__PORT": port}
        return spreadwatch("run", "--for", "5", **env), port
    finally:
        gateway.send_signal(signal.SIGTERM)
        gateway.communicate(timeout=10)


@pytest.mark.slow
def test_run_refuses_a_live_account_in_one_line(db_url: str) -> None:
    out, _ = run_on_a_fake_gateway(db_url, "--account", "U7654321")
    assert out.code == 2
    assert out.err.endswith(
        "spreadwatch: ib.account: U7654321 is not a paper account (paper ids start with DU): "
        "refusing to trade it; set ib.allow_live = true to allow a live account\n"
    )


@pytest.mark.slow
def test_run_stops_on_a_read_only_api_in_one_line_before_deciding(db_url: str) -> None:
    """IB Gateway's API is read-only by default (IB answers placeOrder with 321): found at
    connect, exit 2, one line that says where to uncheck it; no order decided."""
    out, port = run_on_a_fake_gateway(db_url, "--read-only")
    assert out.code == 2
    line = out.err.splitlines()[-1]  # (log lines, JSON off a terminal, come before it)
    assert line.startswith(f"spreadwatch: IB at 127.0.0.1:{port}: the gateway's API is read-only")
    assert 'uncheck "Read-Only API"' in line
    assert "CLOSING" not in out.out


@pytest.mark.slow
def test_the_fake_gateway_drops_connections_and_loses_connectivity_on_signals() -> None:
    """SIGUSR1 drops the client's socket; SIGUSR2 sends 1100, the next one 1101."""
    import asyncio  # noqa: PLC0415

    from ib_async import IB  # noqa: PLC0415

    gateway, port = fake_gateway("--restore", "1101")

    async def main() -> tuple[list[int], bool]:
        ib = IB()
        codes: list[int] = []
        ib.errorEvent += lambda req_id, code, *rest: codes.append(code)  # (21xx: the farms)
        await ib.connectAsync("127.0.0.1", int(port), clientId=3, timeout=10)
        for _ in range(2):
            gateway.send_signal(signal.SIGUSR2)
            await asyncio.sleep(0.3)
        gateway.send_signal(signal.SIGUSR1)
        for _ in range(100):
            if not ib.isConnected():
                break
            await asyncio.sleep(0.05)
        return codes, ib.isConnected()

    try:
        codes, connected = asyncio.run(main())
    finally:
        gateway.send_signal(signal.SIGTERM)
        gateway.communicate(timeout=10)
    assert [c for c in codes if not 2100 <= c < 2200] == [1100, 1101]
    assert not connected


@pytest.mark.slow
def test_a_database_knows_its_venue_and_a_live_one_gets_no_examples(
    db_url: str, monkeypatch: pytest.MonkeyPatch, cli: Cli, run: StoreRun[Any]
) -> None:
    """An empty database run on IB imports no examples (it says how to bring positions
    in) and is bound to ib:DU1234567; the simulated market is then refused on it, in one
    line, and writes nothing."""
    gateway, port = fake_gateway(*FAST[:4])
    try:
        env = {"DATABASE_URL": db_url, "SPREADWATCH_BROKER": "ib", "SPREADWATCH_IB__PORT": port}
        on_ib = spreadwatch("run", "--for", "1", **env)  # (a minute of the fake gateway's time)
    finally:
        gateway.send_signal(signal.SIGTERM)
        gateway.communicate(timeout=10)
    assert on_ib.code == 0, on_ib.err
    assert "monitoring 0 positions on Interactive Brokers" in on_ib.out
    assert "no open positions: bring the account's in with `spreadwatch positions sync" in (
        on_ib.out
    )
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.setenv("SPREADWATCH_BROKER", "sim")
    on_sim = cli("run", *FAST)
    assert (on_sim.code, on_sim.out.count("monitoring")) == (2, 0)
    assert on_sim.err.count("\n") == 1
    assert "database: its records are ib:DU1234567's, this run is sim's: refusing" in on_sim.err

    async def positions(store: SqlStore) -> Any:
        return await store.all_positions()

    assert run(positions) == []
