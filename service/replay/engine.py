"""Replay: the exit state machine over recorded leg quotes, filled at the mark.

The same ``rules.machine.evaluate`` the live service uses decides; every close
fills at once, in full, at the debit it was decided on. Exits go to ``out`` as
JSON Lines and as the spec's human line to ``log``; a summary follows.

The loop is the hot path (a million rows in about a second), so per row it
does only: split the CSV row, look the leg up by its raw text, look its
numbers up in memos, check its timestamp (as text where that is exact:
:class:`Stamps`), and ask the screens of the positions holding the leg
(:class:`rules.watch.Screen`) whether a close could come of it. Only when one
says it could are those positions evaluated; the row's instant and exchange
time are then worked out and the New York day bounds are cached.

This module is one of those setup.py compiles with mypyc where it can (see
there and service.native): plain typed Python, with the same behaviour either
way.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from time import perf_counter
from typing import Any, Final, TextIO

from rules.books import BookPolicy
from rules.clock import MarketTime
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
from rules.model import RIGHTS, Position, Quote
from rules.pnl import CENT
from rules.watch import PositionWatch
from rules.watchlist import Watchlist
from service.presentation import dollars, format_close_line
from service.replay.rows import (
    EMPTY,
    LegKey,
    SessionClock,
    Summary,
    commas,
    field_count,
    figures,
    leg_key_of,
    memo,
    parse_price,
    row_of,
    unparseable,
)
from service.replay.stamps import Stamps, naive_utc_of, shaped

_PCT: Final = Decimal("0.0001")
# naive UTC made aware by arithmetic: replace(tzinfo=UTC), a C method called with a
# keyword, is ~10,000 instructions even compiled; a subtraction and an addition ~600
_UTC_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_NAIVE_EPOCH: Final = _UTC_EPOCH.replace(tzinfo=None)
# a NamedTuple built as the tuple it is: the __new__ NamedTuple writes is interpreted, even
# for a compiled caller (~3,300 instructions a Quote, ~1,900 so); the fields in their order
_NEW_TUPLE: Final = tuple.__new__
# a text as json.dumps writes it (ensure_ascii: its own C function)
_QUOTED: Final = json.encoder.encode_basestring_ascii
# what the loop's leg lookup gives besides a leg id: every holder closed; no position holds
# it; not 4 fields. (Final, as the other constants of the compiled modules: mypyc puts a Final
# in the code or in a C variable; any other module-level name is a dict lookup at each use)
_IDLE: Final = -1
_UNKNOWN: Final = -2
_MALFORMED: Final = -3
_NEW: Final = -4  # (not yet seen)


def _aware(naive: datetime) -> datetime:
    """A naive UTC instant made aware (UTC), by arithmetic (_UTC_EPOCH says why)."""
    return _UTC_EPOCH + (naive - _NAIVE_EPOCH)


def exit_record(ts: str, state: ExitState, close: Close) -> dict[str, object]:
    """One exit as a JSON-ready dict: ``ts`` as the ticks file wrote it, money as exact
    decimal strings."""
    p = state.position
    return {
        "ts": ts,
        "position": p.id,
        "book": p.book,
        "underlying": p.underlying,
        "strategy": p.strategy,  # (StrEnums: JSON writes their text; .value is interpreted)
        "reason": close.reason,
        "label": close.label,
        "target": None if close.target is None else str(close.target),
        "triggers": list(close.triggers),
        "contracts_closed": close.contracts,
        "contracts_remaining": state.remaining,
        "contracts_original": p.contracts,
        "debit": str(close.debit),
        "pnl": str(close.pnl.quantize(CENT)),
        "pct_of_max": str(close.pct_of_max.quantize(_PCT)),
    }


def exit_line(ts: str, state: ExitState, close: Close) -> str:
    """:func:`exit_record` as ``json.dumps`` writes it, and the line's end (held equal by
    tests/unit/test_replay_rows.py), written out: the encoder's dict, items and chunks were
    ~40,000 instructions an exit, the largest part of its cost. The user's texts go
    through json's own string encoder; the rest are Decimal strings, integers and the
    enums' identifiers, which JSON writes as they are."""
    p = state.position
    # (every piece a str or an int: mypyc joins those in one call; any other value, or a
    # conversion flag, makes the whole f-string a str.format call)
    target = "null" if close.target is None else '"' + str(close.target) + '"'
    triggers = ", ".join(['"' + t + '"' for t in close.triggers])
    debit, pnl = str(close.debit), str(close.pnl.quantize(CENT))
    pct, strategy, reason = str(close.pct_of_max.quantize(_PCT)), str(p.strategy), str(close.reason)
    return (
        f'{{"ts": {_QUOTED(ts)}, "position": {_QUOTED(p.id)}, "book": {_QUOTED(p.book)}, '
        f'"underlying": {_QUOTED(p.underlying)}, "strategy": "{strategy}", '
        f'"reason": "{reason}", "label": {_QUOTED(close.label)}, "target": {target}, '
        f'"triggers": [{triggers}], "contracts_closed": {close.contracts}, '
        f'"contracts_remaining": {state.remaining}, "contracts_original": {p.contracts}, '
        f'"debit": "{debit}", "pnl": "{pnl}", "pct_of_max": "{pct}"}}\n'
    )


