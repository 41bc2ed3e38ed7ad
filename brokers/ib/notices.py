"""IB's error and notice messages, acted on by the table in :mod:`brokers.ib.codes`.

- 1100 (connectivity lost) blanks the quotes and drops the ticks still on their
  way, until 1101 (restored, data lost: the lines are opened afresh, missed
  executions passed on, orders rechecked) or 1102 (restored, data kept).
- A line refused (101 the line limit, 354 not subscribed, 10089/10090/10091/10168
  no subscription for the API, and 10167 delayed data when the settings take live
  data only) says which leg, keeps it in ``refused`` and tells the service
  (``problems``): the positions holding that leg need a human, where they would
  wait for quotes that never come. A refused underlying's line is logged only (the
  options' own quotes carry what the rules need).
- 2103 for a farm US options or stocks stream from (``usopt``, ``usfarm``) is a
  gap as 1100 is: no quote is fresh until that farm's 2104. Other farms' are
  logged only.
- Every code of the table is a log event of its own, a warning (the farms' OK
  notices: info); others are logged as ``ib.message``.
- An order's error reaches the service through its status (ib_async marks the
  trade cancelled and logs the error on it): see ``OrdersMixin._on_status``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from typing import Any

from ib_async import IB

from brokers.ib.codes import CODES, DELAYED_DATA, QUOTE_FARMS, Effect
from brokers.ib.connection import DROPPED, ConnectionMixin, resume_failed
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
        farm = _farm(message) if effect in (Effect.FARM_DOWN, Effect.FARM_UP) else ""
        live_only = code == DELAYED_DATA and self.settings.market_data == "live"
        leg = None
        if effect is Effect.GAP:
            self._gap(f"IB lost its connectivity ({code})")
        elif effect is Effect.RESUME:  # the lines again
            self._blind = False
            task = asyncio.get_running_loop().create_task(self._resume_restored())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        elif effect is Effect.FLOWING:  # it flows again
            self._blind = False
        elif effect is Effect.FARM_DOWN and farm.startswith(QUOTE_FARMS):
            self._farms_down.add(farm)  # the quotes stop: none is fresh until it is OK
            self._gap(f"IB's market data farm {farm} is broken ({code})")
        elif effect is Effect.FARM_UP and farm in self._farms_down:
            self._farms_down.discard(farm)
            self._blind = bool(self._farms_down)
        elif effect is Effect.LINE_REFUSED or live_only:
            # a line refused: which leg, said once; its positions need a human
            leg = self._refused_leg(req_id)
            if leg is not None:
                self._trouble(leg, _no_data(leg, code, message, live_only))
        log = _log.warning if known is not None and not known.info else _log.info
        log(
            known.event if known is not None else "ib.message",
            code=code,
            req_id=req_id,
            detail=message,
            leg=None if leg is None else _leg_text(leg),
            open_lines=len(self._tickers) + len(self._stock_tickers),
        )

    async def _resume_restored(self) -> None:
        """The resume after IB's 1101; a connection dropped meanwhile is said (its reconnect
        resumes again), never an exception no one retrieves."""
        try:
            await self._resume(recheck=True)
        except DROPPED as exc:
            resume_failed(exc)

    def _refused_leg(self, req_id: int) -> LegKey | None:
        """The leg of the refused line ``req_id`` (kept in ``refused``), if it is one."""
        contract = self.ib.wrapper._reqId2Contract.get(req_id)
        leg = self._legs.get(contract.conId) if contract is not None else None
        if leg is not None:
            self.refused.add(leg)
        return leg


def _no_data(leg: LegKey, code: int, message: str, live_only: bool) -> str:
    """Why a leg has no quotes, in IB's words, with what to do (``live_only``: IB offers
    delayed data the settings do not take)."""
    fix = (
        "accept delayed data (ib.market_data = delayed) or subscribe to live data"
        if live_only
        else "check the account's market data subscriptions (and API access to them)"
    )
    words = " ".join(message.split())
    return f"no market data for {_leg_text(leg)}: IB {code}: {words}; {fix}"


def _farm(message: str) -> str:
    """The farm a 2103/2104 message names: "...connection is broken:usopt" -> "usopt"."""
    return message.rpartition(":")[2].strip()
