"""Replay: the exit state machine over recorded leg quotes, filled at the mark.

The same ``rules.machine.evaluate`` the live service uses decides; every close
fills at once, in full, at the debit it was decided on. Exits go to ``out`` as
JSON Lines and as SPEC.md's human line to ``log``; a summary follows.

The loop is the hot path (a million rows in about a second), so per row it
does only: split the CSV row, look the leg up by its raw text, look its
numbers up in memos, check its timestamp (as text where that is exact:
:class:`_Stamps`), and ask the screens of the positions holding the leg
(:class:`rules.watch.Screen`) whether a close could come of it. Only when one
says it could are those positions evaluated; the row's instant and exchange
time are then worked out and the New York day bounds are cached.

This module is one of those setup.py compiles with mypyc where it can (see
there and service.native): plain typed Python, with the same behaviour either
way.
"""

from __future__ import annotations

import csv
import json
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from time import perf_counter
from typing import Any, TextIO

from rules.books import BookPolicy
from rules.clock import CLOSE, OPEN, MarketTime, new_york
from rules.greeks import Rates
from rules.machine import (
    Close,
    CloseSent,
    ExitState,
    Filled,
    Phase,
    apply,
    open_state,
)
from rules.model import Position, Quote, Right
from rules.watch import PositionWatch, units
from rules.watchlist import Watchlist
from service.errors import InputError
from service.presentation import dollars, format_close_line

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
BAD_LINES_SHOWN = 5
_PCT = Decimal("0.0001")

LegKey = tuple[str, date, Right, Decimal]
# what the loop's leg lookup gives besides a leg id
_IDLE, _UNKNOWN, _MALFORMED = -1, -2, -3  # every holder closed; no position holds it; not 4 fields


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


_new_tuple = tuple.__new__  # builds a NamedTuple without its Python-level __new__
_EMPTY = ("", "\n", "\r\n")  # an empty field; the last one keeps the line end
_EMPTIES = frozenset(_EMPTY)
MEMO_LIMIT = 100_000  # per field; bounds memory at ~15 MB each


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


def _price(text: str) -> tuple[Decimal, int | None]:
    """A price as replay keeps it: the Decimal, and its units for the screens."""
    price = Decimal(text)
    return price, units(price)


def _units(text: str) -> int | None:
    """A price's screen units (None: not exact); ValueError-kin if it is no number."""
    return units(Decimal(text))


def _memo(cache: dict[str, Any], parse: Callable[[str], Any], text: str) -> Any:
    """Parse ``text`` once: prices and deltas repeat, and parsing is the hot path's cost."""
    if text in cache:
        return cache[text]
    value = parse(text)
    if len(cache) >= MEMO_LIMIT:
        empty = cache[""]  # what an empty field stands for
        cache.clear()
        cache.update(dict.fromkeys(_EMPTY, empty))
    cache[text] = value
    return value


def _field_count(text: str) -> str:
    """Why a row of other than nine fields is bad."""
    return f"{text.count(',') + 1} fields, expected 9"


def row_of(text: str) -> list[str]:
    """A row's fields, without the line end (for messages about bad rows)."""
    return next(csv.reader([text.rstrip("\r\n")]))


class _SessionClock:
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


def _naive_utc_of(instant: datetime) -> datetime:
    """A gate's deadline (aware UTC) as the loop compares it: naive UTC, floored to the
    second. The loop compares the second a row falls in (:class:`_Stamps`): a row whose
    second starts before the floored deadline ends before the deadline itself."""
    return instant.replace(tzinfo=None, microsecond=0)


# A timestamp the fast path can take by its text: "YYYY-MM-DDTHH:MM:SS" then this tail
_TAIL = re.compile(r"(?:\.[0-9]{1,6})?(?:[+-][0-9][0-9]:[0-9][0-9]|Z)")
_NO_PREFIX = "\0"  # the prefix while the last timestamp was not canonical: none starts so
TAILS_LIMIT = 4096  # tails kept for one offset: a millisecond clock has 1,000


