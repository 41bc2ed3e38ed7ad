"""The order manager: from a close decision to a filled order, with the store as the truth.

For a close it
1. holds it outside regular hours (the caller logs it once and decides again
   at the open);
2. builds one combo limit order at the mark rounded to the tick, and checks
   that it only closes (:func:`service.orders.check_close`);
3. writes the intent row, then sends the order, then records it as sent;
4. reprices it on the schedule toward the natural (stops walk faster), never
   beyond it;
5. applies each execution to the store at once (a partial fill updates
   contracts remaining), and records a cancel or a rejection.

Never more than one live close per position: a stronger trigger
(``Close.replaces``) cancels the live profit close first; the stop is sent
on the decision after the cancel is confirmed, for everything remaining.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from rules.clock import MarketTime
from rules.machine import Close, ExitReason
from rules.pricing import RepriceSchedule, limit_for
from service.errors import StoreRefused
from service.logs import get_logger
from service.orders import NotAClose, check_close, closing_order
from service.ports import (
    CloseIntent,
    ComboOrder,
    Fill,
    FillApplied,
    LegKey,
    OrderEvent,
    OrderGateway,
    Store,
    StoredOrder,
    StoredPosition,
    order_ref,
)
from service.turns import Turns

_log = get_logger("spreadwatch.orders")


@dataclass(frozen=True)
class CloseRequest:
    """A close decision to act on, with what it was made on."""

    stored: StoredPosition
    decision: Close
    natural: Decimal
    at: MarketTime
    quotes: dict[str, Any] | None = None
    decided: float | None = None  # time.perf_counter() at the decision


@dataclass
class _Live:
    position_id: str
    mark: Decimal
    limit: Decimal
    sent_at: datetime
    stop: bool
    step: int = 0
    failed: bool = False  # the last modify failed (said once)


class OrderManager:
    def __init__(
        self,
        store: Store,
        gateway: OrderGateway,
        schedule: RepriceSchedule,
        expected: Callable[[Iterable[LegKey]], Mapping[LegKey, int]] | None = None,
    ) -> None:
        self.store = store
        self.gateway = gateway
        self.schedule = schedule
        # what the open positions imply the account holds of the given contracts (see
        # check_close); None: the account's net per contract must be on the closing side
        self.expected = expected
        self._live: dict[str, _Live] = {}  # order_ref -> what the manager works
        self._live_by_position: dict[str, str] = {}  # position -> its live order_ref
        self._attempts: dict[tuple[str, int | None], int] | None = None  # from the store
        self._loading = asyncio.Lock()
        self.intent_latency: deque[float] = deque(maxlen=100_000)  # decision -> intent, s

    def live_for(self, position_id: str) -> str | None:
        return self._live_by_position.get(position_id)

    def _work(self, ref: str, live: _Live) -> None:
        self._live[ref] = live
        self._live_by_position[live.position_id] = ref

    def _done(self, ref: str) -> None:
        live = self._live.pop(ref, None)
        if live is not None and self._live_by_position.get(live.position_id) == ref:
            del self._live_by_position[live.position_id]

    async def _next_attempt(self, pid: str, stage: int | None) -> int:
        if self._attempts is None:
            async with self._loading:  # several workers may ask at once: one load
                if self._attempts is None:
                    self._attempts = await self.store.order_attempts()
        assert self._attempts is not None
        attempt = self._attempts.get((pid, stage), 0) + 1
        self._attempts[(pid, stage)] = attempt
        return attempt

    async def close(
        self,
        stored: StoredPosition,
        decision: Close,
        natural: Decimal,
        at: MarketTime,
        quotes: dict[str, Any] | None = None,
        decided: float | None = None,
    ) -> str | None:
        """Act on a close decision; the order_ref sent, or None when nothing was sent.

        Raises :class:`service.orders.NotAClose` (nothing written) for an order that
        would not only close, :class:`service.errors.StoreRefused` for one the store
        refuses. A broker that refuses the order outright ends it as rejected (written,
        then ended; None is returned)."""
        (result,) = await self.close_many(
            [CloseRequest(stored, decision, natural, at, quotes, decided)]
        )
        if isinstance(result, Exception):
            raise result
        return result

    async def close_many(
        self,
        requests: Sequence[CloseRequest],
        written: Callable[[], None] | None = None,
    ) -> list[str | NotAClose | StoreRefused | None]:
        """:meth:`close` for several decisions at once: their intents commit in one
        transaction (then ``written`` is called), then each order is placed, then all are
        recorded as sent. Per request: the order_ref sent, None (nothing sent), or the
        refusal."""
        results: list[str | NotAClose | StoreRefused | None] = [None] * len(requests)
        ready: list[tuple[int, CloseRequest, ComboOrder, CloseIntent]] = []
        held: Mapping[LegKey, int] | None = None
        for k, req in enumerate(requests):
            if not req.at.regular_hours:
                continue
            if held is None:
                held = await self.gateway.positions()
            try:
                prepared = await self._prepare(req, held)
            except NotAClose as exc:
                results[k] = exc
                continue
            if prepared is not None:
                ready.append((k, req, *prepared))
        if not ready:
            if written is not None:
                written()
            return results
        refused = await self.store.record_intents([(i, r.decision) for _, r, _, i in ready])
        committed = time.perf_counter()
        if written is not None:
            written()
        placed: list[tuple[int, CloseRequest, ComboOrder]] = []
        for (k, req, order, _), why in zip(ready, refused, strict=True):
            if why is not None:
                results[k] = StoreRefused(why)
                continue
            if req.decided is not None:
                self.intent_latency.append(committed - req.decided)
            ref, pid = order.order_ref, req.stored.position.id
            # known before it is placed: its events may come before place() returns
            stop = req.decision.reason is not ExitReason.PROFIT_TARGET
            self._work(ref, _Live(pid, req.decision.debit, order.limit, req.at.now, stop))
            try:
                await self.gateway.place(order)
            except Exception as exc:  # the broker refused it outright, or is not there
                self._done(ref)
                await self.store.end_order(ref, "rejected", f"not placed: {exc}")
                _log.error("rejected", position_id=pid, order_ref=ref, reason=f"not placed: {exc}")
                continue
            placed.append((k, req, order))
        if placed:
            await self.store.orders_sent([order.order_ref for _, _, order in placed])
        for k, req, order in placed:
            results[k] = order.order_ref
            _log.info(
                "close submitted",
                position_id=req.stored.position.id,
                order_ref=order.order_ref,
                reason=req.decision.reason.value,
                quantity=order.quantity,
                limit=str(order.limit),
                natural=str(req.natural),
            )
        return results

    async def _prepare(
        self, req: CloseRequest, held: Mapping[LegKey, int]
    ) -> tuple[ComboOrder, CloseIntent] | None:
        """The order and intent for ``req``; None when nothing is to be sent now (a live
        order: cancelled first if the decision replaces it)."""
        decision, stored = req.decision, req.stored
        pid = stored.position.id
        live = self.live_for(pid)
        if live is not None:
            if decision.replaces:  # the stop goes once the cancel is confirmed
                await self.gateway.cancel(live)
            return None
        if decision.replaces:  # the order it replaces is not out yet: decide again later
            return None
        stage = decision.tranche if decision.reason is ExitReason.PROFIT_TARGET else None
        quantity = min(decision.contracts, stored.remaining)
        limit = limit_for(decision.debit, req.natural, 0, self.schedule.steps)
        order = closing_order(stored.position, "", quantity, limit)
        expected = None if self.expected is None else self.expected([c.leg for c in order.legs])
        check_close(order, held, stored.remaining, expected)
        attempt = await self._next_attempt(pid, stage)
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

    def adopt(self, order: StoredOrder, now: datetime) -> None:
        """Work a live order found in the store and at the broker on start (repriced from
        its last limit, on a fresh schedule)."""
        limit = order.limit_price
        assert limit is not None  # (every close is a limit order)
        self._work(
            order.order_ref,
            _Live(order.position_id, limit, limit, now, order.stage is None),
        )

    async def reconcile(self, now: datetime) -> list[str]:
        """On start: the store's live orders against the broker's. Executions the store has
        not seen are applied (once each, by execution id); an order the broker no longer
        works is ended as cancelled; one it still works is adopted (repriced and followed
        from ``now``). Returns what was done, a line each."""
        done: list[str] = []
        live = {o.order_ref: o for o in await self.store.live_orders()}
        for e in await self.gateway.executions():
            if e.order_ref in live:
                fill = Fill(e.exec_id, e.order_ref, e.quantity, e.price, e.time, e.commission)
                if (await self.store.apply_fill(fill)).applied:
                    done.append(f"{e.order_ref}: applied missed execution {e.exec_id}")
        live = {o.order_ref: o for o in await self.store.live_orders()}  # after the fills
        working = {o.order_ref for o in await self.gateway.open_orders()}
        for ref, order in live.items():
            if ref not in working:
                detail = "not working at the broker on start"
                await self.store.end_order(ref, "cancelled", detail)
                done.append(f"{ref}: {detail}: ended as cancelled")
            elif self.live_for(order.position_id) is None:
                self.adopt(order, now)
                done.append(f"{ref}: working at the broker: adopted")
        for line in done:
            _log.info("reconciled", detail=line)
        self._attempts = await self.store.order_attempts()  # now, not on the first decision
        return done

    async def reprice(self, now: datetime, natural_of: Callable[[str], Decimal | None]) -> None:
        """Walk each live order toward its position's natural debit (``natural_of`` the
        position; None: not known now), on the schedule."""
        turns = Turns()
        for ref, live in list(self._live.items()):
            if live.failed:
                continue
            step = self.schedule.step(now - live.sent_at, stop=live.stop)
            if step <= live.step and step < self.schedule.steps:
                continue  # at the last step the limit follows the natural as it moves
            natural = natural_of(live.position_id)
            if natural is None:
                continue
            await turns.take()
            limit = limit_for(live.mark, natural, step, self.schedule.steps)
            live.step = step
            if limit != live.limit:
                try:
                    await self.gateway.modify(ref, limit)
                except Exception as exc:  # (filled meanwhile...: the events tell)
                    if not live.failed:
                        _log.warning("reprice failed", order_ref=ref, detail=f"{exc}")
                    live.failed = True  # quiet until the broker says something of it
                    continue
                live.limit = limit
                _log.info(
                    "repriced",
                    position_id=live.position_id,
                    order_ref=ref,
                    step=step,
                    limit=str(limit),
                    natural=str(natural),
                )

    async def on_event(self, event: OrderEvent) -> FillApplied | None:
        """What the broker said of an order, into the store."""
        ref = event.order_ref
        if ref in self._live:
            self._live[ref].failed = False
        applied = None
        if event.execution is not None:
            e = event.execution
            applied = await self.store.apply_fill(
                Fill(e.exec_id, ref, e.quantity, e.price, e.time, e.commission)
            )
            if applied.applied:
                _log.info(
                    "filled",
                    order_ref=ref,
                    exec_id=e.exec_id,
                    quantity=e.quantity,
                    price=str(e.price),
                    remaining=applied.remaining,
                )
        if event.status == "working":
            await self.store.order_sent(ref, "working", event.broker_order_id, event.perm_id)
        elif event.status in ("cancelled", "rejected"):
            await self.store.end_order(ref, event.status, event.reason)
            self._done(ref)
            log = _log.warning if event.status == "rejected" else _log.info
            log(event.status, order_ref=ref, reason=event.reason or None)
        elif event.status == "filled":
            self._done(ref)
        return applied
