"""Shared paths for every tier of tests."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from service import native

native.use_sources()  # SPREADWATCH_PURE=1: the suite on the .py sources beside a compiled build

from service.cli.main import main  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"


def pytest_sessionstart(session: pytest.Session) -> None:
    """Refuse to test a compiled module older than its source (an editable install keeps
    the extension it built: see setup.py)."""
    if not os.environ.get(native.PURE_ENV) and (stale := native.stale()):
        pytest.exit(
            f"compiled modules older than their sources: {', '.join(stale)}; "
            "run `pip install -e .` again (or set SPREADWATCH_PURE=1)",
            returncode=2,
        )


@pytest.fixture(autouse=True)
def free_http_port(monkeypatch: pytest.MonkeyPatch) -> None:
    """The daemon's health server on any free port in tests (8080 may be taken)."""
    monkeypatch.setenv("SPREADWATCH_HTTP_PORT", "0")


@pytest.fixture
def examples() -> Path:
    return EXAMPLES


@dataclass
class Run:
    """What one ``spreadwatch`` command did: exit code, stdout, stderr."""

    code: int
    out: str
    err: str

    @property
    def exits(self) -> list[dict[str, object]]:
        return [json.loads(line) for line in self.out.splitlines()]

    @property
    def err_lines(self) -> list[str]:
        return self.err.splitlines()


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., Run]:
    """Run the CLI in-process, as a user would from the shell."""

    def run(*argv: str | Path) -> Run:
        code = main([str(a) for a in argv])
        captured = capsys.readouterr()
        return Run(code, captured.out, captured.err)

    return run