def _canonical(text: str) -> bool:
    """``text`` starts "YYYY-MM-DDTHH:MM:SS" (its separators; the digits are parsed)."""
    return text[4] == text[7] == "-" and text[10] == "T" and text[13] == text[16] == ":"


class _Stamps:
    """The rows' timestamps: parsed where it matters, compared as text where that is exact.

    Most rows fall in the same second as the row before and differ from it only
    in the fraction (``.021-05:00``). For a timestamp of the canonical shape
    ``YYYY-MM-DDTHH:MM:SS`` + tail, the loop keeps the accepted second's text
    (``prefix``), that second as naive UTC (``base``, what gates compare) and
    the tails already parsed with one offset and one length (``tails``). A row
    with that prefix, a known tail and a text greater than the last accepted
    one is a valid timestamp later than it: fields of one width and one offset
    order as their text does. Any other row is parsed here (:meth:`accept`);
    the exact instant of a row is worked out only when it is judged.
    """

    __slots__ = (
        "base",
        "last",
        "now",
        "now_text",
        "offset",
        "offsets",
        "prefix",
        "shape",
        "tails",
    )

    def __init__(self) -> None:
        self.last = ""  # the last accepted timestamp, as its row wrote it (kept by the loop
        # between runs; in the loop, its local copy is the one that moves)
        self.now = datetime.min  # noqa: DTZ901  (naive UTC of now_text)
        self.now_text = ""
        self.base = datetime.min  # noqa: DTZ901  (last's second, naive UTC)
        self.prefix = _NO_PREFIX  # last's "YYYY-MM-DDTHH:MM:SS" when canonical
        self.tails: set[str] = set()  # tails parsed in canonical rows, all of ``shape``
        self.shape = ("", 0)  # their offset and length
        self.offset = timedelta(0)  # their offset's value
        self.offsets: dict[str, timedelta] = {}  # "+hh:mm" -> its value

    def instant(self, text: str) -> datetime:
        """``text`` as naive UTC; ValueError if it is no timestamp with an offset."""
        offset = self.offsets.get(text[-6:])
        if offset is not None:  # a "+hh:mm" seen before: the wall clock less it (faster)
            local = datetime.fromisoformat(text[:-6])
            if local.tzinfo is None:
                return local - offset
        return _naive_utc(text, self.offsets)

    def last_instant(self, last: str) -> datetime:
        """The last accepted timestamp, ``last`` (the loop keeps it), as naive UTC; parsed
        again only if it moved."""
        if self.now_text != last:
            self.now, self.now_text = self.instant(last), last
        return self.now

    def accept(self, text: str, last: str) -> bool:
        """Take ``text`` as the timestamp after ``last``: False if it goes backwards;
        ValueError if it is no timestamp with an offset."""
        if self.prefix is not _NO_PREFIX and text[19:] in self.tails and _canonical(text):
            # a new second, canonical, of the last one's shape: compared as text
            base = datetime.fromisoformat(text[:19]) - self.offset
            if text < last:
                return False
            self.prefix, self.base = text[:19], base
            return True
        ts = self.instant(text)
        if ts < self.last_instant(last):
            return False
        self.now = ts
        self.now_text = text
        self.base = ts.replace(microsecond=0)
        if len(text) > 19 and _canonical(text) and _TAIL.fullmatch(text, 19):
            tail = text[19:]
            shape = ("Z" if tail[-1] == "Z" else tail[-6:], len(tail))
            if shape != self.shape or len(self.tails) >= TAILS_LIMIT:
                self.tails.clear()
                self.shape = shape
                self.offset = datetime.fromisoformat(text[:19]) - self.base
            self.tails.add(tail)
            self.prefix = text[:19]
        else:  # (no tails either: the loop's fast path cannot match)
            self.prefix = _NO_PREFIX
            self.tails.clear()
            self.shape = ("", 0)
        return True


