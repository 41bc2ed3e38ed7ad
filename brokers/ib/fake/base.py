"""The fake gateway's base: a client connection (a session), and what every part of
the gateway shares (the market, the clock, the account, the simulated broker, the
sessions)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from brokers.ib.codes import LIVE, NO_SECURITY
from brokers.ib.fake.instrument import Instrument
from brokers.ib.fake.versions import (
    MIN_SERVER_VER_ADVANCED_ORDER_REJECT,
    SERVER_VERSION,
    for_version,
    since,
)
from brokers.ib.wire import encode
from brokers.sim.broker import SimBroker
from brokers.sim.market import SimMarket
from service.ports import Clock


def ib_time(when: datetime) -> str:
    """A time as IB writes it in the handshake and in executions."""
    return f"{when.astimezone(UTC):%Y%m%d %H:%M:%S} UTC"


@dataclass(eq=False)
class Session:
    """One client connection, at the version its handshake chose (its messages are
    written for it: :mod:`brokers.ib.fake.versions`)."""

    writer: asyncio.StreamWriter
    serial: int = 0  # the gateway's count of its connections: which one this is (the ledger's)
    version: int = SERVER_VERSION
    client_id: int | None = None
    data_type: int = LIVE
    positions: bool = False  # subscribed to position updates (reqPositions)
    lines: dict[int, Instrument] = field(default_factory=dict)  # reqId -> what it streams
    # (reqId, tick type) -> the value last sent: IB sends a tick when its value changes
    ticked: dict[tuple[int, int], object] = field(default_factory=dict)

    def send(self, *fields: object) -> None:
        """A message, its fields as of the session's version (``since``/``before`` marks)."""
        if not self.writer.is_closing():
            self.writer.write(encode(*for_version(self.version, fields)))

    def tick(self, req_id: int, kind: int, value: object, *message: object) -> None:
        """A market data message for tick ``kind`` of line ``req_id``, sent only when its
        ``value`` differs from the one last sent on that line (IB streams changes: a
        quote that has not moved is not sent again)."""
        key = (req_id, kind)
        if self.ticked.get(key, self) != value:
            self.ticked[key] = value
            self.send(*message)

    def error(self, req_id: int, code: int, message: str) -> None:
        """IB's error message (an error or a notice) for request ``req_id`` (-1: none)."""
        self.send(4, 2, req_id, code, message, since(MIN_SERVER_VER_ADVANCED_ORDER_REJECT, ""))

    def no_security(self, req_id: int) -> None:
        self.error(req_id, NO_SECURITY, "No security definition has been found for the request")


class GatewayBase:
    """The bottom of the gateway's mixins: each sets up its own state in ``__init__``
    and passes the arguments on."""

    def __init__(self, market: SimMarket, clock: Clock, *, account: str, line_limit: int) -> None:
        self.market = market
        self.clock = clock
        self.account = account
        self.line_limit = line_limit
        self.broker = SimBroker(latency=timedelta(0))
        self.received: list[float] = []  # when each client message came (loop time)
        self._sessions: set[Session] = set()
        # execution times as "yyyymmdd-hh:mm:ss", UTC with no zone, as IB writes them for
        # live accounts (else with the zone's name, as for paper ones): see exec_time
        self.utc_exec_times = False

    def connection_said(self, kind: str, s: Session) -> None:
        """A client's API connection began (``connect``) or ended (``disconnect``): for the
        ledger (the orders' part keeps it)."""

    def exec_time(self, when: datetime) -> str:
        """An execution's time as IB writes it: "20261207 15:00:00 UTC" (a zone's name
        after it), or "20261207-15:00:00" (zone-less: UTC, by IB's own rule for times
        in that form, as error 10314 states it)."""
        return f"{when.astimezone(UTC):%Y%m%d-%H:%M:%S}" if self.utc_exec_times else ib_time(when)
