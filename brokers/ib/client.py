"""The one ib_async client :class:`brokers.ib.broker.IbBroker`'s mixins share.

Each mixin (contracts, market data, orders, connection, notices) keeps its own
state, set up in its ``__init__``, which passes the same arguments on
(cooperative ``super().__init__``); this is the bottom of that chain.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from ib_async import IB

from service.ports import EventSink, LegKey, ProblemSink, QuoteSink
from service.settings import IbSettings


class IbClient:
    """The settings, the ib_async client, the clock quotes are stamped with, and the
    service's sinks (set by ``run``)."""

    def __init__(self, settings: IbSettings, ib: IB, now: Callable[[], datetime]) -> None:
        self.settings = settings
        self.ib = ib
        self._now = now  # the time quotes are stamped with (a simulated clock in tests)
        self.account = settings.account
        self._quotes: QuoteSink | None = None
        self._events: EventSink | None = None
        self._problems: ProblemSink | None = None
        self._blind = False  # in a gap (1100, a dropped socket): ticks are not fresh
        self._farms_down: set[str] = set()  # quote farms IB said broken (2103), not OK yet

    def _trouble(self, leg: LegKey, why: str) -> None:
        """A leg IB cannot serve (its line refused, its contract unknown), said to the
        service: the positions holding it need a human."""
        if self._problems is not None:
            self._problems(leg, why)
