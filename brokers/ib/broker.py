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
- :mod:`brokers.ib.orders`: place, modify and cancel; executions with their
  commissions, statuses, open orders, positions;
- :mod:`brokers.ib.account`: the account's option positions with their average
  costs, and its legs' executions (the :class:`service.ports.Account` of positions sync);
- :mod:`brokers.ib.notices`: IB's error and notice messages, acted on by the
  table in :mod:`brokers.ib.codes`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from ib_async import IB

from brokers.ib.account import AccountMixin
from brokers.ib.connection import ConnectionMixin, NotPaper
from brokers.ib.contracts import ContractsMixin
from brokers.ib.market_data import MarketDataMixin
from brokers.ib.notices import NoticesMixin
from brokers.ib.orders import OrdersMixin
from service.settings import IbSettings

__all__ = ["IbBroker", "NotPaper"]


class IbBroker(
    NoticesMixin, ConnectionMixin, MarketDataMixin, OrdersMixin, AccountMixin, ContractsMixin
):
    """The service's feed, order gateway and account on IB. Each mixin sets up its own state and
    passes the arguments on; this wires ib_async's events to their handlers."""

    def __init__(
        self,
        settings: IbSettings,
        ib: IB | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        super().__init__(settings, IB() if ib is None else ib, now)
        self.ib.errorEvent += self._on_error
        self.ib.pendingTickersEvent += self._on_tickers
        self.ib.execDetailsEvent += self._on_execution
        self.ib.commissionReportEvent += self._on_commission
        self.ib.orderStatusEvent += self._on_status
        self.ib.positionEvent += self._on_position
