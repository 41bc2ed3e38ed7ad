"""The read model: what happened, for health, metrics and alerts to read.

Fed as things happen (the tick path only bumps plain counters): the monitor
counts updates, evaluations and decisions and says which positions went
stale; the order desk records each close sent, each fill applied (with what it
realised), each order event, each position left alone; housekeeping beats the
heart. Health and metrics (:mod:`service.http`) and alerts (:mod:`service.alerts`)
read it and nothing else. The lists are bounded (the newest ``keep`` are kept) and, in a
daemon, hold a day or two: at each close (:meth:`ReadModel.turn_day`) what was added before
the previous close goes (the store keeps everything). Their counts run on, and a reader
says where it is by count (:meth:`ReadModel.close_lines`,
:meth:`ReadModel.rejections_since`).
"""

from __future__ import annotations

import time
from collections import Counter, deque
from collections.abc import Callable, Iterable
from datetime import datetime
from decimal import Decimal
from itertools import islice
from typing import Any, TypeVar

from rules.clock import MarketTime, exchange_date, market_time
from rules.greeks import Rates
from rules.machine import Close
from rules.model import Position
from rules.pnl import realised_net
from service.app.book import PositionBook
from service.app.distances import FillView, PositionView, Working, ordered, position_view
from service.ports import (
    FINAL_ORDER_STATUSES,
    Commission,
    Execution,
    OrderEvent,
    OrderStatus,
    RealisedRow,
)
from service.presentation import FillSeen, commission_line, daemon_close_line, filled_line

KEEP = 10_000  # closes sent and rejections kept for readers, the newest
T = TypeVar("T")


def _since(kept: deque[T], ever: int, since: int) -> list[T]:
    """The items of a bounded list from the ``since``-th ever on; ``ever`` counts all of
    them, those the list has dropped too."""
    return list(islice(kept, max(0, since - (ever - len(kept))), None))


def _no_order(position_id: str) -> Working | None:
    return None


