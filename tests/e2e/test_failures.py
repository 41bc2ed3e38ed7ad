"""The failures a user meets, each as a real process of ``python -m service.cli``: one line
on stderr naming what failed and what to check, exit code 2; Ctrl-C at any time: exit
130, no traceback; the embedded PostgreSQL survives an interrupted first start."""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from tests.e2e.test_run import FAST, fake_gateway
from tests.support import Run, spreadwatch, start


def assert_one_line(run: Run, *words: str) -> str:
    """Exit 2, no traceback, and the last line of stderr the error (the lines before it, if
    any, are JSON log lines)."""
    assert run.code == 2, run.err
    assert "Traceback" not in run.err, run.err[-4000:]
    last = run.err_lines[-1]
    assert last.startswith("spreadwatch: "), run.err
    assert all(line.startswith("{") for line in run.err_lines[:-1]), run.err
    for word in words:
        assert word in last
    return last


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


def test_a_broker_out_of_reach_names_host_port_and_what_to_check(db_url: str) -> None:
    port = free_port()
    for argv in (("positions", "sync"), ("run", "--for", "5")):
        run = spreadwatch(
            *argv, DATABASE_URL=db_url, SPREADWATCH_BROKER="ib", SPREADWATCH_IB__PORT=str(port)
        )
        assert_one_line(
            run, f"IB at 127.0.0.1:{port}: cannot connect (connection refused)", "IB Gateway or TWS"
        )


@pytest.mark.slow
def test_a_client_id_in_use_is_said_at_once(db_url: str) -> None:
    """The fake gateway answers 326 to a second connection with a client id in use (as IB
    does): said in one line, without waiting for the connection's timeout."""
    gateway, port = fake_gateway(*FAST[:4])
    env = {"DATABASE_URL": db_url, "SPREADWATCH_BROKER": "ib", "SPREADWATCH_IB__PORT": port}
    daemon = start("run", **env)  # (on the fake gateway's clock)
    try:
        assert daemon.stdout is not None
        for _ in range(20):
            if daemon.stdout.readline().startswith("monitoring"):
                break
        began = time.monotonic()
        run = spreadwatch("positions", "sync", **env)
        assert time.monotonic() - began < 8  # (ib.timeout is 10 s)
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.communicate(timeout=20)
        gateway.send_signal(signal.SIGTERM)
        gateway.communicate(timeout=10)
    assert_one_line(run, f"IB at 127.0.0.1:{port}: client id 17 is in use", "ib.client_id")


def test_a_database_missing_or_refusing_the_login_is_one_line(db_url: str) -> None:
    missing = make_url(db_url).set(database="sw_no_such_database")
    nobody = make_url(db_url).set(username="sw_no_such_role")
    for argv in (("positions", "list"), ("db", "current"), ("db", "upgrade")):
        run = spreadwatch(*argv, DATABASE_URL=missing.render_as_string(hide_password=False))
        assert_one_line(run, "no such database: create it (createdb sw_no_such_database)")
    run = spreadwatch("positions", "list", DATABASE_URL=nobody.render_as_string(False))
    assert_one_line(run, "login refused", "check the user and password of DATABASE_URL")


def test_a_schema_not_at_head_is_one_line(empty_url: str) -> None:
    run = spreadwatch("positions", "list", DATABASE_URL=empty_url)
    assert_one_line(run, "no schema, this version needs", "run `spreadwatch db upgrade`")


def test_the_http_port_in_use_is_said_before_anything_starts(db_url: str) -> None:
    """Checked first: the broker (out of reach here) is not even tried."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        run = spreadwatch(
            "run",
            "--for",
            "5",
            DATABASE_URL=db_url,
            SPREADWATCH_HTTP_PORT=str(port),
            SPREADWATCH_BROKER="ib",
            SPREADWATCH_IB__PORT=str(free_port()),
        )
    last = assert_one_line(run, f"http_port: cannot listen on 127.0.0.1:{port}")
    assert "IB" not in last
    assert run.out == ""


# Ctrl-C's exit: 130; or, when the interrupt landed in an import, the interpreter's own
# death by SIGINT at exit (CPython's flag of an unhandled KeyboardInterrupt stays set
# though the command caught it and returned 130), which the shell shows as 130 as well.
INTERRUPTED = (130, -signal.SIGINT)


def interrupt(proc: subprocess.Popen[str], after: float) -> Run:
    time.sleep(after)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    return Run(proc.returncode, out, err)


@pytest.mark.parametrize("after", [0.3, 1.0, 2.5])
def test_ctrl_c_during_the_start_of_run_is_130_then_a_normal_start_works(
    db_url: str, after: float
) -> None:
    """SIGINT wherever it lands (imports, the database, loading, running): exit 130,
    no traceback; then the next start runs as usual."""
    env = {"DATABASE_URL": db_url}
    run = interrupt(start("run", "--start", FAST[1], **env), after)
    assert run.code in INTERRUPTED, run.err
    assert "Traceback" not in run.err, run.err[-4000:]
    again = spreadwatch("run", *FAST, **env)
    assert again.code == 0, again.err
    assert again.out.splitlines()[-1].startswith("stopped: ")


def test_ctrl_c_during_the_embedded_databases_first_start_leaves_it_startable(
    data_dir: Path,
) -> None:
    """SIGINT while the embedded cluster is being made (its directory aside appears, initdb
    runs): exit 130, no traceback, no cluster half made in its place; the next command
    makes it again and works."""
    env = {
        "DATABASE_URL": "",
        "SPREADWATCH_DATABASE_URL": "",
        "SPREADWATCH_DATA_DIR": str(data_dir),
    }
    proc = start("db", "current", **env)
    deadline = time.monotonic() + 30
    while not (data_dir / "postgres.partial").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    run = interrupt(proc, 0.05)  # (making it takes about a second)
    assert run.code in INTERRUPTED, run.err
    assert run.err_lines == ["spreadwatch: interrupted"]
    assert not (data_dir / "postgres").exists()
    current = spreadwatch("db", "current", **env)
    assert current.code == 0, current.err
    assert "revision none" in current.out
    assert spreadwatch("db", "upgrade", **env).code == 0
    listed = spreadwatch("positions", "list", **env)
    assert (listed.code, listed.out) == (0, "no open positions\n"), listed.err
