"""Replay of the shipped sample: every exit type, as examples/make_examples.py scripts it."""

from __future__ import annotations

import csv
import re
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest

from tests.support import ROOT, Run

LINE = re.compile(
    r"^CLOSING: \w+ (put_credit|call_credit|iron_condor) - (.+) - P&L: -?\$[\d,]+\.\d\d "
    r"\(-?\d+% of max\) - Closed \d+/\d+ contracts$"
)


@pytest.fixture
def sample(cli: Callable[..., Run], examples: Path) -> Run:
    run = cli(
        "replay",
        "--positions",
        examples / "positions.toml",
        "--ticks",
        examples / "ticks.csv",
    )
    assert run.code == 0, run.err
    return run


def by_position(run: Run) -> dict[str, list[tuple[str, str, int]]]:
    out: dict[str, list[tuple[str, str, int]]] = {}
    for e in run.exits:
        out.setdefault(str(e["position"]), []).append(
            (str(e["reason"]), str(e["label"]), int(str(e["contracts_closed"])))
        )
    return out


def test_every_exit_type_happens(sample: Run) -> None:
    assert {e["reason"] for e in sample.exits} == {
        "profit_target",
        "time_stop",
        "loss_stop",
        "delta_stop",
    }


def test_each_scenario_exits_as_scripted(sample: Run) -> None:
    """The scenarios of examples/make_examples.py, exit by exit (the spec's tranche table)."""
    assert by_position(sample) == {
        "SPY-P-10": [
            ("profit_target", "Profit Target (50%)", 4),
            ("profit_target", "Profit Target (75%)", 4),
            ("profit_target", "Profit Target (90%+)", 2),
        ],
        "QQQ-C-2": [("profit_target", "Profit Target (50%)", 2)],
        # the gap over 50% and 75% closes both tranches (6 -> 3/2/1) in one order
        "TSLA-C-6": [
            ("profit_target", "Profit Target (75%)", 5),
            ("profit_target", "Profit Target (90%+)", 1),
        ],
        "IWM-P-5": [
            ("profit_target", "Profit Target (50%)", 2),
            ("loss_stop", "Loss Stop (150% of credit)", 3),
        ],
        "AAPL-IC-4": [("delta_stop", "Delta Stop (0.30)", 4)],
        # INCOME_POP, 28 DTE at entry: min(14, floor(28 * 0.5)) = 14
        "XLF-P-3": [("time_stop", "Time Stop (14 DTE)", 3)],
    }


def test_time_stop_fires_on_the_day_dte_reaches_it(sample: Run) -> None:
    (xlf,) = [e for e in sample.exits if e["position"] == "XLF-P-3"]
    assert str(xlf["ts"]).startswith("2026-12-04T09:45")  # 2026-12-18 expiry - 14 days


def test_the_condors_delta_stop_is_computed_locally(sample: Run, examples: Path) -> None:
    """The sample's AAPL call legs carry no delta: the stop can only come from vollib."""
    with (examples / "ticks.csv").open() as f:
        aapl_calls = [
            r for r in csv.DictReader(f) if r["underlying"] == "AAPL" and r["right"] == "C"
        ]
    assert aapl_calls
    assert all(r["delta"] == "" for r in aapl_calls)
    assert [e["reason"] for e in sample.exits if e["position"] == "AAPL-IC-4"] == ["delta_stop"]


def test_crossed_quote_is_not_acted_on(sample: Run) -> None:
    """A crossed SPY quote at 14:30:00.5 would read as a 90%+ profit; nothing happens then."""
    assert not [e for e in sample.exits if str(e["ts"]).startswith("2026-12-01T14:30:00.5")]


def test_figures_follow_from_the_debit(sample: Run, examples: Path) -> None:
    """pnl = (credit - debit) x 100 x closed; pct = (credit - debit) / credit; counts add up."""
    credits = dict(
        re.findall(
            r'id = "([^"]+)"[^\[]*?entry_credit = ([\d.]+)',
            (examples / "positions.toml").read_text(),
            re.S,
        )
    )
    remaining: dict[str, int] = {}
    for e in sample.exits:
        pid = str(e["position"])
        credit, debit = Decimal(credits[pid]), Decimal(str(e["debit"]))
        closed = int(str(e["contracts_closed"]))
        assert Decimal(str(e["pnl"])) == ((credit - debit) * 100 * closed).quantize(Decimal("0.01"))
        assert Decimal(str(e["pct_of_max"])) == ((credit - debit) / credit).quantize(
            Decimal("0.0001")
        )
        left = remaining.get(pid, int(str(e["contracts_original"]))) - closed
        assert e["contracts_remaining"] == left
        remaining[pid] = left


def test_human_lines_and_summary_on_stderr(sample: Run) -> None:
    closing = [line for line in sample.err_lines if line.startswith("CLOSING:")]
    assert len(closing) == len(sample.exits)
    assert all(LINE.match(line) for line in closing), closing
    assert "replay: 2 bad rows skipped (first: line 36: unknown leg" in sample.err
    assert "line 71: bid: not a number: 'n/a'" in sample.err
    assert "replay: positions: 6 closed, 1 still open" in sample.err


def test_replay_is_deterministic(cli: Callable[..., Run], examples: Path, sample: Run) -> None:
    again = cli(
        "replay", "--positions", examples / "positions.toml", "--ticks", examples / "ticks.csv"
    )
    assert again.out == sample.out


def test_the_readme_shows_what_replay_prints(sample: Run) -> None:
    """The README's sample output is the real one (all but the timing figures)."""
    readme = (ROOT / "README.md").read_text()
    shown = [line for line in readme.splitlines() if line.startswith(("CLOSING:", "replay: "))]
    printed = [line for line in sample.err_lines if line.startswith(("CLOSING:", "replay: "))]
    untimed = re.compile(r" in [\d.]+s \([\d,]+ rows/s\)")
    assert [untimed.sub("", line) for line in shown] == [untimed.sub("", line) for line in printed]
    (tsla,) = [line for line in readme.splitlines() if line.startswith('{"ts"')]
    assert tsla in sample.out.splitlines()
