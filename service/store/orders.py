"""The order path of the SQL store: decisions, close intents, orders sent and ended, fills
(:class:`service.ports.OrderStore`).

The hot statements (intents, orders sent, fills) run straight on asyncpg
(:mod:`.driver`), one round trip each; a fill takes two (a read, then one
write of what :func:`changes.fill_change` derived from the domain).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from rules.machine import Decision, Phase
from service.errors import StoreRefused, StoreUnavailable
from service.ports import (
    FINAL_ORDER_STATUSES,
    CloseIntent,
    Commission,
    Fill,
    FillApplied,
    StoredFill,
    StoredOrder,
)
from service.store import changes, driver, rows, sql
from service.store.driver import edge
from service.store.positions import SqlBase
from service.store.schema import CloseOrderRow, ExitEventRow, FillRow, PositionRow

FILL_TRIES = 1000  # reads and writes of one fill while other writers change its position

_FINAL = [s.value for s in FINAL_ORDER_STATUSES]


class SqlOrders(SqlBase):
    """Close orders and fills on PostgreSQL."""

    @edge
    async def record_intent(self, intent: CloseIntent, decision: Decision | None = None) -> None:
        """Write a close order BEFORE it is sent: never more than what remains, and never
        beside another live order of the position (a unique index holds that too). The
        decision it acts on, if given, goes to the audit trail in the same transaction.
        Raises :class:`StoreRefused` (nothing written) otherwise."""
        (refused,) = await self.record_intents([(intent, decision)])
        if refused is not None:
            raise StoreRefused(refused)

    @edge
    async def record_intents(
        self, items: Sequence[tuple[CloseIntent, Decision | None]]
    ) -> list[str | None]:
        """:meth:`record_intent` for several orders at once (a burst of decisions commits
        once). Each item is checked on its own: the result is None where it was written, the
        reason where it was refused (and nothing of it written).

        One statement (:data:`sql.INTENTS`), one round trip, writes every order whose
        position has the contracts and no live order. The reasons of the others are read
        after (:func:`changes.intent_refusal`); one that could be written after all (its
        position changed in between), or a second order of a position in the batch, goes
        into the next statement."""
        out: list[str | None] = [None] * len(items)
        pending = list(range(len(items)))
        for _ in range(len(items) + 3):
            if not pending:
                return out
            batch: list[int] = []
            later: list[int] = []
            seen: set[str] = set()
            for k in pending:
                pid = items[k][0].position_id
                (later if pid in seen else batch).append(k)
                seen.add(pid)
            written = await self._write_intents([(k, *items[k]) for k in batch])
            unwritten = [k for k in batch if items[k][0].order_ref not in written]
            again = await self._refusals([items[k][0] for k in unwritten], out, unwritten)
            pending = sorted(again + later)
        for k in pending:
            out[k] = f"order {items[k][0].order_ref}: not written: its position keeps changing"
        return out

    async def _write_intents(
        self, batch: Sequence[tuple[int, CloseIntent, Decision | None]]
    ) -> set[str]:
        """The order_refs :data:`sql.INTENTS` wrote of ``batch`` (none if it failed on a race
        the unique index caught)."""
        if not batch:
            return set()
        payload = [_intent_payload(k, intent, decision) for k, intent, decision in batch]
        try:
            async with driver.driver(self._engine, "close intents") as conn:
                rows = await conn.fetch(sql.INTENTS, json.dumps(payload), self.epoch)
                return {r[0] for r in rows}
        except IntegrityError:
            return set()

    async def _refusals(
        self, intents: Sequence[CloseIntent], out: list[str | None], at: Sequence[int]
    ) -> list[int]:
        """Say in ``out`` why each of ``intents`` (at ``at``) was not written; returns where
        nothing refuses it now (to try again)."""
        if not intents:
            return []
        pids = sorted({i.position_id for i in intents})
        refs = [i.order_ref for i in intents]
        async with driver.driver(self._engine, "close intents") as conn:
            found = await conn.fetch(sql.INTENT_STANDING, pids)
            taken = {r[0] for r in await conn.fetch(sql.REFS_TAKEN, refs)}
        standing = {
            r["id"]: (r["remaining"], r["live"], changes.held_by(r["void_reason"], r["attention"]))
            for r in found
        }
        again: list[int] = []
        for k, intent in zip(at, intents, strict=True):
            remaining, live, held = standing.get(intent.position_id, (None, None, None))
            taken_before = intent.order_ref in taken
            why = changes.intent_refusal(intent, remaining, live, taken_before, held)
            if why is None:
                again.append(k)
            out[k] = why
        return again

    @edge
    async def orders_sent(self, refs: Sequence[str], status: str = "queued") -> None:
        """:meth:`order_sent` for several orders (no broker ids yet), in one statement: the
        orders not yet further along take ``status``, and the audit trail says so."""
        sent = changes.sent_status(status)
        async with driver.driver(self._engine, "orders sent") as conn:
            await conn.execute(sql.SENT_MANY, list(refs), sent.value, rows.order_kind(sent))

    @edge
    async def order_sent(
        self,
        order_ref: str,
        status: str,
        broker_order_id: int | None = None,
        perm_id: int | None = None,
    ) -> None:
        """The order is the broker's: queued (handed to it), submitted (acknowledged), or
        working; its ids are kept. A status only goes on (:data:`changes.REPLACES`)."""
        sent = changes.sent_status(status)
        args = (order_ref, sent.value, rows.order_kind(sent), broker_order_id or None)
        async with driver.driver(self._engine, "order sent") as conn:
            done = await conn.fetchrow(sql.SENT, *args, perm_id or None, rows.perm_detail(perm_id))
        if done is None:
            raise changes.no_order(order_ref)

    @edge
    async def end_order(self, order_ref: str, status: str, detail: str = "") -> None:
        """A live order ended without filling all of it: cancelled or rejected."""
        ended = changes.ended_status(status)
        async with self._sessions.begin() as s:
            position_id = await s.scalar(
                select(CloseOrderRow.position_id).where(CloseOrderRow.order_ref == order_ref)
            )
            if position_id is None:
                raise changes.no_order(order_ref)
            row = await self._lock(s, position_id)  # the position first, as every writer
            order = await s.get(CloseOrderRow, order_ref, with_for_update=True)
            assert order is not None  # the position's lock keeps its orders in place
            phase = changes.after_end(order.status, row.remaining, Phase(row.status))
            if phase is None:
                return  # already ended (filled before the cancel reached the broker...)
            order.status = ended.value
            order.updated_at = func.now()
            row.status = phase.value
            row.version += 1
            s.add(
                ExitEventRow(
                    **rows.ended_values(position_id, order_ref, ended, row.remaining, detail)
                )
            )

    @edge
    async def apply_fill(self, fill: Fill) -> FillApplied:
        """Apply one execution exactly once, in one transaction with contracts remaining.

        Read the order, its position and any fill of the same execution id
        (:data:`sql.FILL_READ`); a repeat changes nothing (and must be the same execution),
        an unknown order or an over-fill is refused; otherwise write what
        :func:`changes.fill_change` derives (:data:`sql.FILL_WRITE`, one statement), unless the
        position changed in between: then read again."""
        for _ in range(FILL_TRIES):
            async with driver.driver(self._engine, "fill") as conn:
                row = await conn.fetchrow(sql.FILL_READ, fill.order_ref, fill.exec_id)
            if row is None:
                raise changes.no_order(fill.order_ref, f"fill {fill.exec_id}: ")
            order = rows.order_of(SimpleNamespace(**dict(row)))
            if row["f_order_ref"] is not None:
                known = StoredFill(
                    fill.exec_id,
                    row["f_order_ref"],
                    row["f_quantity"],
                    row["f_price"],
                    row["f_commission"],
                    row["f_time"],
                )
                changes.repeat_of(fill, known)
                return FillApplied(False, row["p_remaining"], order.filled, order.status)
            standing = changes.Standing(
                order.position_id,
                row["p_remaining"],
                row["p_profit_closed"],
                row["p_stage"],
                row["p_entry_credit"],
                row["p_multiplier"],
            )
            change = changes.fill_change(fill, order, standing)
            if await self._write_fill(fill, order, change, row["p_version"]):
                return FillApplied(True, change.remaining, change.filled, change.order_status)
        raise StoreUnavailable(f"fill {fill.exec_id}: its position keeps changing, try again")

    @edge
    async def add_commission(self, commission: Commission) -> Decimal | None:
        """Once per report id, in one statement (:data:`sql.COMMISSION_ADD`)."""
        c = commission
        async with driver.driver(self._engine, "fill") as conn:
            total: Decimal | None = await conn.fetchval(
                sql.COMMISSION_ADD, c.report_id, c.exec_id, c.amount
            )
            if total is None and await conn.fetchval(sql.FILL_KNOWN, c.exec_id) is None:
                raise StoreRefused(f"commission {c.report_id}: fill {c.exec_id} is not recorded")
        return total

    async def _write_fill(
        self, fill: Fill, order: StoredOrder, change: changes.FillChange, version: int
    ) -> bool:
        e = change.event
        args = (
            *(fill.exec_id, fill.order_ref, fill.quantity, fill.price, fill.commission, fill.time),
            *(order.position_id, version, change.filled, change.paid, change.avg_price),
            change.order_status.value,
            *(change.remaining, change.profit_closed, change.stage, change.status.value),
            change.closed_at,
            *(e["kind"], e["reason"], e["label"], e["pnl"], e["pct_of_max"], e["detail"]),
            [report_id for report_id, _ in fill.reports],
            [amount for _, amount in fill.reports],
        )
        async with driver.driver(self._engine, "fill") as conn:
            written: int = await conn.fetchval(sql.FILL_WRITE, *args)
        return written == 1

    @edge
    async def record_decision(
        self,
        position_id: str,
        decision: Decision,
        quotes: dict[str, Any] | None = None,
        *,
        dry_run: bool = False,
    ) -> None:
        """Append a decision to the audit trail: a close with its figures at the mark it
        was made on (``dry_run``: one that would have been made), or a hold with its
        reason (the service records holds when they change, not on every tick)."""
        async with self._sessions.begin() as s:
            remaining = await s.scalar(
                select(PositionRow.remaining).where(PositionRow.id == position_id)
            )
            if remaining is None:
                raise changes.no_position(position_id)
            values = rows.decision_values(position_id, remaining, decision, quotes, dry_run=dry_run)
            s.add(ExitEventRow(**values))

    @edge
    async def order_attempts(self) -> dict[tuple[str, int | None], int]:
        """The highest attempt per (open position, stage) among its close orders: where the
        next order_ref's attempt number starts."""
        async with self._sessions() as s:
            found = await s.execute(
                select(
                    CloseOrderRow.position_id,
                    CloseOrderRow.stage,
                    func.max(CloseOrderRow.attempt),
                )
                .join(PositionRow, PositionRow.id == CloseOrderRow.position_id)
                .where(PositionRow.status != Phase.CLOSED.value)
                .group_by(CloseOrderRow.position_id, CloseOrderRow.stage)
            )
            return {(pid, stage): n for pid, stage, n in found}

    @edge
    async def live_orders(self) -> list[StoredOrder]:
        """Close orders not final (what the service reconciles with the broker on start)."""
        async with self._sessions() as s:
            found = (
                await s.scalars(select(CloseOrderRow).where(CloseOrderRow.status.not_in(_FINAL)))
            ).all()
        return [rows.order_of(r) for r in found]

    @edge
    async def fill_ids(self, since: datetime | None = None) -> set[str]:
        """The exec ids of the fills at or after ``since`` (None: all)."""
        query = select(FillRow.exec_id)
        if since is not None:
            query = query.where(FillRow.time >= since)
        async with self._sessions() as s:
            return set((await s.scalars(query)).all())


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def _intent_payload(k: int, intent: CloseIntent, decision: Decision | None) -> dict[str, Any]:
    """One row of :data:`sql.INTENTS`'s JSON batch (numbers as text: exact)."""
    row: dict[str, Any] = {
        "k": k,
        "pid": intent.position_id,
        "ref": intent.order_ref,
        "stage": intent.stage,
        "attempt": intent.attempt,
        "reason": intent.reason,
        "label": intent.label,
        "target": _text(intent.target),
        "qty": intent.quantity,
        "limit_price": _text(intent.limit_price),
        "quotes": intent.quotes,
        "i_kind": rows.intent_values(intent, 0)["kind"],
    }
    if decision is not None:
        d = rows.decision_values(intent.position_id, 0, decision, None)
        row |= {
            "d_kind": d["kind"],
            "d_reason": d["reason"],
            "d_label": d["label"],
            "d_mark": _text(d["mark"]),
            "d_pnl": _text(d["pnl"]),
            "d_pct": _text(d["pct_of_max"]),
            "d_contracts": d["contracts_closed"],
            "d_detail": d["detail"],
        }
    return row
