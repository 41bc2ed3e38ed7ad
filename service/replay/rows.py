"""Replay's input: the ticks file's rows, their fields and timestamps, read cheaply.

Prices, deltas and spots repeat, so their texts are parsed once (memos); a
timestamp is compared as text where that is exact (:class:`Stamps`), and its
instant worked out only when a position is judged on the row. The exchange
time of an instant is recomputed only when it leaves its session segment
(:class:`SessionClock`). Bad rows are explained only when they are met.

Compiled by mypyc with :mod:`service.replay.engine` where it can be (setup.py).
"""

from __future__ import annotations

import csv
import io
import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from functools import lru_cache
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
CHUNK: Final = 1 << 18  # characters of the ticks file read at a time (~3,300 rows)


def _naive_utc(text: str, offsets: dict[str, timedelta]) -> datetime:
    """An ISO-8601 timestamp with offset as naive UTC, learning "+hh:mm" offsets."""
    ts = datetime.fromisoformat(text)
    offset = ts.utcoffset()
    if offset is None:
        raise ValueError(text)
    suffix = text[-6:]
    if suffix[0] in "+-" and suffix[3] == ":" and len(offsets) < 64:
        offsets[suffix] = offset
    return ts.replace(tzinfo=None) - offset


def parse_price(text: str) -> tuple[Decimal, int | None]:
    """A price as replay keeps it: the Decimal, and its units for the screens."""
    price = Decimal(text)
    return price, units(price)


def parse_units(text: str) -> int | None:
    """A price's screen units (None: not exact); ValueError-kin if it is no number."""
    return units(Decimal(text))


