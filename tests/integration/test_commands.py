"""``spreadwatch db`` and ``spreadwatch positions`` against a real PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from rules.books import DEFAULT_BOOKS
from service.inputs import load_positions
from service.store.repository import SqlStore
from tests.support import EXAMPLES, Run, StoreRun

Cli = Callable[..., Run]


@pytest.fixture
def db_cli(db_url: str, monkeypatch: pytest.MonkeyPatch, cli: Cli) -> Cli:
    """The CLI on this test's database (migrated to head), via DATABASE_URL."""
    monkeypatch.setenv("DATABASE_URL", db_url)
    return cli


@pytest.fixture
def bare_cli(empty_url: str, monkeypatch: pytest.MonkeyPatch, cli: Cli) -> Cli:
    """The CLI on a database with no schema yet."""
    monkeypatch.setenv("DATABASE_URL", empty_url)
    return cli


def test_commands_refuse_a_schema_not_at_head_until_db_upgrade(bare_cli: Cli) -> None:
    refused = bare_cli("positions", "list")
    assert (refused.code, refused.out) == (2, "")
    assert refused.err.count("\n") == 1
    assert "no schema, this version needs 0008: run `spreadwatch db upgrade`" in refused.err
    assert "revision none (head is 0008" in bare_cli("db", "current").out
    upgraded = bare_cli("db", "upgrade")
    assert upgraded.code == 0
    assert upgraded.out.endswith(": empty -> 0008\n")
    assert "revision 0008 (at head)" in bare_cli("db", "current").out
    assert bare_cli("positions", "list").out == "no open positions\n"


def test_import_lists_and_refuses_the_same_ids_again(db_cli: Cli) -> None:
    first = db_cli("positions", "import", EXAMPLES / "positions.toml")
    assert (first.code, first.out) == (
        0,
        f"imported 7 positions from {EXAMPLES / 'positions.toml'}\n",
    )
    again = db_cli("positions", "import", EXAMPLES / "positions.toml")
    assert again.code == 2
    assert again.err == (
        f"spreadwatch: {EXAMPLES / 'positions.toml'}: position 'AAPL-IC-4': id: already stored\n"
    )
    listed = db_cli("positions", "list").out.splitlines()
    assert " ".join(listed[0].split()) == (
        "id book underlying strategy contracts stage status credit DTE"
    )
    assert len(listed) == 2 + 7
    row = next(line for line in listed if line.startswith("SPY-P-10 "))
    assert row.split()[:8] == [
        "SPY-P-10",
        "PRIMARY",
        "SPY",
        "put_credit",
        "10/10",
        "0",
        "open",
        "1.45",
    ]


def test_a_bad_record_imports_nothing(db_cli: Cli, tmp_path: Path) -> None:
    text = (EXAMPLES / "positions.toml").read_text()
    bad = tmp_path / "bad.toml"
    bad.write_text(text + '\n[[positions]]\nid = "LATE"\nbook = "NOPE"\n')
    run = db_cli("positions", "import", bad)
    assert run.code == 2
    assert run.err.startswith(f"spreadwatch: {bad}: position 'LATE' (record 8): ")
    assert db_cli("positions", "list").out == "no open positions\n"


ADD = (
    "positions",
    "add",
    "--id",
    "X1",
    "--underlying",
    "SPY",
    "--strategy",
    "put_credit",
    "--contracts",
    "3",
    "--opened-at",
    "2027-03-01T10:00:00-05:00",
    "--leg",
    "P:450:2027-04-16:short",
    "--leg",
    "P:445:2027-04-16:long",
)


def test_add_close_and_show(db_cli: Cli) -> None:
    assert db_cli(*ADD, "--credit", "1.10").out == "added X1\n"
    assert db_cli("positions", "close", "X1").out == (
        "X1: close of all that remains asked (manual): the running daemon sends it now (in "
        "regular hours), or the next one at its start\n"
    )
    shown = db_cli("positions", "show", "X1").out
    assert "X1: put_credit on SPY, book PRIMARY, account paper" in shown
    assert "contracts 3/3 remaining, stage 0, status open, manual close asked (manual)" in shown
    assert "  short  P  450  2027-04-16" in shown
    assert "manual close requested  3 remaining  manual" in shown
    assert "open (manual close)" in db_cli("positions", "list").out


