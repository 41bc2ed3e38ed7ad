"""How replay cuts a row (service.replay.rows.commas): by the places of its commas, the
fields exactly as ``split(",", 1)`` then ``rsplit(",", 4)`` would give them; a file of
"\r\n" line ends replays as its "\n" twin."""

from __future__ import annotations

import subprocess
import sys
from decimal import InvalidOperation
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from service.replay.rows import EMPTY, Memos, commas, figures, parse_units
from tests.support import ROOT


def split_then_rsplit(text: str) -> list[str] | None:
    """ts, key, bid, ask, delta and spot as the loop cut them before (None: too few)."""
    parts = text.split(",", 1)
    if len(parts) != 2:
        return None
    rest = parts[1].rsplit(",", 4)
    return None if len(rest) != 5 else [parts[0], *rest]


@settings(max_examples=500)
@given(st.text(alphabet=",a1.\n", max_size=24))
def test_a_row_is_cut_where_split_then_rsplit_cut_it(text: str) -> None:
    first, bid, ask, delta, spot = commas(text)
    expected = split_then_rsplit(text)
    if expected is None:
        assert bid < 0
        return
    cut = [
        text[:first],
        text[first + 1 : bid],
        text[bid + 1 : ask],
        text[ask + 1 : delta],
        text[delta + 1 : spot],
        text[spot + 1 :],
    ]
    assert cut == expected


def test_a_benchmark_row_is_cut_into_its_fields() -> None:
    row = "2027-03-01T09:30:00.021879-05:00,TXN,2027-04-23,P,102.5,1.34,1.45,-0.2333,108.39\n"
    first, bid, ask, delta, spot = commas(row)
    assert row[first + 1 : bid] == "TXN,2027-04-23,P,102.5"
    assert (row[bid + 1 : ask], row[ask + 1 : delta], row[delta + 1 : spot]) == (
        "1.34",
        "1.45",
        "-0.2333",
    )
    assert row[spot + 1 :] == "108.39\n"


def test_a_crlf_ticks_file_replays_as_its_lf_twin(examples: Path, tmp_path: Path) -> None:
    """The rows keep a "\r" where the file has one; the exits and the summary are the same."""
    crlf = tmp_path / "ticks.csv"
    crlf.write_bytes((examples / "ticks.csv").read_bytes().replace(b"\n", b"\r\n"))
    runs = []
    for ticks in (examples / "ticks.csv", crlf):
        proc = subprocess.run(
            [sys.executable, "-m", "service.cli", "replay", "--positions",
             str(examples / "positions.toml"), "--ticks", str(ticks)],
            capture_output=True, text=True, cwd=ROOT, check=True,
        )  # fmt: skip
        runs.append(
            (proc.stdout, [line for line in proc.stderr.splitlines() if " in " not in line])
        )
    assert runs[0] == runs[1]
    assert runs[0][0].count("\n") == 10  # (the sample's exits)


FIELD = st.sampled_from(["", "1.34", "1.340", "0.5", "-0.2", "1e-2", "nan", "x", " 2", "0.00001"])
HEAD = "2027-03-08T10:00:00-05:00,SPY,2027-04-16,P,450"


def parsed(bid: str, ask: str, delta: str, spot: str) -> tuple[Any, ...] | None:
    """What cutting each field and parsing it gives (None: the row is bad)."""
    try:
        units = tuple(None if not t else parse_units(t) for t in (bid, ask))
        if spot.rstrip("\n"):
            float(spot)
        return (*units, float(delta) if delta else None)
    except (ValueError, InvalidOperation):
        return None


@settings(max_examples=300)
@given(st.lists(st.tuples(FIELD, FIELD, FIELD, FIELD), min_size=1, max_size=12))
def test_figures_looked_up_in_their_memos_are_those_a_parse_gives(
    rows: list[tuple[str, str, str, str]],
) -> None:
    """Pairs of bid and ask, deltas and prices met again are taken from the memos; whatever
    the order, each row's figures (or its refusal) are those of parsing its fields."""
    memos: Memos = tuple(dict.fromkeys(EMPTY, v) for v in ((None, None), None, None, None))  # type: ignore[assignment]
    for bid, ask, delta, spot in rows:
        text = f"{HEAD},{bid},{ask},{delta},{spot}\n"
        try:
            got: tuple[Any, ...] | None = figures(text, commas(text), memos)
        except (ValueError, InvalidOperation):
            got = None
        expected = parsed(bid, ask, delta, spot + "\n")
        assert repr(got) == repr(expected), text
