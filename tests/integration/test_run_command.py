"""``spreadwatch run`` in-process: the daemon on the simulated market and a real PostgreSQL.
(The daemon and the fake gateway as processes: tests/e2e/test_run.py.)"""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy.engine import make_url

from service.ports import CloseIntent
from service.store.repository import SqlStore
from tests.fakes import WebhookReceiver
from tests.support import EXAMPLES, Run, StoreRun, closing

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
    assert lines[0].startswith("health and metrics on http://127.0.0.1:")
    assert lines[1].startswith("trading lease held (epoch 1, as ")
    assert lines[2].startswith("no positions: imported the examples")
    assert lines[3] == "monitoring 7 positions on the simulated market"
    assert any(line.startswith("XLF put_credit - Time Stop (14 DTE)") for line in closing(lines))
    assert lines[-1].startswith("stopped: ")

    async def xlf(store: SqlStore) -> Any:
        return await store.detail("XLF-P-3")

    detail = run(xlf)
    assert detail.orders[0].reason == "time_stop"
    assert [e.kind for e in detail.events][:2] == ["imported", "decision"]
    # the logs: JSON lines on stderr (not a terminal), stable event names, ids bound
    logs = [json.loads(line) for line in out.err.splitlines()]
    events = [e["event"] for e in logs]
    assert events[:2] == ["daemon.http", "lease.acquired"]
    assert "daemon.started" in events
    assert events[-2:] == ["daemon.stopped", "lease.released"]
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


def test_a_dry_run_says_and_records_each_close_once_and_sends_nothing(
    db_cli: Cli, run: StoreRun[Any]
) -> None:
    """Over 30 minutes of market time the XLF example's time stop is decided again on
    every quote (nothing goes out, so the position stays open): one WOULD CLOSE line on
    stdout, one audit event marked dry run (``positions show`` says so), one
    ``exit.decided`` line in the log at info; no order."""
    out = db_cli("run", "--dry-run", *FAST[:4], "--for", "30")
    assert out.code == 0, out.err
    assert "(dry run: nothing is sent)" in out.out
    assert "CLOSING:" not in out.out
    would = [line.split(" WOULD CLOSE: ", 1)[1] for line in out.out.splitlines()
             if " WOULD CLOSE: " in line]  # fmt: skip
    (xlf_line,) = [line for line in would if line.startswith("XLF-P-3 ")]
    assert xlf_line.startswith("XLF-P-3 XLF put_credit - Time Stop (14 DTE)")
    assert xlf_line.endswith("(dry run: nothing sent)")
    assert len(would) == len(set(would))  # each decision said once

    async def xlf(store: SqlStore) -> Any:
        return await store.detail("XLF-P-3"), await store.live_orders()

    detail, live = run(xlf)
    assert (detail.orders, live) == ([], [])
    assert [e.kind for e in detail.events if e.kind != "imported"] == ["would close (dry run)"]
    (decision,) = [e for e in detail.events if e.kind == "would close (dry run)"]
    assert decision.reason == "time_stop"
    assert detail.stored.remaining == 3
    shown = db_cli("positions", "show", "XLF-P-3").out
    assert "would close (dry run)  time_stop" in shown
    logs = [json.loads(line) for line in out.err.splitlines()]
    decided = [e for e in logs if e["event"] == "exit.decided" and e["position_id"] == "XLF-P-3"]
    assert len(decided) == 1


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


def test_run_sends_its_closes_to_the_webhooks_in_the_settings(
    db_url: str, monkeypatch: pytest.MonkeyPatch, cli: Cli
) -> None:
    hook = WebhookReceiver()
    try:
        url = hook.start()
        monkeypatch.setenv("DATABASE_URL", db_url)
        monkeypatch.setenv("SPREADWATCH_WEBHOOKS", json.dumps([{"url": url, "format": "json"}]))
        # (60 times the wall, not 500: a busy machine must not make the quotes stale)
        out = cli("run", "--start", "2026-12-07T10:00:00-05:00", "--speed", "60", "--for", "5")
    finally:
        hook.stop()
    bodies = hook.bodies
    assert out.code == 0, out.err
    kinds = sorted((b["kind"], b["fields"].get("position")) for b in bodies)
    assert ("stop", "XLF-P-3") in kinds
    assert ("close", "AAPL-IC-4") in kinds
    xlf = next(b for b in bodies if (b["kind"], b["fields"].get("position")) == ("stop", "XLF-P-3"))
    assert closing([xlf["text"]])[0].startswith("XLF put_credit - Time Stop (14 DTE)")


def test_no_secret_of_the_settings_is_ever_in_the_log(
    db_url: str, monkeypatch: pytest.MonkeyPatch, cli: Cli
) -> None:
    """A webhook that fails (its URL, token included, in aiohttp's error) and a database
    password, at debug (the libraries' lines too): neither is in any line; the hook's
    host is, to say which one failed; every log line is one JSON object."""
    hook = WebhookReceiver("fail")
    try:
        url = hook.start() + "/T0001/XyZsecretToken42"
        with_password = make_url(db_url).set(password="TopSecretPw9")
        monkeypatch.setenv("DATABASE_URL", with_password.render_as_string(hide_password=False))
        monkeypatch.setenv("SPREADWATCH_WEBHOOKS", json.dumps([{"url": url, "format": "json"}]))
        monkeypatch.setenv("SPREADWATCH_LOG_LEVEL", "debug")
        out = cli("run", "--start", "2026-12-07T10:00:00-05:00", "--speed", "60", "--for", "5")
    finally:
        hook.stop()
    assert out.code == 0, out.err
    assert hook.bodies  # the alerts went to the hook, which failed them
    lines = [json.loads(line) for line in out.err.splitlines()]  # (each one JSON object)
    failed = [line for line in lines if line["event"] == "alert.failed"]
    assert failed
    host = url.split("/hook")[0]
    assert {f["webhook"] for f in failed} == {f"{host}/***"}
    assert all(f"url='{host}/***'" in f["detail"] for f in failed)
    assert any(line["level"] == "debug" for line in lines)  # the level setting took
    for secret in ("XyZsecretToken42", "T0001", "TopSecretPw9"):
        assert secret not in out.err
        assert secret not in out.out
