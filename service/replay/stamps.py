"""Replay's timestamps: compared as text where that is exact, parsed where it matters.

:class:`Stamps` keeps the last accepted timestamp and its shape, so that a row of
that shape and second is taken by its text alone (its cost does not depend on
having seen its fraction before), and a new second is worked out from the minute
or the hour it falls in; an instant is parsed only when a position is judged on
its row. :func:`naive_utc_of` puts a gate's deadline in the loop's terms.

Compiled by mypyc with :mod:`service.replay.engine` where it can be (setup.py).
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Final


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
_MINUTES: Final = tuple(timedelta(minutes=n) for n in range(60))


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
        "hour",
        "hour_base",
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
        self.hour = _NO_PREFIX  # "YYYY-MM-DDTHH:" of it,
        self.hour_base = datetime.min  # noqa: DTZ901  (and that hour's start, naive UTC)

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
        minute of the last one worked out here, that minute's start and the two digits; in
        its hour, the hour's start and the four (~9,000 instructions fewer than a parse, once
        a minute); else parsed (ValueError if it is no time), and its minute and hour kept."""
        tens, ones = ord(text[17]) - 48, ord(text[18]) - 48
        if 0 <= tens <= 5 and 0 <= ones <= 9:
            second = _SECONDS[tens * 10 + ones]
            if text.startswith(self.minute):
                return self.minute_base + second
            tens, ones = ord(text[14]) - 48, ord(text[15]) - 48
            if 0 <= tens <= 5 and 0 <= ones <= 9 and text.startswith(self.hour):
                minute = self.hour_base + _MINUTES[tens * 10 + ones]
                self.minute, self.minute_base = text[:17], minute
                return minute + second
        base = datetime.fromisoformat(text[:19]) - self.offset
        minute = base.replace(second=0)  # (offsets are whole minutes: _TAIL)
        self.minute, self.minute_base = text[:17], minute
        self.hour, self.hour_base = text[:14], minute - _MINUTES[int(text[14:16])]
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
        self.minute = self.hour = _NO_PREFIX  # (the shape may change: the next second parsed)
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
