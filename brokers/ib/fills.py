"""A combo's fills and their commissions, as IB sends them.

For each fill of a combo (BAG) order IB sends an execution of the BAG (its
price the combo's, per spread; its contract the BAG) and one execution per leg,
each leg's commission in a ``commissionReport`` of its own, keyed by the leg's
execId. IB gives no link between a leg and its BAG execution but the execIds:
a combo fill's executions share the leading part of their execIds, and come in
order. So legs are matched to their BAG execution by the longest shared execId
prefix, in the order they came, among the order's (perm id) fills still short of
that leg; never by equal times (IB stamps a leg a second after its BAG at times).

Commission reports are separate messages and trail their executions, by seconds
at times; ib_async drops one that comes before its execution, and passes a late
one as ``commissionReportEvent``. So a fill is passed on when its legs' reports
are in, or after :data:`FILL_WAIT` with the commission still pending; each
report that comes after is passed on as a :class:`service.ports.Commission`
(the store adds it once, by the leg's execId), and reports still missing are
asked again with ``reqExecutions`` (IB sends each execution's report again).

An execId that differs from one seen only after the final period is IB's correction
of it (TWS API, ``Execution.ExecId``), which IB does not say replaces or adds to it
(erdewit/ib_insync issue 364): never a fill of its own; said, and the positions
holding its legs need a human (the stored fill is left as it is).

Where IB sends no BAG execution (legs only), the fill is the legs': as many
spreads as the smallest leg, at the legs' prices (bought +, sold -) times their
ratios. Either way a combo fill is counted once. A BAG price below zero (a debit
combo filled at a credit: IB's combo prices may be negative) is passed on as it
is, and said (``ib.fill_at_credit``); one that is not a number is said
(``ib.fill_unpriced``), never dropped silently.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from ib_async import IB, Trade

from brokers.ib.contracts import ContractsMixin
from brokers.ib.convert import _commission
from brokers.ib.grouping import Group, Grouper, _groups_of, late_reports, with_reports
from rules.clock import Midnights
from service.logs import get_logger
from service.ports import Commission, Execution, OrderEvent, OrderStatus
from service.settings import IbSettings

_log = get_logger("spreadwatch.ib")

FILL_WAIT = 1.0  # seconds a combo fill waits for its legs' commission reports (and legs)
REPORTS_AGAIN = (5.0, 30.0, 120.0, 600.0)  # seconds: reqExecutions again for missing reports


class FillsMixin(ContractsMixin):
    """Executions and commission reports into the service's fills and commissions."""

    def __init__(self, settings: IbSettings, ib: IB, now: Callable[[], datetime]) -> None:
        super().__init__(settings, ib, now)
        self._grouper = Grouper()
        self._filled: dict[str, int] = {}  # orderRef -> spreads filled (combo fills counted)
        self._asking: asyncio.Task[None] | None = None  # reqExecutions again, for reports
        self._midnights = Midnights()  # IB's time, as it passes New York's midnight

    def _turn(self) -> None:
        """Past New York's midnight: what only the days before the last needed goes (IB
        sends the current day's executions only; a gateway's day may begin up to a day
        before New York's, so the day before is kept too)."""
        before = self._midnights.passed(self._now())
        if before is not None:
            self._let_go(before)

    def _let_go(self, before: datetime) -> None:
        """The fills of the days before ``before`` go, and the count of their orders."""
        gone = self._grouper.let_go(before)
        for ref in gone - {g.order_ref for g in self._grouper.groups}:
            self._filled.pop(ref, None)

    def _ordered(self, order_ref: str) -> int | None:
        """The spreads an order of ours is for (None: not ours)."""
        return None

    def _size(self, order_ref: str, trade: Trade | None) -> int:
        """How many legs a fill of the order has (0: not known)."""
        return len(trade.contract.comboLegs or []) if trade is not None else 0

    def _on_execution(self, trade: Trade, fill: Any) -> None:
        self._turn()
        if self._corrected(fill):
            return
        group = self._grouper.add(fill, self._size(fill.execution.orderRef, trade))
        if group is None:
            return
        if group.passed:  # a leg after its fill was passed on: its report, when it comes
            self._say(late_reports(group))
        elif group.bag is not None and group.reported():
            self._pass([group])
        elif group.timer is None:
            group.timer = asyncio.get_running_loop().call_later(FILL_WAIT, self._due, group)

    def _corrected(self, fill: Any) -> bool:
        """Whether ``fill`` corrects an execution seen before: if so, said, and the
        positions holding its legs (or its combo fill's) told to need a human."""
        ex = fill.execution
        original = self._grouper.corrects(fill) if ex.orderRef else None
        if original is None:
            return False
        group = self._grouper.where.get(original)
        con_ids = {*(group.legs if group is not None else ()), int(fill.contract.conId)}
        why = (f"IB corrected execution {original} of order {ex.orderRef} with {ex.execId} "
               f"({ex.side} {ex.shares:g} at {ex.price:g}): IB does not say whether a "
               "correction replaces or adds to an execution, so the stored fill is unchanged; "
               "check it against the account, then void or resume the position")  # fmt: skip
        _log.warning("ib.execution_corrected", order_ref=ex.orderRef, exec_id=ex.execId,
                     corrects=original, detail=why)  # fmt: skip
        for leg in sorted({self._legs[c] for c in con_ids if c in self._legs}):
            self._trouble(leg, why)
        return True

    def _on_commission(self, trade: Trade, fill: Any, report: Any) -> None:
        group = self._grouper.report(fill, _commission(report.commission))
        if group is None:
            return
        if group.passed:
            self._say(late_reports(group))
        elif group.bag is not None and group.reported():
            self._pass([group])

    def _due(self, group: Group) -> None:
        """:data:`FILL_WAIT` is over: passed on with what is in (legs only: once whole)."""
        group.timer = None
        if group.passed:
            return
        if group.bag is None and not group.whole():  # legs still coming
            group.timer = asyncio.get_running_loop().call_later(FILL_WAIT, self._due, group)
            return
        self._pass([group])

    def _pass(self, groups: Sequence[Group]) -> None:
        """Each combo fill, counted once, passed on (its commission pending when not all
        its reports are in: those ask for ``reqExecutions`` again)."""
        events: list[OrderEvent] = []
        for group in groups:
            if group.timer is not None:
                group.timer.cancel()
                group.timer = None
            execution = group.execution()
            group.passed = True
            if execution is None:
                continue
            events += self._fill_events(group, execution)
        if any(not g.reported() for g in groups) and self._asking is None:
            self._asking = asyncio.get_running_loop().create_task(self._ask_again())
        if events and self._events is not None:
            self._events(events)

    def _fill_events(self, group: Group, execution: Execution) -> list[OrderEvent]:
        """The fill's event, then its reports that are in when its commission is pending."""
        ref = group.order_ref
        total = self._filled.get(ref, 0) + execution.quantity
        self._filled[ref] = total
        ordered = self._ordered(ref)
        left = 0 if ordered is None else max(ordered - total, 0)
        status = OrderStatus.PARTIALLY_FILLED if left or ordered is None else OrderStatus.FILLED
        group.said.update(r for r, _ in execution.reports)
        event = OrderEvent(ref, status, total, left, execution.time, execution=execution)
        later = [replace(event, execution=None, commission=c) for c in late_reports(group)]
        return [event, *later]

    def _say(self, commissions: list[Commission]) -> None:
        """Reports that came after their fill was passed on, each as an event of its own."""
        if not commissions or self._events is None:
            return
        now, events = self._now(), []
        for c in commissions:
            group = self._grouper.where.get(c.report_id)
            ref = "" if group is None else group.order_ref
            events.append(OrderEvent(ref, OrderStatus.PARTIALLY_FILLED, 0, 0, now, commission=c))
        self._events(events)

    async def _ask_again(self) -> None:
        """Reports still missing (late past :data:`FILL_WAIT`, or sent before their
        execution, which ib_async drops): asked again with ``reqExecutions``, later and
        later, until every fill passed on has them."""
        try:
            for wait in REPORTS_AGAIN:
                await asyncio.sleep(wait)
                if all(g.reported() for g in self._grouper.groups if g.passed):
                    return
                with contextlib.suppress(ConnectionError, TimeoutError):
                    await self._pass_missed_fills()
        finally:
            self._asking = None

    async def _today(self) -> list[Any]:
        """Today's executions IB has (IB: since midnight in the gateway's zone), each with
        the report ib_async holds for it, in IB's order, grouped into combo fills."""
        self._turn()
        fills = with_reports(await self.ib.reqExecutionsAsync(), self.ib.fills())
        kept = []
        for f in fills:
            if f.execution.execId not in self._grouper.where and self._corrected(f):
                continue
            kept.append(f)
            if self._grouper.add(f, self._size(f.execution.orderRef, None)) is None:
                self._grouper.report(f)
        return kept

    async def executions(self) -> list[Execution]:
        """Today's combo fills of our orders, each with the reports in so far (on start:
        the store applies each fill, and each report, once)."""
        fills = await self._today()
        out = []
        for group in _groups_of(self._grouper, fills):
            if group.bag is None and not group.whole():
                continue
            execution = group.execution(partial=True)
            if not group.passed and execution is not None:
                self._filled[group.order_ref] = (
                    self._filled.get(group.order_ref, 0) + execution.quantity
                )
            group.passed = True
            if execution is not None:
                group.said.update(r for r, _ in execution.reports)
                out.append(execution)
        return out

    async def _pass_missed_fills(self) -> None:
        """The combo fills of our orders that happened while no one listened, and reports
        that came meanwhile, passed on (those passed before are not)."""
        fills = await self._today()
        fresh, late = [], []
        for group in _groups_of(self._grouper, fills):
            if group.passed:
                late += late_reports(group)
            elif group.bag is not None or group.whole():
                fresh.append(group)
        self._say(late)
        if fresh:
            self._pass(fresh)
