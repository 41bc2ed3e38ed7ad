"""The container image's steps without a Docker engine: the Dockerfile's install (the
pinned dependencies, then the package without its source tree) in a fresh virtual
environment, then the entrypoint (migrations, then the command) against the fake gateway
and PostgreSQL, as ``docker compose --profile sim up`` runs them."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

import pytest

from tests.support import ROOT

START = ("--start", "2026-12-07T10:00:00-05:00", "--speed", "500")
CONTEXT_IGNORED = (
    ".git",
    ".venv",
    "build",
    "tests",
    "benchmarks",
    "*.so",
    "_native.json",
    "*.egg-info",
)
PLACES = (
    "import rules.watch, service.replay.engine, service.native as n;"
    "print(n.kind(), rules.watch.__file__, service.replay.engine.__file__)"
)


@pytest.mark.slow
def test_the_image_install_and_entrypoint_run_the_stack(tmp_path: Path, empty_url: str) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "pip"), "install", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, "-r", str(ROOT / "requirements.lock")], check=True)
    # python:3.11-slim has no C compiler: the optional mypyc build falls back to pure Python.
    # From a copy of the tree as the image's context has it (no build/ of this machine)
    src = tmp_path / "src"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(*CONTEXT_IGNORED))
    no_cc = {**os.environ, "CC": "false"}
    subprocess.run([*pip, "--no-deps", str(src)], check=True, cwd=tmp_path, env=no_cc)
    installed = subprocess.run(
        [str(venv / "bin" / "python"), "-c", PLACES],
        cwd=tmp_path,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    assert installed[0] == "pure", installed
    assert all(path.endswith(".py") and str(tmp_path / "venv") in path for path in installed[1:])
    home = tmp_path / "home"
    home.mkdir()
    env = {
        "PATH": f"{venv / 'bin'}:{os.environ['PATH']}",
        "HOME": str(home),
        "SPREADWATCH_DATA_DIR": str(home / "data"),
        "SPREADWATCH_HTTP_HOST": "127.0.0.1",
        "SPREADWATCH_HTTP_PORT": "0",
    }
    entrypoint = ["sh", str(ROOT / "docker" / "entrypoint.sh")]
    gateway = subprocess.Popen(
        [*entrypoint, "fake-gateway", "--port", "0", *START],
        cwd=home,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert gateway.stdout is not None
        banner = gateway.stdout.readline()
        assert banner.startswith("fake IB gateway on 127.0.0.1:"), banner
        port = banner.split(":")[1].split()[0]
        ib_env = {**env, "DATABASE_URL": empty_url, "SPREADWATCH_BROKER": "ib",
                  "SPREADWATCH_IB__PORT": port}  # fmt: skip
        # on a live venue the examples are never imported by themselves: in by hand, from
        # the installed package, once the entrypoint has migrated the database
        examples = subprocess.run(
            [str(venv / "bin" / "python"), "-c",
             "from service.shipped import shipped; print(shipped('examples') / 'positions.toml')"],
            cwd=home, env=env, check=True, capture_output=True, text=True,
        ).stdout.strip()  # fmt: skip
        upgraded = subprocess.run(
            [*entrypoint, "db", "upgrade"],
            cwd=home,
            env=ib_env,
            capture_output=True,
            text=True,
            check=True,
        )
        imported = subprocess.run(
            [*entrypoint, "positions", "import", examples],
            cwd=home, env=ib_env, capture_output=True, text=True, check=True,
        )  # fmt: skip
        daemon = subprocess.Popen(
            [*entrypoint, "run"],  # (on IB's time: the fake gateway's)
            cwd=home,
            env={
                **env,
                "DATABASE_URL": empty_url,
                "SPREADWATCH_BROKER": "ib",
                "SPREADWATCH_IB__PORT": port,
            },
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert daemon.stdout is not None
        lines = []
        stuck = threading.Timer(120, daemon.kill)  # (then its output ends: said below)
        stuck.start()
        while not any("CLOSING: XLF" in line for line in lines):
            line = daemon.stdout.readline()
            assert line, "".join(lines)
            lines.append(line)
            if line.startswith("health and metrics on "):
                url = line.split()[4] + "readyz"
        stuck.cancel()
        with urllib.request.urlopen(url.replace("readyz", "healthz"), timeout=5) as response:
            assert response.status == 200
        daemon.send_signal(signal.SIGTERM)  # as docker stop does
        out, err = daemon.communicate(timeout=30)
    finally:
        gateway.send_signal(signal.SIGTERM)
        gateway.communicate(timeout=10)
    text = "".join(lines) + out
    assert daemon.returncode == 0, err
    assert ": empty -> 0008" in upgraded.stdout  # the entrypoint migrates the database
    assert ": 0008 -> 0008" in text  # (and again before the daemon: a no-op)
    assert "_examples/positions.toml" in imported.stdout  # from the installed package
    assert f"connected to IB at 127.0.0.1:{port}, account DU1234567" in text
    assert text.splitlines()[-1].startswith("stopped: ")
    assert str(ROOT) not in text  # nothing from the source tree
