"""Reconciliation that never stops: the account's holdings against the open positions.

While the daemon runs, :meth:`HoldingsCheck.check` runs on every broker
position update and at least every ``every`` seconds. It compares what the
account holds of each watched contract with what the open positions imply
(:meth:`service.app.book.PositionBook.expected_holdings`: executions received
but not yet applied count as done). A difference is acted on only once it has
held, the same, over two checks at least :data:`CONFIRM` apart, and never for a
leg of a position whose close order is live (a fill in flight moves the
account before its execution arrives). Then every position holding that leg
is quarantined (``needs attention``, with the difference; no order for it):
its legs were closed, rolled, assigned or exercised outside spreadwatch, and
a human decides (``positions void``, or ``positions sync`` to adopt the new
shape).

Expiry: after the expiry date's close (16:00 New York), a position whose legs
the account no longer holds is closed out as expired, worthless or in the
money at its last quotes (assigned or exercised: the account's stock says
which); one whose legs the account still holds the next session is
quarantined.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import datetime, timedelta

from rules.clock import exchange_date, expiry_instant, market_time
from rules.machine import Phase
from rules.model import Position, Right, Side
from service.app.book import PositionBook
from service.app.intake import Intake
from service.errors import StoreRefused
from service.logs import get_logger
from service.orders.failures import ORDER_FAILURES
from service.ports import Clock, LegKey, OrderGateway, Store, leg_key

_log = get_logger("spreadwatch.reconcile")
CONFIRM = timedelta(seconds=5)  # a difference seen, the same, this long apart is real


def _text(leg: LegKey) -> str:
    return f"{leg.underlying} {leg.expiry} {leg.right.value} {leg.strike}"


def expired_detail(position: Position, last: list[float | None]) -> str:
    """How the position expired, from its short legs against the underlying's last price
    (``last``: per leg, the underlying's price at its latest quote)."""
    spot = next((p for p in last if p is not None), None)
    day = f"expired {position.expiry}"
    if spot is None:
        return f"{day}: the account holds none of its legs (no last price: see the account)"
    itm = [
        leg
        for leg in position.legs
        if leg.side is Side.SHORT
        and (spot < float(leg.strike) if leg.right is Right.PUT else spot > float(leg.strike))
    ]
    if not itm:
        return f"{day} worthless (underlying {spot:g} at its last quote)"
    strikes = ", ".join(f"{leg.right.value}{leg.strike}" for leg in itm)
    return (
        f"{day} in the money (underlying {spot:g} against short {strikes}): assigned or "
        "exercised, see the account's stock position"
    )


class HoldingsCheck:
    def __init__(
        self,
        gateway: OrderGateway,
        store: Store,
        book: PositionBook,
        intake: Intake,
        connected: Callable[[], bool] = lambda: True,
    ) -> None:
        self.gateway = gateway
        self.connected = connected
        self.store = store
        self.book = book
        self.intake = intake
        self._seen: dict[LegKey, tuple[int, int, datetime]] = {}  # leg -> have, want, since
        self.wake = asyncio.Event()  # set on a broker position update

    async def check(self, now: datetime) -> None:
        """One round: expiries first, then the differences that have held. Not while the
        broker is away: its holdings are then the last it said (a difference seen across a
        gap proves nothing)."""
        if not self.connected():
            self._seen.clear()
            return
        held = await self.gateway.positions()
        await self._expiries(now, held)
        busy = {
            leg_key(w.state.position, i)
            for w in self.book.watches.values()
            if w.state.phase is Phase.CLOSING
            for i in range(len(w.state.position.legs))
        }
        for leg, want in self.book.expected_holdings().items():
            have = held.get(leg, 0)
            if have == want or leg in busy or now >= expiry_instant(leg.expiry):
                self._seen.pop(leg, None)
                continue
            first = self._seen.get(leg)
            if first is None or first[:2] != (have, want):
                self._seen[leg] = (have, want, now)
            elif now - first[2] >= CONFIRM:
                await self._differs(leg, have, want)

    async def _differs(self, leg: LegKey, have: int, want: int) -> None:
        why = f"the account holds {have} of {_text(leg)}, the open positions imply {want}"
        wl = self.book.watchlist
        n = wl.ids.get(leg)
        for watch, _ in () if n is None else list(wl.holders[n]):
            pid = watch.state.position.id
            if pid not in self.intake.policy.blocked:
                await self.intake.quarantine(pid, why)

    async def _expiries(self, now: datetime, held: dict[LegKey, int]) -> None:
        for pid, watch in list(self.book.watches.items()):
            state = watch.state
            position = state.position
            if state.phase is not Phase.OPEN or now < expiry_instant(position.expiry):
                continue
            legs = [leg_key(position, i) for i in range(len(position.legs))]
            if all(held.get(leg, 0) == 0 for leg in legs):
                quotes = self.book.watchlist.quotes(watch)
                last = [None if q is None else q.underlying_price for q in quotes]
                detail = expired_detail(position, last)
                with contextlib.suppress(StoreRefused):
                    await self.store.close_expired(pid, detail)
                    self.book.drop(pid)
                    _log.warning("position.expired", position_id=pid, detail=detail)
            elif exchange_date(now) > position.expiry and market_time(now).regular_hours:
                await self.intake.quarantine(
                    pid, f"expired {position.expiry}: the account still holds its legs"
                )

    async def run(self, clock: Clock, every: float) -> None:
        """Check at least every ``every`` seconds, and on each broker position update."""
        while True:
            try:
                await self.check(clock.now())
            except ORDER_FAILURES as exc:
                _log.warning("reconcile.failed", detail=str(exc))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(every):
                    await self.wake.wait()
            self.wake.clear()
