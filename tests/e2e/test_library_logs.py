"""The daemon's log on IB as a process writes it: ib_async's own logging as JSON lines of
ours (never bare text), one line for the market data types in use at start, and no
``cancelMktData: No reqId found`` spam when the lines are opened afresh after a dropped
connection (ib_async has forgotten them then) or after IB's 1101."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Callable

import pytest

from tests.e2e.test_run import on_the_fake_gateway
from tests.support import Run

Cli = Callable[..., Run]
CLOCK = ("--start", "2026-12-07T10:00:00-05:00", "--speed", "1")  # (the fake gateway's)


@pytest.mark.slow
def test_libraries_log_through_ours_and_start_up_says_the_data_types_once(
    db_url: str, monkeypatch: pytest.MonkeyPatch, cli: Cli
) -> None:
    flags = (*CLOCK, "--restore", "1101")
    with on_the_fake_gateway(db_url, monkeypatch, cli, *flags) as (daemon, gateway):
        daemon.until(lambda: daemon.logged("ib.market_data_types"), 60)
        time.sleep(1.0)  # (every leg's first ticks in)
        for _ in range(2):  # IB's 1100, then 1101: every line requested afresh
            gateway.send_signal(signal.SIGUSR2)
            time.sleep(0.5)
        daemon.until(lambda: daemon.logged("ib.connectivity_restored_data_lost"), 30)
        time.sleep(1.0)
        gateway.send_signal(signal.SIGUSR1)  # the connection dropped: a reconnect
        daemon.until(lambda: daemon.logged("ib.reconnected"), 60)
        time.sleep(2.0)  # (the lines opened again, ticks flowing)
    assert daemon.code == 0, "".join(daemon.errors[-20:])
    lines = [json.loads(line) for line in daemon.errors]  # every line one JSON object
    assert len(lines) == len(daemon.log) > 10
    events = [line["event"] for line in lines]
    (types,) = [line for line in lines if line["event"] == "ib.market_data_types"]
    assert (types["types"], types["not_live"]) == (["live"], [])
    assert "ib.market_data_type" not in events  # (each leg's: debug)
    # ib_async's words on the dropped connection, as a line of ours
    (peer,) = [line for line in lines if line["event"] == "ib.library"]
    assert (peer["logger"], peer["level"]) == ("ib_async.client", "error")
    assert peer["detail"].startswith("Peer closed connection")
    assert not [line for line in lines if "cancelMktData" in json.dumps(line)]
