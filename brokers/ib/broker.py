"""Interactive Brokers behind the service's ports, on ib_async.

:class:`IbBroker` is the :class:`service.ports.Feed` and the
:class:`service.ports.OrderGateway` for IB Gateway or TWS (or
``spreadwatch fake-gateway``). It converts at the edge: ib_async's floats,
NaN and IB's sentinels become Decimals or None (:mod:`brokers.ib.convert`)
and nowhere else.

It is composed of mixins over one ib_async client (:mod:`brokers.ib.client`),
one per concern:

- :mod:`brokers.ib.connection`: connect and the **paper guard** (IB's paper
  ids start with ``DU``, advisors' with ``DF``; any other account is refused
  unless ``allow_live``), reconnect with backoff, resume after a gap, pacing;
- :mod:`brokers.ib.contracts`: each leg qualified once (conIds kept and given
  to the caller to store on the legs), the closing combo's BAG;
- :mod:`brokers.ib.market_data`: a line per subscribed leg and per
  underlying, each ticker as a quote;
- :mod:`brokers.ib.orders`: place, modify and cancel; statuses, open orders,
  positions; :mod:`brokers.ib.fills`: combo fills (the BAG's execution, else the
  legs') and their commission reports, whenever they come; :mod:`brokers.ib.stored`:
  the fills the store holds (told on start), never passed on again;
- :mod:`brokers.ib.account`: the account's option positions with their average
  costs, and its legs' executions (the :class:`service.ports.Account` of positions sync);
- :mod:`brokers.ib.notices`: IB's error and notice messages, acted on by the
  table in :mod:`brokers.ib.codes`.

Its quotes are stamped by ``now``: the wall clock by default, a simulated clock in
tests, or IB's own time (:meth:`IbBroker.on_ib_time`, the daemon's: a
:class:`brokers.ib.clock.BrokerClock` the connection keeps).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, time
from functools import partial

from ib_async import IB

from brokers.ib.account import AccountMixin
from brokers.ib.clock import BrokerClock
from brokers.ib.connection import ConnectionMixin, NotPaper, ib_time
from brokers.ib.contracts import ContractsMixin
from brokers.ib.market_data import MarketDataMixin
from brokers.ib.notices import NoticesMixin
from brokers.ib.orders import OrdersMixin
from brokers.ib.stored import StoredFillsMixin
from rules.clock import new_york
from service.logs import get_logger
from service.settings import IbSettings

__all__ = ["BrokerClock", "IbBroker", "NotPaper"]


_log = get_logger("spreadwatch.ib")


class IbBroker(
    NoticesMixin,
    ConnectionMixin,
    MarketDataMixin,
    OrdersMixin,
    StoredFillsMixin,
    AccountMixin,
    ContractsMixin,
):
    """The service's feed, order gateway and account on IB. Each mixin sets up its own state and
    passes the arguments on; this wires ib_async's events to their handlers."""

    def __init__(
        self,
        settings: IbSettings,
        ib: IB | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        *,
        clock: BrokerClock | None = None,
    ) -> None:
        super().__init__(settings, IB() if ib is None else ib, now if clock is None else clock.now)
        self.clock = clock
        self.ib.errorEvent += self._on_error
        self.ib.pendingTickersEvent += self._on_tickers
        self.ib.execDetailsEvent += self._on_execution
        self.ib.commissionReportEvent += self._on_commission
        self.ib.orderStatusEvent += self._on_status
        self.ib.positionEvent += self._on_position

    def fence_sends(self, holding: Callable[[], bool]) -> None:
        """Nothing leaves for IB while ``holding()`` is False (the trading lease lost), not
        even what ib_async queued before: its client paces requests, and a message held
        back is sent later from a timer (ib_async ``Client.sendMsg``: ``_msgQ``, then
        ``loop.call_at(..., self.sendMsg, None)``), so an order queued just before a pause
        would leave after it. Checked at the socket's door, the queue dropped whole."""
        client = self.ib.client
        send = client.sendMsg

        def fenced(msg: str) -> None:
            if holding():
                send(msg)
                return
            client._msgQ.clear()  # (ib_async's pacing queue: what this process had to say)
            _log.warning("ib.send_fenced", detail="the trading lease is lost: nothing is sent")

        client.sendMsg = fenced  # type: ignore[method-assign]

    def executions_from(self, now: datetime) -> datetime | None:
        """IB reports the current day's executions only (``reqExecutions``: TWS API,
        "Executions and Commissions": "Only the current day's executions can be
        retrieved"); the day taken as New York's, from its midnight (the earliest a
        gateway's day may start for a US account)."""
        today = now.astimezone(new_york()).date()
        return datetime.combine(today, time(0), new_york())

    @classmethod
    def on_ib_time(
        cls, settings: IbSettings, say: Callable[[str], object] = lambda line: None
    ) -> tuple[IbBroker, BrokerClock]:
        """A broker on IB's own time, and that time: the clock it keeps (asked at each
        connect and again while it runs; ``say`` gets its human lines: drift, rate)."""
        ib = IB()
        clock = BrokerClock(partial(ib_time, ib, settings.timeout), say)
        return cls(settings, ib, clock=clock), clock
