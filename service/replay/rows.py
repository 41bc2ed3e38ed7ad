"""Replay's input: the ticks file's rows and their fields, read cheaply.

Prices, deltas and spots repeat, so their texts are parsed once (memos); a
timestamp is compared as text where that is exact (service.replay.stamps), and its
instant worked out only when a position is judged on the row. The exchange
time of an instant is recomputed only when it leaves its session segment
(:class:`SessionClock`). Bad rows are explained only when they are met.

Compiled by mypyc with :mod:`service.replay.engine` where it can be (setup.py).
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Final, TextIO

from rules.clock import CLOSE, OPEN, new_york
from rules.model import Right
from rules.watch import units
from service.errors import InputError

HEADER = [
    "ts",
    "underlying",
    "expiry",
    "right",
    "strike",
    "bid",
    "ask",
    "delta",
    "underlying_price",
]
BAD_LINES_SHOWN: Final = 5

LegKey = tuple[str, date, Right, Decimal]


@dataclass
class Summary:
    rows: int = 0
    applied: int = 0
    idle: int = 0  # rows for legs whose positions had all closed: read, not parsed
    screened: int = 0  # applied rows every holder's screen admitted: kept, not evaluated
    evaluations: int = 0
    bad_rows: int = 0
    bad_lines: list[tuple[int, str]] = field(default_factory=list)
    exits: Counter[str] = field(default_factory=Counter)
    pnl: Decimal = Decimal(0)
    seconds: float = 0.0

    def bad(self, line: int, why: str) -> None:
        self.bad_rows += 1
        if len(self.bad_lines) < BAD_LINES_SHOWN:
            self.bad_lines.append((line, why))


EMPTY: Final = ("", "\n", "\r\n")  # an empty field; the last one keeps the line end
EMPTIES: Final = frozenset(EMPTY)
MEMO_LIMIT: Final = 100_000  # per field; bounds memory at ~15 MB each
_MISSING: Final = object()  # (no memo holds it)
CHUNK: Final = 1 << 18  # characters of the ticks file read at a time (~3,300 rows)


def parse_price(text: str) -> tuple[Decimal, int | None]:
    """A price as replay keeps it: the Decimal, and its units for the screens."""
    price = Decimal(text)
    return price, units(price)


def parse_units(text: str) -> int | None:
    """A price's screen units (None: not exact); ValueError-kin if it is no number."""
    return units(Decimal(text))


def memo(cache: dict[str, Any], parse: Callable[[str], Any], text: str) -> Any:
    """Parse ``text`` once: prices and deltas repeat, and parsing is the hot path's cost."""
    value = cache.get(text, _MISSING)  # (one lookup; a miss raises nothing: compiled, a
    if value is not _MISSING:  # caught KeyError is ~4,500 instructions, and deltas miss often)
        return value
    value = parse(text)
    if len(cache) >= MEMO_LIMIT:
        empty = cache[""]  # what an empty field stands for
        cache.clear()
        cache.update(dict.fromkeys(EMPTY, empty))
    cache[text] = value
    return value


def batches_of(f: TextIO, chunk: int = CHUNK) -> Iterator[list[str]]:
    """The rows of ``f`` (opened with ``newline=""``) as iterating it gives them, a list
    of them at a time: read ``chunk`` characters at a time and cut in one call each.
    About as many instructions as the file's own reader, but replay's whole run takes
    ~8% less CPU (measured side by side, a million rows), and its loop walks each list
    by index. A chunk without "\\r" is cut at its "\\n" (its lines lose their end: the
    loop reads a row with or without it alike); one with a "\\r" anywhere, as ``f``
    would cut it ("\\r\\n", "\\r" or "\\n"). A line that may go on in the next chunk waits
    for it. A row with a quoted field is given as csv reads it, its fields joined by
    commas (no field holds one), without its end (looked for once a chunk, not a row)."""
    carry = ""
    while read := f.read(chunk):
        text = carry + read
        if "\r" in text:  # (rare: the reader's own rules, a "\r" at the end held back)
            rows = io.StringIO(text, newline="").readlines()
            carry = rows.pop()
            if carry.endswith("\n"):
                rows.append(carry)
                carry = ""
        else:
            rows = text.split("\n")
            carry = rows.pop()
        if '"' in text:  # (rare: a quoted field)
            rows = [_unquoted(row) for row in rows]
        yield rows
    if carry:
        yield [_unquoted(carry)]


def _unquoted(row: str) -> str:
    """``row`` as the loop reads it: its fields as csv reads them where one is quoted."""
    return ",".join(row_of(row)) if '"' in row else row


def field_count(text: str) -> str:
    """Why a row of other than nine fields is bad."""
    return f"{text.count(',') + 1} fields, expected 9"


