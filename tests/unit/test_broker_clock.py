"""The broker's time as the daemon's clock (brokers.ib.clock.BrokerClock), on a fake broker
whose time and this machine's clocks the test sets: the offset from an answer in whole
seconds, the rate two answers measure, the drift said once per episode, never backwards."""

from __future__ import annotations

import asyncio
import itertools
import json
import math
from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest

from brokers.ib.clock import DRIFT, EVERY, BrokerClock
from service import logs

WALL0 = datetime(2026, 12, 6, 15, 0, tzinfo=UTC).timestamp()  # a Sunday
IB_MONDAY = datetime(2026, 12, 7, 15, 0, tzinfo=UTC)  # Monday 10:00 New York


class Machine:
    """This machine's clocks and a broker whose time runs at ``rate`` from ``told`` (its
    answers in whole seconds, as IB's), each request taking ``trip`` seconds."""

    def __init__(self, broker_time: datetime | None = None, rate: float = 1.0) -> None:
        self.mono = 1000.0
        self.wall0 = WALL0
        self.broker0 = WALL0 if broker_time is None else broker_time.timestamp()
        self.rate = rate
        self.trip = 0.02
        self.asked = 0
        self.said: list[str] = []

    def wall(self) -> float:
        return self.wall0 + (self.mono - 1000.0)

    def broker(self) -> float:
        return self.broker0 + self.rate * (self.mono - 1000.0)

    async def ask(self) -> datetime:
        self.asked += 1
        self.mono += self.trip / 2
        answer = math.floor(self.broker())  # whole seconds, truncated
        self.mono += self.trip / 2
        return datetime.fromtimestamp(answer, UTC)

    def pass_(self, seconds: float) -> None:
        self.mono += seconds

    def clock(self) -> BrokerClock:
        return BrokerClock(
            self.ask, self.said.append, wall=self.wall, mono=self.mono_, pause=self.pause
        )

    def mono_(self) -> float:
        return self.mono

    async def pause(self, seconds: float) -> None:
        self.mono += seconds


def sync(clock: BrokerClock) -> None:
    asyncio.run(clock.sync())


def connect(clock: BrokerClock) -> None:
    """A connection's two answers, a quarter second apart."""
    asyncio.run(clock.connected())


@pytest.fixture
def log() -> StringIO:
    stream = StringIO()
    logs.configure(stream, json=True)
    return stream


def events(log: StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in log.getvalue().splitlines()]


def test_before_any_answer_it_is_the_wall_clock() -> None:
    m = Machine(IB_MONDAY)
    clock = m.clock()
    assert clock.now().timestamp() == pytest.approx(m.wall(), abs=1e-6)


def test_a_connection_sets_the_time_to_within_half_a_second_of_the_brokers() -> None:
    """IB answers in whole seconds: the time is taken in the middle of the second named,
    so the clock is never more than half a second (and a round trip) from the broker's."""
    m = Machine(IB_MONDAY + timedelta(seconds=0.9))
    clock = m.clock()
    connect(clock)
    assert m.asked == 2
    assert clock.speed == 1.0
    assert abs(clock.now().timestamp() - m.broker()) <= 0.5 + m.trip
    m.pass_(30)
    assert abs(clock.now().timestamp() - m.broker()) <= 0.5 + m.trip


def test_a_broker_at_the_wall_rate_keeps_rate_one_and_makes_no_jitter() -> None:
    """Answers differ from the wall by up to a second (whole seconds): the rate stays
    the wall's, and the time is not moved while the answers agree with it."""
    m = Machine(datetime.fromtimestamp(WALL0 + 0.3, UTC))
    clock = m.clock()
    connect(clock)
    before = clock.now().timestamp() - m.mono
    for gap in (0.5, 1, 2, 4, 8, 16, 32, EVERY, EVERY):
        m.pass_(gap)
        sync(clock)
        assert clock.speed == 1.0
        assert clock.now().timestamp() - m.mono == pytest.approx(before, abs=1e-6)
    assert abs(clock.now().timestamp() - m.broker()) <= 0.5 + m.trip
    assert m.said == []


def test_a_fast_broker_is_followed_from_its_connection(log: StringIO) -> None:
    """A fake gateway at --speed 500: the connection's two answers measure the rate;
    from then on the clock advances with the broker's, and the rate is said once."""
    m = Machine(IB_MONDAY, rate=500)
    clock = m.clock()
    connect(clock)
    assert clock.speed == pytest.approx(500, rel=0.01)
    assert [line for line in m.said if "times as fast" in line] == [
        f"CLOCK: IB's time runs {clock.speed:.3g} times as fast as this machine's (a fake "
        "gateway's --speed?); the daemon follows it\n"
    ]
    for gap in (0.5, 1, 2, 4, 8):
        m.pass_(gap)
        sync(clock)
        assert abs(clock.now().timestamp() - m.broker()) < 1 + 500 * m.trip
    assert clock.speed == pytest.approx(500, rel=0.001)  # (measured over 15 s by now)
    assert len([line for line in m.said if "times as fast" in line]) == 1
    assert [e["event"] for e in events(log)].count("clock.rate") == 1


