"""Executing a batch of close requests: live, or dry run.

The desk hands each batch to its executor (:class:`Executor`); per request
the result is the order_ref sent, None (nothing sent now) or the refusal: the
close-only check's (:class:`~service.orders.closing.NotAClose`), the store's
(``StoreRefused``) or the broker's (:class:`NotPlaced`).

- :class:`LiveExecutor`: builds one combo limit order per request at the mark
  rounded to the tick, checks that it only closes
  (:func:`service.orders.closing.check_close`), writes the intents in one
  transaction, places each order, then records them all as sent. A request
  that replaces the live profit close cancels it (the stop goes on a later
  decision, once the cancel is confirmed).
- :class:`DryRunExecutor`: sends nothing; records each close it would make
  (``would close (dry run)`` in the audit trail) once per decision change, and
  says it (:class:`WouldClose`).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Protocol

from structlog.contextvars import bound_contextvars

from rules.exits import TRANCHES
from rules.pricing import limit_for
from service.errors import BrokerUnavailable, StoreRefused
from service.logs import ORDER_REJECTED, get_logger
from service.orders.closing import NotAClose, check_close, closing_order
from service.orders.failures import BROKER_FAILURES
from service.orders.intents import CloseRequest
from service.orders.needs import Book
from service.orders.working import WorkingOrders
from service.ports import CloseIntent, ComboOrder, LegKey, OrderGateway, Store, order_ref

_log = get_logger("spreadwatch.orders")


class NotPlaced(RuntimeError):
    """The broker refused a close order outright (it was never working)."""


@dataclass(frozen=True, slots=True)
class WouldClose:
    """A dry run's close, new for its position: recorded, to be said (nothing was sent)."""


Result = str | NotAClose | StoreRefused | NotPlaced | WouldClose | None
AWAY = (BrokerUnavailable, OSError, TimeoutError)  # the broker not there: not a refusal


class Executor(Protocol):
    async def execute(
        self, requests: Sequence[CloseRequest], written: Callable[[], None] | None = None
    ) -> list[Result]:
        """Act on ``requests``; ``written`` is called once their intents are committed
        (or none will be)."""
        ...

    def turn_day(self, closed: Iterable[str]) -> None:
        """The close: what the executor keeps of the day before goes, and of the positions
        ``closed`` and let go by the book (a closed position never closes again)."""
        ...


