"""``spreadwatch demo``: every exit type, on the real stack, in seconds."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support import Run

Cli = Callable[..., Run]
REASONS = (
    "Time Stop (21 DTE)",
    "Loss Stop (150% of credit)",
    "Profit Target (50%)",
    "Profit Target (75%)",
    "Delta Stop (0.30)",
    "Profit Target (90%+)",
)


def table(out: str) -> dict[str, list[str]]:
    rows = out.split("\n\n")[1].splitlines()[2:]
    return {r.split()[0]: re.split(r"\s{2,}", r) for r in rows}


def test_the_demo_shows_every_exit_and_closes_everything(
    db_url: str, monkeypatch: pytest.MonkeyPatch, cli: Cli, tmp_path: Path
) -> None:
    """On a database of its own: the user's (DATABASE_URL here) is never touched."""
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.setenv("SPREADWATCH_DATA_DIR", str(tmp_path))
    run = cli("demo")
    assert run.code == 0, run.err
    closes = [line for line in run.out.splitlines() if "CLOSING:" in line]
    for reason in REASONS:
        assert any(f" - {reason} - " in line for line in closes), reason
    rows = table(run.out)
    assert {pid: row[-1] for pid, row in rows.items()} == {
        "demo1-SPY": "0/10",
        "demo1-DIA": "0/2",
        "demo1-QQQ": "0/6",
        "demo1-IWM": "0/5",
        "demo1-XLF": "0/3",
    }
    assert rows["demo1-SPY"][2] == (
        "Profit Target (50%) x4, Profit Target (75%) x4, Profit Target (90%+) x2"
    )
    again = cli("demo")  # a second session on the same database: new ids, same story
    assert again.code == 0
    assert set(table(again.out)) == {pid.replace("demo1", "demo2") for pid in rows}
    assert run.out.endswith(f"(the demo's own database, in {tmp_path / 'demo'}; yours is not "
                            "touched)\n")  # fmt: skip
    assert cli("positions", "list", "--all").out == "no positions\n"  # the user's database


@pytest.mark.slow
def test_the_demo_on_the_embedded_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli: Cli
) -> None:
    """No settings at all: the demo's embedded PostgreSQL is created, migrated and used; the
    user's embedded one (the daemon's) is another, and holds none of the demo's."""
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("SPREADWATCH_DATA_DIR", str(tmp_path))
    run = cli("demo")
    assert run.code == 0, run.err
    assert all(row[-1].startswith("0/") for row in table(run.out).values())
    assert (tmp_path / "demo" / "postgres").is_dir()
    assert "revision none" in cli("db", "current").out  # the user's: not even created
