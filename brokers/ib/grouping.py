"""A combo's executions grouped into its fills, as IB sends them (see
:mod:`brokers.ib.fills` for how IB sends them and how the fills are passed on).

A daemon runs for weeks and IB's executions are the day's (reqExecutions: "Only the
current day's executions can be retrieved"): :meth:`Grouper.let_go` drops the fills of
the days before the last, which IB will not send again.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from brokers.ib.convert import _commission
from service.logs import get_logger
from service.ports import Commission, Execution

_log = get_logger("spreadwatch.ib")


def _shared(a: str, b: str) -> int:
    """How many leading characters two execIds share."""
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def _report(fill: Any) -> Decimal | None:
    """A fill's commission report amount, None while IB has not sent it."""
    report = fill.commissionReport
    if report is None or not report.execId:
        return None
    return _commission(report.commission)


@dataclass(eq=False)
class Group:
    """One fill of a combo order: its BAG execution (None where IB sent legs only) and
    its legs' executions by conId, with their commission reports by execId."""

    perm_id: int
    order_ref: str
    size: int  # legs expected (0: not known)
    bag: Any = None  # ib_async's Fill of the BAG
    legs: dict[int, Any] = field(default_factory=dict)  # conId -> the leg's Fill
    reports: dict[str, Decimal] = field(default_factory=dict)  # leg execId -> commission
    passed: bool = False  # the fill was passed on
    said: set[str] = field(default_factory=set)  # reports passed on (with it, or after)
    timer: asyncio.TimerHandle | None = None

    @property
    def key(self) -> str:
        """The execId its legs are matched by: the BAG's, else its first leg's."""
        if self.bag is not None:
            return str(self.bag.execution.execId)
        return min((f.execution.execId for f in self.legs.values()), default="")

    def whole(self) -> bool:
        """Every leg in (as many as expected; any, when that is not known)."""
        return bool(self.legs) and (self.size == 0 or len(self.legs) >= self.size)

    def newest(self) -> datetime:
        """When its newest execution came."""
        fills = [*self.legs.values(), *([self.bag] if self.bag is not None else [])]
        newest: datetime = max(f.execution.time for f in fills)
        return newest

    def reported(self) -> bool:
        return self.whole() and all(f.execution.execId in self.reports for f in self.legs.values())

    def execution(self, *, partial: bool = False) -> Execution | None:
        """The service's execution of this combo fill (None: not priced): the BAG's, else
        the legs'. Its commission: the sum of the reports it carries, every leg's (else
        none: pending); ``partial``: those in so far."""
        if self.bag is not None:
            ex = self.bag.execution
            quantity, price = int(ex.shares), ex.price
            exec_id, time = ex.execId, ex.time
        else:
            quantity, price = self._from_legs()
            exec_id, time = self.key, min(f.execution.time for f in self.legs.values())
        if price is None or not math.isfinite(price):
            _log.warning("ib.fill_unpriced", order_ref=self.order_ref, exec_id=exec_id,
                         detail="a combo fill IB sent without a price: not passed on")  # fmt: skip
            return None
        amount = Decimal(str(price))
        if amount < 0:
            _log.warning(
                "ib.fill_at_credit", order_ref=self.order_ref, exec_id=exec_id,
                price=str(amount), detail="the closing combo filled at a credit",
            )  # fmt: skip
        reports = tuple(sorted(self.reports.items())) if partial or self.reported() else ()
        commission = sum((a for _, a in reports), Decimal(0)) if reports else None
        return Execution(exec_id, self.order_ref, quantity, amount, commission, time, reports)

    def _from_legs(self) -> tuple[int, float | None]:
        """Spreads and the debit per spread from the legs alone: the smallest leg's shares
        (each leg's ratio: its shares over that), bought legs +, sold legs -."""
        executions = [f.execution for f in self.legs.values()]
        quantity = int(min(e.shares for e in executions))
        if quantity <= 0:
            return 0, None
        price = sum(
            (1 if e.side == "BOT" else -1) * e.price * (e.shares / quantity) for e in executions
        )
        return quantity, round(price, 6)


