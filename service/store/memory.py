"""The store in memory: :class:`InMemoryStore`, the same :class:`service.ports.Store` as
:class:`service.store.repository.SqlStore`, with the same semantics, for tests and
simulations that need no database.

Every method runs to its end without giving up the event loop, so each is atomic
as a transaction is. What the stores decide alike (why an intent is refused, what
a fill changes, the audit rows) is :mod:`service.store.rows`'; only the storage is
this module's.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import itertools
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from rules.machine import Decision, Phase
from rules.model import Position
from service.errors import StoreRefused
from service.ports import (
    AuditEvent,
    CloseIntent,
    Commission,
    Fill,
    FillApplied,
    OrderStatus,
    PositionControl,
    PositionDetail,
    RealisedRow,
    Store,
    StoredFill,
    StoredLeg,
    StoredOrder,
    StoredPosition,
)
from service.store import changes, rows

Quotes = dict[str, Any] | None  # a decision's quotes, as the audit trail keeps them


def _now() -> datetime:
    return datetime.now(UTC)


class InMemoryStore:
    """The system of record in memory (nothing survives the process)."""

    def __init__(self) -> None:
        self._positions: dict[str, StoredPosition] = {}
        self._con_ids: dict[str, dict[int, int | None]] = {}
        self._orders: dict[str, StoredOrder] = {}  # in the order written
        self._fills: dict[str, StoredFill] = {}
        self._reports: set[str] = set()  # the commission reports added to fills, by id
        self._events: list[AuditEvent] = []
        self._event_ids = itertools.count(1)
        self._listeners: list[Callable[[str], None]] = []  # listen()'s, told of each change
        self._venue: str | None = None  # the venue the records are of (bind)

    def _tell(self, position_id: str) -> None:
        for changed in list(self._listeners):
            changed(position_id)

    def _audit(self, values: dict[str, Any]) -> None:
        values = {**values, "quotes": copy.deepcopy(values["quotes"])}  # (stored: a copy)
        self._events.append(AuditEvent(id=next(self._event_ids), at=_now(), **values))

    def _position(self, position_id: str) -> StoredPosition:
        stored = self._positions.get(position_id)
        if stored is None:
            raise changes.no_position(position_id)
        return stored

    def _live(self, position_id: str) -> StoredOrder | None:
        live = (o for o in self._orders.values() if o.position_id == position_id)
        return next((o for o in live if not o.status.final), None)

    # Positions --------------------------------------------------------------------------

    async def import_positions(self, positions: Sequence[Position], account: str) -> None:
        """All of ``positions`` or none: an id already stored is an error, not a duplicate."""
        taken = sorted(p.id for p in positions if p.id in self._positions)
        if taken:
            raise changes.already_stored(taken[0])
        ids = [p.id for p in positions]
        if len(set(ids)) != len(ids):
            raise StoreRefused("positions: not stored: an id given twice")
        for p in positions:
            self._positions[p.id] = rows.new_stored(p, account)
            self._con_ids[p.id] = dict.fromkeys(range(len(p.legs)))
            self._audit(rows.imported_values(p))
        self._tell(changes.EVERY)

    async def open_positions(self) -> list[StoredPosition]:
        return [s for s in await self.all_positions() if s.watched]

    async def all_positions(self) -> list[StoredPosition]:
        return sorted(self._positions.values(), key=lambda s: (s.position.opened_at, s.position.id))

    async def detail(self, position_id: str) -> PositionDetail:
        stored = self._position(position_id)
        orders = sorted(
            (o for o in self._orders.values() if o.position_id == position_id),
            key=lambda o: (o.created_at, o.order_ref),
        )
        refs = {o.order_ref for o in orders}
        fills = [f for f in self._fills.values() if f.order_ref in refs]
        fills.sort(key=lambda f: (f.time, f.exec_id))
        events = [e for e in self._events if e.position_id == position_id]
        return PositionDetail(stored, orders, fills, events)

    async def request_manual_close(self, position_id: str, reason: str) -> None:
        stored = self._position(position_id)
        changes.controllable(stored)
        changed = replace(stored, manual_close=reason, version=stored.version + 1)
        self._positions[position_id] = changed
        self._audit(rows.manual_close_values(position_id, reason, stored.remaining))
        self._tell(position_id)

    async def record_contract_ids(self, position_id: str, con_ids: dict[int, int]) -> None:
        legs = self._con_ids.get(position_id, {})
        for index in con_ids:
            if index not in legs:
                raise changes.no_leg(position_id, index)
        legs.update(con_ids)

    async def contract_ids(self, position_id: str) -> dict[int, int | None]:
        return dict(self._con_ids.get(position_id, {}))

    async def stored_legs(self) -> list[StoredLeg]:
        return [
            rows.stored_leg(s.position, i, self._con_ids[pid].get(i))
            for pid, s in sorted(self._positions.items())
            if s.watched
            for i in range(len(s.position.legs))
        ]

    # A human's changes, and what needs one -----------------------------------------------

    async def positions(self, ids: Sequence[str]) -> list[StoredPosition]:
        return [s for s in await self.all_positions() if s.position.id in set(ids)]

    async def controls(self) -> dict[str, PositionControl]:
        return {
            pid: PositionControl(s.position.book, s.manual_close, s.attention)
            for pid, s in self._positions.items()
            if s.watched
        }

    def _change(self, position_id: str, kind: str, detail: str, idle: bool = False,
                **values: Any) -> None:  # fmt: skip
        stored = self._position(position_id)
        changes.controllable(stored)
        live = self._live(position_id)
        if idle and live is not None:
            raise changes.order_working(position_id, live.order_ref)
        self._audit(rows.control_values(position_id, kind, detail, stored.remaining))
        self._positions[position_id] = replace(stored, version=stored.version + 1, **values)
        self._tell(position_id)

    async def void(self, position_id: str, reason: str) -> None:
        self._change(position_id, changes.VOIDED, reason, idle=True, void=reason)

    async def set_book(self, position_id: str, book: str) -> None:
        stored = self._position(position_id)
        position = replace(stored.position, book=book)
        detail = f"{stored.position.book} -> {book}"
        self._change(position_id, changes.BOOK_CHANGED, detail, position=position)

    async def resume(self, position_id: str) -> None:
        self._change(position_id, changes.RESUMED, "resumed by hand", attention=None)

    async def mark_attention(self, position_id: str, why: str) -> bool:
        stored = self._position(position_id)
        if stored.attention == why or not stored.watched:
            return False
        self._positions[position_id] = replace(stored, attention=why, version=stored.version + 1)
        self._audit(rows.control_values(position_id, changes.ATTENTION, why, stored.remaining))
        return True

    async def realised(self, since: datetime | None = None) -> list[RealisedRow]:
        return rows.realised_in(self._fills.values(), self._orders, self._positions, since)

    async def close_expired(self, position_id: str, detail: str) -> None:
        self._change(position_id, changes.EXPIRED, detail, idle=True, remaining=0,
                     status=Phase.CLOSED, closed_at=_now())  # fmt: skip

    async def listen(self, changed: Callable[[str], None]) -> None:
        self._listeners.append(changed)
        changed(changes.EVERY)  # listening: anything may have changed before
        try:
            await asyncio.Event().wait()  # until cancelled: this store is never lost
        finally:
            self._listeners.remove(changed)

    # Orders and fills ---------------------------------------------------------------------

    async def record_intent(self, intent: CloseIntent, decision: Decision | None = None) -> None:
        (refused,) = await self.record_intents([(intent, decision)])
        if refused is not None:
            raise StoreRefused(refused)

    async def record_intents(
        self, items: Sequence[tuple[CloseIntent, Decision | None]]
    ) -> list[str | None]:
        out: list[str | None] = []
        for intent, decision in items:
            pid = intent.position_id
            stored = self._positions.get(pid)
            remaining = None if stored is None else stored.remaining
            live = self._live(pid)
            why = changes.intent_refusal(
                intent,
                remaining,
                None if live is None else live.order_ref,
                intent.order_ref in self._orders,
                None if stored is None else changes.held_by(stored.void, stored.attention),
            )
            out.append(why)
            if why is None and stored is not None:
                self._write_intent(intent, decision, stored)
        return out

    def _write_intent(
        self, intent: CloseIntent, decision: Decision | None, stored: StoredPosition
    ) -> None:
        now = _now()
        self._orders[intent.order_ref] = StoredOrder(
            order_ref=intent.order_ref,
            position_id=intent.position_id,
            stage=intent.stage,
            attempt=intent.attempt,
            reason=intent.reason,
            label=intent.label,
            target=intent.target,
            quantity=intent.quantity,
            limit_price=intent.limit_price,
            status=OrderStatus.INTENT,
            filled=0,
            avg_price=None,
            paid=Decimal(0),
            broker_order_id=None,
            perm_id=None,
            created_at=now,
            updated_at=now,
        )
        self._positions[intent.position_id] = replace(
            stored, status=changes.ON_INTENT, version=stored.version + 1
        )
        if decision is not None:
            pid, quotes = intent.position_id, intent.quotes
            self._audit(rows.decision_values(pid, stored.remaining, decision, quotes))
        self._audit(rows.intent_values(intent, stored.remaining))

    async def orders_sent(self, refs: Sequence[str], status: str = "queued") -> None:
        sent = changes.sent_status(status)
        for ref in refs:
            order = self._orders.get(ref)
            if order is None or order.status not in changes.REPLACES[sent]:
                continue
            self._orders[ref] = replace(order, status=sent, updated_at=_now())
            self._audit(self._sent_values(order, sent, None))

    async def order_sent(self, order_ref: str, status: str, broker_order_id: int | None = None,
                         perm_id: int | None = None) -> None:  # fmt: skip
        sent = changes.sent_status(status)
        order = self._orders.get(order_ref)
        if order is None:
            raise changes.no_order(order_ref)
        after = replace(
            order,
            status=sent if order.status in changes.REPLACES[sent] else order.status,
            broker_order_id=broker_order_id or order.broker_order_id,
            perm_id=perm_id or order.perm_id,
        )
        if after != order:  # (updated only when something changes)
            after = replace(after, updated_at=_now())
        self._orders[order_ref] = after
        self._audit(self._sent_values(order, sent, rows.perm_detail(perm_id)))

    def _sent_values(
        self, order: StoredOrder, sent: OrderStatus, detail: str | None
    ) -> dict[str, Any]:
        return rows.event_values(
            position_id=order.position_id,
            kind=rows.order_kind(sent),
            order_ref=order.order_ref,
            contracts_remaining=self._positions[order.position_id].remaining,
            detail=detail,
        )

    async def end_order(self, order_ref: str, status: str, detail: str = "") -> None:
        ended = changes.ended_status(status)
        order = self._orders.get(order_ref)
        if order is None:
            raise changes.no_order(order_ref)
        stored = self._positions[order.position_id]
        phase = changes.after_end(order.status, stored.remaining, stored.status)
        if phase is None:
            return  # already ended (filled before the cancel reached the broker...)
        self._orders[order_ref] = replace(order, status=ended, updated_at=_now())
        self._positions[order.position_id] = replace(
            stored, status=phase, version=stored.version + 1
        )
        pid = order.position_id
        self._audit(rows.ended_values(pid, order_ref, ended, stored.remaining, detail))

    async def apply_fill(self, fill: Fill) -> FillApplied:
        order = self._orders.get(fill.order_ref)
        if order is None:
            raise changes.no_order(fill.order_ref, f"fill {fill.exec_id}: ")
        stored = self._positions[order.position_id]
        known = self._fills.get(fill.exec_id)
        if known is not None:
            changes.repeat_of(fill, known)
            return FillApplied(False, stored.remaining, order.filled, order.status)
        change = changes.fill_change(fill, order, changes.standing(stored))
        self._fills[fill.exec_id] = changes.stored_fill(fill)
        self._reports.update(report_id for report_id, _ in fill.reports)
        self._orders[order.order_ref] = replace(
            order,
            filled=change.filled,
            paid=change.paid,
            avg_price=change.avg_price,
            status=change.order_status,
            updated_at=_now(),
        )
        self._positions[order.position_id] = replace(
            stored,
            remaining=change.remaining,
            profit_closed=change.profit_closed,
            stage=change.stage,
            status=change.status,
            closed_at=change.closed_at or stored.closed_at,
            version=stored.version + 1,
        )
        self._audit(change.event)
        return FillApplied(True, change.remaining, change.filled, change.order_status)

    async def add_commission(self, commission: Commission) -> Decimal | None:
        added = changes.commission_added(self._fills, self._reports, commission)
        if added is not None:
            self._fills[added.exec_id] = added
            self._reports.add(commission.report_id)
        return None if added is None else added.commission

    async def record_decision(
        self, position_id: str, decision: Decision, quotes: Quotes = None, *, dry_run: bool = False
    ) -> None:
        remaining = self._position(position_id).remaining
        self._audit(rows.decision_values(position_id, remaining, decision, quotes, dry_run=dry_run))

    async def order_attempts(self) -> dict[tuple[str, int | None], int]:
        out: dict[tuple[str, int | None], int] = {}
        for o in self._orders.values():
            if self._positions[o.position_id].status is not Phase.CLOSED:
                key = (o.position_id, o.stage)
                out[key] = max(out.get(key, 0), o.attempt)
        return out

    async def live_orders(self) -> list[StoredOrder]:
        return [o for o in self._orders.values() if not o.status.final]

    async def fill_ids(self, since: datetime | None = None) -> set[str]:
        return {i for i, f in self._fills.items() if since is None or f.time >= since}

    # Control ---------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _held(self) -> AsyncIterator[None]:
        yield

    def hold(self) -> contextlib.AbstractAsyncContextManager[None]:
        """Nothing to keep: every call is served at once."""
        return self._held()

    async def warm(self, connections: int) -> None:
        """Nothing to open."""

    async def ping(self) -> bool:
        return True

    async def bind(self, venue: str) -> str:
        if self._venue is None:
            self._venue = venue
        return self._venue


if TYPE_CHECKING:  # both stores are the port's
    from service.store.repository import SqlStore

    def _ports(memory: InMemoryStore, sql: SqlStore) -> tuple[Store, Store]:
        return memory, sql
