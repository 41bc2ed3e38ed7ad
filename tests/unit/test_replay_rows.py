"""How replay reads the ticks file: its rows a chunk at a time (service.replay.rows.batches_of),
as iterating the file gives them, and each row cut by the places of its commas (commas),
the fields exactly as ``split(",", 1)`` then ``rsplit(",", 4)`` would give them."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rules.books import DEFAULT_BOOKS
from rules.clock import MarketTime, market_time
from rules.greeks import Rates
from rules.machine import Close, ExitReason
from rules.model import Quote, Strategy
from service.replay import Replay
from service.replay.engine import exit_line, exit_record
from service.replay.rows import batches_of, commas
from tests.factories import put_spread, state_of
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


def end_less(rows: Iterable[str]) -> list[str]:
    """Rows without a final "\n" (the chunked reader's rows lack it where it cut at one)."""
    return [row.removesuffix("\n") for row in rows]


@settings(max_examples=500)
@given(st.text(alphabet="a,\r\n", max_size=40), st.integers(1, 9))
def test_rows_read_a_chunk_at_a_time_are_the_file_s_rows(
    tmp_path_factory: pytest.TempPathFactory, text: str, chunk: int
) -> None:
    """Whatever the line ends ("\n", "\r\n", a lone "\r") and wherever a chunk ends (in a
    row, between "\r" and "\n"), the rows are those iterating the file gives."""
    path = tmp_path_factory.mktemp("ticks") / "ticks.csv"
    path.write_bytes(text.encode())
    with path.open(newline="", encoding="utf-8") as f:
        expected = list(f)
    with path.open(newline="", encoding="utf-8") as f:
        rows = [row for batch in batches_of(f, chunk) for row in batch]
        assert end_less(rows) == end_less(expected)


def replayed(examples: Path, ticks: Path) -> tuple[str, list[str]]:
    """The exits and the log (but its timing line) of the sample positions over ``ticks``."""
    proc = subprocess.run(
        [sys.executable, "-m", "service.cli", "replay", "--positions",
         str(examples / "positions.toml"), "--ticks", str(ticks)],
        capture_output=True, text=True, cwd=ROOT, check=True,
    )  # fmt: skip
    return proc.stdout, [line for line in proc.stderr.splitlines() if " in " not in line]


def test_a_crlf_ticks_file_replays_as_its_lf_twin(examples: Path, tmp_path: Path) -> None:
    """The rows keep a "\r" where the file has one; the exits and the summary are the same."""
    crlf = tmp_path / "ticks.csv"
    crlf.write_bytes((examples / "ticks.csv").read_bytes().replace(b"\n", b"\r\n"))
    runs = [replayed(examples, ticks) for ticks in (examples / "ticks.csv", crlf)]
    assert runs[0] == runs[1]
    assert runs[0][0].count("\n") == 10  # (the sample's exits)


def test_a_ticks_file_with_every_field_quoted_replays_as_its_plain_twin(
    examples: Path, tmp_path: Path
) -> None:
    """csv's quoting (rows with a quoted field are read by csv, found once a chunk): the
    same exits and summary; a row quoted in a chunk of plain ones is read alike."""
    plain = (examples / "ticks.csv").read_text().splitlines()
    quoted = tmp_path / "ticks.csv"
    with quoted.open("w", newline="") as f:
        writer = csv.writer(f, quoting=csv.QUOTE_ALL)
        for n, line in enumerate(plain):  # (every third row quoted, the header too)
            if n % 3:
                f.write(line + "\n")
            else:
                writer.writerow(line.split(","))
    runs = [replayed(examples, ticks) for ticks in (examples / "ticks.csv", quoted)]
    assert '"' in quoted.read_text()
    assert runs[0] == runs[1]
    assert runs[0][0].count("\n") == 10


def test_a_kept_line_reads_as_the_quote_and_market_time_the_rules_take() -> None:
    """Replay builds its Quotes and MarketTimes as the tuples they are (their NamedTuple
    constructors are interpreted): each as the type, its fields in their places."""
    replay = Replay([], DEFAULT_BOOKS, Rates())
    ts = datetime(2027, 3, 1, 15, 0, 1, 250_000, tzinfo=UTC)
    quote = replay._quote_at(f"{ts.isoformat()},SPY,2027-04-16,P,450,1.20,1.25,-0.21,461.5\n", ts)
    assert type(quote) is Quote
    assert quote == Quote(Decimal("1.20"), Decimal("1.25"), ts, -0.21, 461.5)
    assert (quote.bid, quote.delta, quote.underlying_price) == (Decimal("1.20"), -0.21, 461.5)
    empty = replay._quote_at(f"{ts.isoformat()},SPY,2027-04-16,P,450,1.20,1.25,,\n", ts)
    assert (empty.delta, empty.underlying_price) == (None, None)
    at = replay._market_time(ts)
    assert type(at) is MarketTime
    assert at == market_time(ts)  # 10:00:01 New York: regular hours, opened at 9:30
    assert (at.session_date, at.regular_hours) == (date(2027, 3, 1), True)


_TEXTS = st.text(st.characters(codec=None, categories=None), max_size=12)  # any code point
_DECIMALS = st.decimals(allow_nan=True, allow_infinity=True, places=None).filter(
    lambda d: not d.is_finite() or abs(d.adjusted()) < 20  # (within quantize's 28 digits)
)


@settings(max_examples=300)
@given(
    ts=_TEXTS,
    pid=_TEXTS.filter(bool),
    book=_TEXTS,
    underlying=_TEXTS,
    strategy=st.sampled_from(Strategy),
    reason=st.sampled_from(ExitReason),
    label=_TEXTS,
    target=st.none() | _DECIMALS,
    triggers=st.lists(st.sampled_from(ExitReason), max_size=4),
    counts=st.tuples(*[st.integers(min_value=0, max_value=10**6)] * 3),
    money=st.tuples(
        _DECIMALS, _DECIMALS.filter(Decimal.is_finite), _DECIMALS.filter(Decimal.is_finite)
    ),
)
def test_an_exit_line_is_its_record_as_json_dumps_writes_it(
    ts: str,
    pid: str,
    book: str,
    underlying: str,
    strategy: Strategy,
    reason: ExitReason,
    label: str,
    target: Decimal | None,
    triggers: list[ExitReason],
    counts: tuple[int, int, int],
    money: tuple[Decimal, Decimal, Decimal],
) -> None:
    """The exit's line is written out, not encoded (a replay's cost): the same text as
    ``json.dumps`` of :func:`exit_record`, for any texts the user's files and the ticks
    could hold (quotes, backslashes, control and non-ASCII characters, lone surrogates)."""
    position = replace(put_spread(underlying=underlying, book=book), id=pid, strategy=strategy)
    state = replace(state_of(position), remaining=counts[0])
    debit, pnl, pct = money
    close = Close(counts[1], reason, label, target, None, debit, pnl, pct, tuple(triggers))
    assert exit_line(ts, state, close) == json.dumps(exit_record(ts, state, close)) + "\n"