class Grouper:
    """Executions into combo fills: each leg to the fill of its order with the longest
    shared execId prefix that still lacks that leg, in the order they come."""

    def __init__(self) -> None:
        self.groups: list[Group] = []
        self.where: dict[str, Group] = {}  # execId -> its group
        self.bases: dict[str, str] = {}  # execId up to its final period -> the execId seen

    def let_go(self, before: datetime) -> set[str]:
        """The fills whose every execution came before ``before`` go, with their execIds
        (IB will not send them again); the order refs they were of."""
        gone = [g for g in self.groups if g.newest() < before]
        if not gone:
            return set()
        dropped = {id(g) for g in gone}
        self.groups = [g for g in self.groups if id(g) not in dropped]
        self.where = {e: g for e, g in self.where.items() if id(g) not in dropped}
        self.bases = {b: e for b, e in self.bases.items() if e in self.where}
        return {g.order_ref for g in gone}

    def corrects(self, fill: Any) -> str | None:
        """The execId seen before that ``fill``'s corrects (same but for the digits after
        the final period), or None: not a correction."""
        exec_id = fill.execution.execId
        seen = self.bases.setdefault(exec_id.rpartition(".")[0] or exec_id, exec_id)
        return None if seen == exec_id else seen

    def add(self, fill: Any, size: int) -> Group | None:
        """The fill's group (None: an execution of no combo of ours, or seen before)."""
        ex = fill.execution
        if not ex.orderRef or ex.execId in self.where:
            return None
        bag = fill.contract.secType == "BAG"
        con_id = int(fill.contract.conId)
        mine = [
            g
            for g in self.groups
            if g.perm_id == ex.permId and (g.bag is None if bag else con_id not in g.legs)
        ]
        group = max(mine, key=lambda g: _shared(g.key, ex.execId), default=None)
        if group is None or (group.key and _shared(group.key, ex.execId) == 0):
            group = Group(ex.permId, ex.orderRef, size)
            self.groups.append(group)
        self.where[ex.execId] = group
        group.size = max(group.size, size)
        if bag:
            group.bag = fill
        else:
            group.legs[con_id] = fill
            self.report(fill)
        return group

    def report(self, fill: Any, amount: Decimal | None = None) -> Group | None:
        """A leg's commission report (``amount``; else the one its fill carries)."""
        group = self.where.get(fill.execution.execId)
        amount = _report(fill) if amount is None else amount
        if group is None or amount is None or fill.contract.secType == "BAG":
            return group
        group.reports[fill.execution.execId] = amount
        return group


def late_reports(group: Group) -> list[Commission]:
    """The reports of a fill passed on that have not been said yet (once each)."""
    if not group.passed:
        return []
    exec_id = group.key
    out = []
    for report_id, amount in sorted(group.reports.items()):
        if report_id not in group.said:
            group.said.add(report_id)
            out.append(Commission(exec_id, report_id, amount))
    return out


def with_reports(fills: Sequence[Any], known: Iterable[Any]) -> list[Any]:
    """``fills`` from reqExecutions, each with the report ib_async holds for it: a report
    that came for an execution seen before is kept on ib_async's own fill
    (``IB.fills()``), not on the one reqExecutions gives."""
    reports = {f.execution.execId: f.commissionReport for f in known}
    out = []
    for f in fills:
        report = reports.get(f.execution.execId)
        held = _report(f) is None and report is not None and bool(report.execId)
        out.append(f._replace(commissionReport=report) if held else f)
    return out


def _groups_of(grouper: Grouper, fills: Sequence[Any]) -> list[Group]:
    """The groups of ``fills``, each once, in the order of their first execution."""
    out: dict[int, Group] = {}
    for f in fills:
        group = grouper.where.get(f.execution.execId)
        if group is not None:
            out.setdefault(id(group), group)
    return list(out.values())
