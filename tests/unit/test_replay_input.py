"""Bad input: one line naming file, record and field, exit 2, nothing on stdout.

Bad tick rows are different: skipped, counted, and reported in the summary.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from rules.books import DEFAULT_BOOKS
from service.inputs import load_books
from service.settings import load_settings
from tests.factories import put_spread_toml as put_spread
from tests.factories import tick
from tests.support import Run

TS = "2027-03-08T10:00:00-05:00"
OK_TICKS = [tick(TS, 450, "1.00", "1.10", "-0.20"), tick(TS, 445, "0.50", "0.60", "-0.15")]
Files = Callable[..., tuple[Path, Path]]


@pytest.mark.parametrize(
    ("record", "field", "says"),
    [
        (put_spread(book="NOPE"), "book", "unknown book 'NOPE' (known: INCOME_POP, PRIMARY)"),
        (put_spread(contracts=0), "contracts", "must be > 0"),
        (put_spread(credit="0"), "entry_credit", "must be > 0"),
        (put_spread(credit="-0.5"), "entry_credit", "must be > 0"),
        (put_spread(credit="5.00"), "entry_credit", "not less than the spread's width 5"),
        (
            put_spread().replace("strike = 450", "strike = 440"),
            "legs",
            "sells the higher strike",
        ),
        (
            put_spread().replace('right = "P", strike = 445', 'right = "C", strike = 445'),
            "legs",
            "needs two P legs",
        ),
        (
            put_spread().replace('445, expiry = "2027-04-16"', '445, expiry = "2027-05-21"'),
            "legs.expiry",
            "share one expiry",
        ),
        (put_spread(expiry="2027-02-19"), "legs.expiry", "is not after opened_at"),
        (put_spread(opened_at="2027-03-01T10:00:00"), "opened_at", "timezone"),
        (
            put_spread().replace('book = "PRIMARY"', 'book = "PRIMARY"\ncolour = "red"'),
            "colour",
            "Extra inputs are not permitted",
        ),
        (
            put_spread().replace('strategy = "put_credit"', 'strategy = "strangle"'),
            "strategy",
            "Input should be",
        ),
        (put_spread().replace("contracts = 10", "contracts = 2.5"), "contracts", "integer"),
    ],
)
def test_a_bad_position_is_one_line_exit_2_and_no_output(
    cli: Callable[..., Run], files: Files, record: str, field: str, says: str
) -> None:
    good = put_spread(id="GOOD")
    p, t = files(good + record.replace('id = "P1"', 'id = "BAD"'), OK_TICKS)
    run = cli("replay", "--positions", p, "--ticks", t)
    assert run.code == 2
    assert run.out == ""
    (line,) = run.err_lines
    assert line.startswith(f"spreadwatch: {p}: position 'BAD' (record 2): {field}: "), line
    assert says in line


def test_duplicate_ids_are_an_error(cli: Callable[..., Run], files: Files) -> None:
    p, t = files(put_spread() + put_spread(), OK_TICKS)
    run = cli("replay", "--positions", p, "--ticks", t)
    assert (run.code, run.out) == (2, "")
    assert run.err_lines == [f"spreadwatch: {p}: position 'P1' (record 2): id: duplicate id 'P1'"]


def test_unreadable_toml_names_the_file(cli: Callable[..., Run], files: Files) -> None:
    p, t = files("[[positions]\nid=", OK_TICKS)
    run = cli("replay", "--positions", p, "--ticks", t)
    assert run.code == 2
    assert run.err.startswith(f"spreadwatch: {p}: not valid TOML")


def test_a_positions_file_not_utf8_is_one_line_exit_2(
    cli: Callable[..., Run], files: Files
) -> None:
    p, t = files(put_spread(), OK_TICKS)
    p.write_bytes(p.read_bytes().replace(b'underlying = "SPY"', b'underlying = "SP\xc9"'))
    run = cli("replay", "--positions", p, "--ticks", t)
    assert (run.code, run.out) == (2, "")
    line = p.read_bytes()[: p.read_bytes().index(b"\xc9")].count(b"\n") + 1
    assert run.err_lines == [
        f"spreadwatch: {p}: not valid TOML: not UTF-8 text (byte 0xc9, line {line})"
    ]


def test_missing_ticks_file_is_exit_2(
    cli: Callable[..., Run], files: Files, tmp_path: Path
) -> None:
    p, _ = files(put_spread(), OK_TICKS)
    run = cli("replay", "--positions", p, "--ticks", tmp_path / "nope.csv")
    assert (run.code, run.out) == (2, "")
    assert "nope.csv: cannot read" in run.err


def test_wrong_ticks_header_is_exit_2(cli: Callable[..., Run], files: Files) -> None:
    p, t = files(put_spread(), OK_TICKS)
    t.write_text("time,symbol\n" + "\n".join(OK_TICKS))
    run = cli("replay", "--positions", p, "--ticks", t)
    assert (run.code, run.out) == (2, "")
    assert run.err_lines == [
        f"spreadwatch: {t}: line 1: header must be "
        "ts,underlying,expiry,right,strike,bid,ask,delta,underlying_price"
    ]


def test_bad_tick_rows_are_skipped_counted_and_listed(
    cli: Callable[..., Run], files: Files
) -> None:
    rows = [
        *OK_TICKS,  # lines 2, 3
        tick(TS, 440, "1.00", "1.10"),  # 4: a leg no position holds
        tick(TS, 450, "abc", "1.10"),  # 5: unparseable bid
        tick(TS, 450, "1.00", "1.10", delta="x"),  # 6: unparseable delta
        "2027-03-08T10:00:00-05:00,SPY,2027-04-16,P,450,1.00",  # 7: too few fields
        tick("2027-03-08T09:00:00-05:00", 450, "1.00", "1.10"),  # 8: time goes backwards
        tick("2027-03-08T10:01:00", 450, "1.00", "1.10"),  # 9: no UTC offset
        tick("2027-03-08T10:02:00-05:00", 450, "0.60", "0.70"),  # 10: fine again
    ]
    p, t = files(put_spread(), rows)
    run = cli("replay", "--positions", p, "--ticks", t)
    assert run.code == 0
    assert (
        "replay: 6 bad rows skipped (first: line 4: unknown leg SPY 2027-04-16 P 440; "
        "line 5: bid: not a number: 'abc'; line 6: delta: not a number: 'x'; "
        "line 7: 6 fields, expected 9; line 8: ts: goes backwards"
    ) in run.err
    assert "replay: 9 rows, 3 applied" in run.err


def test_invalid_quotes_are_not_bad_rows_and_not_acted_on(
    cli: Callable[..., Run], files: Files
) -> None:
    """NaN, -1 and crossed quotes parse fine; the rules refuse to act on them."""
    rows = [
        tick(TS, 450, "0.10", "0.12", "-0.05"),
        tick(TS, 445, "-1", "0.05", "-0.02"),  # IB's "no price": would be a 90% profit
        tick(TS, 445, "NaN", "0.05", "-0.02"),
        tick(TS, 445, "0.09", "0.01", "-0.02"),  # crossed
    ]
    p, t = files(put_spread(), rows)
    run = cli("replay", "--positions", p, "--ticks", t)
    assert run.code == 0
    assert run.exits == []
    assert "replay: 0 bad rows" in run.err


def test_time_stop_fires_when_the_date_reaches_it_without_a_price_change(
    cli: Callable[..., Run], files: Files
) -> None:
    """Opened 2027-03-01 with 46 DTE -> stop at 21 DTE = 2027-03-26; same quotes every day."""
    rows = []
    for day in ("2027-03-24", "2027-03-25", "2027-03-26"):
        ts = f"{day}T10:00:00-04:00"
        rows += [tick(ts, 450, "1.30", "1.40", "-0.20"), tick(ts, 445, "0.50", "0.60", "-0.15")]
    p, t = files(put_spread(), rows)  # credit 1.00, debit 0.80 every day: no profit target
    run = cli("replay", "--positions", p, "--ticks", t)
    assert [(e["reason"], e["label"], e["ts"]) for e in run.exits] == [
        ("time_stop", "Time Stop (21 DTE)", "2027-03-26T10:00:00-04:00")
    ]


def test_a_books_file_replaces_the_built_in_books(
    cli: Callable[..., Run], files: Files, tmp_path: Path
) -> None:
    books = tmp_path / "books.toml"
    books.write_text("[books.FAST]\ntargets = [0.25]\nfractions = [1]\nscale_min_contracts = 1\n")
    rows = [tick(TS, 450, "0.90", "0.94", "-0.20"), tick(TS, 445, "0.15", "0.19", "-0.15")]
    p, t = files(put_spread(book="FAST"), rows)
    run = cli("replay", "--positions", p, "--ticks", t, "--books", books)
    assert [(e["label"], e["contracts_closed"]) for e in run.exits] == [("Profit Target (25%)", 10)]
    primary = cli(
        "replay", "--positions", files(put_spread(), rows)[0], "--ticks", t, "--books", books
    )
    assert primary.code == 2
    assert "book: unknown book 'PRIMARY' (known: FAST)" in primary.err


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("[books.X]\nfractions = [0.5, 0.4, 0.2]\n", "book 'X': fractions: must sum to 1"),
        (
            "[books.X]\ntargets = [0.5, 0.5, 0.9]\n",
            "book 'X': targets: must be strictly increasing",
        ),
        ("[books.X]\ndelta_stop = 1.2\n", "book 'X': delta_stop: Input should be less than 1"),
        ("[books.X]\ntargets = [0.5, 0.75, 1.2]\n", "book 'X': targets.2: Input should be less"),
        ("[books.X]\nstop = 3\n", "book 'X': stop: Extra inputs are not permitted"),
        ("[book.X]\n", "book: unknown top-level key"),
    ],
)
def test_a_bad_books_file_names_file_book_and_field(
    cli: Callable[..., Run], files: Files, tmp_path: Path, text: str, says: str
) -> None:
    books = tmp_path / "books.toml"
    books.write_text(text)
    p, t = files(put_spread(), OK_TICKS)
    run = cli("replay", "--positions", p, "--ticks", t, "--books", books)
    assert (run.code, run.out) == (2, "")
    (line,) = run.err_lines
    assert line.startswith(f"spreadwatch: {books}: {says}"), line


def test_the_shipped_books_file_is_the_built_in_set(examples: Path) -> None:
    assert load_books(examples / "books.toml") == DEFAULT_BOOKS


def test_settings_come_from_env_and_config(
    cli: Callable[..., Run], files: Files, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "spreadwatch.toml"
    config.write_text("rate = 0.05\ndividend = 0.01\n")
    assert (load_settings(config).rate, load_settings(config).dividend) == (0.05, 0.01)
    monkeypatch.setenv("SPREADWATCH_RATE", "0.03")
    assert load_settings(config).rate == 0.03  # the environment beats the file
    assert load_settings(config, rate=0.02).rate == 0.02  # the command line beats both
    config.write_text("rate = 2\n")
    monkeypatch.delenv("SPREADWATCH_RATE")
    p, t = files(put_spread(), OK_TICKS)
    run = cli("--config", config, "replay", "--positions", p, "--ticks", t)
    assert (run.code, run.out) == (2, "")
    assert run.err_lines == [
        f"spreadwatch: {config}: rate: Input should be less than or equal to 0.5"
    ]


@pytest.mark.parametrize(
    ("spot", "why"),
    [
        (" ", "underlying_price: not a number: ' '"),  # blank, not empty: no number
        ("n/a", "underlying_price: not a number: 'n/a'"),
    ],
)
def test_an_underlying_price_that_is_no_number_is_a_bad_row(
    cli: Callable[..., Run], files: Files, spot: str, why: str
) -> None:
    """The last field is checked a number like the others (empty is fine: no spot)."""
    rows = [
        *OK_TICKS,
        tick(TS, 450, "1.00", "1.10", spot=spot),
        tick(TS, 450, "1.00", "1.10", spot=""),
    ]
    p, t = files(put_spread(), rows)
    run = cli("replay", "--positions", p, "--ticks", t)
    assert f"replay: 1 bad rows skipped (first: line 4: {why})" in run.err