class Attempts:
    """The next attempt number of each (position, stage), from the store's orders."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._attempts: dict[tuple[str, int | None], int] | None = None
        self._loading = asyncio.Lock()

    async def load(self) -> None:
        self._attempts = await self.store.order_attempts()

    async def next(self, position_id: str, stage: int | None) -> int:
        if self._attempts is None:
            async with self._loading:  # several workers may ask at once: one load
                if self._attempts is None:
                    await self.load()
        assert self._attempts is not None
        attempt = self._attempts.get((position_id, stage), 0) + 1
        self._attempts[(position_id, stage)] = attempt
        return attempt

    def forget(self, closed: Iterable[str]) -> None:
        """Positions closed for good: their attempts go (none follows; the store's unique
        order_ref would refuse a repeat)."""
        gone = set(closed)
        if self._attempts is not None and gone:
            for key in [k for k in self._attempts if k[0] in gone]:
                del self._attempts[key]


_Ready = tuple[int, CloseRequest, ComboOrder, CloseIntent]


class LiveExecutor:
    def __init__(
        self,
        store: Store,
        gateway: OrderGateway,
        working: WorkingOrders,
        attempts: Attempts,
        book: Book | None = None,
    ) -> None:
        self.store = store
        self.gateway = gateway
        self.working = working
        self.attempts = attempts
        # what the open positions imply the account holds (see check_close); None: the
        # account's net per contract must be on the closing side
        self.book = book
        self.intent_latency: deque[float] = deque(maxlen=100_000)  # decision -> intent, s
        self._turned = 0  # intent_latency's length after the previous day's turn

    def turn_day(self, closed: Iterable[str]) -> None:
        for _ in range(min(self._turned, len(self.intent_latency))):
            self.intent_latency.popleft()  # the day before the previous close's
        self._turned = len(self.intent_latency)
        self.attempts.forget(closed)

    async def execute(
        self, requests: Sequence[CloseRequest], written: Callable[[], None] | None = None
    ) -> list[Result]:
        results: list[Result] = [None] * len(requests)
        try:
            ready = await self._prepare_all(requests, results)
            intents = [(i, r.decision) for _, r, _, i in ready]
            refused = await self.store.record_intents(intents) if intents else []
            committed = time.perf_counter()
        finally:
            if written is not None:
                written()
        if not ready:
            return results
        placed: list[tuple[int, CloseRequest, ComboOrder]] = []
        for (k, req, order, _), why in zip(ready, refused, strict=True):
            if why is not None:
                results[k] = StoreRefused(why)
                continue
            if req.decided is not None:
                self.intent_latency.append(committed - req.decided)
            refused_by = await self._place(req, order)
            if refused_by is None:
                placed.append((k, req, order))
            elif not isinstance(refused_by, AWAY):
                results[k] = NotPlaced(str(refused_by))
        if placed:  # queued: handed to the broker, submitted once it acknowledges them
            await self.store.orders_sent([order.order_ref for _, _, order in placed], "queued")
        for k, req, order in placed:
            results[k] = order.order_ref
            _log.info(
                "order.submitted",
                position_id=req.stored.position.id,
                order_ref=order.order_ref,
                reason=req.decision.reason.value,
                quantity=order.quantity,
                limit=str(order.limit),
                natural=str(req.natural),
            )
        return results

    async def _prepare_all(
        self, requests: Sequence[CloseRequest], results: list[Result]
    ) -> list[_Ready]:
        """The orders and intents to write; a refusal goes into ``results``."""
        ready: list[_Ready] = []
        held: Mapping[LegKey, int] | None = None
        for k, req in enumerate(requests):
            if held is None:
                held = await self.gateway.positions()
            try:
                prepared = await self._prepare(req, held)
            except NotAClose as exc:
                results[k] = exc
                continue
            if prepared is not None:
                ready.append((k, req, *prepared))
        return ready

    async def _prepare(
        self, req: CloseRequest, held: Mapping[LegKey, int]
    ) -> tuple[ComboOrder, CloseIntent] | None:
        """The order and intent for ``req``; None when nothing is to be sent now (a live
        order: cancelled first if the decision replaces it)."""
        decision, stored = req.decision, req.stored
        pid = stored.position.id
        live = self.working.live_for(pid)
        if live is not None:
            if decision.replaces:  # the stop goes once the cancel is confirmed
                await self.gateway.cancel(live)
            return None
        if decision.replaces:  # the order it replaces is not out yet: decide again later
            return None
        stage = decision.tranche if decision.reason in TRANCHES else None
        quantity = min(decision.contracts, stored.remaining)
        limit = limit_for(decision.debit, req.natural, 0, 1)  # (step 0: the mark, on the tick)
        order = closing_order(stored.position, "", quantity, limit)
        legs = [c.leg for c in order.legs]
        expected = None if self.book is None else self.book.expected_holdings(legs)
        check_close(order, held, stored.remaining, expected)
        attempt = await self.attempts.next(pid, stage)
        ref = order_ref(pid, stage, attempt)
        intent = CloseIntent(
            order_ref=ref,
            position_id=pid,
            stage=stage,
            attempt=attempt,
            reason=decision.reason.value,
            label=decision.label,
            target=decision.target,
            quantity=quantity,
            limit_price=limit,
            quotes=req.quotes,
        )
        return replace(order, order_ref=ref), intent

    async def _place(self, req: CloseRequest, order: ComboOrder) -> Exception | None:
        """Place ``order``; what the broker raised when it did not take it (the order is
        ended as rejected), None when it did."""
        ref, pid = order.order_ref, req.stored.position.id
        # known before it is placed: its events may come before place() returns
        stop = req.decision.reason not in TRANCHES
        with bound_contextvars(position_id=pid, order_ref=ref):
            self.working.work(ref, pid, req.decision.debit, order.limit, req.at.now, stop)
            try:
                await self.gateway.place(order)
            except BROKER_FAILURES as exc:  # the broker refused it outright, or is not there
                self.working.done(ref)
                await self.store.end_order(ref, "rejected", f"not placed: {exc}")
                _log.error(ORDER_REJECTED, reason=f"not placed: {exc}")
                return exc
        return None


class DryRunExecutor:
    """Sends nothing. Each close it would make is recorded and said once per decision
    change: a position's close decided again the same (reason, label, contracts, tranche)
    on the next quotes is the same decision, and nothing more is written or said."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.last: dict[str, tuple[object, ...]] = {}  # position -> its decision said last

    def turn_day(self, closed: Iterable[str]) -> None:
        for pid in closed:
            self.last.pop(pid, None)

    async def execute(
        self, requests: Sequence[CloseRequest], written: Callable[[], None] | None = None
    ) -> list[Result]:
        results: list[Result] = [None] * len(requests)
        try:
            for k, req in enumerate(requests):
                pid, d = req.stored.position.id, req.decision
                key = (d.reason, d.label, d.contracts, d.tranche)
                if self.last.get(pid) != key:
                    await self.store.record_decision(pid, d, req.quotes, dry_run=True)
                    self.last[pid] = key
                    results[k] = WouldClose()
        finally:
            if written is not None:
                written()
        return results
