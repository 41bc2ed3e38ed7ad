"""Replay: the exit state machine over recorded leg quotes, filled at the mark.

The same ``rules.machine.evaluate`` the live service uses decides; every close
fills at once, in full, at the debit it was decided on. Exits go to ``out`` as
JSON Lines and as SPEC.md's human line to ``log``; a summary follows.

The loop is the hot path (a million rows in a few seconds), so per row it does
only: split the CSV row, look the leg up by its raw text, parse two Decimals,
and evaluate the positions holding that leg. Exchange time is worked out once
per distinct timestamp and the New York day bounds are cached.
"""

from __future__ import annotations

import csv
import json
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TextIO

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
    dollars,
    evaluate,
    format_close_line,
    open_state,
)
from rules.model import Position, Quote, Right
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
BAD_LINES_SHOWN = 5
_PCT = Decimal("0.0001")

LegKey = tuple[str, date, Right, Decimal]


@dataclass
class Summary:
    rows: int = 0
    applied: int = 0
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


class _SessionClock:
    """Exchange time of a timestamp, reusing the current New York day's bounds."""

    def __init__(self) -> None:
        self._start = self._end = 0.0
        self._open = self._close = 0.0
        self._open_at: datetime | None = None
        self._date = date.min
        self._weekday = False

    def at(self, now: datetime) -> MarketTime:
        t = now.timestamp()
        if not self._start <= t < self._end:
            tz = new_york()
            day = now.astimezone(tz).date()
            self._date = day
            self._weekday = day.weekday() < 5
            midnight = datetime.min.time()
            self._start = datetime.combine(day, midnight, tz).timestamp()
            self._end = datetime.combine(day + timedelta(days=1), midnight, tz).timestamp()
            self._open_at = datetime.combine(day, OPEN, tz)
            self._open = self._open_at.timestamp()
            self._close = datetime.combine(day, CLOSE, tz).timestamp()
        if self._weekday and self._open <= t < self._close:
            return MarketTime(now, self._date, True, self._open_at)
        return MarketTime(now, self._date, False)


def _leg_key(underlying: str, expiry: date, right: Right, strike: Decimal) -> LegKey:
    return (underlying, expiry, right, strike.normalize())


def _unparseable(row: list[str], last_ts: datetime | None) -> str:
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
    return f"ts: goes backwards (after {last_ts.isoformat() if last_ts else '?'})"


