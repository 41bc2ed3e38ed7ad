"""``spreadwatch run``: the daemon on the simulated market, a real PostgreSQL, signals."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from service.ports import CloseIntent
from service.store.repository import SqlStore
from tests.conftest import EXAMPLES, ROOT, Run
from tests.store.conftest import Run as StoreRun

Cli = Callable[..., Run]
# Monday 2026-12-07, 10:00 New York: the XLF example (INCOME_POP, expiry 2026-12-18) is
# past its 14-DTE time stop; the clock runs 500 times faster than the wall.
FAST = ("--start", "2026-12-07T10:00:00-05:00", "--speed", "500", "--for", "5")


@pytest.fixture
def db_cli(db_url: str, monkeypatch: pytest.MonkeyPatch, cli: Cli) -> Cli:
    monkeypatch.setenv("DATABASE_URL", db_url)
    return cli


def test_run_imports_the_examples_acts_and_stops_cleanly(db_cli: Cli, run: StoreRun[Any]) -> None:
    out = db_cli("run", *FAST)
    assert out.code == 0, out.err
    lines = out.out.splitlines()
    assert lines[0].startswith("no positions: imported the examples")
    assert lines[1] == "monitoring 7 positions on the simulated market"
    assert any(line.startswith("CLOSING: XLF put_credit - Time Stop (14 DTE)") for line in lines)
    assert lines[-1].startswith("stopped: ")

    async def xlf(store: SqlStore) -> Any:
        return await store.detail("XLF-P-3")

    detail = run(xlf)
    assert detail.orders[0].reason == "time_stop"
    assert [e.kind for e in detail.events][:2] == ["imported", "decision"]
    # the logs: JSON lines on stderr (not a terminal), stable event names, ids bound
    logs = [json.loads(line) for line in out.err.splitlines()]
    events = [e["event"] for e in logs]
    assert events[0] == "daemon.started"
    assert events[-1] == "daemon.stopped"
    submitted = [e for e in logs if e["event"] == "order.submitted"]
    assert {"position_id": "XLF-P-3", "order_ref": "XLF-P-3:stop:1"}.items() <= next(
        e for e in submitted if e["position_id"] == "XLF-P-3"
    ).items()
    assert all(e["level"] in ("info", "warning") and "timestamp" in e for e in logs)


def test_a_restart_ends_orders_the_new_broker_does_not_work(
    db_cli: Cli, run: StoreRun[Any]
) -> None:
    """The simulated broker lives and dies with its process: an order the store has as
    working (left by an earlier run) is not working at a new run's broker, so the new run
    ends it as cancelled on start (reconciliation) and watches the position again."""
    assert db_cli("positions", "import", EXAMPLES / "positions.toml").code == 0

    async def leave_working(store: SqlStore) -> None:
        intent = CloseIntent(
            order_ref="SPY-P-10:0:1",
            position_id="SPY-P-10",
            stage=0,
            attempt=1,
            reason="profit_target",
            label="Profit Target (50%)",
            target=Decimal("0.50"),
            quantity=4,
            limit_price=Decimal("0.70"),
        )
        await store.record_intent(intent)
        await store.order_sent("SPY-P-10:0:1", "working", broker_order_id=7, perm_id=70)

    run(leave_working)
    out = db_cli("run", *FAST)
    assert out.code == 0, out.err
    assert "reconciled: SPY-P-10:0:1: not working at the broker on start: ended as cancelled" in (
        out.out.splitlines()
    )

    async def spy(store: SqlStore) -> Any:
        return await store.detail("SPY-P-10")

    detail = run(spy)
    assert detail.orders[0].status == "cancelled"


def test_a_dry_run_records_what_it_would_close_and_sends_nothing(
    db_cli: Cli, run: StoreRun[Any]
) -> None:
    out = db_cli("run", "--dry-run", *FAST)
    assert out.code == 0, out.err
    assert "(dry run: nothing is sent)" in out.out
    assert "CLOSING:" not in out.out

    async def xlf(store: SqlStore) -> Any:
        return await store.detail("XLF-P-3"), await store.live_orders()

    detail, live = run(xlf)
    assert (detail.orders, live) == ([], [])
    (decision,) = [e for e in detail.events if e.kind == "decision"]
    assert decision.reason == "time_stop"
    assert decision.quotes["would_close"] is True
    assert detail.stored.remaining == 3


def test_outside_regular_hours_it_says_so_once_and_sends_nothing(db_cli: Cli) -> None:
    out = db_cli("run", "--start", "2026-12-05T10:00:00-05:00", "--speed", "500", "--for", "5")
    assert out.code == 0, out.err
    assert out.out.count("market closed: decisions wait for the open, 2026-12-07 14:30Z") == 1
    assert "CLOSING:" not in out.out


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (("--start", "tomorrow"), "--start: not an ISO-8601 time: 'tomorrow'"),
        (("--start", "2026-12-07T10:00:00"), "--start: no UTC offset"),
        (("--speed", "0"), "--speed: must be positive"),
    ],
)
def test_bad_run_flags_are_one_line_and_exit_2(
    db_cli: Cli, args: tuple[str, ...], error: str
) -> None:
    out = db_cli("run", *args)
    assert (out.code, out.out) == (2, "")
    assert error in out.err
    assert out.err.count("\n") == 1


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
    health = proc.stdout.readline()
    assert health.startswith("health and metrics on http://127.0.0.1:"), health
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
    """Two processes, as a user runs them: ``spreadwatch fake-gateway`` and ``spreadwatch
    run`` with ``broker = ib``, both on the same accelerated clock. The XLF example's time
    stop goes out over the TWS API as a BAG order and fills at the fake gateway; the
    conIds are stored on the legs; the fill lands in the store once."""
    gateway, port = fake_gateway(*FAST[:4])
    try:
        monkeypatch.setenv("DATABASE_URL", db_url)
        monkeypatch.setenv("SPREADWATCH_BROKER", "ib")
        monkeypatch.setenv("SPREADWATCH_IB__PORT", port)
        out = cli("run", *FAST[:4], "--for", "20")  # the TWS API's round trips: more time
    finally:
        gateway.send_signal(signal.SIGTERM)
        gateway_out, gateway_err = gateway.communicate(timeout=10)
    assert out.code == 0, out.err
    lines = out.out.splitlines()
    assert f"connected to IB at 127.0.0.1:{port}, account DU1234567" in lines
    assert "monitoring 7 positions on Interactive Brokers" in lines
    assert any(line.startswith("CLOSING: XLF put_credit - Time Stop (14 DTE)") for line in lines)
    assert gateway.returncode == 0, gateway_err
    assert gateway_out.splitlines()[-1] == "fake IB gateway stopped"

    async def xlf(store: SqlStore) -> Any:
        return await store.detail("XLF-P-3"), await store.contract_ids("XLF-P-3")

    detail, con_ids = run(xlf)
    (order,) = detail.orders
    assert (order.reason, order.status, order.filled) == ("time_stop", "filled", 3)
    assert [f.exec_id.endswith(".bag") for f in detail.fills] == [True]
    assert all(c is not None and c >= 700_000 for c in con_ids.values())


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


@pytest.mark.slow
def test_run_refuses_a_live_account_in_one_line(
    db_url: str, monkeypatch: pytest.MonkeyPatch, cli: Cli
) -> None:
    gateway, port = fake_gateway("--account", "U7654321")
    try:
        monkeypatch.setenv("DATABASE_URL", db_url)
        monkeypatch.setenv("SPREADWATCH_BROKER", "ib")
        monkeypatch.setenv("SPREADWATCH_IB__PORT", port)
        out = cli("run", *FAST)
    finally:
        gateway.send_signal(signal.SIGTERM)
        gateway.communicate(timeout=10)
    assert out.code == 2
    assert out.err.endswith(
        "spreadwatch: ib.account: U7654321 is not a paper account (paper ids start with DU): "
        "refusing to trade it; set ib.allow_live = true to allow a live account\n"
    )


@pytest.mark.slow
def test_the_fake_gateway_drops_connections_and_loses_connectivity_on_signals() -> None:
    """SIGUSR1 drops the client's socket; SIGUSR2 sends 1100, the next one 1101."""
    import asyncio  # noqa: PLC0415

    from ib_async import IB  # noqa: PLC0415

    gateway, port = fake_gateway("--restore", "1101")

    async def main() -> tuple[list[int], bool]:
        ib = IB()
        codes: list[int] = []
        ib.errorEvent += lambda req_id, code, *rest: codes.append(code)
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
    assert codes == [1100, 1101]
    assert not connected


def test_run_sends_its_closes_to_the_webhooks_in_the_settings(
    db_url: str, monkeypatch: pytest.MonkeyPatch, cli: Cli
) -> None:
    import http.server  # noqa: PLC0415
    import threading  # noqa: PLC0415

    bodies: list[dict[str, Any]] = []

    class Hook(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            bodies.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/hook"
        monkeypatch.setenv("DATABASE_URL", db_url)
        monkeypatch.setenv("SPREADWATCH_WEBHOOKS", json.dumps([{"url": url, "format": "json"}]))
        out = cli("run", *FAST)
    finally:
        server.shutdown()
    assert out.code == 0, out.err
    kinds = sorted((b["kind"], b["fields"].get("position")) for b in bodies)
    assert ("stop", "XLF-P-3") in kinds
    assert ("close", "AAPL-IC-4") in kinds
    xlf = next(b for b in bodies if b["fields"].get("position") == "XLF-P-3")
    assert xlf["text"].startswith("CLOSING: XLF put_credit - Time Stop (14 DTE)")