def commas(text: str) -> tuple[int, int, int, int, int]:
    """Where a row's fields are cut, without cutting them: its first comma (after ts) and
    its last four (before bid, ask, delta and spot); bid's is -1 when the row has fewer
    than nine fields. What lies between the first and bid's is the leg's key (four
    fields, or more in a malformed row), as ``split(",", 1)`` then ``rsplit(",", 4)``
    would cut it."""
    first = text.find(",")
    spot = text.rfind(",", first + 1) if first >= 0 else -1
    delta = text.rfind(",", first + 1, spot) if spot >= 0 else -1
    ask = text.rfind(",", first + 1, delta) if delta >= 0 else -1
    bid = text.rfind(",", first + 1, ask) if ask >= 0 else -1
    return first, bid, ask, delta, spot


def figures(
    text: str, cut_at: tuple[int, int, int, int, int], memos: dict[str, Any]
) -> tuple[int | None, int | None, float | None, float | None]:
    """A row's bid and ask in screen units (``memos``: their memo), its delta and its
    underlying price (for local Greeks' bands; None: empty), the row cut where
    :func:`commas` found its fields; ValueError-kin if a figure is no number."""
    _, bid, ask, delta, spot = cut_at
    bid_t, ask_t = text[bid + 1 : ask], text[ask + 1 : delta]
    bid_units, ask_units = memos.get(bid_t, _MISSING), memos.get(ask_t, _MISSING)
    if bid_units is _MISSING or ask_units is _MISSING:  # (rare: memo's lookups once more)
        bid_units, ask_units = memo(memos, parse_units, bid_t), memo(memos, parse_units, ask_t)
    spot_t = text[spot + 1 :]  # (the last field keeps the line's end)
    price = float(spot_t) if len(spot_t) > 2 or spot_t not in EMPTIES else None
    delta_f = float(text[delta + 1 : spot]) if spot > delta + 1 else None
    return bid_units, ask_units, delta_f, price


def row_of(text: str) -> list[str]:
    """A row's fields, without the line end (for messages about bad rows)."""
    return next(csv.reader([text.rstrip("\r\n")]))


class SessionClock:
    """Exchange time of a timestamp, recomputed only when it leaves the current segment.

    A segment is a stretch of one New York day with the same facts: before the
    open, regular hours, after the close (weekends: the whole day). Its bounds
    are kept in UTC, which compares fast with any fixed-offset timestamp.
    """

    def __init__(self) -> None:
        self.lo = self.hi = datetime.min.replace(tzinfo=UTC)
        self.facts: tuple[date, bool, datetime | None] = (date.min, False, None)

    def enter(self, now: datetime) -> None:
        """Move to the segment that holds ``now``."""
        tz = new_york()
        day = now.astimezone(tz).date()
        start = datetime.combine(day, time.min, tz)
        end = datetime.combine(day + timedelta(days=1), time.min, tz)
        opens = datetime.combine(day, OPEN, tz)
        closes = datetime.combine(day, CLOSE, tz)
        facts: tuple[date, bool, datetime | None]
        if day.weekday() >= 5:
            lo, hi, facts = start, end, (day, False, None)
        elif now < opens:
            lo, hi, facts = start, opens, (day, False, None)
        elif now < closes:
            lo, hi, facts = opens, closes, (day, True, opens.astimezone(UTC))
        else:
            lo, hi, facts = closes, end, (day, False, None)
        self.lo, self.hi = lo.astimezone(UTC), hi.astimezone(UTC)
        self.facts = facts


def leg_key_of(underlying: str, expiry: date, right: Right, strike: Decimal) -> LegKey:
    return (underlying, expiry, right, strike.normalize())


def unparseable(row: list[str], last_ts: datetime) -> str:
    """Which field of a rejected row is wrong (worked out only for bad rows)."""
    for name, text, parse in (
        ("bid", row[5], Decimal),
        ("ask", row[6], Decimal),
        ("delta", row[7], float),
        ("underlying_price", row[8], float),
    ):
        try:
            if text:
                parse(text)
        except (ValueError, InvalidOperation):
            return f"{name}: not a number: {text!r}"
    try:
        ts = datetime.fromisoformat(row[0])
    except ValueError:
        return f"ts: not an ISO-8601 timestamp: {row[0]!r}"
    if ts.tzinfo is None:
        return f"ts: no UTC offset: {row[0]!r}"
    return f"ts: goes backwards (after {last_ts.replace(tzinfo=UTC).isoformat()})"


def read_ticks(path: Path) -> TextIO:
    """Open TICKS.csv positioned after its checked header; the caller closes it."""
    try:
        f = path.open(newline="", encoding="utf-8")
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror}") from exc
    header = next(csv.reader([f.readline()]), None)
    if header is None or [h.strip() for h in header] != HEADER:
        f.close()
        raise InputError(f"{path}: line 1: header must be {','.join(HEADER)}")
    return f
