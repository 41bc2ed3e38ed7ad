"""Exchange time: session dates, regular hours, DTE and the expiry instant.

The caller passes ``now``; nothing here reads the clock. Holidays and early
closes are not known here: :class:`MarketTime` is built by the caller, which
may use an exchange calendar; :func:`market_time` is the plain weekday
09:30-16:00 America/New_York approximation that replay uses.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from typing import Final, NamedTuple
from zoneinfo import ZoneInfo

OPEN: Final = time(9, 30)
CLOSE: Final = time(16, 0)


@cache
def new_york() -> ZoneInfo:
    return ZoneInfo("America/New_York")


class MarketTime(NamedTuple):
    """``now`` with the exchange's date and whether regular trading hours are on.

    ``session_open`` is the instant today's regular session opened (None
    outside regular hours): a leg quote older than it is yesterday's frozen
    quote, not a current one. A NamedTuple because replay builds one per tick.
    """

    now: datetime
    session_date: date
    regular_hours: bool
    session_open: datetime | None = None


def market_time(now: datetime) -> MarketTime:
    """Exchange time of ``now``, with ``now`` and ``session_open`` in UTC.

    Give the rules UTC datetimes: aware datetimes that share one tzinfo object
    compare and subtract about twenty times faster than ones that do not.
    """
    now = now.astimezone(UTC)
    local = now.astimezone(new_york())
    if local.weekday() < 5 and OPEN <= local.time() < CLOSE:
        opens = datetime.combine(local.date(), OPEN, new_york()).astimezone(UTC)
        return MarketTime(now, local.date(), True, opens)
    return MarketTime(now, local.date(), False)


def exchange_date(instant: datetime) -> date:
    return instant.astimezone(new_york()).date()


def expiry_instant(expiry: date) -> datetime:
    """16:00 America/New_York on the expiry date (SPEC: the end of the last session)."""
    return datetime.combine(expiry, CLOSE, tzinfo=new_york())


def dte(expiry: date, session_date: date) -> int:
    """Whole calendar days from the session date to expiry; 0 on expiry day."""
    return (expiry - session_date).days


_YEAR: Final = timedelta(days=365)


@cache
def _expiry_utc(expiry: date) -> datetime:
    """expiry_instant in UTC: subtracting it from a UTC instant needs no zone lookup (the
    same timedelta, many times faster: local Greeks ask this on every solve)."""
    return expiry_instant(expiry).astimezone(UTC)


def years_to_expiry(expiry: date, now: datetime) -> float:
    return (_expiry_utc(expiry) - now) / _YEAR


class Midnights:
    """New York's midnights as a time moves on, for what a broker keeps of the days
    before: :meth:`passed` is None until ``now`` is on a later New York day than the last
    seen, then the midnight that began the day before ``now``'s. What is older than it can
    go: two days are kept, since a broker's day (IB's: its gateway's zone) may begin up
    to a day before New York's."""

    def __init__(self) -> None:
        self.day: date | None = None

    def passed(self, now: datetime) -> datetime | None:
        day = now.astimezone(new_york()).date()
        last, self.day = self.day, day
        if last is None or day <= last:
            return None
        return datetime.combine(day - timedelta(days=1), time(0), new_york())
