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
  (tickPrice, then tickSize) and the bid, ask and model Greeks
  (tickOptionComputation: implied vol, delta, price, underlying; gamma, vega
  and theta as IB's "not computed" sentinel -2) on each market step, about
  every 250 ms of the clock; live, or delayed (tick types 66/67, 69/70,
  80/81/83) when only delayed data is on (IB's errors
  354 and 10167); ``cancelMktData``;
- the market data line limit: the ``line_limit + 1``-th line gets error 101;
- ``reqCurrentTime``, ``reqIds``; a client id already connected gets 326.

- ``placeOrder`` of combo (BAG) limit orders by conId: kept and filled by a
  :class:`brokers.sim.broker.SimBroker` against the market's quotes (when the
  limit covers the natural debit), with ``openOrder``, ``orderStatus``,
  ``execDetails`` for the BAG and for each leg, and ``commissionReport``;
  a ``placeOrder`` of an order id already working modifies its limit;
  ``cancelOrder`` (IB's 202); ``reject`` makes the next orders fail (201);
- ``reqOpenOrders`` / ``reqAllOpenOrders``, ``reqExecutions`` and
  ``reqPositions`` answer from what the gateway keeps.

Its account, orders and executions live as long as the gateway, across
client connections, as with IB: a client that dies and comes back finds the
truth there. Events that happen while no client is connected are not sent
(IB's are not either); ``reqExecutions`` tells them.

Faults, for tests and for trying failure handling by hand: :meth:`drop`
(every connection closed), :meth:`say` (an error code to every client, e.g.
1100/1101/1102), ``bad_quotes`` (option bids and asks sent as -1 or NaN),
``delayed_only``, ``reject`` (every new order rejected with 201),
``line_limit``, and ``broker.fill_size`` (partial fills).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from dataclasses import dataclass, field
from datetime import UTC, date, timedelta
from decimal import Decimal

from brokers.ib.wire import API_PREFIX, HEADER, Reader, WireError, encode
from brokers.sim.broker import COMMISSION_PER_CONTRACT, OrderRefused, SimBroker
from brokers.sim.market import SimMarket
from rules.model import Position, Right
from service.logs import get_logger
from service.ports import Action, Clock, ComboLeg, ComboOrder, Execution, LegKey, OrderEvent

_log = get_logger("spreadwatch.fake_gateway")

SERVER_VERSION = 176
MIN_CLIENT_VERSION = 157
TICK_SECONDS = 0.25
SIZE = 10  # contracts quoted each side

# tick types (https://interactivebrokers.github.io/tws-api/tick_types.html)
BID, ASK, LAST = 1, 2, 4
DELAYED_BID, DELAYED_ASK, DELAYED_LAST = 66, 67, 68
BID_SIZE, ASK_SIZE, DELAYED_BID_SIZE, DELAYED_ASK_SIZE = 0, 3, 69, 70
BID_OPTION, ASK_OPTION, MODEL_OPTION = 10, 11, 13
DELAYED_BID_OPTION, DELAYED_ASK_OPTION, DELAYED_MODEL_OPTION = 80, 81, 83
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
class _Order:
    """An order as IB knows it: ids, its BAG legs by conId, status words."""

    client_id: int
    order_id: int
    perm_id: int
    ref: str
    action: str  # BUY | SELL (the combo)
    quantity: int
    limit: Decimal
    legs: list[tuple[Instrument, int, str]]  # instrument, ratio, action
    status: str = "PendingSubmit"
    filled: int = 0
    paid: Decimal = Decimal(0)
    last_price: Decimal = Decimal(0)


@dataclass(eq=False)
class _Session:
    writer: asyncio.StreamWriter
    client_id: int | None = None
    data_type: int = LIVE
    positions: bool = False  # subscribed to position updates (reqPositions)
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
        self._paused = False  # after 1100: no market data until 1101/1102
        self.frozen = False  # fault: lines open as frozen data (type 2)
        self.greeks = True  # False: option Greeks are no longer sent
        self.received: list[float] = []  # when each client message came (loop time)
        self.bad_quotes = ""  # fault: "-1" or "nan" sent for every option bid and ask
        self.broker = SimBroker(latency=timedelta(0))
        self.reject: str | None = None  # fault: the reason every new order is rejected with
        self._orders: dict[str, _Order] = {}  # orderRef -> the IB side of a broker order
        self._perm_ids = 1_000_000
        self._fills: list[tuple[_Order, Execution, list[tuple[Instrument, str, Decimal]]]] = []
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
        """The account starts with ``quantity`` of option ``instrument`` (short < 0)."""
        self.broker.hold(instrument.leg, quantity)

    def hold_spreads(self, position: Position, spreads: int) -> None:
        """The account starts with ``spreads`` of ``position`` (as SimBroker.hold_spreads)."""
        if position.underlying not in self.market.underlyings:
            raise ValueError(f"no underlying {position.underlying} in this market")
        self.broker.hold_spreads(position, spreads)

    def _option(self, leg: LegKey) -> Instrument:
        found = self.instrument(leg.underlying, "OPT", leg.expiry, leg.right, leg.strike)
        assert found is not None
        return found

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
        """Fault: send an error/notice to every client, and act as IB does for the
        connectivity codes: after 1100 (lost) no market data flows; 1102 (restored, data
        maintained) resumes it; 1101 (restored, data lost) resumes with every line gone, to
        be requested again."""
        if code == 1100:
            self._paused = True
        elif code in (1101, 1102):
            self._paused = False
            if code == 1101:
                for s in self._sessions:
                    for req_id in list(s.lines):
                        self._cancel_line(s, req_id)
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
        self.received.append(asyncio.get_running_loop().time())  # pacing, as IB watches it
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
        """All positions, then updates as fills move them (a subscription, as with IB)."""
        s.positions = True
        held = self.broker.positions()
        for leg, quantity in held.items():
            self._send_position(s, leg, quantity)
        s.send(62, 1)

    def _send_position(self, s: _Session, leg: LegKey, quantity: int) -> None:
        cf = self._option(leg).contract_fields()
        # account, conId .. multiplier, exchange, currency, localSymbol, tradingClass (no
        # primary exchange), position, average cost
        s.send(61, 3, self.account, *cf[:8], *cf[9:], quantity, 0.0)

    def _open_orders(self, s: _Session, fields: list[str]) -> None:
        for order in self._orders.values():
            if order.status not in ("Filled", "Cancelled", "Inactive"):
                self._send_open_order(s, order)
                self._send_status(s, order)
        s.send(53, 1)

    def _completed_orders(self, s: _Session, fields: list[str]) -> None:
        s.send(102)

    def _account_updates(self, s: _Session, fields: list[str]) -> None:
        if fields[2] == "1":
            s.send(54, 1, self.account)

    def _account_updates_multi(self, s: _Session, fields: list[str]) -> None:
        s.send(74, 1, int(fields[2]))

    def _executions(self, s: _Session, fields: list[str]) -> None:
        req_id = int(fields[2])
        for order, execution, legs in self._fills:
            self._send_execution(s, req_id, order, execution, legs)
        s.send(55, 1, req_id)

    def _current_time(self, s: _Session, fields: list[str]) -> None:
        s.send(49, 1, int(self.clock.now().timestamp()))

    def _ids(self, s: _Session, fields: list[str]) -> None:
        s.send(9, 1, self._next_order_id)

    # Orders -----------------------------------------------------------------------------

    def _place(self, s: _Session, fields: list[str]) -> None:
        order_id = int(fields[1])
        action, quantity, order_type, limit = fields[16], fields[17], fields[18], fields[19]
        ref = fields[26]
        self._next_order_id = max(self._next_order_id, order_id + 1)
        existing = next(
            (o for o in self._orders.values() if (o.client_id, o.order_id) == (s.client_id,
             order_id)), None)  # fmt: skip
        if existing is not None:  # a modify: the new limit
            try:
                self.broker.modify(existing.ref, Decimal(limit), self.clock.now())
            except OrderRefused:  # filled or cancelled meanwhile: IB's 104 / 10148
                s.send(4, 2, order_id, 104, "Can't modify a filled order.", "")
                return
            existing.limit = Decimal(limit)
            self._send_open_order(s, existing)
            return
        if fields[4] != "BAG" or order_type != "LMT" or not ref:
            s.send(4, 2, order_id, 201, "Order rejected - reason:the fake gateway takes combo "
                   "(BAG) limit orders with an orderRef only", "")  # fmt: skip
            return
        n = int(fields[35])
        legs: list[tuple[Instrument, int, str]] = []
        for k in range(n):
            con_id, ratio, leg_action = fields[36 + 8 * k : 39 + 8 * k]
            ins = self._by_id.get(int(con_id))
            if ins is None or ins.sec_type != "OPT":
                s.send(4, 2, order_id, 200, "No security definition has been found for the "
                       "request", "")  # fmt: skip
                return
            legs.append((ins, int(ratio), leg_action))
        flip = action == "SELL"  # selling the combo: each leg the other way, a credit
        combo = ComboOrder(
            order_ref=ref,
            legs=tuple(
                ComboLeg(
                    ins.leg, Action(a if not flip else ("SELL" if a == "BUY" else "BUY")), ratio
                )
                for ins, ratio, a in legs
            ),
            quantity=int(Decimal(quantity)),
            limit=Decimal(limit) * (-1 if flip else 1),
        )
        self._perm_ids += 1
        order = _Order(s.client_id or 0, order_id, self._perm_ids, ref, action, combo.quantity,
                       Decimal(limit), legs)  # fmt: skip
        if self.reject is not None or ref in self._orders:
            why = self.reject or f"orderRef {ref} is already in use"
            order.status = "Inactive"
            s.send(4, 2, order_id, 201, f"Order rejected - reason:{why}", "")
            self._send_status(s, order)
            return
        for ins, _, _ in legs:
            self.market.subscribe(ins.leg)  # the broker needs the legs' quotes to fill
        self._orders[ref] = order
        self.broker.place(combo, self.clock.now())
        order.status = "Submitted"
        self._send_open_order(s, order)
        self._send_status(s, order)

    def _cancel(self, s: _Session, fields: list[str]) -> None:
        order_id = int(fields[2])
        order = next((o for o in self._orders.values() if o.order_id == order_id and
                      o.client_id == s.client_id), None)  # fmt: skip
        if order is None or order.status in ("Filled", "Cancelled", "Inactive"):
            s.send(4, 2, order_id, 10148, f"OrderId {order_id} that needs to be cancelled "
                   "cannot be cancelled, state: Filled.", "")  # fmt: skip
            return
        self.broker.cancel(order.ref, self.clock.now())
        self._relay(self.broker.events())

    def _relay(self, events: list[OrderEvent]) -> None:
        """The broker's events to the clients, as IB says them."""
        for event in events:
            order = self._orders.get(event.order_ref)
            if order is None:
                continue
            order.filled = event.filled
            if event.execution is not None:
                legs = self._leg_prices(order)
                self._fills.append((order, event.execution, legs))
                held = self.broker.positions()
                for s in self._sessions:
                    self._send_execution(s, -1, order, event.execution, legs)
                    if s.positions:
                        for ins, _, _ in order.legs:
                            self._send_position(s, ins.leg, held.get(ins.leg, 0))
            order.status = {
                "submitted": "Submitted",
                "working": "Submitted",
                "partially_filled": "Submitted",
                "filled": "Filled",
                "cancelled": "Cancelled",
                "rejected": "Inactive",
            }[event.status]
            if event.execution is not None:
                order.paid += event.execution.price * event.execution.quantity
                order.last_price = event.execution.price
            for s in self._sessions:
                if event.status == "cancelled":
                    s.send(4, 2, order.order_id, 202, "Order Canceled - reason:", "")
                self._send_status(s, order)

    def _leg_prices(self, order: _Order) -> list[tuple[Instrument, str, Decimal]]:
        """Each leg's side and price in a fill at the natural: buys at the ask, sells at the
        bid."""
        out = []
        for ins, _, action in order.legs:
            q = self.market.quote(ins.leg, self.market.now)
            buy = (action == "BUY") != (order.action == "SELL")
            price = q.ask if buy else q.bid
            out.append((ins, "BOT" if buy else "SLD", price or Decimal(0)))
        return out

    def _send_status(self, s: _Session, order: _Order) -> None:
        avg = order.paid / order.filled if order.filled else Decimal(0)
        s.send(3, order.order_id, order.status, order.filled, order.quantity - order.filled,
               avg, order.perm_id, 0, order.last_price, order.client_id, "", 0.0)  # fmt: skip

    def _send_execution(
        self,
        s: _Session,
        req_id: int,
        order: _Order,
        execution: Execution,
        legs: list[tuple[Instrument, str, Decimal]],
    ) -> None:
        """execDetails for the BAG, then each leg, then their commission reports."""
        when = f"{execution.time.astimezone(UTC):%Y%m%d %H:%M:%S} UTC"
        bag = [0, legs[0][0].symbol, "BAG", "", 0.0, "", "", "SMART", "USD", "", ""]
        side = "BOT" if order.action == "BUY" else "SLD"
        rows = [(f"{execution.exec_id}.bag", bag, side, execution.quantity, execution.price)]
        for k, (ins, leg_side, price) in enumerate(legs):
            cf = ins.contract_fields()
            ratio = order.legs[k][1]
            rows.append((f"{execution.exec_id}.{k + 1}", [*cf[:8], *cf[9:]], leg_side,
                         execution.quantity * ratio, price))  # fmt: skip
        for exec_id, contract, row_side, shares, price in rows:
            s.send(
                11, req_id, order.order_id, *contract, exec_id, when, self.account, "SMART",
                row_side, shares, price, order.perm_id, order.client_id, 0, shares, price,
                order.ref, "", "", "", 0,
            )  # fmt: skip
        for k, (exec_id, _, _, shares, _) in enumerate(rows):
            if k:  # commissions are per leg execution
                s.send(59, 1, exec_id, COMMISSION_PER_CONTRACT * shares, "USD", 0.0, 0.0, 0)

    def _send_open_order(self, s: _Session, order: _Order) -> None:
        """openOrder as server version 176 writes it (faProfile included, before 177)."""
        symbol = order.legs[0][0].symbol
        legs: list[object] = [len(order.legs)]
        for ins, ratio, action in order.legs:
            legs += [ins.con_id, ratio, action, "SMART", 0, 0, "", -1]
        s.send(
            5, order.order_id,
            0, symbol, "BAG", "", 0.0, "", "", "SMART", "USD", "", "",  # the contract
            order.action, order.quantity, "LMT", order.limit, "", "DAY", "", self.account,
            "", 0, order.ref, order.client_id, order.perm_id, 0, 0, 0.0, "", "", "", "", "",
            "",  # faProfile
            "", "", "", "", "", 0, "", -1, 0, "", "", "", "", "", 0, 0, 0, 0, "", 0, 0, 0, 0,
            0, 0, "", 0, "", "",  # modelCode .. deltaNeutralAuxPrice
            0, 0, "", "", "", "", "",  # continuousUpdate .. comboLegsDescrip
            *legs,
            0, 0,  # order combo legs, smart combo routing params
            "", "", "",  # scale init level size, subs level size, price increment
            "",  # hedge type
            0, "", "", 0, 0,  # optOutSmartRouting, clearing account/intent, notHeld, no DNC
            "",  # algo strategy
            0, 0, order.status, "", "", "", "", "", "", "", "", "", "", "", "", "", "", 0, 0,
            0,  # conditions
            "", "", "", "", "", "", "", 0, "", "", "", "", 0, 0, "", 0,
            "", "", 0,  # duration, postToAts, autoCancelParent
            "", "", "", "", "",  # minTradeQty .. midOffsetAtHalf
        )  # fmt: skip

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
        kind = DELAYED if self.delayed_only else LIVE
        if self.frozen:  # the last quotes IB has, e.g. outside market hours
            kind = DELAYED_FROZEN if self.delayed_only else FROZEN
        s.send(58, 1, req_id, kind)
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
        now = self.clock.now()
        stepped = self.market.step(now)
        self._relay(self.broker.trade(stepped, now))
        updates = {u.leg: u for u in stepped}
        if self._paused:
            return
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
        bad = {"-1": -1.0, "nan": math.nan}.get(self.bad_quotes)
        bid, ask = (bad, bad) if bad is not None else (q.bid, q.ask)
        s.send(1, 6, req_id, bid_t, bid, SIZE, 0)
        s.send(1, 6, req_id, ask_t, ask, SIZE, 0)
        bid_size, ask_size = (
            (DELAYED_BID_SIZE, DELAYED_ASK_SIZE) if delayed else (BID_SIZE, ASK_SIZE)
        )
        s.send(2, 6, req_id, bid_size, SIZE)  # IB also says the sizes on their own
        s.send(2, 6, req_id, ask_size, SIZE)
        mid = (q.bid + q.ask) / 2 if q.bid is not None and q.ask is not None else None
        under = -1.0 if q.underlying_price is None else q.underlying_price
        delta = NOT_COMPUTED if q.delta is None else q.delta
        vol = self.market.vol(ins.symbol)
        ticks = (
            (DELAYED_BID_OPTION, DELAYED_ASK_OPTION, DELAYED_MODEL_OPTION)
            if delayed
            else (BID_OPTION, ASK_OPTION, MODEL_OPTION)
        )
        greeks = zip(ticks, (q.bid, q.ask, mid), strict=True)
        for tick, price in greeks if self.greeks else ():
            s.send(
                21, req_id, tick, 1, vol, delta, -1.0 if price is None else price, 0.0,
                NOT_COMPUTED, NOT_COMPUTED, NOT_COMPUTED, under,
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
    3: FakeGateway._place,
    4: FakeGateway._cancel,
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