def test_a_slow_answer_bounds_the_time_but_does_not_measure_the_rate() -> None:
    """A reply that took a second (the daemon's loop busy with a flood of quotes from a
    fast fake) says only that the broker's time was within that second: the clock keeps
    its rate and stays within the bounds."""
    m = Machine(IB_MONDAY, rate=500)
    clock = m.clock()
    connect(clock)
    rate = clock.speed
    m.pass_(4)
    m.trip = 1.0
    sync(clock)
    assert clock.speed == rate
    assert abs(clock.now().timestamp() - m.broker()) <= 1 + 500 * m.trip


def test_a_large_offset_is_said_once_per_episode(log: StringIO) -> None:
    m = Machine(IB_MONDAY)  # 24 h ahead of the wall
    clock = m.clock()
    connect(clock)
    for _ in range(3):
        m.pass_(EVERY)
        sync(clock)
    assert m.said == [
        "CLOCK: IB's time is 1 day ahead of this machine's; the daemon runs on IB's time\n"
    ]
    drift = [e for e in events(log) if e["event"] == "clock.drift"]
    assert len(drift) == 1
    assert drift[0]["level"] == "warning"
    assert drift[0]["offset_s"] == pytest.approx(86400.5, abs=0.1)
    m.broker0 = m.wall0  # the broker's clock set right (a new connection): the episode ends
    connect(clock)
    assert [e["event"] for e in events(log)][-1] == "clock.drift_ended"
    m.broker0 = m.wall0 - 3600 * 2 - 300  # and a new one begins: said again
    connect(clock)
    assert m.said[-1] == (
        "CLOCK: IB's time is 2 h 5 min behind this machine's; the daemon runs on IB's time\n"
    )


@pytest.mark.parametrize("offset", [0.0, 0.9, 1.9, DRIFT - 0.6])
def test_an_offset_within_a_few_seconds_is_not_said(offset: float) -> None:
    """Within a few seconds (the answers themselves are whole seconds) nothing is said."""
    m = Machine(datetime.fromtimestamp(WALL0 + offset, UTC))
    clock = m.clock()
    connect(clock)
    m.pass_(EVERY)
    sync(clock)
    assert m.said == []
    assert not clock.drifting


def test_the_time_never_runs_backwards_on_one_connection() -> None:
    """An answer behind what the clock already said (it ran a little fast) holds it still
    until the broker's time catches up."""
    m = Machine(IB_MONDAY, rate=500)
    clock = m.clock()
    connect(clock)
    m.rate, m.broker0 = 400, m.broker() - 400 * (m.mono - 1000.0)  # slower from here on
    m.pass_(2.0)
    ahead = clock.now()
    assert ahead.timestamp() > m.broker() + 100
    sync(clock)
    assert clock.now() >= ahead
    m.pass_(1.0)
    assert clock.now() > ahead


def test_a_new_connection_takes_its_time_as_it_is_and_learns_the_rate_again() -> None:
    """After a reconnect the gateway may be another (a fake gateway restarted earlier in
    time, at another speed): its time is taken, even behind, and its rate measured."""
    m = Machine(IB_MONDAY, rate=500)
    clock = m.clock()
    connect(clock)
    m.broker0, m.rate = WALL0 - 86400 - (m.mono - 1000.0), 1.0
    connect(clock)
    assert clock.speed == 1.0
    assert abs(clock.now().timestamp() - m.broker()) <= 0.5 + m.trip


def test_keep_asks_soon_after_connecting_then_at_doubling_intervals() -> None:
    """A connection's two answers a quarter second apart, then 0.5 s later, 1 s ... at
    most a minute apart."""

    async def main() -> list[float]:
        asked: list[float] = []
        loop = asyncio.get_running_loop()
        t0 = loop.time()

        async def ask() -> datetime:
            asked.append(loop.time() - t0)
            return datetime.now(UTC)

        clock = BrokerClock(ask, mono=loop.time)
        await clock.connected()
        keeping = asyncio.create_task(clock.keep(lambda: True))
        await asyncio.sleep(1.6)
        keeping.cancel()
        return asked

    asked = asyncio.run(main())
    gaps = [b - a for a, b in itertools.pairwise(asked)]
    assert [round(g * 4) / 4 for g in gaps] == [0.25, 0.5, 1.0]


def test_a_failed_request_is_logged_and_asked_again(log: StringIO) -> None:
    async def main() -> int:
        calls = 0

        async def ask() -> datetime:
            nonlocal calls
            calls += 1
            if calls == 3:
                raise TimeoutError("no answer")
            return datetime.now(UTC)

        clock = BrokerClock(ask)
        await clock.connected()
        keeping = asyncio.create_task(clock.keep(lambda: True))
        await asyncio.sleep(1.6)
        keeping.cancel()
        return calls

    assert asyncio.run(main()) >= 4
    failed = [e for e in events(log) if e["event"] == "clock.sync_failed"]
    assert [e["detail"] for e in failed] == ["TimeoutError: no answer"]
