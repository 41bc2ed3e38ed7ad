"""Which close decisions may go, and what a refusal costs the position.

- **regular hours**, checked here and nowhere else: outside them a decision
  is held (said once per position, decided again at the open);
- **refusals**: a close the close-only check refuses may be the account a fill
  ahead of the events (the broker's positions come first), so the position is
  decided again on the next quotes; a refusal that persists (REFUSALS times
  over REFUSAL_SPAN) leaves the position alone (blocked: it needs attention);
- **rejections**: a close the broker refuses (not placed, or rejected after it
  was placed) is decided again on the next quotes, with a new order; REJECTIONS
  in a row, no fill between, leave the position alone too;
- **replacements**: a stronger trigger cancels the live profit close first; one
  cancel at a time per position, until the order is ended or nothing is left
  to cancel.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from rules.clock import MarketTime
from rules.machine import Close
from service.logs import get_logger

_log = get_logger("spreadwatch.monitor")
REFUSALS, REFUSAL_SPAN = 3, timedelta(seconds=5)  # close-only refusals before it is left alone
REJECTIONS = 3  # the broker's refusals in a row (no fill between) before it is left alone


class ClosePolicy:
    def __init__(self) -> None:
        self.blocked: dict[str, str] = {}  # position -> why it is no longer acted on
        self.refusals: dict[str, tuple[int, datetime]] = {}  # position -> (count, first)
        self.rejections: dict[str, tuple[int, datetime]] = {}  # position -> (count, first)
        self._held: set[str] = set()  # decisions waiting for regular hours (said once)
        self._cancelling: set[str] = set()  # positions whose profit close is being replaced

    def forget(self, closed: Iterable[str]) -> None:
        """Positions closed and let go by the book (at the close): nothing of them kept."""
        for pid in closed:
            for kept in (self.blocked, self.refusals, self.rejections):
                kept.pop(pid, None)
            self._held.discard(pid)
            self._cancelling.discard(pid)

    def round(self, at: MarketTime) -> None:
        """An evaluation round at ``at``: at the open, held decisions are taken again on
        fresh quotes."""
        if at.regular_hours and self._held:
            self._held.clear()

    def in_hours(self, position_id: str, close: Close, at: MarketTime) -> bool:
        """Whether orders may go at ``at``; a decision made outside regular hours is held
        (said once)."""
        if at.regular_hours:
            return True
        if position_id not in self._held:
            self._held.add(position_id)
            _log.info(
                "exit.held",
                position_id=position_id,
                reason=close.reason.value,
                detail="outside regular hours: decided again at the open",
            )
        return False

    def admits(self, position_id: str, close: Close, at: MarketTime) -> bool:
        """Whether a close of the position may be decided now (not left alone, in hours)."""
        return position_id not in self.blocked and self.in_hours(position_id, close, at)

    def replacing(self, position_id: str) -> bool:
        """Start replacing the position's live profit close; False while one is under way."""
        if position_id in self._cancelling:
            return False
        self._cancelling.add(position_id)
        return True

    def replaced(self, position_id: str) -> None:
        """The replaced order has ended, or there was nothing to cancel: decide again."""
        self._cancelling.discard(position_id)

    def refused(self, position_id: str, why: str, now: datetime) -> bool:
        """A close of the position was refused at ``now`` before it went out; True when the
        refusals have persisted so long that the position is left alone from now on.
        (Logged in the context the desk binds: its ``position_id``.)"""
        return self._counted(self.refusals, position_id, why, now, REFUSALS, REFUSAL_SPAN)

    def rejected(self, position_id: str, why: str, now: datetime) -> bool:
        """A close of the position was refused by the broker at ``now``; True when the
        rejections have persisted so long that the position is left alone from now on."""
        return self._counted(self.rejections, position_id, why, now, REJECTIONS, timedelta(0))

    def _counted(
        self,
        seen: dict[str, tuple[int, datetime]],
        position_id: str,
        why: str,
        now: datetime,
        times: int,
        span: timedelta,
    ) -> bool:
        count, first = seen.get(position_id, (0, now))
        seen[position_id] = (count + 1, first)
        if count + 1 >= times and now - first >= span:
            self.blocked[position_id] = why
            _log.error("order.refused", detail=why)
            return True
        _log.warning("order.refused_for_now", detail=why)
        return False

    def sent(self, position_id: str) -> None:
        """A close of the position went out: its refusals are forgotten."""
        self.refusals.pop(position_id, None)

    def filled(self, position_id: str) -> None:
        """A close of the position filled: its rejections are forgotten."""
        self.rejections.pop(position_id, None)

    def release(self, position_id: str) -> None:
        """A human has looked: the position is decided again, from a clean count."""
        self.blocked.pop(position_id, None)
        self.refusals.pop(position_id, None)
        self.rejections.pop(position_id, None)
