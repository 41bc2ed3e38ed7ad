"""A fake IB Gateway: the TWS API over TCP, driven by the simulated market.

Unmodified ``ib_async`` connects to it as to IB Gateway or TWS. It answers
what spreadwatch asks of IB, from the same :class:`brokers.sim.market.SimMarket`
as ``spreadwatch run``:

- the handshake (server version 176, within what ib_async 2.1 asks for),
  ``startApi`` (next order id and the managed account, a paper ``DU`` id by
  default), and the requests ``IB.connectAsync`` makes: positions, open and
  completed orders, account updates, executions;
- ``reqContractDetails`` for stocks and options of the market's underlyings
  (conIds are stable for the gateway's life, across connections); anything
  else gets IB's error 200;
- ``reqMarketDataType`` and ``reqMktData``: bid and ask with sizes
  (tickPrice) and the model Greeks (tickOptionComputation: implied vol,
  delta, price, underlying; gamma, vega and theta as IB's "not computed"
  sentinel -2) on each market step, about every 250 ms of the clock; live, or
  delayed (tick types 66/67, 83) when only delayed data is on (IB's errors
  354 and 10167); ``cancelMktData``;
- the market data line limit: the ``line_limit + 1``-th line gets error 101;
- ``reqCurrentTime``, ``reqIds``; a client id already connected gets 326.

Its account (positions) lives as long as the gateway, across client
connections, as with IB. Orders and executions come next (issue 5).

Faults, for tests and for trying failure handling by hand: :meth:`drop`
(every connection closed), :meth:`say` (an error code to every client, e.g.
1100/1101/1102), ``bad_quotes`` (bid and ask sent as -1, then NaN),
``delayed_only``.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from datetime import UTC, date
from decimal import Decimal

from brokers.ib.wire import API_PREFIX, HEADER, Reader, WireError, encode
from brokers.sim.market import SimMarket
from rules.model import Right
from service.logs import get_logger
from service.ports import Clock, LegKey

_log = get_logger("spreadwatch.fake_gateway")

SERVER_VERSION = 176
MIN_CLIENT_VERSION = 157
TICK_SECONDS = 0.25
SIZE = 10  # contracts quoted each side

# tick types (https://interactivebrokers.github.io/tws-api/tick_types.html)
BID, ASK, LAST = 1, 2, 4
DELAYED_BID, DELAYED_ASK, DELAYED_LAST = 66, 67, 68
MODEL_OPTION, DELAYED_MODEL_OPTION = 13, 83
LIVE, FROZEN, DELAYED, DELAYED_FROZEN = 1, 2, 3, 4
NOT_COMPUTED = -2.0


@dataclass(frozen=True)
class Instrument:
    """What a conId stands for: the stock, or one of its options."""

    con_id: int
    symbol: str
    sec_type: str  # STK | OPT
    expiry: date | None = None
    right: Right | None = None
    strike: Decimal | None = None

    @property
    def leg(self) -> LegKey:
        assert self.expiry is not None
        assert self.right is not None
        assert self.strike is not None
        return LegKey(self.symbol, self.expiry, self.right, self.strike)

    def contract_fields(self) -> list[object]:
        """conId .. tradingClass, as messages that carry a contract list them."""
        if self.sec_type == "STK":
            return [self.con_id, self.symbol, "STK", "", 0.0, "", "", "SMART", "ARCA", "USD",
                    self.symbol, self.symbol]  # fmt: skip
        return [
            self.con_id, self.symbol, "OPT", f"{self.expiry:%Y%m%d}", self.strike,
            self.right.value if self.right else "", "100", "SMART", "", "USD",
            self.local_symbol(), self.symbol,
        ]  # fmt: skip

    def local_symbol(self) -> str:
        if self.sec_type == "STK":
            return self.symbol
        assert self.strike is not None
        assert self.right is not None
        strike = int(self.strike * 1000)
        return f"{self.symbol:<6}{self.expiry:%y%m%d}{self.right.value}{strike:08d}"


@dataclass(eq=False)
class _Session:
    writer: asyncio.StreamWriter
    client_id: int | None = None
    data_type: int = LIVE
    lines: dict[int, Instrument] = field(default_factory=dict)  # reqId -> what it streams

    def send(self, *fields: object) -> None:
        if not self.writer.is_closing():
            self.writer.write(encode(*fields))


class FakeGateway:
    def __init__(
        self,
        market: SimMarket,
        clock: Clock,
        *,
        account: str = "DU1234567",
        line_limit: int = 100,
    ) -> None:
        self.market = market
        self.clock = clock
        self.account = account
        self.line_limit = line_limit
        self.delayed_only = False
        self.bad_quotes = False
        self.positions: dict[int, int] = {}  # conId -> contracts (short < 0)
        self._instruments: dict[tuple[object, ...], Instrument] = {}
        self._by_id: dict[int, Instrument] = {}
        self._sessions: set[_Session] = set()
        self._leg_lines: dict[LegKey, int] = {}  # subscribers per option leg
        self._next_order_id = 1
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()  # one per connection

    # Contracts --------------------------------------------------------------------------

    def instrument(
        self,
        symbol: str,
        sec_type: str,
        expiry: date | None = None,
        right: Right | None = None,
        strike: Decimal | None = None,
    ) -> Instrument | None:
        """The instrument for a contract description, None if the market has no such."""
        if symbol not in self.market.underlyings or sec_type not in ("STK", "OPT"):
            return None
        if sec_type == "OPT" and (expiry is None or right is None or strike is None):
            return None
        key = (symbol, sec_type, expiry, right, None if strike is None else strike.normalize())
        found = self._instruments.get(key)
        if found is None:
            found = Instrument(700_000 + len(self._instruments), symbol, sec_type, expiry, right,
                               strike)  # fmt: skip
            self._instruments[key] = found
            self._by_id[found.con_id] = found
        return found

    def hold(self, instrument: Instrument, quantity: int) -> None:
        """The account starts with ``quantity`` of ``instrument`` (short < 0)."""
        self.positions[instrument.con_id] = self.positions.get(instrument.con_id, 0) + quantity

    # Serving ----------------------------------------------------------------------------

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

    def drop(self) -> None:
        """Fault: every client connection is closed at once (a dropped socket)."""
        for s in list(self._sessions):
            s.writer.close()

    def say(self, code: int, message: str) -> None:
        """Fault: send an error/notice to every client (1100 lost, 1101/1102 restored...)."""
        for s in self._sessions:
            s.send(4, 2, -1, code, message, "")

    async def _drain(self) -> None:
        for s in list(self._sessions):
            with contextlib.suppress(ConnectionError):
                await s.writer.drain()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        session = _Session(writer)
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            if await reader.readexactly(len(API_PREFIX)) != API_PREFIX:
                return
            (size,) = HEADER.unpack(await reader.readexactly(HEADER.size))
            versions = (await reader.readexactly(size)).decode()
            low, _, high = versions.removeprefix("v").split(" ")[0].partition("..")
            if int(high or low) < MIN_CLIENT_VERSION or int(low) > SERVER_VERSION:
                return
            now = self.clock.now().astimezone(UTC)
            writer.write(encode(SERVER_VERSION, f"{now:%Y%m%d %H:%M:%S} UTC"))
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

    def _end(self, session: _Session) -> None:
        self._sessions.discard(session)
        for req_id in list(session.lines):
            self._cancel_line(session, req_id)

    # Requests ---------------------------------------------------------------------------

    def _handle(self, s: _Session, fields: list[str]) -> None:
        handler = _HANDLERS.get(int(fields[0]))
        if handler is None:
            _log.info("fake gateway: request not served", msg_id=fields[0])
            return
        handler(self, s, fields)

    def _start_api(self, s: _Session, fields: list[str]) -> None:
        client_id = int(fields[2])
        if any(o.client_id == client_id for o in self._sessions if o is not s):
            s.send(4, 2, -1, 326, f"Unable to connect as the client id {client_id} is already "
                   "in use. Retry with a unique client id.", "")  # fmt: skip
            s.writer.close()
            return
        s.client_id = client_id
        s.send(9, 1, self._next_order_id)
        s.send(15, 1, self.account)

    def _positions(self, s: _Session, fields: list[str]) -> None:
        for con_id, quantity in self.positions.items():
            if quantity:
                ins = self._by_id[con_id]
                cf = ins.contract_fields()
                # position: account, conId .. multiplier, exchange, currency, localSymbol,
                # tradingClass (no primary exchange), position, average cost
                s.send(61, 3, self.account, *cf[:7], cf[7], cf[9], cf[10], cf[11], quantity, 0.0)
        s.send(62, 1)

    def _open_orders(self, s: _Session, fields: list[str]) -> None:
        s.send(53, 1)

    def _completed_orders(self, s: _Session, fields: list[str]) -> None:
        s.send(102)

    def _account_updates(self, s: _Session, fields: list[str]) -> None:
        if fields[2] == "1":
            s.send(54, 1, self.account)

    def _account_updates_multi(self, s: _Session, fields: list[str]) -> None:
        s.send(74, 1, int(fields[2]))

    def _executions(self, s: _Session, fields: list[str]) -> None:
        s.send(55, 1, int(fields[2]))

    def _current_time(self, s: _Session, fields: list[str]) -> None:
        s.send(49, 1, int(self.clock.now().timestamp()))

    def _ids(self, s: _Session, fields: list[str]) -> None:
        s.send(9, 1, self._next_order_id)

    def _market_data_type(self, s: _Session, fields: list[str]) -> None:
        s.data_type = int(fields[2])

    def _describe(self, fields: list[str], at: int) -> Instrument | None:
        """The instrument of the 12 contract fields starting at ``fields[at]``."""
        con_id, symbol, sec_type, expiry, strike, right = fields[at : at + 6]
        if con_id not in ("", "0"):
            return self._by_id.get(int(con_id))
        try:
            return self.instrument(
                symbol,
                sec_type,
                date.fromisoformat(f"{expiry[:4]}-{expiry[4:6]}-{expiry[6:8]}") if expiry else None,
                Right(right[:1]) if right else None,
                Decimal(strike) if strike else None,
            )
        except ValueError:
            return None

    def _contract_details(self, s: _Session, fields: list[str]) -> None:
        req_id = int(fields[2])
        ins = self._describe(fields, 3)
        if ins is None:
            s.send(4, 2, req_id, 200, "No security definition has been found for the request", "")
            return
        option = ins.sec_type == "OPT"
        last = f"{ins.expiry:%Y%m%d} 16:00 US/Eastern" if option else ""
        s.send(
            10, req_id, ins.symbol, ins.sec_type, last, ins.strike or 0.0,
            ins.right.value if ins.right else "", "SMART", "USD", ins.local_symbol(),
            ins.symbol, ins.symbol, ins.con_id, 0.01 if option else 0.0001,
            "100" if option else "", "LMT,MKT", "SMART,CBOE", 1,
            self._by_key_stock(ins.symbol) if option else 0, ins.symbol,
            "" if option else "ARCA", f"{ins.expiry:%Y%m}" if option else "", "", "", "",
            "US/Eastern", "", "", "", "", 0, 1, ins.symbol, "STK" if option else "", "", "",
            "", 1, 1, 1,
        )  # fmt: skip
        s.send(52, 1, req_id)

    def _by_key_stock(self, symbol: str) -> int:
        stock = self.instrument(symbol, "STK")
        assert stock is not None
        return stock.con_id

    def _market_data(self, s: _Session, fields: list[str]) -> None:
        req_id = int(fields[2])
        ins = self._describe(fields, 3)
        if ins is None:
            s.send(4, 2, req_id, 200, "No security definition has been found for the request", "")
            return
        lines = sum(len(o.lines) for o in self._sessions)
        if lines >= self.line_limit:
            s.send(4, 2, req_id, 101, f"Max number of tickers has been reached ({self.line_limit})",
                   "")  # fmt: skip
            return
        if self.delayed_only:
            if s.data_type in (LIVE, FROZEN):
                s.send(4, 2, req_id, 354, "Requested market data is not subscribed. Delayed "
                       "market data is available.", "")  # fmt: skip
                return
            s.send(4, 2, req_id, 10167, "Requested market data is not subscribed. Displaying "
                   "delayed market data.", "")  # fmt: skip
        s.lines[req_id] = ins
        s.send(58, 1, req_id, DELAYED if self.delayed_only else LIVE)
        if ins.sec_type == "OPT":
            leg = ins.leg
            if not self._leg_lines.get(leg):
                self.market.subscribe(leg)
            self._leg_lines[leg] = self._leg_lines.get(leg, 0) + 1
            self._quote_option(s, req_id, ins)
        else:
            self._quote_stock(s, req_id, ins)

    def _cancel_market_data(self, s: _Session, fields: list[str]) -> None:
        self._cancel_line(s, int(fields[2]))

    def _cancel_line(self, s: _Session, req_id: int) -> None:
        ins = s.lines.pop(req_id, None)
        if ins is None or ins.sec_type != "OPT":
            return
        leg = ins.leg
        self._leg_lines[leg] -= 1
        if not self._leg_lines[leg]:
            del self._leg_lines[leg]
            self.market.unsubscribe(leg)

    # Streaming --------------------------------------------------------------------------

    def tick(self) -> None:
        """Move the market to the clock's now and send each line what changed."""
        updates = {u.leg: u for u in self.market.step(self.clock.now())}
        for s in list(self._sessions):
            for req_id, ins in s.lines.items():
                if ins.sec_type == "STK":
                    self._quote_stock(s, req_id, ins)
                elif ins.leg in updates:
                    self._quote_option(s, req_id, ins)

    def _quote_option(self, s: _Session, req_id: int, ins: Instrument) -> None:
        q = self.market.quote(ins.leg, self.market.now)
        delayed = self.delayed_only
        bid_t, ask_t = (DELAYED_BID, DELAYED_ASK) if delayed else (BID, ASK)
        bid, ask = (-1.0, -1.0) if self.bad_quotes else (q.bid, q.ask)
        s.send(1, 6, req_id, bid_t, bid, SIZE, 0)
        s.send(1, 6, req_id, ask_t, ask, SIZE, 0)
        model = DELAYED_MODEL_OPTION if delayed else MODEL_OPTION
        price = (q.bid + q.ask) / 2 if q.bid is not None and q.ask is not None else -1.0
        s.send(
            21, req_id, model, 1, self.market.vol(ins.symbol),
            NOT_COMPUTED if q.delta is None else q.delta, price, 0.0,
            NOT_COMPUTED, NOT_COMPUTED, NOT_COMPUTED,
            -1.0 if q.underlying_price is None else q.underlying_price,
        )  # fmt: skip

    def _quote_stock(self, s: _Session, req_id: int, ins: Instrument) -> None:
        spot = Decimal(str(round(self.market.spot(ins.symbol), 2)))
        delayed = self.delayed_only
        bid_t, ask_t, last_t = (
            (DELAYED_BID, DELAYED_ASK, DELAYED_LAST) if delayed else (BID, ASK, LAST)
        )
        s.send(1, 6, req_id, bid_t, spot - Decimal("0.01"), 100, 0)
        s.send(1, 6, req_id, ask_t, spot + Decimal("0.01"), 100, 0)
        s.send(1, 6, req_id, last_t, spot, 100, 0)


_HANDLERS = {
    71: FakeGateway._start_api,
    61: FakeGateway._positions,
    5: FakeGateway._open_orders,
    15: FakeGateway._open_orders,  # reqAutoOpenOrders: nothing to bind yet
    16: FakeGateway._open_orders,
    99: FakeGateway._completed_orders,
    6: FakeGateway._account_updates,
    76: FakeGateway._account_updates_multi,
    7: FakeGateway._executions,
    49: FakeGateway._current_time,
    8: FakeGateway._ids,
    59: FakeGateway._market_data_type,
    9: FakeGateway._contract_details,
    1: FakeGateway._market_data,
    2: FakeGateway._cancel_market_data,
}
