"""Needs attention, end to end, as a trader meets it: ``spreadwatch run`` on IB (the fake
gateway, a process, rejecting every order with IB's error 201) decides the XLF example's
time stop; the broker rejects each close; after three rejections in a row the position
is left alone, and a human is told everywhere at once: one stdout line with its id and
why, one webhook alert for the episode, its detail in ``/readyz``, the gauge in
``/metrics``, ``needs attention`` in ``positions list`` and an audit event. ``positions
resume`` ends the episode: a RESOLVED line and a ``resolved`` alert."""

from __future__ import annotations

import json
import socket
import time
import urllib.request
from collections.abc import Callable
from typing import Any

import pytest

from service.store.repository import SqlStore
from tests.e2e.test_run import fake_gateway, on_the_fake_gateway
from tests.fakes import WebhookReceiver
from tests.support import ROOT, Daemon, Run, StoreRun

Cli = Callable[..., Run]
# the fake gateway's clock (the daemon on IB runs on it)
CLOCK = ("--start", "2026-12-07T10:00:00-05:00", "--speed", "500")
XLF = "XLF-P-3"
WHY = "close rejected by the broker: "
GAUGE = "spreadwatch_positions_needing_attention"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as exc:  # (/readyz: 503 says why too)
        return exc.code, exc.read().decode()


@pytest.mark.slow
def test_a_close_the_broker_keeps_rejecting_needs_attention_everywhere_once(
    db_url: str, monkeypatch: pytest.MonkeyPatch, cli: Cli, run: StoreRun[Any]
) -> None:
    gateway, port = fake_gateway(*CLOCK, "--reject", "no trading permission for XLF")
    hook = WebhookReceiver()
    http = free_port()
    daemon = None
    try:
        env = {
            "DATABASE_URL": db_url,
            "SPREADWATCH_BROKER": "ib",
            "SPREADWATCH_IB__PORT": port,
            "SPREADWATCH_WEBHOOKS": json.dumps([{"url": hook.start(), "format": "json"}]),
        }
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        assert cli("positions", "import", str(ROOT / "examples" / "positions.toml")).code == 0
        daemon = Daemon({**env, "SPREADWATCH_HTTP": "true", "SPREADWATCH_HTTP_PORT": str(http)})
        said = f"NEEDS ATTENTION: {XLF}: {WHY}"
        daemon.until(lambda: any(line.startswith(said) for line in daemon.out), 40)

        def alerts(kind: str) -> list[dict[str, Any]]:
            return [
                b for b in hook.bodies if (b["kind"], b["fields"].get("position")) == (kind, XLF)
            ]

        daemon.until(lambda: len(alerts("attention")) > 0, 10)
        ready = json.loads(get(http, "/readyz")[1])
        (detail,) = [d for d in ready["needs_attention"] if d["position"] == XLF]
        assert detail["reason"].startswith(WHY), ready
        assert "no trading permission for XLF" in detail["reason"]
        _, metrics = get(http, "/metrics")
        (gauge,) = [x for x in metrics.splitlines() if x.startswith(GAUGE + " ")]
        # (the other examples' closes are rejected too: as many as /readyz lists, then)
        later = json.loads(get(http, "/readyz")[1])["needs_attention"]
        assert 1 <= float(gauge.split()[1]) <= len(later), (gauge, later)
        listed = [line for line in cli("positions", "list").out.splitlines() if XLF in line]
        (row,) = listed
        assert f"needs attention: {WHY}" in row

        async def xlf(store: SqlStore) -> Any:
            return await store.detail(XLF)

        held = run(xlf)
        rejected = [o for o in held.orders if o.status == "rejected"]
        assert len(rejected) == 3, held.orders  # three in a row, then no more orders
        assert [e for e in held.events if e.kind == "needs attention"], held.events
        time.sleep(3)  # (1,500 s of market time: the episode is said once, no more orders)
        assert len(run(xlf).orders) == 3
        assert [line.startswith(said) for line in daemon.out].count(True) == 1
        assert len(alerts("attention")) == 1, hook.bodies

        assert cli("positions", "resume", XLF).code == 0
        daemon.until(lambda: any(f"RESOLVED: {XLF}: resumed by hand" in x for x in daemon.out))
        daemon.until(lambda: len(alerts("resolved")) == 1, 10)
        (resolved,) = alerts("resolved")
        assert resolved["fields"]["reason"].startswith(WHY)
        code = daemon.stop()
        daemon = None
        assert code == 0
    finally:
        if daemon is not None:
            daemon.stop()
        hook.stop()
        gateway.terminate()
        gateway.communicate(timeout=10)


@pytest.mark.slow
def test_a_position_ib_sends_no_market_data_for_needs_attention_not_silence(
    db_url: str, monkeypatch: pytest.MonkeyPatch, cli: Cli
) -> None:
    """A paper account without XLF's options data (IB's 10089 on those lines): the XLF
    example would wait for quotes that never come. It needs attention, said once with
    IB's code and words, and listed; the other examples are watched and closed as ever."""
    flags = (*CLOCK, "--no-subscription", "XLF")
    with on_the_fake_gateway(db_url, monkeypatch, cli, *flags) as (daemon, _):
        said = f"NEEDS ATTENTION: {XLF}: no market data for XLF 2026-12-18 P "
        daemon.until(lambda: any(line.startswith(said) for line in daemon.out), 40)
        daemon.until(lambda: any(" FILLED: " in line for line in daemon.out), 60)
        listed = cli("positions", "list").out.splitlines()
    assert daemon.code == 0, "".join(daemon.errors[-20:])
    (line,) = [x for x in daemon.out if x.startswith("NEEDS ATTENTION")]
    assert ": IB 10089: Requested market data requires additional subscription for API" in line
    assert XLF not in "".join(x for x in daemon.out if " CLOSING: " in x or " FILLED: " in x)
    (row,) = [x for x in listed if XLF in x]
    assert "needs attention: no market data for XLF" in row
    assert [x for x in listed if "needs attention" in x] == [row]