def _no_leg(leg: int, key: str, text: str) -> str:
    """Why a row's leg is not one to replay (_UNKNOWN or _MALFORMED)."""
    return f"unknown leg {key.replace(',', ' ')}" if leg == _UNKNOWN else field_count(text)


def _later(stamps: Stamps, text: str, last: str) -> bool:
    """``text`` is a timestamp after ``last``, and now the latest (parsed: a new second)."""
    try:
        return stamps.accept(text, last)
    except ValueError:
        return False


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
            self._quote_of, instant=naive_utc_of, screens=screen
        )
        self.watches: list[PositionWatch] = []
        for p in positions:
            watch = PositionWatch(open_state(p, books[p.book]))
            self.watches.append(watch)
            self.watchlist.add(
                watch,
                [leg_key_of(p.underlying, leg.expiry, leg.right, leg.strike) for leg in p.legs],
            )
        # text -> value, as read: prices as (Decimal, units), deltas and spots as floats
        self._prices: dict[str, Any] = dict.fromkeys(EMPTY, (None, None))
        self._units: dict[str, Any] = dict.fromkeys(EMPTY)  # price text -> units
        self._deltas: dict[str, Any] = dict.fromkeys(EMPTY)
        self._spots: dict[str, Any] = dict.fromkeys(EMPTY)
        self._clock = SessionClock()
        self._stamps = Stamps()
        self._legs: dict[str, int] = {}  # a row's leg text -> leg id, _IDLE or _UNKNOWN
        self._texts: dict[int, list[str]] = {}  # leg id -> the texts naming it
        self._at = MarketTime(datetime.min.replace(tzinfo=UTC), date.min, False)
        # exits decided and not yet written: JSON Lines for ``out``, human lines for ``log``
        # (written a batch of rows at a time, one write each: a write per exit is a system
        # call per exit where the stream is unbuffered, as stderr is)
        self._exits: list[str] = []
        self._lines: list[str] = []

    def _quote_of(self, text: str) -> Quote:
        """A kept line as the rules' Quote, read again (it was checked when first read); its
        instant as :meth:`_judge` makes it (a "+hh:mm" seen before: the wall clock less it,
        ~5,000 instructions fewer than fromisoformat's aware parse and astimezone)."""
        now = self._stamps.instant(text[: text.index(",")])
        return self._quote_at(text, _aware(now))

    def _quote_at(self, text: str, ts: datetime) -> Quote:
        """A kept line as the rules' Quote at its instant ``ts`` (aware UTC), known already."""
        bid_t, ask_t, delta_t, spot_t = text.rsplit(",", 4)[1:]
        bid: Decimal = memo(self._prices, parse_price, bid_t)[0]
        ask: Decimal = memo(self._prices, parse_price, ask_t)[0]
        delta: float | None = memo(self._deltas, float, delta_t)
        spot: float | None = memo(self._spots, float, spot_t)
        return _NEW_TUPLE(Quote, (bid, ask, ts, delta, spot))  # Quote(bid, ask, ...)

    @property
    def states(self) -> list[ExitState]:
        return [w.state for w in self.watches]

    def leg_id(self, underlying: str, expiry: str, right: str, strike: str) -> int | None:
        """The leg a row names, or None when no position holds it; ValueError if malformed."""
        leg_right = RIGHTS.get(right)
        if leg_right is None:
            return None
        key = leg_key_of(underlying, date.fromisoformat(expiry), leg_right, Decimal(strike))
        return self.watchlist.ids.get(key)

    def run(self, batches: Iterable[list[str]], out: TextIO, log: TextIO) -> Summary:
        """Replay the rows (TICKS.csv after its header, in lists, a quoted field read:
        ``rows.batches_of``): exits to ``out``, the log to ``log``."""
        summary = Summary()
        started = perf_counter()
        try:
            self._loop(self._written(batches, out, log), summary)
        finally:  # (what was decided before a failure is said)
            self._write(out, log)
        summary.applied = summary.rows - summary.bad_rows - summary.idle
        summary.seconds = perf_counter() - started
        return summary

    # The loop runs a million times: one frame, each row touched as little as it can be.
    # A row is cut in three (ts, the leg's four fields as one key, the four figures). Its
    # timestamp is compared as text where that is exact (Stamps), and parsed only when a
    # position is evaluated on it. Rows the gates let through end in the loop; what is
    # rare (a new leg, a bad row, a new second) is done in functions of its own.
    def _loop(self, batches: Iterable[list[str]], summary: Summary) -> None:
        legs = self._legs  # "SPY,2027-04-16,P,450" -> leg id, _IDLE or _UNKNOWN
        latest, gates = self.watchlist.latest, self.watchlist.gates
        bad, memos, stamps = summary.bad, self._units, self._stamps
        last_ts_text, prefix, base = stamps.last, stamps.prefix, stamps.base
        width, zone, end, cut = stamps.width, stamps.zone, stamps.end, stamps.cut
        line, idle, screened = 1, 0, 0  # (the last line number counts the rows)
        for batch in batches:
            for text in batch:
                line += 1
                cut_at = commas(text)  # (the row is cut only where the fields are needed)
                if cut_at[1] < 0:
                    bad(line, field_count(text))
                    continue
                key = text[cut_at[0] + 1 : cut_at[1]]  # (all a row no one holds costs)
                leg = legs.get(key, _NEW)  # (a miss raises nothing: memo says why)
                if leg == _NEW:
                    leg = self._learn(key)
                if leg < 0:
                    if leg == _IDLE:  # every position holding this leg has closed
                        idle += 1
                    else:
                        bad(line, _no_leg(leg, key, text))
                    continue
                try:  # prices as units (memos), delta and spot as floats (judge reads them again)
                    bid_units, ask_units, delta, spot = figures(text, cut_at, memos)
                except (ValueError, InvalidOperation):
                    bad(line, unparseable(row_of(text), stamps.last_instant(last_ts_text)))
                    continue
                ts_text = text[: cut_at[0]]
                if ts_text != last_ts_text:
                    same = ts_text.startswith(prefix) and shaped(ts_text, width, zone, end)
                    if same and (ts_text > last_ts_text or ts_text[:cut] >= last_ts_text[:cut]):
                        last_ts_text = ts_text  # the same second, not earlier: no parsing (Stamps)
                    elif _later(stamps, ts_text, last_ts_text):  # a new second, or parsed
                        last_ts_text, prefix, base = ts_text, stamps.prefix, stamps.base
                        width, zone, end, cut = stamps.width, stamps.zone, stamps.end, stamps.cut
                    else:
                        bad(line, unparseable(row_of(text), stamps.last_instant(last_ts_text)))
                        continue
                latest[leg] = text  # the line itself: read again only if a holder needs it
                gate = gates[leg]
                if gate is not None and base < gate[0]:  # (the row's second is before the deadline)
                    for screen, i in gate[1]:
                        if not screen.admits(i, bid_units, ask_units, delta, spot):
                            break  # (a holder that admitted it is screened anew by judge)
                    else:  # no holder can close on this row
                        screened += 1
                        continue
                self._judge(leg, text, stamps.last_instant(last_ts_text), ts_text, summary)
        stamps.last = last_ts_text
        summary.rows, summary.idle, summary.screened = line - 1, idle, screened

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
            day, regular, opened = self._clock.facts
            self._at = _NEW_TUPLE(MarketTime, (now, day, regular, opened))  # MarketTime(...)
        return self._at

    def _judge(
        self,
        leg: int,
        text: str,
        now: datetime,
        ts_text: str,
        summary: Summary,
    ) -> None:
        """Evaluate every position holding the leg on its new line (``now``: its time, naive
        UTC); fill what closes."""
        quote = self._quote_at(text, _aware(now))
        at = self._market_time(quote.ts)

        def fill(watch: PositionWatch, close: Close) -> None:
            state = apply(apply(watch.state, CloseSent(close)), Filled(close.contracts))
            watch.state = state
            self._report(ts_text, state, close, summary)
            if state.phase is Phase.CLOSED:
                self._retire(watch)

        summary.evaluations += self.watchlist.judge(leg, quote, at, self.rates, fill)

    def _report(self, ts: str, state: ExitState, close: Close, summary: Summary) -> None:
        summary.exits[close.reason] += 1
        summary.pnl += close.pnl
        self._exits.append(exit_line(ts, state, close))
        self._lines.append(format_close_line(state.position, close) + "\n")

    def _written(
        self, batches: Iterable[list[str]], out: TextIO, log: TextIO
    ) -> Iterator[list[str]]:
        """The batches, each followed by writing the exits decided on its rows."""
        for batch in batches:
            yield batch
            self._write(out, log)

    def _write(self, out: TextIO, log: TextIO) -> None:
        """The exits decided since the last write, each stream in one write."""
        if self._exits:
            out.write("".join(self._exits))
            log.write("".join(self._lines))
            self._exits.clear()
            self._lines.clear()


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
