"""The fake gateway's account: the session's start (next order id, the managed
account), positions with their average costs, account updates, the current time, order ids."""

from __future__ import annotations

from decimal import Decimal

from brokers.ib.codes import CLIENT_ID_IN_USE
from brokers.ib.fake.base import Session
from brokers.ib.fake.contracts import ContractsMixin
from brokers.ib.fake.instrument import Instrument
from brokers.sim.market import SimMarket
from rules.model import Position
from service.ports import Clock, LegKey

# The data farms' notices IB sends each client once its API starts (TWS API docs, "Message
# Codes": 2104 market data farm OK, 2106 historical (HMDS) farm OK, 2158 sec-def farm OK)
FARMS = (
    (2104, "Market data farm connection is OK:usfarm"),
    (2106, "HMDS data farm connection is OK:ushmds"),
    (2158, "Sec-def data farm connection is OK:secdefnj"),
)
# The account summary tags the fake knows (a paper account's; others are not answered,
# as IB leaves out a tag it does not have), and their values
SUMMARY = {
    "AccountType": ("INDIVIDUAL", ""),
    "NetLiquidation": ("1000000.00", "USD"),
    "TotalCashValue": ("1000000.00", "USD"),
    "BuyingPower": ("4000000.00", "USD"),
    "AvailableFunds": ("1000000.00", "USD"),
    "ExcessLiquidity": ("1000000.00", "USD"),
}


class AccountMixin(ContractsMixin):
    def __init__(self, market: SimMarket, clock: Clock, *, account: str, line_limit: int) -> None:
        super().__init__(market, clock, account=account, line_limit=line_limit)
        self._next_order_id = 1

    def hold(self, instrument: Instrument, quantity: int, avg_cost: Decimal = Decimal(0)) -> None:
        """The account starts with ``quantity`` of option ``instrument`` (short < 0), opened
        at ``avg_cost`` a contract, the multiplier included (IB's avgCost)."""
        self.broker.hold(instrument.leg, quantity, avg_cost)

    def hold_spreads(self, position: Position, spreads: int) -> None:
        """The account starts with ``spreads`` of ``position``, at costs that give its entry
        credit exactly (SimBroker.hold_spreads)."""
        if position.underlying not in self.market.underlyings:
            raise ValueError(f"no underlying {position.underlying} in this market")
        self.broker.hold_spreads(position, spreads)

    def _start_api(self, s: Session, fields: list[str]) -> None:
        client_id = int(fields[2])
        if any(o.client_id == client_id for o in self._sessions if o is not s):
            s.error(-1, CLIENT_ID_IN_USE, f"Unable to connect as the client id {client_id} is "
                    "already in use. Retry with a unique client id.")  # fmt: skip
            s.writer.close()
            return
        s.client_id = client_id
        self.connection_said("connect", s)
        s.send(9, 1, self._next_order_id)
        s.send(15, 1, self.account)
        for code, text in FARMS:  # as TWS or IB Gateway says at every API connection
            s.error(-1, code, text)

    def _positions(self, s: Session, fields: list[str]) -> None:
        """All positions, then updates as fills move them (a subscription, as with IB)."""
        s.positions = True
        held = self.broker.positions()
        for leg, quantity in held.items():
            self._send_position(s, leg, quantity)
        s.send(62, 1)

    def _send_position(self, s: Session, leg: LegKey, quantity: int) -> None:
        # account, conId .. multiplier, exchange, currency, localSymbol, tradingClass (no
        # primary exchange), position, average cost (a contract's, the multiplier included)
        cost = self.broker.avg_cost(leg)
        s.send(61, 3, self.account, *self._option(leg).fields_without_primary(), quantity, cost)

    def _account_updates(self, s: Session, fields: list[str]) -> None:
        if fields[2] == "1":
            s.send(54, 1, self.account)

    def _account_summary(self, s: Session, fields: list[str]) -> None:
        """reqAccountSummary (version, reqId, group, tags): a row per tag the fake knows,
        for its one account, then accountSummaryEnd (TWS API, "Account Summary")."""
        req_id, tags = int(fields[2]), fields[4].split(",")
        for tag in tags:
            if tag in SUMMARY:
                value, currency = SUMMARY[tag]
                s.send(63, 1, req_id, self.account, tag, value, currency)
        s.send(64, 1, req_id)

    def _account_updates_multi(self, s: Session, fields: list[str]) -> None:
        s.send(74, 1, int(fields[2]))

    def _current_time(self, s: Session, fields: list[str]) -> None:
        """reqCurrentTime: the gateway's clock (a simulated one: ``--start``, ``--speed``)
        in whole seconds since the epoch, truncated, as IB answers (TWS API
        ``EWrapper::currentTime(long time)``; ib_async's ``Wrapper.currentTime(time: int)``).
        A daemon on IB runs on this time (brokers.ib.clock)."""
        s.send(49, 1, int(self.clock.now().timestamp()))

    def _ids(self, s: Session, fields: list[str]) -> None:
        s.send(9, 1, self._next_order_id)

    def trade_outside(self, leg: LegKey, quantity: int) -> None:
        """A trade of ``quantity`` of option ``leg`` made outside the API (TWS, the mobile
        app, an assignment): the account moves, and each client subscribed to positions
        hears the new holding, as IB sends a ``position`` message for every change after
        ``reqPositions``."""
        self.broker.hold(leg, quantity)
        held = self.broker.positions().get(leg, 0)
        for s in self._sessions:
            if s.positions:
                self._send_position(s, leg, held)
