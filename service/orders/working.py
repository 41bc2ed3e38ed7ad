"""The close orders working at the broker, and their repricing toward the natural.

Never more than one live close per position. Each is walked on its position's
book's schedule (``schedule_of``; a schedule given to the composition root, as
tests and the demo do, stands for every book's) from its mark toward its
position's natural debit (stops walk faster), never beyond it nor beyond the
walk's cap; at the last step the limit follows the natural (up to the cap) as it
moves. The schedule is looked up at each reprice: a position moved to another
book walks on its new book's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from structlog.contextvars import bound_contextvars

from rules.pricing import RepriceSchedule
from service.app.distances import Working
from service.logs import get_logger
from service.orders.failures import BROKER_FAILURES
from service.ports import OrderGateway, StoredOrder
from service.turns import Turns

_log = get_logger("spreadwatch.orders")


@dataclass
class _Live:
    position_id: str
    mark: Decimal
    limit: Decimal
    sent_at: datetime
    stop: bool
    step: int = 0
    failed: bool = False  # the last modify failed (said once)


class WorkingOrders:
    def __init__(
        self,
        gateway: OrderGateway,
        schedule: RepriceSchedule,
        schedule_of: Callable[[str], RepriceSchedule | None] | None = None,
    ) -> None:
        self.gateway = gateway
        self.schedule = schedule  # where a position's own is not known
        self.schedule_of = schedule_of  # a position's book's (None: not known)
        self._live: dict[str, _Live] = {}  # order_ref -> what is worked
        self._by_position: dict[str, str] = {}  # position -> its live order_ref

    def live_for(self, position_id: str) -> str | None:
        return self._by_position.get(position_id)

    def shown(self, position_id: str) -> Working | None:
        """The position's live order as the status screens show it (None: none works)."""
        ref = self._by_position.get(position_id)
        live = None if ref is None else self._live.get(ref)
        return None if live is None else Working(live.limit, live.step, live.sent_at)

    def work(
        self, ref: str, position_id: str, mark: Decimal, limit: Decimal, at: datetime, stop: bool
    ) -> None:
        """Work ``ref`` from now (known before it is placed: its events may come first)."""
        self._live[ref] = _Live(position_id, mark, limit, at, stop)
        self._by_position[position_id] = ref

    def adopt(self, order: StoredOrder, now: datetime) -> None:
        """Work a live order found in the store and at the broker on start (repriced from
        its last limit, on a fresh schedule)."""
        limit = order.limit_price
        assert limit is not None  # (every close is a limit order)
        stop = order.stage is None
        self.work(order.order_ref, order.position_id, limit, limit, now, stop)

    def done(self, ref: str) -> None:
        live = self._live.pop(ref, None)
        if live is not None and self._by_position.get(live.position_id) == ref:
            del self._by_position[live.position_id]

    def heard(self, ref: str) -> None:
        """The broker said something of ``ref``: a failed reprice may be tried again."""
        live = self._live.get(ref)
        if live is not None:
            live.failed = False

    def schedule_for(self, position_id: str) -> RepriceSchedule:
        own = None if self.schedule_of is None else self.schedule_of(position_id)
        return self.schedule if own is None else own

    async def reprice(self, now: datetime, natural_of: Callable[[str], Decimal | None]) -> None:
        """Walk each live order toward its position's natural debit (``natural_of`` the
        position; None: not known now), on the schedule."""
        turns = Turns()
        for ref, live in list(self._live.items()):
            if live.failed:
                continue
            walk = self.schedule_for(live.position_id).walk(stop=live.stop)
            step = walk.step(now - live.sent_at)
            if step <= live.step and step < walk.steps:
                continue  # at the last step the limit follows the natural as it moves
            natural = natural_of(live.position_id)
            if natural is None:
                continue
            await turns.take()
            limit = walk.limit(live.mark, natural, step)
            live.step = step
            if limit != live.limit:
                await self._modify(ref, live, limit, natural)

    async def _modify(self, ref: str, live: _Live, limit: Decimal, natural: Decimal) -> None:
        with bound_contextvars(position_id=live.position_id, order_ref=ref):
            try:
                await self.gateway.modify(ref, limit)
            except BROKER_FAILURES as exc:  # (filled meanwhile...: the events tell)
                if not live.failed:
                    _log.warning("order.reprice_failed", detail=f"{exc}")
                live.failed = True  # quiet until the broker says something of it
                return
            live.limit = limit
            _log.info("order.repriced", step=live.step, limit=str(limit), natural=str(natural))