def memo(cache: dict[str, Any], parse: Callable[[str], Any], text: str) -> Any:
    """Parse ``text`` once: prices and deltas repeat, and parsing is the hot path's cost."""
    try:
        return cache[text]  # (one lookup: a miss is rare)
    except KeyError:
        pass
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
    for it."""
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
        yield rows
    if carry:
        yield [carry]


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
    try:
        bid_units, ask_units = memos[bid_t], memos[ask_t]
    except KeyError:
        bid_units = memo(memos, parse_units, bid_t)
        ask_units = memo(memos, parse_units, ask_t)
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


@lru_cache(maxsize=4096)  # (deadlines repeat, a session day's start: each worked out once)
def naive_utc_of(instant: datetime) -> datetime:
    """A gate's deadline (aware UTC) as the loop compares it: naive UTC, floored to the
    second. The loop compares the second a row falls in (:class:`Stamps`): a row whose
    second starts before the floored deadline ends before the deadline itself."""
    return instant.replace(tzinfo=None, microsecond=0)


# A timestamp the fast path can take by its text: "YYYY-MM-DDTHH:MM:SS" then this tail
_TAIL: Final = re.compile(r"(?:\.[0-9]{1,9})?(?:[+-][0-9][0-9]:[0-9][0-9]|Z)")
_NO_PREFIX: Final = "\0"  # the prefix while the last timestamp was not canonical: none starts so
KEPT_DIGITS: Final = 6  # fraction digits a parse keeps (datetime: microseconds; more are cut)
_SECONDS: Final = tuple(timedelta(seconds=n) for n in range(60))


def _canonical(text: str) -> bool:
    """``text`` starts "YYYY-MM-DDTHH:MM:SS" (its separators; the digits are parsed)."""
    return text[4] == text[7] == "-" and text[10] == "T" and text[13] == text[16] == ":"


def shaped(text: str, width: int, zone: str, end: int) -> bool:
    """``text`` has the last canonical timestamp's shape: its length, its zone, and (where
    it has one, up to ``end``) a fraction of ASCII digits. Two such texts of one second
    order as their instants do, digit by digit. (Its date and time, and its zone, were
    parsed once: ASCII; the fraction's digits are looked at one by one, no copy.)"""
    if len(text) != width or not text.endswith(zone):
        return False
    if end == 19:
        return True
    return text[19] == "." and all(48 <= ord(text[k]) <= 57 for k in range(20, end))


class Stamps:
    """The rows' timestamps: parsed where it matters, compared as text where that is exact.

    Most rows fall in the same second as the row before, or the next one, and have
    its shape: ``YYYY-MM-DDTHH:MM:SS``, a fraction of as many digits, the same offset
    (``.021-05:00``, ``.123456789Z``). The loop keeps the accepted second's text
    (``prefix``), that second as naive UTC (``base``, what gates compare) and the
    shape (``width``, ``zone``, the fraction's ``end``). A row of that shape whose text,
    to the digits a parse keeps (``cut``: microseconds), is not below the last accepted
    one's is a valid timestamp not before it: fields of one width and one offset order
    as their text does. Its cost does not depend on having seen its fraction before
    (any digits, any width). Any other row is parsed here (:meth:`accept`); the exact
    instant of a row is worked out only when it is judged.
    """

    __slots__ = (
        "base",
        "cut",
        "end",
        "last",
        "minute",
        "minute_base",
        "now",
        "now_text",
        "offset",
        "offsets",
        "prefix",
        "width",
        "zone",
    )

    def __init__(self) -> None:
        self.last = ""  # the last accepted timestamp, as its row wrote it (kept by the loop
        # between runs; in the loop, its local copy is the one that moves)
        self.now = datetime.min  # noqa: DTZ901  (naive UTC of now_text)
        self.now_text = ""
        self.base = datetime.min  # noqa: DTZ901  (last's second, naive UTC)
        self.prefix = _NO_PREFIX  # last's "YYYY-MM-DDTHH:MM:SS" when canonical
        self.width = 0  # the shape of the last canonical timestamp: its length,
        self.zone = "\0"  # its zone ("Z" or "+hh:mm"),
        self.end = 19  # where its fraction ends (19: none),
        self.cut = 19  # and where the digits a parse keeps end
        self.offset = timedelta(0)  # its zone's value
        self.offsets: dict[str, timedelta] = {}  # "+hh:mm" -> its value
        self.minute = _NO_PREFIX  # "YYYY-MM-DDTHH:MM:" of the last new second taken as text,
        self.minute_base = datetime.min  # noqa: DTZ901  (and that minute's start, naive UTC)

    def instant(self, text: str) -> datetime:
        """``text`` as naive UTC; ValueError if it is no timestamp with an offset."""
        offset = self.offsets.get(text[-6:])
        if offset is not None:  # a "+hh:mm" seen before: the wall clock less it (faster)
            try:
                local = datetime.fromisoformat(text[:-6])
            except ValueError:  # (CPython reads some texts only with their offset:
                local = None  # "...00.002000x00-05:00" is 10:00:00.002 there; a full parse)
            if local is not None and local.tzinfo is None:
                return local - offset
        return _naive_utc(text, self.offsets)

    def _second(self, text: str) -> datetime:
        """The second of ``text`` (canonical, of the last one's shape) as naive UTC: in the
        minute of the last one worked out here, that minute's start and the two digits;
        else parsed (ValueError if it is no time), and its minute kept."""
        tens, ones = ord(text[17]) - 48, ord(text[18]) - 48
        if 0 <= tens <= 5 and 0 <= ones <= 9 and text.startswith(self.minute):
            return self.minute_base + _SECONDS[tens * 10 + ones]
        base = datetime.fromisoformat(text[:19]) - self.offset
        self.minute, self.minute_base = text[:17], base.replace(second=0)
        return base

    def last_instant(self, last: str) -> datetime:
        """The last accepted timestamp, ``last`` (the loop keeps it), as naive UTC; parsed
        again only if it moved."""
        if self.now_text != last:
            self.now, self.now_text = self.instant(last), last
        return self.now

    def accept(self, text: str, last: str) -> bool:
        """Take ``text`` as the timestamp after ``last``: False if it goes backwards;
        ValueError if it is no timestamp with an offset."""
        if (
            self.prefix is not _NO_PREFIX
            and shaped(text, self.width, self.zone, self.end)
            and _canonical(text)
        ):  # a new second, canonical, of the last one's shape: compared as text
            # (to the kept digits: the whole texts where those are all of them, as their zones,
            # the same, compare alike: no copies)
            if text < last if self.cut == self.end else text[: self.cut] < last[: self.cut]:
                return False  # (or no time at all: a bad row either way)
            self.base = self._second(text)
            self.prefix = text[:19]
            return True
        self.minute = _NO_PREFIX  # (the shape may change: the next new second is parsed)
        ts = self.instant(text)
        if ts < self.last_instant(last):
            return False
        self.now = ts
        self.now_text = text
        self.base = ts.replace(microsecond=0)
        if len(text) > 19 and _canonical(text) and _TAIL.fullmatch(text, 19):
            zone = "Z" if text[-1] == "Z" else text[-6:]
            end = len(text) - len(zone)
            if (zone, len(text)) != (self.zone, self.width):
                self.offset = datetime.fromisoformat(text[:19]) - self.base
            self.width, self.zone, self.end = len(text), zone, end
            self.cut = min(end, 20 + KEPT_DIGITS)
            self.prefix = text[:19]
        else:  # (no shape either: the loop's fast path cannot match)
            self.prefix = _NO_PREFIX
            self.width, self.zone, self.end, self.cut = 0, "\0", 19, 19
        return True


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