class ReadModel:
    def __init__(self, book: PositionBook, keep: int = KEEP) -> None:
        self._book = book  # quote ages and contracts remaining, read at scrape time
        self.working: Callable[[str], Working | None] = _no_order  # the desk's (assembly)
        self.rates = Rates()  # the monitor's (assembly)
        self.market_time: Callable[[datetime], MarketTime] = market_time  # the monitor's
        self.heartbeat = time.monotonic()  # the loop's last housekeeping round
        self.updates = 0  # leg updates taken (screened or evaluated)
        self.screened = 0  # leg updates every holder's screen admitted: kept, not evaluated
        self.evaluations = 0  # position evaluations (an update of a leg two positions hold: 2)
        self.decided: Counter[str] = Counter()  # close decisions by reason
        self.stale: set[str] = set()  # positions whose quotes are stale now
        self.attention: dict[str, str] = {}  # position -> why it needs a human now
        self._attention: deque[tuple[str, str]] = deque(maxlen=keep)  # each time said
        self.attentions = 0  # needs-attention said, ever
        self._resolved: deque[tuple[str, str, str]] = deque(maxlen=keep)  # (position, was, how)
        self.resolutions = 0  # needs-attention cleared, ever
        self.order_statuses: Counter[str] = Counter()  # the broker's order events by status
        self.sent_latency: deque[float] = deque(maxlen=100_000)  # decision -> order sent, s
        self.fill_latency_count = 0  # fills timed from their order sent, ever
        self.fill_latency_sum = 0.0  # seconds, theirs summed
        self.decisions: deque[tuple[datetime, str, Close]] = deque(maxlen=keep)  # closes sent
        self._lines: deque[str] = deque(maxlen=keep)  # their lines, the spec's
        self.closes = 0  # closes sent, ever
        self._would: deque[str] = deque(maxlen=keep)  # a dry run's closes, their lines
        self.would_closes = 0  # a dry run's closes said, ever
        self._fills: deque[FillSeen] = deque(maxlen=keep)  # fills applied
        self._fill_lines: deque[str] = deque(maxlen=keep)  # their lines
        self.fills = 0  # fills applied, ever
        self._commission_lines: deque[str] = deque(maxlen=keep)  # late commission reports
        self.commissions = 0  # late commission reports added, ever
        self.realised: dict[str, Decimal] = {}  # position -> realised P&L, net, so far
        self.rejections: deque[tuple[str, str]] = deque(maxlen=keep)  # (order_ref, reason)
        self.rejected = 0  # rejections, ever
        self._sent_at: dict[str, float] = {}  # order_ref -> perf_counter when sent
        self._turned: dict[str, int] = {}  # each list's count at the previous day's turn

    # Fed --------------------------------------------------------------------------------

    def beat(self) -> None:
        self.heartbeat = time.monotonic()

    def close_sent(
        self, at: datetime, order_ref: str, close: Close, position: Position, decided: float
    ) -> None:
        now = time.perf_counter()
        self.sent_latency.append(now - decided)
        self._sent_at[order_ref] = now
        self.decisions.append((at, order_ref, close))
        self._lines.append(daemon_close_line(position, close, at))
        self.closes += 1

    def would_close(self, at: datetime, close: Close, position: Position) -> None:
        self._would.append(daemon_close_line(position, close, at, dry_run=True))
        self.would_closes += 1

    def realised_before(self, fills: list[RealisedRow]) -> None:
        """What the store's fills realised before this process (on load): the running
        totals the fill lines carry on from."""
        for row in fills:
            self.realised[row.position_id] = (
                self.realised.get(row.position_id, Decimal(0)) + row.realised
            )

    def filled(self, position: Position, execution: Execution) -> None:
        """A fill applied (once, by its execution id): what it realised, net of its
        commission (none said yet: 0, and said pending), and the position's running
        total."""
        commission = execution.commission or Decimal(0)
        net = realised_net(
            position.entry_credit,
            execution.price,
            position.multiplier,
            execution.quantity,
            commission,
        )
        total = self.realised.get(position.id, Decimal(0)) + net
        self.realised[position.id] = total
        seen = FillSeen(
            position, execution.time, execution.quantity, execution.price, commission, net, total,
            pending=execution.commission is None,
        )  # fmt: skip
        self._fills.append(seen)
        self._fill_lines.append(filled_line(seen))
        self.fills += 1

    def commission(
        self, position_id: str, at: datetime, commission: Commission, fill: Decimal
    ) -> None:
        """A commission report added to a fill after its FILLED line (``fill``: that fill's
        commission now): the position's realised P&L less it, and a COMMISSION line."""
        c = commission
        total = self.realised.get(position_id, Decimal(0)) - c.amount
        self.realised[position_id] = total
        self._commission_lines.append(
            commission_line(position_id, at, c.exec_id, c.amount, fill, total)
        )
        self.commissions += 1

    def order_event(self, event: OrderEvent) -> None:
        self.order_statuses[event.status] += 1
        if event.status is OrderStatus.REJECTED:
            self.rejections.append((event.order_ref, event.reason))
            self.rejected += 1
        if event.execution is not None and event.order_ref in self._sent_at:
            self.fill_latency_count += 1
            self.fill_latency_sum += time.perf_counter() - self._sent_at[event.order_ref]
        if event.status in FINAL_ORDER_STATUSES:
            self._sent_at.pop(event.order_ref, None)  # its fills are all in

    def needs_attention(self, position_id: str, why: str) -> None:
        """An episode begins (or its reason changes): no order for the position until a
        human looks."""
        self.attention[position_id] = why
        self._attention.append((position_id, why))
        self.attentions += 1

    def resolved(self, position_id: str, how: str) -> None:
        """The position's episode has ended (``how``: resumed, void, closed); nothing when
        it needed no attention."""
        was = self.attention.pop(position_id, None)
        if was is not None:
            self._resolved.append((position_id, was, how))
            self.resolutions += 1

    def turn_day(self, closed: Iterable[str]) -> None:
        """The close (the daemon's, once a day): each list lets go of what was added before
        the previous close, so it holds this session's and the night's (the store holds
        all of it); the positions ``closed`` and let go by the book are forgotten."""
        for name, kept, ever in self._lists():
            since = self._turned.get(name, 0)
            while len(kept) > ever - since:
                kept.popleft()
            self._turned[name] = ever
        for pid in closed:
            self.realised.pop(pid, None)
            self.stale.discard(pid)

    def _lists(self) -> list[tuple[str, deque[Any], int]]:
        """Each list a day turns, with the count it runs on."""
        return [
            ("lines", self._lines, self.closes), ("decisions", self.decisions, self.closes),
            ("sent", self.sent_latency, self.closes),
            ("would", self._would, self.would_closes), ("fills", self._fills, self.fills),
            ("fill_lines", self._fill_lines, self.fills),
            ("commissions", self._commission_lines, self.commissions),
            ("attention", self._attention, self.attentions),
            ("resolved", self._resolved, self.resolutions),
            ("rejections", self.rejections, self.rejected),
        ]  # fmt: skip

    # Read -------------------------------------------------------------------------------

    def close_lines(self, since: int = 0) -> list[str]:
        """The spec's line for each close sent, from the ``since``-th on (of those kept)."""
        return _since(self._lines, self.closes, since)

    def would_close_lines(self, since: int = 0) -> list[str]:
        """A dry run's WOULD CLOSE lines, from the ``since``-th on (of those kept)."""
        return _since(self._would, self.would_closes, since)

    def fill_lines(self, since: int = 0) -> list[str]:
        """The FILLED line of each fill applied, from the ``since``-th on (of those kept)."""
        return _since(self._fill_lines, self.fills, since)

    def commission_lines(self, since: int = 0) -> list[str]:
        """The COMMISSION line of each late commission report, from the ``since``-th on."""
        return _since(self._commission_lines, self.commissions, since)

    def fills_since(self, since: int) -> list[FillSeen]:
        """Each fill applied from the ``since``-th on (of those kept)."""
        return _since(self._fills, self.fills, since)

    def decisions_since(self, since: int) -> list[tuple[datetime, str, Close]]:
        """Each close sent from the ``since``-th on (of those kept): (at, order_ref, close)."""
        return _since(self.decisions, self.closes, since)

    def attention_since(self, since: int) -> list[tuple[str, str]]:
        """Each needs-attention said from the ``since``-th on (of those kept): (position,
        why)."""
        return _since(self._attention, self.attentions, since)

    def resolved_since(self, since: int) -> list[tuple[str, str, str]]:
        """Each needs-attention cleared from the ``since``-th on (of those kept): (position,
        why it was, how it ended)."""
        return _since(self._resolved, self.resolutions, since)

    def rejections_since(self, since: int) -> list[tuple[str, str]]:
        """Each rejection from the ``since``-th on (of those kept): (order_ref, reason)."""
        return _since(self.rejections, self.rejected, since)

    def staleness(self, now: datetime) -> dict[str, float]:
        """Seconds since each open position's newest leg quote (inf before any)."""
        return self._book.staleness(now)

    def remaining(self) -> dict[str, int]:
        """Contracts remaining per position."""
        return self._book.remaining()

    def fills_today(self, now: datetime) -> list[FillView]:
        """The fills of today's session this process applied, oldest first (those kept)."""
        day = self.market_time(now).session_date
        return [
            FillView(f.position.id, f.at, f.contracts, f.price, f.realised)
            for f in self._fills
            if exchange_date(f.at) == day
        ]

    def positions(self, now: datetime) -> list[PositionView]:
        """Each open position's figures and distances to its triggers at ``now``, nearest
        trigger first (see :mod:`service.app.distances`): computed here, when read."""
        at = self.market_time(now)
        fills: dict[str, list[FillView]] = {}
        for f in self.fills_today(now):
            fills.setdefault(f.position, []).append(f)
        book, out = self._book, []
        for pid, watch, _ in book.newest_quotes():
            why = [self.attention[pid]] if pid in self.attention else []
            if pid in self.stale:
                why.append("market data stale")
            view = position_view(
                watch.state, book.watchlist.quotes(watch), at, self.rates,
                realised=self.realised.get(pid, Decimal(0)), attention=why,
                working=self.working(pid), fills=fills.get(pid, ()),
            )  # fmt: skip
            out.append(view)
        return ordered(out)
