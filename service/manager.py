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

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from rules.clock import MarketTime
from rules.machine import Close, ExitReason
from rules.pricing import RepriceSchedule, limit_for
from service.logs import get_logger
from service.orders import check_close, closing_order
from service.ports import (
    CloseIntent,
    Fill,
    FillApplied,
    LegKey,
    OrderEvent,
    OrderGateway,
    Store,
    StoredPosition,
    order_ref,
)

_log = get_logger("spreadwatch.orders")


@dataclass
class _Live:
    position_id: str
    mark: Decimal
    limit: Decimal
    sent_at: datetime
    stop: bool
    step: int = 0


class OrderManager:
    def __init__(
        self,
        store: Store,
        gateway: OrderGateway,
        schedule: RepriceSchedule,
        expected: Callable[[], Mapping[LegKey, int]] | None = None,
    ) -> None:
        self.store = store
        self.gateway = gateway
        self.schedule = schedule
        # what the open positions imply the account holds (see check_close); None: the
        # account's net per contract must be on the closing side
        self.expected = expected
        self._live: dict[str, _Live] = {}  # order_ref -> what the manager works

    def live_for(self, position_id: str) -> str | None:
        return next((r for r, x in self._live.items() if x.position_id == position_id), None)

    async def close(
        self,
        stored: StoredPosition,
        decision: Close,
        natural: Decimal,
        at: MarketTime,
        quotes: dict[str, Any] | None = None,
    ) -> str | None:
        """Act on a close decision; the order_ref sent, or None when nothing was sent."""
        if not at.regular_hours:
            return None
        pid = stored.position.id
        live = self.live_for(pid)
        if live is not None:
            if decision.replaces:  # the stop goes once the cancel is confirmed
                await self.gateway.cancel(live)
            return None
        stage = decision.tranche if decision.reason is ExitReason.PROFIT_TARGET else None
        attempt = 1 + sum(
            1
            for o in (await self.store.detail(pid)).orders
            if o["order_ref"].startswith(order_ref(pid, stage, 0)[:-1])
        )
        ref = order_ref(pid, stage, attempt)
        quantity = min(decision.contracts, stored.remaining)
        limit = limit_for(decision.debit, natural, 0, self.schedule.steps)
        order = closing_order(stored.position, ref, quantity, limit)
        expected = None if self.expected is None else self.expected()
        check_close(order, await self.gateway.positions(), stored.remaining, expected)
        await self.store.record_decision(pid, decision, quotes)
        await self.store.record_intent(
            CloseIntent(
                order_ref=ref,
                position_id=pid,
                stage=stage,
                attempt=attempt,
                reason=decision.reason.value,
                label=decision.label,
                target=decision.target,
                quantity=quantity,
                limit_price=limit,
                quotes=quotes,
            )
        )
        await self.gateway.place(order)
        await self.store.order_sent(ref, "submitted")
        self._live[ref] = _Live(pid, decision.debit, limit, at.now, stage is None)
        _log.info(
            "close submitted",
            position_id=pid,
            order_ref=ref,
            reason=decision.reason.value,
            quantity=quantity,
            limit=str(limit),
            natural=str(natural),
        )
        return ref

    async def reconcile(self) -> list[str]:
        """On start: the store's live orders against the broker's. Executions the store has
        not seen are applied (once each, by execution id); an order the broker no longer
        works is ended as cancelled. Returns what was done, a line each."""
        done: list[str] = []
        live = {o["order_ref"]: o for o in await self.store.live_orders()}
        for e in await self.gateway.executions():
            if e.order_ref in live:
                fill = Fill(e.exec_id, e.order_ref, e.quantity, e.price, e.time, e.commission)
                if (await self.store.apply_fill(fill)).applied:
                    done.append(f"{e.order_ref}: applied missed execution {e.exec_id}")
        working = {o.order_ref for o in await self.gateway.open_orders()}
        for ref in live:
            if ref not in working:
                detail = "not working at the broker on start"
                await self.store.end_order(ref, "cancelled", detail)
                done.append(f"{ref}: {detail}: ended as cancelled")
        for line in done:
            _log.info("reconciled", detail=line)
        return done

    async def reprice(self, now: datetime, naturals: dict[str, Decimal]) -> None:
        """Walk each live order toward its position's natural debit, on the schedule."""
        for ref, live in list(self._live.items()):
            natural = naturals.get(live.position_id)
            if natural is None:
                continue
            step = self.schedule.step(now - live.sent_at, stop=live.stop)
            if step <= live.step and step < self.schedule.steps:
                continue  # at the last step the limit follows the natural as it moves
            limit = limit_for(live.mark, natural, step, self.schedule.steps)
            live.step = step
            if limit != live.limit:
                await self.gateway.modify(ref, limit)
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
            await self.store.order_sent(ref, "working")
        elif event.status in ("cancelled", "rejected"):
            await self.store.end_order(ref, event.status, event.reason)
            self._live.pop(ref, None)
            log = _log.warning if event.status == "rejected" else _log.info
            log(event.status, order_ref=ref, reason=event.reason or None)
        elif event.status == "filled":
            self._live.pop(ref, None)
        return applied
