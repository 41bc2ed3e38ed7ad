"""The connection: connect and the paper guard, reconnect with backoff, resume
after a gap, the request pacing, and IB's time (when the broker keeps a
:class:`brokers.ib.clock.BrokerClock`: asked at each connect, kept while it runs).

When the socket drops, every subscribed leg is sent as having no quote (so
nothing acts on data from before the gap), then it reconnects with backoff,
resubscribes, and sends the executions IB has for its orders (the store applies
each once, by execution id).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import datetime

from ib_async import IB, LimitOrder, Stock
from tenacity import AsyncRetrying, retry_if_exception_type, wait_exponential_jitter

from brokers.ib.clock import BrokerClock
from brokers.ib.codes import CLIENT_ID_IN_USE, DELAYED, LIVE, READ_ONLY
from brokers.ib.market_data import MarketDataMixin
from brokers.ib.orders import OrdersMixin
from rules.model import Quote
from service.errors import BrokerRefused, BrokerUnavailable, ClientIdInUse, InputError
from service.logs import DATA_STALE, get_logger
from service.ports import EventSink, LegUpdate, ProblemSink, QuoteSink
from service.settings import IbSettings

_log = get_logger("spreadwatch.ib")

PAPER_PREFIXES = ("DU", "DF")
PACE_REQUESTS, PACE_WINDOW = 8, 0.2  # at most 8 requests in any 0.2 s
# what a dropped connection raises, connecting or in a request (ib_async fails a request's
# future with ConnectionError("Socket disconnect") when the socket closes under it)
DROPPED = (OSError, ConnectionError, TimeoutError, BrokerUnavailable)
RESUME_RETRY = 1.0  # seconds before connecting again after a resume cut short
WRITE_PROBE = Stock("SPY", "SMART", "USD")  # a what-if's contract: any answer but 321 will do
READ_ONLY_FIX = (
    "the gateway's API is read-only, and spreadwatch places, modifies and cancels orders: "
    'in IB Gateway, Configure > Settings > API > Settings, uncheck "Read-Only API" (TWS: '
    "File > Global Configuration > API > Settings), then start again"
)


def resume_failed(exc: BaseException) -> None:
    """A resume cut short by a dropped connection, said (the reconnect resumes again)."""
    _log.warning("ib.resume_failed", detail=f"{type(exc).__name__}: {exc}")


class NotPaper(BrokerRefused):
    """The account is a live one and live trading was not allowed."""


class ConnectionMixin(MarketDataMixin, OrdersMixin):
    def __init__(self, settings: IbSettings, ib: IB, now: Callable[[], datetime]) -> None:
        super().__init__(settings, ib, now)
        # IB's pacing: 50 messages a second. ib_async throttles in bursts (45 a second by
        # default), and two bursts a second apart can land in one second at IB. Smaller
        # bursts, more often: at most 6 windows x 8 = 48 in any second, 40/s on average.
        self.ib.client.MaxRequests = PACE_REQUESTS
        self.ib.client.RequestsInterval = PACE_WINDOW  # type: ignore[assignment]  # a float
        # An execution's time without a zone is UTC: IB writes "yyyymmdd-hh:mm:ss" (dash)
        # for UTC (its error 10314: "yyyymmdd-hh:mm:ss time is in UTC"; live accounts'
        # executions come so), else the zone's name follows ("... US/Eastern"). ib_async
        # reads a zone-less time in TimezoneTWS, unset: the host's zone (Decoder.execDetails;
        # ib_async issue 230), hours off on a host not on UTC.
        self.ib.TimezoneTWS = "UTC"
        self.reconnects = 0
        self._closing = False
        self.clock: BrokerClock | None = None  # IB's time, when this broker keeps it
        self._resuming = asyncio.Lock()  # one resume at a time (a reconnect's, 1101's)

    async def connect(self) -> None:
        """Connect and check the account (the paper guard)."""
        s = self.settings
        await self._open()
        accounts = self.ib.managedAccounts()
        account = s.account or (accounts[0] if len(accounts) == 1 else "")
        if not account or account not in accounts:
            self.ib.disconnect()
            raise InputError(
                f"ib.account: {s.account or '(unset)'}: the gateway manages "
                f"{', '.join(accounts) or 'no account'}; set ib.account to one of them"
            )
        if not account.startswith(PAPER_PREFIXES) and not s.allow_live:
            self.ib.disconnect()
            raise NotPaper(
                f"ib.account: {account} is not a paper account (paper ids start with DU): "
                "refusing to trade it; set ib.allow_live = true to allow a live account"
            )
        self.account = account
        await self._check_writable()
        self.ib.reqMarketDataType(DELAYED if s.market_data == "delayed" else LIVE)
        _log.info("ib.connected", account=account, server_version=self.ib.client.serverVersion())
        if self.clock is not None:  # (a reconnect's gateway may be another: asked afresh)
            await self._take_time(self.clock)

    async def _check_writable(self) -> None:
        """A read-only API (IB Gateway's default) is found at connect, before any decision:
        a what-if order (IB answers with the margin it would take; nothing is placed) is
        refused with 321 "...Read-Only mode" as every placeOrder is. Any other answer, or
        none within ``ib.timeout``, lets the connection go on."""
        s = self.settings
        refused: list[str] = []
        said = asyncio.Event()

        def on_error(req_id: int, code: int, message: str, *rest: object) -> None:
            if code == READ_ONLY and "read-only" in message.lower():
                refused.append(message)
                said.set()

        probe = LimitOrder("BUY", 1, 1.0, tif="DAY", account=self.account)
        self.ib.errorEvent += on_error
        asking = asyncio.ensure_future(self.ib.whatIfOrderAsync(WRITE_PROBE, probe))
        waiting = asyncio.ensure_future(said.wait())
        try:
            await asyncio.wait({asking, waiting}, timeout=s.timeout,
                               return_when=asyncio.FIRST_COMPLETED)  # fmt: skip
            answered = asking.done() or said.is_set()
        finally:
            self.ib.errorEvent -= on_error
            for task in (asking, waiting):
                task.cancel()
        if refused:
            self.ib.disconnect()
            raise BrokerRefused(f"IB at {s.host}:{s.port}: {READ_ONLY_FIX} ({READ_ONLY}: "
                                f"{refused[0]})")  # fmt: skip
        if not answered:
            _log.warning("ib.write_check_unanswered", detail="no answer to a what-if order")

    async def _take_time(self, clock: BrokerClock) -> None:
        """IB's time for ``clock``, at a connection; no answer is a BrokerUnavailable."""
        s = self.settings
        try:
            await clock.connected()
        except (TimeoutError, ConnectionError) as exc:
            self.ib.disconnect()
            lost = not isinstance(exc, TimeoutError)
            when = "before the connection was lost" if lost else f"within {s.timeout:g} s"
            raise BrokerUnavailable(
                f"IB at {s.host}:{s.port}: no answer to a request for its time {when} "
                "(ib.timeout): is the gateway logged in?"
            ) from exc

    async def _open(self) -> None:
        """The API connection; a gateway out of reach, or one refusing the client id (326,
        which IB says instead of completing the handshake), is a BrokerUnavailable of one
        line: where, and what to check."""
        s = self.settings
        where = f"IB at {s.host}:{s.port}"
        refused = asyncio.Event()

        def on_error(req_id: int, code: int, *rest: object) -> None:
            if code == CLIENT_ID_IN_USE:
                refused.set()

        self.ib.errorEvent += on_error
        opening = asyncio.ensure_future(
            self.ib.connectAsync(s.host, s.port, clientId=s.client_id, timeout=s.timeout)
        )
        waiting = asyncio.ensure_future(refused.wait())
        try:
            await asyncio.wait({opening, waiting}, return_when=asyncio.FIRST_COMPLETED)
            if refused.is_set():
                raise ClientIdInUse(
                    f"{where}: client id {s.client_id} is in use by another connection: stop "
                    "that client (another spreadwatch?) or set ib.client_id to another id"
                )
            await opening
        except (OSError, ConnectionError) as exc:
            why = "no answer" if isinstance(exc, TimeoutError) else "connection refused"
            if not isinstance(exc, (TimeoutError, ConnectionRefusedError)):
                why = " ".join(str(exc).split()) or type(exc).__name__
            raise BrokerUnavailable(
                f"{where}: cannot connect ({why}): is IB Gateway or TWS running there, with "
                "its API enabled on that port (ib.host, ib.port)?"
            ) from exc
        finally:
            self.ib.errorEvent -= on_error
            for task in (opening, waiting):
                task.cancel()
            if not opening.done() or opening.cancelled() or opening.exception() is not None:
                with contextlib.suppress(ConnectionError):  # (not connected after all)
                    self.ib.disconnect()

    async def run(
        self, quotes: QuoteSink, events: EventSink, problems: ProblemSink | None = None
    ) -> None:
        """Stream until cancelled; reconnect with backoff after a dropped connection. IB's
        time is asked again while it runs, when this broker keeps it. ``problems`` is told
        of each leg IB cannot serve."""
        self._problems = problems
        if self.clock is None:
            await self._stream(quotes, events)
            return
        async with asyncio.TaskGroup() as tg:
            keeping = tg.create_task(self.clock.keep(self.ib.isConnected), name="ib-clock")
            try:
                await self._stream(quotes, events)
            finally:
                keeping.cancel()

    async def _stream(self, quotes: QuoteSink, events: EventSink) -> None:
        self._quotes, self._events = quotes, events
        first = True  # the first start: the manager reconciles the orders itself
        while not self._closing:
            try:
                if not self.ib.isConnected():
                    async for attempt in AsyncRetrying(
                        retry=retry_if_exception_type(DROPPED),
                        wait=wait_exponential_jitter(multiplier=0.2, max=30.0),
                    ):
                        with attempt:
                            await self.connect()
                    self.reconnects += 1
                    _log.info("ib.reconnected", reconnects=self.reconnects)
                await self._resume(recheck=not first)
            except DROPPED as exc:  # dropped while resuming: connected again, with backoff
                if self._closing:
                    return
                resume_failed(exc)
                with contextlib.suppress(Exception):
                    self.ib.disconnect()
                self._gap("the connection to IB dropped while resuming")
                await asyncio.sleep(RESUME_RETRY)
                continue
            first = False
            gone = asyncio.Event()
            self.ib.disconnectedEvent += gone.set
            try:
                await gone.wait()
            finally:
                self.ib.disconnectedEvent -= gone.set
            if not self._closing:
                self._gap("the connection to IB dropped")

    async def _resume(self, recheck: bool = True) -> None:
        """After a (re)connect: the legs' lines again, and the executions of our orders that
        happened while no one listened. One at a time (a 1101 may come while another runs:
        the second waits, then does it afresh)."""
        async with self._resuming:
            await self._resume_now(recheck)

    async def _resume_now(self, recheck: bool) -> None:
        self._close_lines()  # lines from before: closed, and opened afresh
        self._blind = False
        self._farms_down.clear()  # (a new connection: IB says its farms' state afresh)
        for leg in await self._qualify(list(self._wanted)):  # (one unknown leg stops
            self._trouble(leg, self.unknown_reason(leg))  # no other)
        for leg in list(self._wanted):
            if leg in self._contracts:
                self._open_line(leg)
        await self._pass_missed_fills()
        if recheck:
            await self._recheck_orders()

    def _gap(self, why: str) -> None:
        """No leg has a usable quote until fresh data comes: said to the service, and
        whatever ticks were still on their way are dropped until then."""
        self._blind = True
        _log.warning(DATA_STALE, detail=why, legs=len(self._wanted))
        if self._quotes is not None and self._wanted:
            now = self._now()
            self._quotes([LegUpdate(leg, Quote(None, None, now)) for leg in self._wanted])

    def connected(self) -> bool:
        """Connected, and not in a gap IB announced (1100)."""
        return bool(self.ib.isConnected()) and not self._blind

    async def close(self) -> None:
        """Disconnect for good: ``run`` ends instead of reconnecting."""
        self._closing = True
        with contextlib.suppress(Exception):
            self.ib.disconnect()


async def ib_time(ib: IB, timeout: float) -> datetime:
    """IB's current time (``reqCurrentTime``: whole seconds, see :mod:`brokers.ib.clock`);
    TimeoutError after ``timeout`` seconds (ib_async's request has none: a connection lost
    meanwhile would leave it waiting for good)."""
    async with asyncio.timeout(timeout):
        return await ib.reqCurrentTimeAsync()
