"""The order desk: the one owner of a close order's life.

Decisions come queued (:class:`~service.orders.intents.Intents`); a worker
takes a batch (:meth:`OrderDesk.take`), hands it to the executor, and applies
each outcome: a refused close counts against the position, and so does one
the broker refuses (the policy may leave it alone: then the position needs
attention, said and marked in the store), a close that sent nothing puts the
position back to OPEN, a close sent is recorded in the read model. The broker's order events come in
arrival order (:meth:`OrderDesk.on_events`, the feed's sink); each goes to the
store (retried while the database is away), then to the position's exit
state. Live orders are repriced on the schedule (:meth:`OrderDesk.reprice`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from datetime import datetime
from decimal import Decimal
from typing import Any

from structlog.contextvars import bound_contextvars

from rules.clock import MarketTime
from rules.machine import Close, Filled, NotSent, OrderEnded, Phase, apply
from service.logs import get_logger
from service.orders.closing import NotAClose
from service.orders.events import EventWriter
from service.orders.execute import Executor, NotPlaced, Result, WouldClose
from service.orders.failures import (
    ORDER_FAILURES,
    STORE_FAILURES,
    StoreOutage,
    said,
    transient,
)
from service.orders.intents import CloseRequest, Decided, Intents
from service.orders.needs import Book, OrderViews, Unread
from service.orders.policy import ClosePolicy
from service.orders.working import WorkingOrders
from service.ports import (
    ENDED_STATUSES,
    OrderEvent,
    OrderStatus,
    Store,
    StoredPosition,
    position_of,
)
from service.turns import Turns

_log = get_logger("spreadwatch.monitor")


class OrderDesk:
    def __init__(
        self,
        store: Store,
        working: WorkingOrders,
        executor: Executor,
        *,
        intents: Intents | None = None,
        policy: ClosePolicy | None = None,
        book: Book | None = None,
        views: OrderViews | None = None,
    ) -> None:
        self.store = store
        self.working = working
        self.executor = executor
        self.intents = Intents() if intents is None else intents
        self.policy = ClosePolicy() if policy is None else policy
        self.book = book  # None: a desk on its own (no exit states to apply events to)
        self.views: OrderViews = Unread() if views is None else views
        self.outage = StoreOutage()  # the database away: said once, however many fail
        self.writer = EventWriter(store, working, self.outage)
        self._events: asyncio.Queue[OrderEvent] = asyncio.Queue()

    def live_for(self, position_id: str) -> str | None:
        return self.working.live_for(position_id)

    # Decisions --------------------------------------------------------------------------

    async def work(self) -> None:
        """Act on every queued decision (the step-driven way)."""
        while not self.intents.empty():
            await self.take(self.intents.get_nowait())

    async def serve_decisions(self) -> None:
        """A worker, live: takes decisions as they come, on a connection of its own."""
        async with self.store.hold():
            while True:
                await self.take(await self.intents.get())

    async def take(self, first: Decided) -> None:
        """Act on ``first`` and on what else is queued now (up to BATCH): one burst of
        decisions, one transaction of intents."""
        items = self.intents.batch(first)
        try:
            await self._act(items)
        finally:
            self.intents.done(len(items))

    async def _act(self, items: list[Decided]) -> None:
        unsettled = len(items)

        def written() -> None:
            nonlocal unsettled
            self.intents.settle(unsettled)
            unsettled = 0

        results: list[Result | Exception]
        try:
            results = list(await self.executor.execute([i.request() for i in items], written))
        except ORDER_FAILURES as exc:  # (the store or the broker: said, and decided again)
            results = [exc] * len(items)
        finally:
            written()
        for item, result in zip(items, results, strict=True):
            await self._outcome(item, result)

    async def _outcome(self, item: Decided, result: Result | Exception) -> None:
        watch, close = item.watch, item.close
        pid = watch.state.position.id
        ref = None
        with bound_contextvars(position_id=pid):
            if isinstance(result, NotAClose):
                # The account may be a fill ahead of the events: decided again on the next
                # quotes, unless the refusals persist (see ClosePolicy.refused).
                if self.policy.refused(pid, str(result), item.at.now):
                    await self.hold(pid, f"close refused: {result}")
            elif isinstance(result, WouldClose):
                self.views.would_close(item.at.now, close, watch.state.position)
            elif isinstance(result, NotPlaced):
                if self.policy.rejected(pid, str(result), item.at.now):
                    await self.hold(pid, f"close not placed: {result}")
            elif isinstance(result, Exception) and transient(result):
                self.outage.failed(result)  # (decided again; the outage said once)
            elif isinstance(result, Exception):
                _log.error("order.failed", detail=said(result))
            else:
                self.outage.answered()
                ref = result
        if close.replaces:
            if ref is None and self.working.live_for(pid) is None:
                self.policy.replaced(pid)  # nothing to cancel (yet): decide again
            return
        if ref is None:
            if watch.state.phase is Phase.CLOSING:  # nothing went out: open again
                watch.state = apply(watch.state, NotSent())
            return
        self.policy.sent(pid)
        self.views.close_sent(item.at.now, ref, close, watch.state.position, item.clock)

    async def hold(self, position_id: str, why: str) -> None:
        """No order for the position until a human looks: said (the read model: a line, an
        alert, the gauge, /readyz) and marked in the store (the audit trail, ``positions
        list``; kept over a restart). The policy has left it alone already."""
        self.views.needs_attention(position_id, why)
        try:
            await self.store.mark_attention(position_id, why)
        except STORE_FAILURES as exc:  # (held in this process; said again if it recurs)
            _log.error("position.attention_unsaved", detail=said(exc))

    def drop_queued(self) -> None:
        """Stopping: the decisions not yet taken up are dropped (nothing of them is
        written; they are decided again on restart)."""
        while not self.intents.empty():
            item = self.intents.get_nowait()
            if not item.close.replaces and item.watch.state.phase is Phase.CLOSING:
                item.watch.state = apply(item.watch.state, NotSent())
            self.intents.settle(1)
            self.intents.done(1)

    async def close(
        self,
        stored: StoredPosition,
        decision: Close,
        natural: Decimal,
        at: MarketTime,
        quotes: dict[str, Any] | None = None,
        decided: float | None = None,
    ) -> str | None:
        """Act on one close decision at once (outside the queue and the exit states); the
        order_ref sent, or None when nothing was sent (outside regular hours: nothing).

        Raises :class:`service.orders.closing.NotAClose` (nothing written) for an order
        that would not only close, :class:`service.errors.StoreRefused` for one the store
        refuses. A broker that refuses the order outright ends it as rejected (written,
        then ended; None is returned)."""
        if not self.policy.in_hours(stored.position.id, decision, at):
            return None
        request = CloseRequest(stored, decision, natural, at, quotes, decided)
        (result,) = await self.executor.execute([request])
        if isinstance(result, Exception):
            raise result
        return None if isinstance(result, WouldClose) else result

    async def reprice(self, now: datetime, natural_of: Callable[[str], Decimal | None]) -> None:
        """Walk each live order toward its position's natural debit (see WorkingOrders)."""
        await self.working.reprice(now, natural_of)

    # Order events -----------------------------------------------------------------------

    def turn_day(self, closed: Iterable[str]) -> None:
        """The close: the positions ``closed`` and let go by the book are forgotten."""
        self.policy.forget(closed)
        self.executor.turn_day(closed)

    def on_events(self, events: Iterable[OrderEvent]) -> None:
        """Queue the broker's order events, in their order (the feed calls this)."""
        book = self.book
        for event in events:
            if book is not None:
                book.received(event)
            self._events.put_nowait(event)

    async def follow(self) -> None:
        """Apply every queued order event (the step-driven way)."""
        while not self._events.empty():
            event = self._events.get_nowait()
            try:
                await self.on_event(event)
            finally:
                self._events.task_done()

    async def serve_events(self) -> None:
        """The follower, live: applies events as they come, on a connection of its own."""
        async with self.store.hold():
            turns = Turns()
            while True:
                if self._events.empty():
                    event = await self._events.get()
                    turns.began()
                else:  # (no turn given: events none of which needs I/O could hold the loop)
                    event = self._events.get_nowait()
                try:
                    await self.on_event(event)
                finally:
                    self._events.task_done()
                await turns.take()

    async def events_applied(self) -> None:
        """Until every event received is applied."""
        await self._events.join()

    async def on_event(self, event: OrderEvent) -> None:
        """One order event: into the store, then to the position's exit state."""
        ref = event.order_ref
        try:
            with bound_contextvars(position_id=position_of(ref), order_ref=ref):
                await self._apply(event)
        finally:  # applied to the exit state, or failed: no longer in flight
            if self.book is not None:
                self.book.applied(event)

    async def _apply(self, event: OrderEvent) -> None:
        if event.commission is not None:  # a report after its fill: nothing else changes
            await self._add_commission(event)
            return
        self.views.order_event(event)
        try:
            applied = await self.writer.write(event)
        except STORE_FAILURES as exc:  # (an order that is not ours...: said, skipped)
            _log.error("order.event_failed", status=event.status, detail=said(exc))
            return
        pid, book = position_of(event.order_ref), self.book
        watch = None if book is None else book.watch(pid)
        fill = applied is not None and applied.applied and event.execution is not None
        if fill and watch is not None and event.execution is not None:
            # (a position no longer watched has been voided or expired: its fill is in the
            # store, and in the report, not said)
            self.views.filled(watch.state.position, event.execution)
        if book is None or watch is None or watch.state.phase is not Phase.CLOSING:
            return
        if fill and event.execution is not None:
            self.policy.filled(pid)
            watch.state = apply(watch.state, Filled(event.execution.quantity))
            if watch.state.phase is Phase.CLOSED:
                book.release(watch)
        elif event.status in ENDED_STATUSES:
            watch.state = apply(watch.state, OrderEnded())
            self.policy.replaced(pid)
            if event.status is OrderStatus.REJECTED:  # decided again, with a new order
                why = event.reason or "no reason given"
                if self.policy.rejected(pid, why, event.at):
                    await self.hold(pid, f"close rejected by the broker: {why}")

    async def _add_commission(self, event: OrderEvent) -> None:
        """A commission report that came after its fill: added to it (once), said."""
        c = event.commission
        if c is None:
            return
        try:
            total = await self.writer.add_commission(c)
        except STORE_FAILURES as exc:
            _log.error("order.commission_failed", exec_id=c.exec_id, detail=said(exc))
            return
        if total is not None:
            self.views.commission(position_of(event.order_ref), event.at, c, total)
