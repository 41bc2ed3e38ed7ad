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

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
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
        expected: Callable[[Iterable[LegKey]], Mapping[LegKey, int]] | None = None,
    ) -> None:
        self.store = store
        self.gateway = gateway
        self.schedule = schedule
        # what the open positions imply the account holds of the given contracts (see
        # check_close); None: the account's net per contract must be on the closing side
        self.expected = expected
        self._live: dict[str, _Live] = {}  # order_ref -> what the manager works
        self._attempts: dict[tuple[str, int | None], int] | None = None  # from the store

    def live_for(self, position_id: str) -> str | None:
        return next((r for r, x in self._live.items() if x.position_id == position_id), None)

    async def _next_attempt(self, pid: str, stage: int | None) -> int:
        if self._attempts is None:
            self._attempts = await self.store.order_attempts()
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
    ) -> str | None:
        """Act on a close decision; the order_ref sent, or None when nothing was sent.

        Raises :class:`service.orders.NotAClose` (nothing written) for an order that
        would not only close. A broker that refuses the order outright ends it as
        rejected (written, then ended; None is returned)."""
        if not at.regular_hours:
            return None
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
        limit = limit_for(decision.debit, natural, 0, self.schedule.steps)
        order = closing_order(stored.position, "", quantity, limit)
        legs = [c.leg for c in order.legs]
        expected = None if self.expected is None else self.expected(legs)
        check_close(order, await self.gateway.positions(), stored.remaining, expected)
        ref = order_ref(pid, stage, await self._next_attempt(pid, stage))
        order = replace(order, order_ref=ref)
        intent = CloseIntent(
            order_ref=ref,
            position_id=pid,
            stage=stage,
            attempt=int(ref.rsplit(":", 1)[1]),
            reason=decision.reason.value,
            label=decision.label,
            target=decision.target,
            quantity=quantity,
            limit_price=limit,
            quotes=quotes,
        )
        await self.store.record_intent(intent, decision)
        # known before it is placed: its events may come before place() returns
        self._live[ref] = _Live(pid, decision.debit, limit, at.now, stage is None)
        try:
            await self.gateway.place(order)
        except Exception as exc:  # the broker refused it outright, or is not there
            self._live.pop(ref, None)
            await self.store.end_order(ref, "rejected", f"not placed: {exc}")
            _log.error("rejected", position_id=pid, order_ref=ref, reason=f"not placed: {exc}")
            return None
        await self.store.order_sent(ref, "submitted")
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

    def adopt(self, order: Mapping[str, Any], now: datetime) -> None:
        """Work a live order found in the store and at the broker on start (repriced from
        its last limit, on a fresh schedule)."""
        limit = order["limit_price"]
        self._live[order["order_ref"]] = _Live(
            order["position_id"], limit, limit, now, order["stage"] is None
        )

    async def reconcile(self, now: datetime) -> list[str]:
        """On start: the store's live orders against the broker's. Executions the store has
        not seen are applied (once each, by execution id); an order the broker no longer
        works is ended as cancelled; one it still works is adopted (repriced and followed
        from ``now``). Returns what was done, a line each."""
        done: list[str] = []
        live = {o["order_ref"]: o for o in await self.store.live_orders()}
        for e in await self.gateway.executions():
            if e.order_ref in live:
                fill = Fill(e.exec_id, e.order_ref, e.quantity, e.price, e.time, e.commission)
                if (await self.store.apply_fill(fill)).applied:
                    done.append(f"{e.order_ref}: applied missed execution {e.exec_id}")
        live = {o["order_ref"]: o for o in await self.store.live_orders()}  # after the fills
        working = {o.order_ref for o in await self.gateway.open_orders()}
        for ref, order in live.items():
            if ref not in working:
                detail = "not working at the broker on start"
                await self.store.end_order(ref, "cancelled", detail)
                done.append(f"{ref}: {detail}: ended as cancelled")
            elif self.live_for(order["position_id"]) is None:
                self.adopt(order, now)
                done.append(f"{ref}: working at the broker: adopted")
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
                try:
                    await self.gateway.modify(ref, limit)
                except Exception as exc:  # (filled meanwhile...: the events tell)
                    _log.warning("reprice failed", order_ref=ref, detail=f"{exc}")
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