def test_add_takes_an_opening_date_and_expiries_as_ib_writes_them(db_cli: Cli) -> None:
    """``--opened-at 2026-12-04``: midnight in New York; a leg's expiry as YYYYMMDD."""
    argv = [a.replace("2027-04-16", "20270416") for a in ADD]
    argv[argv.index("--opened-at") + 1] = "2027-03-01"
    assert db_cli(*argv, "--credit", "1.10").out == "added X1\n"
    shown = db_cli("positions", "show", "X1").out
    assert (
        "opened 2027-03-01T05:00:00+00:00" in shown or "opened 2027-03-01T00:00:00-05:00" in shown
    )
    assert "  short  P  450  2027-04-16" in shown


def test_a_trading_class_is_stored_and_reloads(db_cli: Cli, run: StoreRun[Any]) -> None:
    """``--trading-class spxw`` (as IB writes it: SPXW) is kept with the position: shown, and
    read back as the position's class by a new store (the broker qualifies by it)."""
    assert db_cli(*ADD, "--credit", "1.10", "--trading-class", "spxw").out == "added X1\n"
    assert ", trading class SPXW" in db_cli("positions", "show", "X1").out

    async def load(store: SqlStore) -> Any:
        return await store.open_positions()

    [stored] = run(load)
    assert stored.position.trading_class == "SPXW"


@pytest.mark.parametrize(
    ("extra", "error"),
    [
        (("--credit", "6"), "entry_credit: 6 is not less than the spread's width 5"),
        (("--credit", "abc"), "entry_credit: "),
        (
            ("--credit", "1", "--leg", "P:440"),
            "--leg 3: 'P:440': expected RIGHT:STRIKE:EXPIRY:SIDE",
        ),
    ],
)
def test_a_bad_add_is_one_line_and_writes_nothing(
    db_cli: Cli, extra: tuple[str, ...], error: str
) -> None:
    run = db_cli(*ADD, *extra)
    assert (run.code, run.out) == (2, "")
    assert error in run.err
    assert run.err.count("\n") == 1
    assert db_cli("positions", "list").out == "no open positions\n"


def test_show_and_close_of_an_unknown_id(db_cli: Cli) -> None:
    for argv in (("positions", "show", "nope"), ("positions", "close", "nope")):
        run = db_cli(*argv)
        assert (run.code, run.err) == (2, "spreadwatch: position 'nope': no such position\n")


def test_what_the_commands_wrote_reloads_in_a_new_process(db_cli: Cli, run: StoreRun[Any]) -> None:
    """Restart-style: a fresh engine and event loop read back exactly what was imported."""
    assert db_cli("positions", "import", EXAMPLES / "positions.toml").code == 0

    async def load(store: SqlStore) -> Any:
        return await store.open_positions()

    stored = run(load)
    want = load_positions(EXAMPLES / "positions.toml", dict(DEFAULT_BOOKS))
    assert sorted((s.position for s in stored), key=lambda p: p.id) == sorted(
        want, key=lambda p: p.id
    )


def test_the_embedded_database_when_no_url_is_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli: Cli
) -> None:
    """No DATABASE_URL: spreadwatch starts its own PostgreSQL in its data directory, keeps the
    data there between commands, and stops the server after each."""
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("SPREADWATCH_DATABASE_URL", raising=False)
    monkeypatch.setenv("SPREADWATCH_DATA_DIR", str(tmp_path / "data"))
    assert cli("db", "upgrade").code == 0
    assert cli("positions", "import", EXAMPLES / "positions.toml").code == 0
    assert len(cli("positions", "list").out.splitlines()) == 2 + 7
    data = tmp_path / "data" / "postgres"
    assert (data / "PG_VERSION").exists()
    assert not (data / "postmaster.pid").exists()  # the server stopped with the command
