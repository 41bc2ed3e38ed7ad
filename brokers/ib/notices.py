"""IB's error and notice messages, acted on by the table in :mod:`brokers.ib.codes`.

- 1100 (connectivity lost) blanks the quotes and drops the ticks still on their
  way, until 1101 (restored, data lost: the lines are opened afresh, missed
  executions passed on, orders rechecked) or 1102 (restored, data kept).
- 101 and 354 (a line refused) say which leg, once, and keep it in ``refused``.
- Every code of the table is a log event of its own, a warning; others are
  logged as ``ib.message``.
- An order's error reaches the service through its status (ib_async marks the
  trade cancelled and logs the error on it): see ``OrdersMixin._on_status``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from typing import Any

from ib_async import IB

from brokers.ib.codes import CODES, Effect
from brokers.ib.connection import ConnectionMixin
from brokers.ib.convert import _leg_text
from service.logs import get_logger
from service.ports import LegKey
from service.settings import IbSettings

_log = get_logger("spreadwatch.ib")


class NoticesMixin(ConnectionMixin):
    def __init__(self, settings: IbSettings, ib: IB, now: Callable[[], datetime]) -> None:
        super().__init__(settings, ib, now)
        self._tasks: set[asyncio.Task[None]] = set()

    def _on_error(self, req_id: int, code: int, message: str, *rest: Any) -> None:
        known = CODES.get(code)
        effect = Effect.LOG if known is None else known.effect
        leg = None
        if effect is Effect.GAP:
            self._gap(f"IB lost its connectivity ({code})")
        elif effect is Effect.RESUME:  # the lines again
            self._blind = False
            task = asyncio.get_running_loop().create_task(self._resume(recheck=True))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        elif effect is Effect.FLOWING:  # it flows again
            self._blind = False
        elif effect is Effect.LINE_REFUSED:  # a line refused: which leg, said once
            leg = self._refused_leg(req_id)
        log = _log.warning if known is not None else _log.info
        log(
            known.event if known is not None else "ib.message",
            code=code,
            req_id=req_id,
            detail=message,
            leg=None if leg is None else _leg_text(leg),
            open_lines=len(self._tickers) + len(self._stock_tickers),
        )

    def _refused_leg(self, req_id: int) -> LegKey | None:
        """The leg of the refused line ``req_id`` (kept in ``refused``), if it is one."""
        contract = self.ib.wrapper._reqId2Contract.get(req_id)
        leg = self._legs.get(contract.conId) if contract is not None else None
        if leg is not None:
            self.refused.add(leg)
        return leg
