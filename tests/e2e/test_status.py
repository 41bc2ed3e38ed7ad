"""``spreadwatch status`` as a process: from a running daemon (its API, marks and all), and
from the database alone when no daemon answers (marks blank); the JSON's schema."""

from __future__ import annotations

import json
import signal
import socket
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from tests.support import EXAMPLES, Daemon, spreadwatch, start

START = ("--start", "2026-12-07T10:00:00-05:00")  # a Monday's session, on the simulated market
POSITION_KEYS = {
    "id", "book", "underlying", "strategy", "phase", "contracts", "remaining", "stage",
    "tranches", "manual", "entry_credit", "max_profit", "mark", "legs", "quote_age",
    "debit_mid", "debit_natural", "debit", "pnl", "pnl_pct", "dte", "initial_dte",
    "time_stop_dte", "next_target", "triggers", "nearest", "order", "realised",
    "fills_today", "attention",
}  # fmt: skip
TRIGGER_KEYS = {"reason", "label", "unit", "value", "threshold", "distance", "left", "reached"}
FILL_KEYS = {"position", "at", "contracts", "price", "realised"}
LEG_KEYS = {"right", "strike", "side", "bid", "ask", "age", "delta", "delta_source"}


def decimal_or_none(value: Any) -> Decimal | None:
    """A money or share field: an exact decimal string, or null."""
    assert value is None or isinstance(value, str), value
    return None if value is None else Decimal(value)


def check_schema(body: dict[str, Any], source: str) -> None:
    """The documented form of ``/api/positions`` and ``status --json`` (docs/status.md)."""
    keys = {"schema", "at", "source", "positions", "fills_today", "realised_today", "near"}
    keys.add("attention")
    assert set(body) == keys
    decimal_or_none(body["realised_today"])
    assert Decimal(body["near"]) > 0
    assert all(set(a) == {"position", "reason"} for a in body["attention"])
    for f in body["fills_today"]:
        assert set(f) == FILL_KEYS
    assert (body["schema"], body["source"]) == (1, source)
    for p in body["positions"]:
        assert set(p) == POSITION_KEYS, set(p) ^ POSITION_KEYS
        for key in ("entry_credit", "max_profit", "debit", "pnl", "pnl_pct", "realised"):
            decimal_or_none(p[key])
        assert all(set(leg) == LEG_KEYS for leg in p["legs"])
        assert [t["reason"] for t in p["triggers"]][:3] == ["loss_stop", "delta_stop", "time_stop"]
        for t in p["triggers"]:
            assert set(t) == TRIGGER_KEYS
            assert t["reached"] == (t["distance"] is not None and Decimal(t["distance"]) <= 0)
        assert p["nearest"] in {t["reason"] for t in p["triggers"]}


def nearest_left(p: dict[str, Any]) -> Decimal:
    return next(Decimal(t["left"]) for t in p["triggers"] if t["reason"] == p["nearest"])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def daemon(db_url: str) -> Iterator[tuple[Daemon, str]]:
    """The daemon on the simulated market, its HTTP server on a free port: (it, the port)."""
    env = {"DATABASE_URL": db_url, "SPREADWATCH_HTTP": "true", "SPREADWATCH_HTTP_PORT": "0"}
    d = Daemon(env, *START)
    d.until(lambda: any(line.startswith("monitoring ") for line in d.out), 60)  # (trading)
    line = next(line for line in d.out if line.startswith("health and metrics on"))
    yield d, line.split()[4].rstrip("/").rsplit(":", 1)[1]
    d.stop()


def api(port: str, path: str = "/api/positions") -> Any:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as answer:
        return json.load(answer)


