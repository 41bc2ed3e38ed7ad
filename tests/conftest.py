"""Shared paths for every tier of tests."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from service.cli import main

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"


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
