"""The exchange's sessions: when regular hours open and close, holidays and early closes.

The sessions come from ``exchange_calendars`` (the maintained calendar of
XNYS, the New York Stock Exchange, whose hours US equity options keep). It
takes a second and ~70 MB to import, so the sessions it gives are cached as
JSON in the data directory and read from there on later starts. The cache is
made again when it does not cover a year from today, or when it was made by
another version of exchange_calendars. A running daemon makes it again ahead of
time and in a worker thread (:meth:`Calendar.keep_ahead`), not on its loop.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import warnings
from bisect import bisect_right
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from importlib.metadata import version
from pathlib import Path

from rules.clock import MarketTime, new_york

CALENDAR = "XNYS"
AHEAD = timedelta(days=366)
BEHIND = timedelta(days=14)
SOON = timedelta(days=30)  # how long before it is due a running daemon loads the next sessions


@dataclass(frozen=True)
class Session:
    day: date
    open: datetime  # UTC
    close: datetime  # UTC; 13:00 New York on an early close


class Sessions:
    """The sessions of ``[first, last]``, looked up by instant."""

    def __init__(self, sessions: list[Session]) -> None:
        if not sessions:
            raise ValueError("no sessions")
        self._sessions = sorted(sessions, key=lambda s: s.day)
        self._days = [s.day for s in self._sessions]
        self._by_day = {s.day: s for s in self._sessions}

    @property
    def first(self) -> date:
        return self._days[0]

    @property
    def last(self) -> date:
        return self._days[-1]

    def session(self, day: date) -> Session | None:
        """The session of ``day``, None on a weekend or holiday."""
        return self._by_day.get(day)

    def market_time(self, now: datetime) -> MarketTime:
        """``now`` with the exchange's date and whether regular hours are on."""
        now = now.astimezone(UTC)
        day = now.astimezone(new_york()).date()
        self._covered(day)
        s = self._by_day.get(day)
        if s is not None and s.open <= now < s.close:
            return MarketTime(now, day, True, s.open)
        return MarketTime(now, day, False)

    def next_open(self, now: datetime) -> datetime:
        """The next instant regular hours open (``now`` itself if they are open)."""
        now = now.astimezone(UTC)
        day = now.astimezone(new_york()).date()
        self._covered(day)
        i = bisect_right(self._days, day) - 1
        for s in self._sessions[max(i, 0) :]:
            if s.close > now:
                return max(s.open, now)
        raise LookupError(f"no session after {now.isoformat()} in the calendar (to {self.last})")

    def _covered(self, day: date) -> None:
        if not self.first <= day <= self.last:
            raise LookupError(f"{day} is outside the calendar ({self.first} to {self.last})")

    def to_json(self) -> str:
        return json.dumps(
            [[s.day.isoformat(), s.open.isoformat(), s.close.isoformat()] for s in self._sessions]
        )

    @classmethod
    def from_json(cls, text: str) -> Sessions:
        return cls(
            [
                Session(
                    date.fromisoformat(d),
                    datetime.fromisoformat(o).astimezone(UTC),
                    datetime.fromisoformat(c).astimezone(UTC),
                )
                for d, o, c in json.loads(text)
            ]
        )


def from_exchange_calendars(first: date, last: date) -> Sessions:
    with warnings.catch_warnings():  # pandas deprecations inside exchange_calendars
        warnings.simplefilter("ignore")
        import exchange_calendars  # type: ignore[import-untyped]  # noqa: PLC0415  (slow, large)

        calendar = exchange_calendars.get_calendar(CALENDAR, start=first, end=last)
        schedule = calendar.schedule
        rows = zip(schedule.index, schedule["open"], schedule["close"], strict=True)
        return Sessions(
            [
                Session(day.date(), _utc(o.to_pydatetime()), _utc(c.to_pydatetime()))
                for day, o, c in rows
            ]
        )


def _utc(t: datetime) -> datetime:
    return t.astimezone(UTC)


class Calendar:
    """The sessions around whatever instant is asked about: loaded (from the cache in
    ``data_dir``, or made) around the first, and again when one falls outside them. The
    daemon's clock may be a broker's, far from this machine's date (a fake gateway's)."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self._sessions: Sessions | None = None

    def around(self, now: datetime) -> Sessions:
        day = now.astimezone(new_york()).date()
        s = self._sessions
        if s is None or not _holds(s, day):
            s = self._sessions = load_sessions(self.data_dir, day)
        return s

    async def keep_ahead(self, now: datetime) -> bool:
        """Load the sessions :meth:`around` will need within :data:`SOON` of ``now``, in a
        worker thread, so that the loop never waits on exchange_calendars (a second or more
        and ~70 MB, about once a year in a daemon that runs on); True if it loaded them.
        The daemon calls it at each close."""
        day = now.astimezone(new_york()).date()
        s = self._sessions
        if s is not None and _holds(s, day) and _holds(s, day + SOON):
            return False
        self._sessions = await asyncio.to_thread(load_sessions, self.data_dir, day)
        return True

    def market_time(self, now: datetime) -> MarketTime:
        return self.around(now).market_time(now)

    def next_open(self, now: datetime) -> datetime:
        return self.around(now).next_open(now)


def _holds(sessions: Sessions, day: date) -> bool:
    """``sessions`` serve ``day`` and half a year after it."""
    return sessions.first <= day <= sessions.last - AHEAD / 2


def load_sessions(data_dir: Path, today: date) -> Sessions:
    """The sessions around ``today``, from the cache in ``data_dir`` or made anew."""
    path = data_dir / f"sessions-{CALENDAR}-{version('exchange-calendars')}.json"
    try:
        sessions = Sessions.from_json(path.read_text())
        if sessions.first <= today - BEHIND and today + AHEAD <= sessions.last:
            return sessions
    except (OSError, ValueError, KeyError):
        pass
    sessions = from_exchange_calendars(today - BEHIND - timedelta(days=7), today + AHEAD + AHEAD)
    data_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}-{threading.get_ident()}.tmp")  # (one per writer)
    tmp.write_text(sessions.to_json())
    tmp.replace(path)  # never a half-written cache
    return sessions
