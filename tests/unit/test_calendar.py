"""The exchange's sessions: holidays, early closes, DST, and the cache."""

from __future__ import annotations

import asyncio
import io
import threading
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import pytest

from rules.clock import Midnights, new_york
from service import calendar
from service.calendar import (
    AHEAD,
    SOON,
    Calendar,
    Session,
    Sessions,
    from_exchange_calendars,
    load_sessions,
)
from service.clock import ManualClock


def ny(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=new_york())


@pytest.fixture(scope="module")
def sessions() -> Sessions:
    return from_exchange_calendars(date(2026, 10, 1), date(2027, 12, 31))


def test_thanksgiving_is_closed_and_the_day_after_closes_at_one(sessions: Sessions) -> None:
    assert sessions.session(date(2026, 11, 26)) is None
    friday = sessions.session(date(2026, 11, 27))
    assert friday is not None
    assert friday.open == ny(date(2026, 11, 27), 9, 30)
    assert friday.close == ny(date(2026, 11, 27), 13, 0)
    assert sessions.market_time(ny(date(2026, 11, 27), 12, 59)).regular_hours
    assert not sessions.market_time(ny(date(2026, 11, 27), 13, 0)).regular_hours
    assert not sessions.market_time(ny(date(2026, 11, 26), 11, 0)).regular_hours


def test_christmas_eve_closes_early_and_new_years_day_is_closed(sessions: Sessions) -> None:
    eve = sessions.session(date(2026, 12, 24))
    assert eve is not None
    assert eve.close == ny(date(2026, 12, 24), 13, 0)
    assert sessions.session(date(2027, 1, 1)) is None


def test_regular_hours_across_daylight_saving(sessions: Sessions) -> None:
    """09:30 New York is 14:30 UTC in winter and 13:30 UTC in summer."""
    winter = sessions.market_time(datetime(2027, 3, 5, 14, 30, tzinfo=UTC))
    summer = sessions.market_time(datetime(2027, 3, 15, 13, 30, tzinfo=UTC))
    assert winter.regular_hours
    assert summer.regular_hours
    assert winter.session_open == datetime(2027, 3, 5, 14, 30, tzinfo=UTC)
    assert not sessions.market_time(datetime(2027, 3, 15, 13, 29, tzinfo=UTC)).regular_hours


def test_the_next_open_skips_weekends_and_holidays(sessions: Sessions) -> None:
    wednesday_evening = ny(date(2026, 11, 25), 16, 30)
    assert sessions.next_open(wednesday_evening) == ny(date(2026, 11, 27), 9, 30)
    saturday = ny(date(2026, 11, 28), 10)
    assert sessions.next_open(saturday) == ny(date(2026, 11, 30), 9, 30)
    during = ny(date(2026, 11, 30), 11)
    assert sessions.next_open(during) == during


def test_outside_the_calendar_is_an_error_not_a_guess(sessions: Sessions) -> None:
    with pytest.raises(LookupError, match="outside the calendar"):
        sessions.market_time(datetime(2030, 1, 2, 15, tzinfo=UTC))


def test_the_cache_is_written_once_and_read_after(tmp_path: Path) -> None:
    today = date(2026, 11, 25)
    first = load_sessions(tmp_path, today)
    (cache,) = tmp_path.glob("sessions-XNYS-*.json")
    assert first.first <= date(2026, 11, 11)
    assert first.last >= date(2027, 11, 26)
    cache.write_text(
        Sessions(
            [Session(date(2026, 11, 1), ny(date(2026, 11, 2), 9, 30), ny(date(2026, 11, 2), 16))]
        ).to_json()
    )  # a cache that does not cover the year ahead is made again
    again = load_sessions(tmp_path, today)
    assert again.last == first.last
    cache.write_text("not json")
    assert load_sessions(tmp_path, today).last == first.last
    assert Sessions.from_json(cache.read_text()).session(date(2026, 11, 27)) is not None