def exit_record(ts: datetime, state: ExitState, close: Close) -> dict[str, object]:
    """One exit as a JSON-ready dict; money as exact decimal strings."""
    p = state.position
    return {
        "ts": ts.isoformat(),
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
    """Positions' exit states and the latest quote of every leg they hold."""

    def __init__(
        self, positions: Iterable[Position], books: dict[str, BookPolicy], rates: Rates
    ) -> None:
        self.rates = rates
        self.states: list[ExitState] = []
        self.leg_ids: list[tuple[int, ...]] = []
        self.quotes: list[Quote | None] = []
        self.holders: list[list[int]] = []
        self._by_key: dict[LegKey, int] = {}
        for p in positions:
            ids = []
            for leg in p.legs:
                key = _leg_key(p.underlying, leg.expiry, leg.right, leg.strike)
                if key not in self._by_key:
                    self._by_key[key] = len(self.quotes)
                    self.quotes.append(None)
                    self.holders.append([])
                ids.append(self._by_key[key])
                self.holders[self._by_key[key]].append(len(self.states))
            self.leg_ids.append(tuple(ids))
            self.states.append(open_state(p, books[p.book]))

    def leg_id(self, underlying: str, expiry: str, right: str, strike: str) -> int | None:
        """The leg a row names, or None when no position holds it; ValueError if malformed."""
        key = _leg_key(underlying, date.fromisoformat(expiry), Right(right), Decimal(strike))
        return self._by_key.get(key)

    def run(self, rows: Iterable[list[str]], out: TextIO, log: TextIO) -> Summary:  # noqa: PLR0915
        # One frame on purpose: this loop runs a million times per replay, and a
        # helper call per row costs more than the rest of the parsing.
        summary = Summary()
        started = time.perf_counter()
        raw_legs: dict[tuple[str, str, str, str], int | None] = {}
        clock = _SessionClock()
        states, quotes, holders, leg_ids = self.states, self.quotes, self.holders, self.leg_ids
        rates = self.rates
        last_ts_text = ""
        last_ts: datetime | None = None
        at: MarketTime | None = None
        line = 1
        for row in rows:
            line += 1
            summary.rows += 1
            if len(row) != 9:
                summary.bad(line, f"{len(row)} fields, expected 9")
                continue
            ts_text, underlying, expiry, right, strike, bid_t, ask_t, delta_t, spot_t = row
            raw = (underlying, expiry, right, strike)
            try:
                leg = raw_legs[raw]
            except KeyError:
                try:
                    leg = self.leg_id(*raw)
                except (ValueError, InvalidOperation):
                    leg = None
                raw_legs[raw] = leg
            if leg is None:
                summary.bad(line, f"unknown leg {underlying} {expiry} {right} {strike}")
                continue
            try:
                bid = Decimal(bid_t) if bid_t else None
                ask = Decimal(ask_t) if ask_t else None
                delta = float(delta_t) if delta_t else None
                spot = float(spot_t) if spot_t else None
                if ts_text != last_ts_text:
                    now = datetime.fromisoformat(ts_text)
                    if now.tzinfo is None:
                        raise ValueError("timestamp without UTC offset")
                    if last_ts is not None and now < last_ts:
                        raise ValueError("timestamp goes backwards")
                    last_ts_text, last_ts, at = ts_text, now, clock.at(now)
            except (ValueError, InvalidOperation):
                summary.bad(line, _unparseable(row, last_ts))
                continue
            assert at is not None
            assert last_ts is not None
            quotes[leg] = Quote(bid, ask, last_ts, delta, spot)
            summary.applied += 1
            for pi in holders[leg]:
                state = states[pi]
                if state.phase is Phase.CLOSED:
                    continue
                summary.evaluations += 1
                decision = evaluate(state, [quotes[i] for i in leg_ids[pi]], at, rates=rates)
                if decision.__class__ is Close:
                    assert isinstance(decision, Close)
                    state = apply(apply(state, CloseSent(decision)), Filled(decision.contracts))
                    states[pi] = state
                    self._report(last_ts, state, decision, summary, out, log)
        summary.seconds = time.perf_counter() - started
        return summary

    @staticmethod
    def _report(
        ts: datetime, state: ExitState, close: Close, summary: Summary, out: TextIO, log: TextIO
    ) -> None:
        summary.exits[close.reason.value] += 1
        summary.pnl += close.pnl
        out.write(json.dumps(exit_record(ts, state, close)) + "\n")
        log.write(format_close_line(state.position, close) + "\n")


def read_ticks(path: Path) -> tuple[TextIO, Iterable[list[str]]]:
    """Open TICKS.csv and check its header; the caller closes the file."""
    try:
        f = path.open(newline="", encoding="utf-8")
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror}") from exc
    reader = csv.reader(f)
    header = next(reader, None)
    if header is None or [h.strip() for h in header] != HEADER:
        f.close()
        raise InputError(f"{path}: line 1: header must be {','.join(HEADER)}")
    return f, reader


def write_summary(summary: Summary, replay: Replay, log: TextIO) -> None:
    open_left = sum(1 for s in replay.states if s.phase is not Phase.CLOSED)
    rate = summary.rows / summary.seconds if summary.seconds else 0.0
    exits = ", ".join(f"{k} {v}" for k, v in sorted(summary.exits.items())) or "none"
    lines = [
        f"replay: {summary.rows} rows, {summary.applied} applied, "
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
