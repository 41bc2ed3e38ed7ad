"""What the broker says of an order, into the store: fills, acknowledgements, ends.

A lost database connection is retried with backoff until the database answers
(a fill is applied once per execution id, so a retry can never apply it twice):
an event is never dropped for an outage, however long; the events after it wait
in memory, in order. The outage is said once (:class:`StoreOutage`). A refusal
is final.
"""

from __future__ import annotations

from decimal import Decimal

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_never,
    wait_exponential_jitter,
)

from service.logs import ORDER_REJECTED, get_logger
from service.orders.failures import StoreOutage, transient
from service.orders.working import WorkingOrders
from service.ports import (
    ENDED_STATUSES,
    Commission,
    Fill,
    FillApplied,
    OrderEvent,
    OrderStatus,
    Store,
)

_log = get_logger("spreadwatch.orders")
RETRY_WAIT = 2.0  # seconds between tries at most, while the database is away


class EventWriter:
    def __init__(self, store: Store, working: WorkingOrders, outage: StoreOutage) -> None:
        self.store = store
        self.working = working
        self.outage = outage

    def _retrying(self) -> AsyncRetrying:
        def said(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome is not None else None
            if exc is not None:
                self.outage.failed(exc)

        return AsyncRetrying(
            retry=retry_if_exception(transient),
            stop=stop_never,  # (never dropped: the events after it wait in memory)
            wait=wait_exponential_jitter(multiplier=0.05, max=RETRY_WAIT),
            before_sleep=said,
            reraise=True,
        )

    async def write(self, event: OrderEvent) -> FillApplied | None:
        """:meth:`write_once`, tried again until the database answers."""
        applied: FillApplied | None = None
        async for attempt in self._retrying():
            with attempt:
                applied = await self.write_once(event)
        self.outage.answered()
        return applied

    async def add_commission(self, c: Commission) -> Decimal | None:
        """A late commission report into the store (once per report id), tried again while
        the database is not there: its fill's commission now, None when added before."""
        total: Decimal | None = None
        async for attempt in self._retrying():
            with attempt:
                total = await self.store.add_commission(c)
        self.outage.answered()
        if total is not None:
            _log.info("order.commission", exec_id=c.exec_id, report_id=c.report_id,
                      amount=str(c.amount), commission=str(total))  # fmt: skip
        return total

    async def write_once(self, event: OrderEvent) -> FillApplied | None:
        """The event into the store; the fill's outcome when it carries an execution.
        (Logged in the context the desk binds: the order_ref and its position_id.)"""
        ref = event.order_ref
        self.working.heard(ref)
        applied = None
        if event.execution is not None:
            e = event.execution
            applied = await self.store.apply_fill(
                Fill(e.exec_id, ref, e.quantity, e.price, e.time, e.commission, e.reports)
            )
            if applied.applied:
                _log.info(
                    "order.filled",
                    exec_id=e.exec_id,
                    quantity=e.quantity,
                    price=str(e.price),
                    commission="pending" if e.commission is None else str(e.commission),
                    remaining=applied.remaining,
                )
        if event.status in (OrderStatus.SUBMITTED, OrderStatus.WORKING):  # acknowledged
            await self.store.order_sent(ref, event.status, event.broker_order_id, event.perm_id)
        elif event.status in ENDED_STATUSES:
            await self.store.end_order(ref, event.status, event.reason)
            self.working.done(ref)
            if event.status is OrderStatus.REJECTED:
                _log.warning(ORDER_REJECTED, reason=event.reason or None)
            else:
                _log.info("order.cancelled", reason=event.reason or None)
        elif event.status is OrderStatus.FILLED:
            self.working.done(ref)
        return applied
