"""The command line's surface: help for every command and option, ``--version``, how to
choose IB, and the dates it accepts (an expiry as IB writes it, an opening day)."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from datetime import date, datetime
from importlib.metadata import version
from typing import Any

import pytest

import service.cli.help as cli_help
from rules.books import DEFAULT_BOOKS
from rules.clock import new_york
from service.cli.main import parser
from service.errors import InputError
from service.inputs import position_of


def parsers(
    p: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    yield path, p
    for action in p._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help for a in action._choices_actions}
            for name, sub in action.choices.items():
                assert helps.get(name), f"spreadwatch {' '.join((*path, name))}: no help"
                yield from parsers(sub, (*path, name))


def test_every_command_and_option_has_help() -> None:
    walked = list(parsers(parser()))
    assert {path for path, _ in walked} >= {("demo",), ("positions", "add"), ("run",)}
    for path, p in walked:
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                continue
            name = "/".join(action.option_strings) or action.dest
            assert action.help, f"spreadwatch {' '.join(path)} {name}: no help"
            assert action.help is not argparse.SUPPRESS


@pytest.mark.parametrize(
    "argv",
    [
        ["replay", "--positions", "p.toml", "--ticks", "t.csv", "--rate", "0.05"],
        ["replay", "--help"],
        ["replay", "--positions", "p.toml"],  # --ticks missing
        ["replay", "--positions", "p.toml", "--ticks", "t.csv", "--bogus"],
    ],
)
def test_replay_s_own_parser_reads_and_says_what_the_whole_one_does(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """A replay builds only its subcommand's parser (a start-up's cost): the same
    arguments, help and errors as the whole parser's (a usage line of the top level
    names the one command)."""
    said = []
    for p in (parser(), parser(replay_only=True)):
        try:
            outcome: object = vars(p.parse_args(argv))
        except SystemExit as ended:
            outcome = ended.code
        out, err = capsys.readouterr()
        said.append((outcome, out, err.splitlines()[-1:]))  # (the error: its last line)
    assert said[0] == said[1]
    (commands,) = [a for a in parser(replay_only=True)._actions if a.dest == "command"]
    assert set(commands.choices or ()) == {"replay"}


def test_version_comes_from_the_package_metadata(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        parser().parse_args(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out == f"spreadwatch {version('spreadwatch')}\n"


def test_run_help_says_how_to_choose_ib(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parser().parse_args(["run", "--help"])
    shown = " ".join(capsys.readouterr().out.split())
    assert "SPREADWATCH_BROKER=ib" in shown
    assert 'broker = "ib" in the --config file' in shown


RECORD: dict[str, Any] = {
    "id": "X1",
    "book": "PRIMARY",
    "underlying": "SPY",
    "strategy": "put_credit",
    "contracts": 2,
    "entry_credit": "1.10",
    "opened_at": "2026-12-04T10:00:00-05:00",
    "legs": [
        {"right": "P", "strike": "450", "expiry": "2027-04-16", "side": "short"},
        {"right": "P", "strike": "445", "expiry": "2027-04-16", "side": "long"},
    ],
}


def record(**changes: Any) -> Any:
    return position_of({**RECORD, **changes}, dict(DEFAULT_BOOKS), "position 'X1'")


def legs(expiry: Any) -> list[dict[str, Any]]:
    return [{**leg, "expiry": expiry} for leg in RECORD["legs"]]


@pytest.mark.parametrize("expiry", ["2027-04-16", "20270416", 20270416, date(2027, 4, 16)])
def test_an_expiry_as_iso_or_as_ib_writes_it(expiry: Any) -> None:
    assert {leg.expiry for leg in record(legs=legs(expiry)).legs} == {date(2027, 4, 16)}


@pytest.mark.parametrize("expiry", ["2027/04/16", "20270230", "Apr 16"])
def test_a_bad_expiry_is_said_in_our_words(expiry: str) -> None:
    with pytest.raises(InputError) as raised:
        record(legs=legs(expiry))
    assert str(raised.value) == (
        f"position 'X1': legs.0.expiry: {expiry!r}: not an expiry: give it as YYYY-MM-DD "
        "or YYYYMMDD (IB's form)"
    )


@pytest.mark.parametrize("opened", ["2026-12-04", date(2026, 12, 4)])
def test_an_opening_date_is_midnight_at_the_exchange(opened: Any) -> None:
    assert record(opened_at=opened).opened_at == datetime(2026, 12, 4, tzinfo=new_york())


@pytest.mark.parametrize(
    ("opened", "said"),
    [
        ("2026-12-04T10:00:00", "2026-12-04T10:00:00: no timezone; give a date"),
        ("yesterday", "'yesterday': not a time; give a date"),
        ("2026-13-04", "'2026-13-04': not a date; give a date"),
    ],
)
def test_a_bad_opening_time_is_said_in_our_words(opened: str, said: str) -> None:
    with pytest.raises(InputError) as raised:
        record(opened_at=opened)
    assert str(raised.value).startswith(f"position 'X1': opened_at: {said}")
    assert str(raised.value).endswith(
        "(2026-12-04: midnight in New York) or a time with its UTC offset "
        "(2026-12-04T10:00:00-05:00)"
    )


def test_no_a_before_a_vowel_in_what_is_said() -> None:
    with pytest.raises(InputError) as raised:
        record(strategy="iron_condor")
    assert "an iron_condor has 4 legs" in str(raised.value)


@pytest.mark.parametrize("columns", [None, "40", "132", "0", "wide"])
def test_help_is_as_wide_as_argparse_makes_it(
    monkeypatch: pytest.MonkeyPatch, columns: str | None
) -> None:
    """The parsers' formatter finds the terminal's width without shutil (a start-up's
    cost): every help reads as argparse's own formatter writes it, with $COLUMNS set,
    unset or unusable (stdout here is no terminal: 80)."""
    if columns is None:
        monkeypatch.delenv("COLUMNS", raising=False)
    else:
        monkeypatch.setenv("COLUMNS", columns)
    ours = [p.format_help() for _, p in parsers(parser())]
    monkeypatch.setattr(cli_help, "Formatter", argparse.HelpFormatter)
    assert ours == [p.format_help() for _, p in parsers(parser())]
    assert len(ours) > 10
