"""Replay's timestamps: most are compared as text (service.replay.stamps.Stamps), none wrongly.

A row in the same second as the row before, of the same shape and offset, is
taken by comparing its text; every other row is parsed. Whatever the mix of
shapes, offsets, fractions, bad and backward timestamps, the rows replay
skips must be exactly those a plain parse-and-compare of every row skips.
"""

from __future__ import annotations

import io
import tempfile
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

from hypothesis import example, given, settings
from hypothesis import strategies as st

from rules.books import DEFAULT_BOOKS
from rules.greeks import Rates
from service.inputs import load_positions
from service.replay import Replay, Summary
from service.replay.stamps import Stamps
from tests.factories import put_spread_toml as put_spread
from tests.factories import tick

START = datetime(2027, 3, 8, 15, 0, 0, tzinfo=UTC)
OFFSETS = [timedelta(hours=-5), timedelta(hours=-4), timedelta(0), timedelta(hours=5, minutes=30)]


def replay(tmp_path: Path, stamps: list[str], *, screen: bool = True) -> tuple[Summary, str]:
    """The stamps as rows of a put spread's two legs (quiet prices: no exit), replayed."""
    positions = tmp_path / "positions.toml"
    positions.write_text(put_spread())
    books = dict(DEFAULT_BOOKS)
    run = Replay(load_positions(positions, books), books, Rates(), screen=screen)
    rows = [
        tick(ts, 450 if n % 2 else 445, *(("1.30", "1.40") if n % 2 else ("0.50", "0.60")), "-0.2")
        for n, ts in enumerate(stamps)
    ]
    out, log = io.StringIO(), io.StringIO()
    summary = run.run([[row + "\n" for row in rows]], out, log)
    return summary, out.getvalue()


def skipped(stamps: list[str]) -> list[int]:
    """The line numbers a plain parse of every row, each against the last kept, skips."""
    last: datetime | None = None
    bad = []
    for line, text in enumerate(stamps, 2):
        try:
            ts = datetime.fromisoformat(text)
        except ValueError:
            bad.append(line)
            continue
        if ts.utcoffset() is None or (last is not None and ts < last):
            bad.append(line)
            continue
        last = ts
    return bad


@st.composite
def stamp(draw: st.DrawFn, instant: datetime, usual: tuple[timedelta, int]) -> str:
    """``instant`` written as the stream usually writes it (offset, fraction digits), now
    and then another way, or broken."""
    offset, digits = usual
    if draw(st.integers(0, 5)) == 0:
        offset = draw(st.sampled_from(OFFSETS))
        digits = draw(st.sampled_from([0, 1, 2, 3, 6, 9]))
    local = instant.astimezone(timezone(offset))
    nanos = draw(st.sampled_from(["000", "999", "123"]))  # (beyond what a parse keeps)
    fraction = (f"{local.microsecond:06d}" + nanos)[:digits]
    text = local.strftime("%Y-%m-%dT%H:%M:%S") + (f".{fraction}" if digits else "")
    zone = "Z" if offset == timedelta(0) and draw(st.booleans()) else local.strftime("%z")
    if zone != "Z":
        zone = f"{zone[:3]}:{zone[3:]}"
    text += zone
    flaw = draw(st.sampled_from([None] * 12 + ["space", "no seconds", "naive", "letter"]))
    if flaw == "space":
        text = text[:10] + " " + text[11:]
    elif flaw == "no seconds":
        text = text[:16] + text[len(text) - len(zone) :]
    elif flaw == "naive":
        text = text[: len(text) - len(zone)]
    elif flaw == "letter":
        at = draw(st.integers(0, len(text) - 1))
        text = text[:at] + "x" + text[at + 1 :]
    return text


@st.composite
def stamps(draw: st.DrawFn) -> list[str]:
    """A stream's timestamps: mostly forward by a few milliseconds, now and then the same
    instant, a step back (to an instant written before, or not), or a jump of seconds."""
    usual = (draw(st.sampled_from(OFFSETS)), draw(st.sampled_from([0, 3, 3, 6, 1, 9])))
    instant, out = START, []
    for _ in range(draw(st.integers(1, 40))):
        step = draw(st.sampled_from([1, 7, 250, 0, 999, 1000, 1001, 60_000, -1, -7, -3000]))
        instant += timedelta(milliseconds=step)
        out.append(draw(stamp(instant, usual)))
    return out


@settings(max_examples=300, deadline=None)
@given(stamps())
def test_the_rows_skipped_are_those_a_parse_of_every_row_skips(texts: list[str]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        summary, out = replay(Path(tmp), texts)
    want = skipped(texts)
    assert out == ""
    assert summary.bad_rows == len(want)
    assert [line for line, _ in summary.bad_lines] == want[:5]
    assert all(why.startswith("ts: ") for _, why in summary.bad_lines)
    assert summary.applied == len(texts) - len(want)


@settings(max_examples=300, deadline=None)
@given(stamps())
@example(  # New York's clocks go back: 01:30 comes twice, an hour apart, in two offsets
    [
        "2027-11-07T01:30:05.5-04:00",
        "2027-11-07T01:30:06.5-04:00",
        "2027-11-07T01:30:07.5-05:00",
        "2027-11-07T01:30:08.5-05:00",
    ]
)
def test_a_timestamp_taken_leaves_its_second_as_a_parse_floors_it(texts: list[str]) -> None:
    """The second a taken timestamp falls in (naive UTC: what the screens' deadlines are
    compared with) is the one a parse gives, however it was worked out: from its text and
    the minute before, or parsed."""
    stamps, last = Stamps(), ""
    for text in texts:
        try:
            taken = stamps.accept(text, last)
        except ValueError:
            continue
        if taken:
            instant = datetime.fromisoformat(text).astimezone(UTC)
            assert stamps.base == instant.replace(tzinfo=None, microsecond=0), text
            last = text


def test_a_row_at_the_deadline_is_evaluated_one_a_millisecond_before_is_screened(
    tmp_path: Path,
) -> None:
    """The time stop's day (21 DTE: 2027-03-26) begins at midnight New York: a screen admits
    the row at 23:59:59.999 and never the one at 00:00:00.000."""
    texts = [
        "2027-03-25T10:00:00.000-04:00",  # 445 (no screen before both legs quote)
        "2027-03-25T10:00:00.001-04:00",  # 450: evaluated, screened from now on
        "2027-03-25T23:59:59.999-04:00",  # 445, the same quote: screened
        "2027-03-26T00:00:00.000-04:00",  # 450: the stop's day has begun: evaluated
        "2027-03-26T10:00:00.000-04:00",  # 445: evaluated (or the position is closed)
    ]
    summary, out = replay(tmp_path, texts)
    every, want = replay(tmp_path, texts, screen=False)
    assert out == want
    assert '"reason": "time_stop"' in out
    assert summary.screened == 1
    assert every.screened == 0
