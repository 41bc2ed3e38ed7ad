"""IB's time as the daemon's clock (the service's :class:`service.ports.Clock`).

Theory of operation. With a live broker the market's time is the broker's, not
this machine's: the daemon asks IB for it (``reqCurrentTime``) and runs on it.
IB answers in whole seconds: the TWS API's ``EClient::reqCurrentTime`` asks for
"TWS's current time", ``EWrapper::currentTime(long time)`` gives it as seconds
since the epoch ("TWS is synchronized with the server (not local computer)
using NTP"), and ib_async's ``Wrapper.currentTime(time: int)`` makes it a
``datetime.fromtimestamp(time, tz)``. An answer names the second the broker's
time was in at some instant between the request and the reply.

At each connection (the first, and after a reconnect: the gateway may be
another) the clock asks before market data flows: the first answer sets the
time (the middle of its second, at the middle of the round trip), and answers
:data:`FIRST` apart measure its rate, from two with short round trips
(:data:`CLEAN`). The rate is the wall's (1) unless answers disagree with that
by more than their resolution allows (:data:`RESOLUTION`); then it is what they
measure: a real IB runs at 1, ``spreadwatch fake-gateway --speed 500`` 500
times as fast, and the daemon follows it. Between answers the
clock runs on this machine's monotonic clock at that rate. It asks again at
doubling intervals up to :data:`EVERY`: an answer bounds the broker's time
(the second it names, to the reply plus the round trip at the rate), and the
clock is set to the middle of those bounds only when it has left them, so the
answers' whole seconds make no jitter; one with a short round trip
(:data:`CLEAN`) measures the rate again, over the time since the connection's
first. Within one connection the time never runs backwards (an answer behind
what was said holds it still until the broker's time catches up).

The clock is checked against the wall's: a difference over :data:`DRIFT` (a few
seconds: never one within the answers' resolution) is said once per episode, as
a log line and a human line, and so is a rate other than 1. The daemon runs on
IB's time all the same: its decisions are the market's.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from service.logs import get_logger

_log = get_logger("spreadwatch.ib")

RESOLUTION = 2.0  # seconds: two whole-second answers, each up to 1 s short, and round trips
DRIFT = 5.0  # seconds between IB's time and the wall's that are said (> RESOLUTION)
FIRST = 0.25  # seconds after a connection's first answer to ask again
EVERY = 60.0  # seconds between answers, at most
CLEAN = 0.05  # seconds: a round trip short enough for its answer to measure the rate
TRIES = 4  # answers after a connection's first, at most, to measure its rate


class BrokerClock:
    """Market time from the broker's answers (see the module's theory of operation).

    ``ask`` requests the broker's time; ``say`` gets the human lines (drift, rate);
    ``wall``, ``mono`` and ``pause`` are this machine's clocks and sleep, given in tests."""

    def __init__(
        self,
        ask: Callable[[], Awaitable[datetime]],
        say: Callable[[str], object] = lambda line: None,
        *,
        broker: str = "IB",
        wall: Callable[[], float] = time.time,
        mono: Callable[[], float] = time.monotonic,
        pause: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._ask = ask
        self._say = say
        self._broker = broker
        self._wall = wall
        self._mono = mono
        self._pause = pause
        self._lock = asyncio.Lock()  # one request at a time (ib_async keeps one future for it)
        # The model: the broker's time (epoch seconds) ``_time`` at the monotonic instant
        # ``_at``, running at ``_rate``. Before any answer: the wall clock.
        self._at = mono()
        self._time = wall()
        self._rate = 1.0
        self._base: tuple[float, float] | None = None  # the rate's: a first clean answer
        self._measured = False  # the rate measured on this connection
        self._latest = self._time  # the latest time said: never goes back
        self._answers = 0  # answers on this connection
        self._interval = FIRST
        self._due = self._at  # when to ask again
        self.drifting = False  # in a drift episode (said once)
        self.racing = False  # at a rate other than 1 (said once)

    @property
    def speed(self) -> float:
        """Broker seconds per wall second: 1, or what its answers measured."""
        return self._rate

    def now(self) -> datetime:
        t = max(self._estimate(self._mono()), self._latest)
        self._latest = t
        return datetime.fromtimestamp(t, UTC)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(seconds, 0.0) / self._rate)

    async def connected(self) -> None:
        """A new connection (the first, or a reconnect: perhaps to another gateway): its
        time, then answers :data:`FIRST` apart until two with short round trips have
        measured its rate (a few at most); then the asking schedule starts over. Before
        its market data flows, so the round trips are short."""
        self._answers, self._base, self._measured = 0, None, False
        self._interval = FIRST
        await self.sync()
        for _ in range(TRIES):
            await self._pause(FIRST)
            await self.sync()
            if self._measured:
                break

    async def sync(self) -> None:
        """Ask the broker's time and set the clock by it; say a drift or a rate once."""
        async with self._lock:
            sent = self._mono()
            answer = await self._ask()
            got, wall = self._mono(), self._wall()
        self._set(sent, got, answer.timestamp(), wall)

    def _set(self, sent: float, got: float, whole: float, wall: float) -> None:
        """The answer ``whole`` (the second the broker's time was in when it answered,
        somewhere between ``sent`` and ``got``)."""
        mid, middle, trip = (sent + got) / 2, whole + 0.5, got - sent
        if trip <= CLEAN:  # (a slow answer's instant is too loose to measure a rate by)
            if self._base is None:
                self._base = (mid, middle)
            elif mid - self._base[0] >= FIRST / 2:
                self._rate = _rate(mid - self._base[0], middle - self._base[1], self._rate)
                self._measured = True
        if self._answers == 0:  # a new connection's time is taken as it is
            self._rate, self._at = 1.0, mid
            self._time = self._latest = middle  # (even behind: another gateway's time)
        else:
            # The answer bounds the broker's time at ``got``: kept if the model is within
            # those bounds, else the middle of them.
            low, high = whole, whole + 1 + self._rate * trip
            expected = self._estimate(got)
            self._at = got
            self._time = expected if low <= expected <= high else (low + high) / 2
        self._answers += 1
        self._due = got + self._interval
        self._interval = min(self._interval * 2, EVERY)
        self._check(self._estimate(got) - wall)

    def _check(self, offset: float) -> None:
        broker = self._broker
        if abs(offset) > DRIFT and not self.drifting:
            self.drifting = True
            _log.warning(
                "clock.drift",
                broker=broker,
                offset_s=round(offset, 1),
                broker_time=self.now().isoformat(),
            )
            way = "ahead of" if offset > 0 else "behind"
            self._say(
                f"CLOCK: {broker}'s time is {_span(abs(offset))} {way} this machine's; "
                f"the daemon runs on {broker}'s time\n"
            )
        elif abs(offset) <= DRIFT - RESOLUTION and self.drifting:
            self.drifting = False
            _log.info("clock.drift_ended", broker=broker, offset_s=round(offset, 1))
        racing = self._rate != 1.0
        if racing and not self.racing:
            _log.warning("clock.rate", broker=broker, rate=round(self._rate, 2))
            self._say(
                f"CLOCK: {broker}'s time runs {self._rate:.3g} times as fast as this "
                "machine's (a fake gateway's --speed?); the daemon follows it\n"
            )
        self.racing = racing

    async def keep(self, ready: Callable[[], bool]) -> None:
        """Ask again when due, until cancelled (while ``ready``: connected); a request
        that fails is logged and asked again at the next turn."""
        while True:
            await asyncio.sleep(min(max(self._due - self._mono(), 0.05), 1.0))
            if self._mono() < self._due or not ready():
                continue
            try:
                await self.sync()
            except (TimeoutError, ConnectionError, OSError) as exc:
                self._due = self._mono() + self._interval
                _log.warning("clock.sync_failed", detail=f"{type(exc).__name__}: {exc}")

    def _estimate(self, at: float) -> float:
        return self._time + self._rate * (at - self._at)


def _rate(elapsed: float, told: float, rate: float) -> float:
    """The rate two answers ``elapsed`` wall seconds apart, ``told`` broker seconds apart,
    measure: the wall's (1) when they agree with it within their resolution; ``rate`` (the
    one before) when the broker's went backwards."""
    if abs(told - elapsed) <= RESOLUTION:
        return 1.0
    if told <= 0:  # backwards: not a rate (the next answers say again)
        return rate
    return told / elapsed


def _span(seconds: float) -> str:
    """``3 days 2 h``, ``2 h 5 min``, ``4 min 10 s``, ``7 s``: the two largest units."""
    left = timedelta(seconds=round(seconds))
    days, rest = left.days, left.seconds
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [(days, "day" if days == 1 else "days"), (hours, "h"), (minutes, "min"), (secs, "s")]
    while parts and parts[0][0] == 0:
        parts.pop(0)
    return " ".join(f"{n} {unit}" for n, unit in parts[:2] if n) or "0 s"