@pytest.mark.slow
def test_status_reads_the_running_daemon_marks_and_all_nearest_first(
    db_url: str, daemon: tuple[Daemon, str]
) -> None:
    d, port = daemon
    d.until(lambda: all(p["debit"] is not None for p in api(port)["positions"]), 30)
    env = {"DATABASE_URL": db_url, "SPREADWATCH_HTTP_PORT": port}
    run = spreadwatch("status", "--json", **env)
    assert run.code == 0, run.err
    body = json.loads(run.out)
    check_schema(body, "daemon")
    positions = body["positions"]
    assert len(positions) >= 6  # the examples, XLF closed at its time stop
    assert all(p["debit"] is not None and p["legs"][0]["bid"] is not None for p in positions)
    lefts = [nearest_left(p) for p in positions]
    assert lefts == sorted(lefts)  # nearest trigger first
    table = spreadwatch("status", **env)
    assert table.code == 0, table.err
    lines = table.out.splitlines()
    assert "(from the daemon)" in lines[0]
    assert "\x1b[" not in table.out  # no colour off a terminal
    n = int(lines[0].split()[0])  # "6 open position(s) at ..."
    shown = {line.split()[0] for line in lines[3 : 3 + n]}
    assert len(shown) == n
    assert shown <= {p["id"] for p in positions}  # (one may have closed in between)
    assert lines[-1].startswith("today: ")


@pytest.mark.slow
def test_status_without_a_daemon_reads_the_database_with_blank_marks(db_url: str) -> None:
    env = {"DATABASE_URL": db_url, "SPREADWATCH_HTTP_PORT": str(free_port())}
    assert spreadwatch("positions", "import", str(EXAMPLES / "positions.toml"), **env).code == 0
    run = spreadwatch("status", "--json", **env)
    assert run.code == 0, run.err
    body = json.loads(run.out)
    check_schema(body, "database")
    positions = body["positions"]
    assert len(positions) == 7
    assert all(p["debit"] is None and p["pnl"] is None for p in positions)
    assert {p["nearest"] for p in positions} == {"time_stop"}  # the one figure without quotes
    table = spreadwatch("status", **env)
    assert "no daemon answers: marks are blank" in table.out


@pytest.mark.slow
def test_the_api_details_one_position_and_streams_the_table(daemon: tuple[Daemon, str]) -> None:
    """``/api/positions/{id}``: the position and its audit trail (404 for an unknown id);
    ``/api/events``: server-sent events whose first carries the body of /api/positions;
    the CSP on every response."""
    _, port = daemon
    detail = api(port, "/api/positions/SPY-P-10")
    assert set(detail) == {"schema", "position", "events"}
    assert detail["position"]["id"] == "SPY-P-10"
    assert [e["kind"] for e in detail["events"]][:1] == ["imported"]
    with pytest.raises(urllib.error.HTTPError) as unknown:
        api(port, "/api/positions/NO-SUCH-1")
    assert unknown.value.code == 404
    url = f"http://127.0.0.1:{port}/api/events"
    with urllib.request.urlopen(url, timeout=5) as stream:
        assert stream.headers["Content-Type"] == "text/event-stream"
        assert "default-src 'none'" in stream.headers["Content-Security-Policy"]
        assert stream.readline() == b"event: positions\n"
        data = stream.readline()
    assert data.startswith(b"data: ")
    check_schema(json.loads(data[len(b"data: ") :]), "daemon")


@pytest.mark.slow
def test_status_watch_redraws_until_ctrl_c_then_exits_0(db_url: str) -> None:
    env = {"DATABASE_URL": db_url, "SPREADWATCH_HTTP_PORT": str(free_port())}
    assert spreadwatch("positions", "import", str(EXAMPLES / "positions.toml"), **env).code == 0
    proc = start("status", "--watch", "--every", "0.2", **env)
    assert proc.stdout is not None
    deadline = threading.Timer(60, proc.kill)  # a hung watch ends the read below
    deadline.start()
    tables = 0
    while tables < 2:
        line = proc.stdout.readline()
        assert line, "the watch ended or hung before its second table"
        tables += "open position(s) at" in line
    deadline.cancel()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "Traceback" not in err


@pytest.mark.slow
def test_the_daemon_stops_cleanly_while_a_page_streams(daemon: tuple[Daemon, str]) -> None:
    """SIGTERM with the page's event stream open: the stream ends and the daemon exits 0
    (before, the server waited on the stream: the stop hung)."""
    d, port = daemon
    url = f"http://127.0.0.1:{port}/api/events"
    with urllib.request.urlopen(url, timeout=30) as stream:
        assert stream.readline() == b"event: positions\n"
        assert d.stop() == 0  # (Daemon.stop waits 20 s at most)
        while stream.readline():  # the server ends the stream: no hang
            pass
