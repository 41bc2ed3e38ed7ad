"""The fake gateway itself: it listens, speaks the handshake, keeps a session per
client connection and hands each request to its part; its faults."""

from __future__ import annotations

import asyncio
import contextlib

from brokers.ib.codes import (
    CONNECTIVITY_LOST,
    FARM_BROKEN,
    FARM_OK,
    HMDS_BROKEN,
    HMDS_OK,
    RESTORED_DATA_KEPT,
    RESTORED_DATA_LOST,
)
from brokers.ib.fake.account import AccountMixin
from brokers.ib.fake.base import Session, ib_time
from brokers.ib.fake.contracts import ContractsMixin
from brokers.ib.fake.done import DoneOrdersMixin
from brokers.ib.fake.market_data import MarketDataMixin
from brokers.ib.fake.versions import negotiate
from brokers.ib.wire import API_PREFIX, HEADER, Reader, WireError, encode
from brokers.sim.market import SimMarket
from service.logs import get_logger
from service.ports import Clock

_log = get_logger("spreadwatch.fake_gateway")

TICK_SECONDS = 0.25


FARMS_BROKEN = (
    (FARM_BROKEN, "Market data farm connection is broken:usopt"),
    (HMDS_BROKEN, "HMDS data farm connection is broken:ushmds"),
)
FARMS_OK = (
    (FARM_OK, "Market data farm connection is OK:usopt"),
    (HMDS_OK, "HMDS data farm connection is OK:ushmds"),
)


class FakeGateway(MarketDataMixin, DoneOrdersMixin, AccountMixin, ContractsMixin):
    """A fake IB Gateway on a simulated market, for trying spreadwatch's IB path and
    testing it (see :mod:`brokers.ib.fake`)."""

    def __init__(
        self,
        market: SimMarket,
        clock: Clock,
        *,
        account: str = "DU1234567",
        line_limit: int = 100,
    ) -> None:
        super().__init__(market, clock, account=account, line_limit=line_limit)
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()  # one per connection
        self._connections = 0  # how many there have been (each session's serial)
        # fault: the client's connection dropped when it sends one of these requests (by
        # message id, once each: 7 reqExecutions drops it in the middle of a resume)
        self.drop_on: set[int] = set()

    async def start(self, host: str = "127.0.0.1", port: int = 4002) -> int:
        """Listen; returns the port (useful with ``port=0``)."""
        self._server = await asyncio.start_server(self._serve, host, port)
        sock = self._server.sockets[0]
        return int(sock.getsockname()[1])

    async def run(self) -> None:
        """Step the market and stream quotes until cancelled."""
        while True:
            await self.clock.sleep(TICK_SECONDS)
            self.tick()
            await self._drain()

    async def close(self) -> None:
        """Stop listening, close every connection and wait for their handlers to end."""
        if self._server is not None:
            self._server.close()
        self.drop()
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=2)
        if self._server is not None:
            await self._server.wait_closed()
        if self.ledger is not None:
            self.ledger.close()

    def drop(self) -> None:
        """Fault: every client connection is closed at once (a dropped socket)."""
        for s in list(self._sessions):
            s.writer.close()

    def say(self, code: int, message: str) -> None:
        """Fault: send an error/notice to every client, and act as IB does for the
        connectivity codes: after 1100 (lost) no market data flows; 1102 (restored, data
        maintained) resumes it; 1101 (restored, data lost) resumes with every line gone, to
        be requested again; 2103 for the options farm (``...broken:usopt``) stops the
        option quotes until its 2104."""
        if code in (FARM_BROKEN, FARM_OK) and message.endswith(":usopt"):
            self.options_farm_down = code == FARM_BROKEN
        if code == CONNECTIVITY_LOST:
            self._paused = True
        elif code in (RESTORED_DATA_LOST, RESTORED_DATA_KEPT):
            self._paused = False
            if code == RESTORED_DATA_LOST:
                for s in self._sessions:
                    for req_id in list(s.lines):
                        self._cancel_line(s, req_id)
        for s in self._sessions:
            s.error(-1, code, message)

    async def flap_farms(self, seconds: float) -> None:
        """Fault (``--farm-flap``): every ``seconds`` (wall), the options' market data farm
        and the historical data farm break (2103, 2105: no option quotes), then are OK
        again (2104, 2106), as IB's farms do in its nightly resets or a network hiccup."""
        while True:
            for notices in (FARMS_BROKEN, FARMS_OK):
                await asyncio.sleep(seconds)
                for code, text in notices:
                    self.say(code, text)

    async def _drain(self) -> None:
        for s in list(self._sessions):
            with contextlib.suppress(ConnectionError):
                await s.writer.drain()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._connections += 1
        session = Session(writer, self._connections)
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            version = await self._handshake(reader, writer)
            if version is None:
                return
            session.version = version
            self._sessions.add(session)
            messages = Reader()
            while data := await reader.read(65536):
                for fields in messages.feed(data):
                    self._handle(session, fields)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, WireError, ValueError):
            pass
        finally:
            self._end(session)
            writer.close()
            if task is not None:
                self._tasks.discard(task)

    async def _handshake(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> int | None:
        """The client's ``API\\0`` and versions; the server's answer, the version both speak
        (:func:`brokers.ib.fake.versions.negotiate`) and its time. None for a client that
        is not one, or whose versions are all older than the gateway's."""
        if await reader.readexactly(len(API_PREFIX)) != API_PREFIX:
            return None
        (size,) = HEADER.unpack(await reader.readexactly(HEADER.size))
        version = negotiate((await reader.readexactly(size)).decode())
        if version is not None:
            writer.write(encode(version, ib_time(self.clock.now())))
        return version

    def _end(self, session: Session) -> None:
        if session in self._sessions:
            self.connection_said("disconnect", session)
        self._sessions.discard(session)
        for req_id in list(session.lines):
            self._cancel_line(session, req_id)

    def _nothing(self, s: Session, fields: list[str]) -> None:
        """A request IB answers with nothing (a cancel of a subscription)."""

    def _handle(self, s: Session, fields: list[str]) -> None:
        self.received.append(asyncio.get_running_loop().time())  # pacing, as IB watches it
        if int(fields[0]) in self.drop_on:
            self.drop_on.discard(int(fields[0]))
            s.writer.close()
            return
        handler = _HANDLERS.get(int(fields[0]))
        if handler is None:
            _log.info("fake_gateway.unserved", msg_id=fields[0])
            return
        handler(self, s, fields)


_HANDLERS = {
    71: FakeGateway._start_api,
    3: FakeGateway._place,
    4: FakeGateway._cancel,
    61: FakeGateway._positions,
    5: FakeGateway._open_orders,
    15: FakeGateway._open_orders,  # reqAutoOpenOrders: nothing to bind yet
    16: FakeGateway._open_orders,
    99: FakeGateway._completed_orders,
    6: FakeGateway._account_updates,
    76: FakeGateway._account_updates_multi,
    62: FakeGateway._account_summary,
    63: FakeGateway._nothing,  # cancelAccountSummary
    78: FakeGateway._option_chains,
    7: FakeGateway._executions,
    49: FakeGateway._current_time,
    8: FakeGateway._ids,
    59: FakeGateway._market_data_type,
    9: FakeGateway._contract_details,
    1: FakeGateway._market_data,
    2: FakeGateway._cancel_market_data,
}