def _leg_key(underlying: str, expiry: date, right: Right, strike: Decimal) -> LegKey:
    return (underlying, expiry, right, strike.normalize())


def _unparseable(row: list[str], last_ts: datetime) -> str:
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


def exit_record(ts: str, state: ExitState, close: Close) -> dict[str, object]:
    """One exit as a JSON-ready dict: ``ts`` as the ticks file wrote it, money as exact
    decimal strings."""
    p = state.position
    return {
        "ts": ts,
        "position": p.id,
        "book": p.book,
        "underlying": p.underlying,
        "strategy": p.strategy.value,
        "reason": close.reason.value,
        "label": close.label,
        "target": None if close.target is None else str(close.target),
        "triggers": [t.value for t in close.triggers],
        "contracts_closed": close.contracts,
        "contracts_remaining": state.remaining,
        "contracts_original": p.contracts,
        "debit": str(close.debit),
        "pnl": str(close.pnl.quantize(Decimal("0.01"))),
        "pct_of_max": str(close.pct_of_max.quantize(_PCT)),
    }


class Replay:
    """Positions' exit states, and the latest line of every leg they hold.

    The legs, their latest lines and their gates are a :class:`rules.watchlist.Watchlist`
    that keeps lines as text: every applied row is kept as its leg's latest line.
    When every position holding the leg admits it (its screen, before the
    screen's deadline), no holder can close on it and nothing more is done: the
    holders read it again when they are next evaluated. Otherwise each holder
    catches up and is evaluated, and gets a new screen. ``screen=False``
    evaluates every row (the tests compare the two).
    """

    def __init__(
        self,
        positions: Iterable[Position],
        books: dict[str, BookPolicy],
        rates: Rates,
        *,
        screen: bool = True,
    ) -> None:
        self.rates = rates
        self.watchlist: Watchlist[str, LegKey] = Watchlist(
            self._quote_of, instant=_naive_utc_of, screens=screen
        )
        self.watches: list[PositionWatch] = []
        for p in positions:
            watch = PositionWatch(open_state(p, books[p.book]))
            self.watches.append(watch)
            self.watchlist.add(
                watch, [_leg_key(p.underlying, leg.expiry, leg.right, leg.strike) for leg in p.legs]
            )
        # text -> value, as read: prices as (Decimal, units), deltas and spots as floats
        self._prices: dict[str, Any] = dict.fromkeys(_EMPTY, (None, None))
        self._units: dict[str, Any] = dict.fromkeys(_EMPTY)  # price text -> units
        self._deltas: dict[str, Any] = dict.fromkeys(_EMPTY)
        self._spots: dict[str, Any] = dict.fromkeys(_EMPTY)
        self._clock = _SessionClock()
        self._stamps = _Stamps()
        self._legs: dict[str, int] = {}  # a row's leg text -> leg id, _IDLE or _UNKNOWN
        self._texts: dict[int, list[str]] = {}  # leg id -> the texts naming it
        self._at = MarketTime(datetime.min.replace(tzinfo=UTC), date.min, False)

    def _quote_of(self, text: str) -> Quote:
        """A kept line as the rules' Quote, read again (it was checked when first read)."""
        ts_text, rest = text.split(",", 1)
        _leg, bid_t, ask_t, delta_t, spot_t = rest.rsplit(",", 4)
        return Quote(
            _memo(self._prices, _price, bid_t)[0],
            _memo(self._prices, _price, ask_t)[0],
            datetime.fromisoformat(ts_text).astimezone(UTC),
            _memo(self._deltas, float, delta_t),
            _memo(self._spots, float, spot_t),
        )

    @property
    def states(self) -> list[ExitState]:
        return [w.state for w in self.watches]

    def leg_id(self, underlying: str, expiry: str, right: str, strike: str) -> int | None:
        """The leg a row names, or None when no position holds it; ValueError if malformed."""
        key = _leg_key(underlying, date.fromisoformat(expiry), Right(right), Decimal(strike))
        return self.watchlist.ids.get(key)

    def run(self, lines: Iterable[str], out: TextIO, log: TextIO) -> Summary:
        """Replay the rows (TICKS.csv after its header): exits to ``out``, the log to ``log``."""
        summary = Summary()
        started = perf_counter()
        self._loop(lines, summary, out, log)
        summary.applied = summary.rows - summary.bad_rows - summary.idle
        summary.seconds = perf_counter() - started
        return summary

    def _loop(self, lines: Iterable[str], summary: Summary, out: TextIO, log: TextIO) -> None:  # noqa: PLR0915
        # The loop runs a million times: one frame, each row touched as little as it
        # can be. A row is cut in three (ts, the leg's four fields as one key, the
        # four figures). Its timestamp is compared as text where that is exact
        # (_Stamps), and parsed only when a position is evaluated on it. Rows the
        # gates let through end in the loop.
        legs = self._legs  # "SPY,2027-04-16,P,450" -> leg id, _IDLE or _UNKNOWN
        price_units = self._units
        watchlist = self.watchlist
        latest, gates = watchlist.latest, watchlist.gates
        bad, judge = summary.bad, self._judge
        stamps = self._stamps
        last_ts_text, prefix, base, tails = stamps.last, stamps.prefix, stamps.base, stamps.tails
        # (prefix: "YYYY-MM-DDTHH:MM:SS", or "\0" that no timestamp starts with)
        line = 1
        idle = screened = 0
        for line, text in enumerate(lines, 2):  # (the last line number counts the rows)
            if '"' in text:  # a quoted field: let csv read the row (no field holds a comma)
                text = ",".join(row_of(text))  # noqa: PLW2901
            try:  # the last field keeps its newline: float() and the memo do not mind
                ts_text, rest = text.split(",", 1)
                key, bid_t, ask_t, delta_t, spot_t = rest.rsplit(",", 4)
            except ValueError:
                bad(line, _field_count(text))
                continue
            try:
                leg = legs[key]
            except KeyError:
                leg = self._learn(key)
            if leg < 0:
                if leg == _IDLE:  # every position holding this leg has closed
                    idle += 1
                elif leg == _UNKNOWN:
                    bad(line, f"unknown leg {key.replace(',', ' ')}")
                else:
                    bad(line, _field_count(text))
                continue
            try:  # the screens' figures: prices as units (their texts repeat: parsed once),
                # delta and the underlying's price as floats (checked a number, kept in the
                # line: judge reads the row again, as a Quote)
                try:
                    bid_units, ask_units = price_units[bid_t], price_units[ask_t]
                except KeyError:
                    bid_units = _memo(price_units, _units, bid_t)
                    ask_units = _memo(price_units, _units, ask_t)
                delta = float(delta_t) if delta_t else None
                if spot_t not in _EMPTIES:  # (the last field keeps the line's end)
                    float(spot_t)
            except (ValueError, InvalidOperation):
                bad(line, _unparseable(row_of(text), stamps.last_instant(last_ts_text)))
                continue
            if ts_text != last_ts_text:
                if ts_text.startswith(prefix) and ts_text[19:] in tails and ts_text > last_ts_text:
                    last_ts_text = ts_text  # the same second, later: no parsing (_Stamps)
                else:
                    try:
                        later = stamps.accept(ts_text, last_ts_text)
                    except ValueError:
                        later = False
                    if not later:
                        bad(line, _unparseable(row_of(text), stamps.last_instant(last_ts_text)))
                        continue
                    last_ts_text, prefix, base = ts_text, stamps.prefix, stamps.base
            latest[leg] = text  # the line itself: read again only if a holder needs it
            gate = gates[leg]
            if gate is not None and base < gate[0]:  # (the row's second is before the deadline)
                for screen, i in gate[1]:
                    if not screen.admits(i, bid_units, ask_units, delta):
                        break  # (a holder that admitted it is screened anew by judge)
                else:  # no holder can close on this row
                    screened += 1
                    continue
            judge(leg, text, stamps.last_instant(last_ts_text), ts_text, summary, out, log)
        stamps.last = last_ts_text
        summary.rows = line - 1
        summary.idle = idle
        summary.screened = screened

    def _learn(self, key: str) -> int:
        """The leg a new key text names (_IDLE once its positions have closed), _UNKNOWN for
        none, _MALFORMED for a key of other than four fields."""
        fields = key.split(",")
        if len(fields) != 4:
            return _MALFORMED  # (not kept: the key of a row with too many fields)
        try:
            leg = self.leg_id(*fields)
        except (ValueError, InvalidOperation):
            leg = None
        if leg is None:
            self._legs[key] = _UNKNOWN
            return _UNKNOWN
        self._texts.setdefault(leg, []).append(key)
        found = self._legs[key] = leg if self.watchlist.holders[leg] else _IDLE
        return found

    def _retire(self, watch: PositionWatch) -> None:
        """Stop watching a closed position: legs no one holds any more read as _IDLE."""
        ids = self.watchlist.ids
        for gone in self.watchlist.release(watch):
            for text in self._texts.get(ids[gone], ()):
                self._legs[text] = _IDLE

    def _market_time(self, now: datetime) -> MarketTime:
        if now is not self._at.now:
            if not self._clock.lo <= now < self._clock.hi:
                self._clock.enter(now)
            self._at = MarketTime(now, *self._clock.facts)
        return self._at

    def _judge(
        self,
        leg: int,
        text: str,
        now: datetime,
        ts_text: str,
        summary: Summary,
        out: TextIO,
        log: TextIO,
    ) -> None:
        """Evaluate every position holding the leg on its new line (``now``: its time, naive
        UTC); fill what closes."""
        quote = self._quote_of(text)._replace(ts=now.replace(tzinfo=UTC))
        at = self._market_time(quote.ts)

        def fill(watch: PositionWatch, close: Close) -> None:
            state = apply(apply(watch.state, CloseSent(close)), Filled(close.contracts))
            watch.state = state
            self._report(ts_text, state, close, summary, out, log)
            if state.phase is Phase.CLOSED:
                self._retire(watch)

        summary.evaluations += self.watchlist.judge(leg, quote, at, self.rates, fill)

    @staticmethod
    def _report(
        ts: str, state: ExitState, close: Close, summary: Summary, out: TextIO, log: TextIO
    ) -> None:
        summary.exits[close.reason.value] += 1
        summary.pnl += close.pnl
        out.write(json.dumps(exit_record(ts, state, close)) + "\n")
        log.write(format_close_line(state.position, close) + "\n")


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


def write_summary(summary: Summary, replay: Replay, log: TextIO) -> None:
    open_left = sum(1 for s in replay.states if s.phase is not Phase.CLOSED)
    rate = summary.rows / summary.seconds if summary.seconds else 0.0
    exits = ", ".join(f"{k} {v}" for k, v in sorted(summary.exits.items())) or "none"
    lines = [
        f"replay: {summary.rows} rows, {summary.applied} applied, "
        f"{summary.idle} for closed positions, {summary.screened} screened, "
        f"{summary.evaluations} evaluations in {summary.seconds:.2f}s ({rate:,.0f} rows/s)",
        f"replay: exits: {exits}; realised P&L {dollars(summary.pnl)}",
        f"replay: positions: {len(replay.states) - open_left} closed, {open_left} still open",
    ]
    if summary.bad_rows:
        shown = "; ".join(f"line {n}: {why}" for n, why in summary.bad_lines)
        lines.append(f"replay: {summary.bad_rows} bad rows skipped (first: {shown})")
    else:
        lines.append("replay: 0 bad rows")
    log.write("\n".join(lines) + "\n")
