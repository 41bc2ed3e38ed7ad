"""The daemon's clock with a live broker, as processes: a simulated clock is refused with
``broker = ib`` (in one line, before anything starts or is written), and the daemon runs on
IB's time: here the fake gateway's, set with ``fake-gateway --start`` alone, as a user
tries the IB path on a weekend."""

from __future__ import annotations

import json
import signal
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.e2e.test_run import fake_gateway
from tests.support import EXAMPLES, Daemon, spreadwatch

MONDAY = "2026-12-07T10:00:00-05:00"  # XLF-P-3 (expiry 2026-12-18) is past its 14-DTE stop


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (("--start", MONDAY), "--start"),
        (("--speed", "60"), "--speed"),
        (("--start", MONDAY, "--speed", "60", "--for", "5"), "--start, --speed"),
    ],
)
def test_a_simulated_clock_is_refused_with_ib_in_one_line_and_nothing_written(
    tmp_path: Path, flags: tuple[str, ...], named: str
) -> None:
    """``run --start`` with ``broker = ib`` would send real orders on a day that is not the
    market's: exit 2, one line naming the flags, before the database (here the embedded
    one: its directory never made) or the broker (none listening) is tried."""
    data = tmp_path / "data"
    run = spreadwatch(
        "run",
        *flags,
        DATABASE_URL="",
        SPREADWATCH_DATA_DIR=str(data),
        SPREADWATCH_BROKER="ib",
        SPREADWATCH_IB__PORT="9",
    )
    assert (run.code, run.out) == (2, "")
    assert run.err == (
        f"spreadwatch: {named}: a simulated clock, refused with broker = ib: the daemon runs on "
        "the broker's time (to try another day, give --start and --speed to `spreadwatch "
        "fake-gateway` instead)\n"
    )
    assert not data.exists()


@pytest.mark.slow
def test_on_ib_the_daemon_runs_on_the_gateways_time_and_says_how_far_it_is_from_ours(
    db_url: str,
) -> None:
    """The fake gateway's clock starts on a Monday at 10:00 New York; the daemon is given no
    clock. It takes IB's time: says how far that is from this machine's, starts there (its
    log), and closes XLF-P-3 by its time stop at once, in regular hours on that Monday (the
    close line's exchange time), whatever day this machine is on."""
    gateway, port = fake_gateway("--start", MONDAY)
    env = {"DATABASE_URL": db_url, "SPREADWATCH_BROKER": "ib", "SPREADWATCH_IB__PORT": port}
    try:
        imported = spreadwatch("positions", "import", str(EXAMPLES / "positions.toml"), **env)
        assert imported.code == 0, imported.err
        daemon = Daemon(env)
        try:
            daemon.until(lambda: any("CLOSING: XLF-P-3" in line for line in daemon.out), 60)
        finally:
            code = daemon.stop()
    finally:
        gateway.send_signal(signal.SIGTERM)
        gateway.communicate(timeout=10)
    assert code == 0, "".join(daemon.errors[-20:])
    (started,) = [e for e in daemon.log if e["event"] == "daemon.started"]
    began = datetime.fromisoformat(str(started["clock"]))
    monday = datetime.fromisoformat(MONDAY)
    assert 0 <= (began - monday).total_seconds() < 60, started
    (xlf,) = [line for line in daemon.out if "CLOSING: XLF-P-3" in line]
    assert xlf.startswith("2026-12-07 10:0"), xlf
    assert "Time Stop (14 DTE)" in xlf
    way = "ahead of" if datetime.now(UTC) < monday else "behind"
    clock_lines = [line for line in daemon.out if line.startswith("CLOCK: ")]
    assert len(clock_lines) == 1, clock_lines
    assert clock_lines[0].startswith("CLOCK: IB's time is ")
    assert clock_lines[0].endswith(f" {way} this machine's; the daemon runs on IB's time\n")
    (drift,) = [e for e in daemon.log if e["event"] == "clock.drift"]
    assert drift["level"] == "warning"
    assert abs(float(str(drift["offset_s"]))) > 5, json.dumps(drift)
