"""The fills the store holds, told to the adapter on start: never passed on again.

On start the service tells the broker the exec ids of the fills the store holds
(:meth:`service.ports.OrderGateway.stored_executions`), before it reconciles and
before the stream starts. Whatever asks IB for the day's executions afterwards
(the stream's first resume, a reconnect's, a report asked again), a fill among
them is counted (the order's spreads filled) but never passed on as a missed
fill, so the service never takes it as received and unapplied; its commission
reports are passed on (the store adds each once, by report id).

And a fill IB sends before the stream starts (after the start's reconciliation)
waits for the stream's first resume instead of being taken as passed on with no
one to pass it to.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime

from ib_async import IB

from brokers.ib.fills import FillsMixin
from brokers.ib.grouping import Group, late_reports
from service.ports import Execution, OrderEvent, OrderStatus
from service.settings import IbSettings


class StoredFillsMixin(FillsMixin):
    def __init__(self, settings: IbSettings, ib: IB, now: Callable[[], datetime]) -> None:
        super().__init__(settings, ib, now)
        self._stored: set[str] = set()  # exec ids of the fills the store holds

    def stored_executions(self, exec_ids: Iterable[str]) -> None:
        self._stored.update(exec_ids)

    def _pass(self, groups: Sequence[Group]) -> None:
        if self._events is None:  # before the stream starts: its first resume passes them
            return
        super()._pass(groups)

    def _fill_events(self, group: Group, execution: Execution) -> list[OrderEvent]:
        if execution.exec_id not in self._stored:
            return super()._fill_events(group, execution)
        ref = group.order_ref  # the store has it: counted, and only its reports said
        self._filled[ref] = self._filled.get(ref, 0) + execution.quantity
        return [
            OrderEvent(ref, OrderStatus.PARTIALLY_FILLED, 0, 0, self._now(), commission=c)
            for c in late_reports(group)
        ]