@pytest.fixture
def made_on_main(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """For each making of the sessions (exchange_calendars): on the main thread, the
    loop's?"""
    on_main: list[bool] = []

    def recording(first: date, last: date) -> Sessions:
        on_main.append(threading.current_thread() is threading.main_thread())
        return from_exchange_calendars(first, last)

    monkeypatch.setattr(calendar, "from_exchange_calendars", recording)
    return on_main


def test_a_running_daemon_loads_the_next_sessions_ahead_and_off_its_loop(
    tmp_path: Path, made_on_main: list[bool]
) -> None:
    """A month before the sessions would have to be made again on the loop (a second or
    more of exchange_calendars), keep_ahead makes them in a worker thread; the loop's own
    look-ups then never make them."""
    sessions = Calendar(tmp_path)
    first = sessions.around(ny(date(2027, 1, 4), 10))  # (the daemon's start-up)
    assert made_on_main == [True]
    due = first.last - AHEAD / 2  # around() would make them again the day after
    assert not asyncio.run(sessions.keep_ahead(ny(due - SOON - timedelta(days=1), 16)))
    assert made_on_main == [True]
    assert asyncio.run(sessions.keep_ahead(ny(due - SOON + timedelta(days=1), 16)))
    assert made_on_main == [True, False]
    assert sessions.around(ny(due + timedelta(days=2), 10)).last > first.last
    assert made_on_main == [True, False]


class _Quiet:
    """A read model with nothing to say (the daemon's report reads these)."""

    closes = would_closes = fills = commissions = attentions = resolutions = 0

    def close_lines(self, since: int) -> list[str]:
        return []

    would_close_lines = fill_lines = commission_lines = close_lines

    def attention_since(self, since: int) -> list[tuple[str, str]]:
        return []

    def resolved_since(self, since: int) -> list[tuple[str, str, str]]:
        return []


def test_the_daemon_makes_them_at_a_close(tmp_path: Path, made_on_main: list[bool]) -> None:
    """The daemon's report, at the market's close, asks for the next sessions in time."""
    from service.cli.run import _Report  # noqa: PLC0415  (the daemon's: heavy to import)

    sessions = Calendar(tmp_path)
    due = sessions.around(ny(date(2027, 1, 4), 10)).last - AHEAD / 2
    clock = ManualClock(ny(due - SOON + timedelta(days=1), 17))  # (a close's evening)
    out = io.StringIO()
    report = _Report(_Quiet(), sessions, out, lambda: None)  # type: ignore[arg-type]

    async def a_step() -> None:
        stop = asyncio.Event()
        running = asyncio.create_task(report.run(clock, stop, None))
        for _ in range(2000):  # (20 s at most: the load takes about one)
            if len(made_on_main) == 2 or running.done():
                break
            await asyncio.sleep(0.01)
        stop.set()
        while not running.done():  # (its step's sleep: woken by the clock moving on)
            clock.now_ = clock.now() + timedelta(seconds=1)
            await asyncio.sleep(0.01)
        await running

    asyncio.run(a_step())
    assert "market closed" in out.getvalue()
    assert made_on_main == [True, False]


def test_midnights_say_the_one_before_the_day_once_new_york_s_day_moves_on() -> None:
    """What a broker keeps of the days before (brokers.sim, brokers.ib): nothing is said
    on the first look, nor within a day (04:59 UTC is still the day before in New York),
    then the midnight that began the day before, once per new day."""
    m = Midnights()
    day = date(2027, 3, 2)
    assert m.passed(ny(day, 23, 59)) is None
    assert m.passed(datetime(2027, 3, 3, 4, 59, tzinfo=UTC)) is None
    assert m.passed(ny(date(2027, 3, 3), 0, 1)) == ny(day, 0)
    assert m.passed(ny(date(2027, 3, 3), 9, 30)) is None
    assert m.passed(ny(date(2027, 3, 6), 0, 0)) == ny(date(2027, 3, 5), 0)
