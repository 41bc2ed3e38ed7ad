"""The monitor: quotes in, the rules, close decisions out.

- **quotes** (:meth:`Monitor.on_quotes`, called by the feed): kept, the latest
  per leg; a burst for one leg collapses to its newest quote, so there is no
  backlog;
- **evaluation** (:meth:`Monitor.evaluate`, synchronous, no I/O): the positions
  holding an updated leg, and only those, are re-evaluated, unless every one of
  them admits the quote by its screen (a :class:`rules.watchlist.Watchlist`
  gate: no close can come of it, so it is only kept). Live, it runs in slices
  (so many legs, so many closes, so much time) between turns of the loop;
- **decisions**: a close the order desk's policy admits moves the position to
  CLOSING at once (so it is decided once) and is queued for the desk;
- **staleness** (:meth:`Monitor.check_stale`): a position whose newest quote
  has grown older than its book allows is said stale, once, and fresh again.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from itertools import islice

from structlog.contextvars import bound_contextvars

from rules.clock import MarketTime
from rules.greeks import Rates
from rules.machine import Close, CloseSent, apply
from rules.model import Quote
from rules.watch import PositionWatch, units
from service.app.book import PositionBook, natural_debit
from service.app.readmodel import ReadModel
from service.logs import DATA_STALE, get_logger
from service.orders.intents import Decided, Intents
from service.orders.policy import ClosePolicy
from service.ports import LegKey, LegUpdate
from service.turns import Turns

_log = get_logger("spreadwatch.monitor")
STALE_WALK = timedelta(seconds=5)  # the longest between two walks of check_stale


class Monitor:
    def __init__(
        self,
        book: PositionBook,
        intents: Intents,
        policy: ClosePolicy,
        views: ReadModel,
        *,
        market_time: Callable[[datetime], MarketTime],
        rates: Rates | None = None,
    ) -> None:
        self.book = book
        self.intents = intents
        self.policy = policy
        self.views = views
        self._market_time = market_time
        self.rates = Rates() if rates is None else rates
        self._pending: dict[LegKey, Quote] = {}  # the latest quote per leg, not yet evaluated
        self.wake = asyncio.Event()  # set when quotes come
        # each position's decision said last: the same decided again (a close that sent
        # nothing, a dry run's) is logged at debug only
        self._said: dict[str, tuple[object, ...]] = {}
        self._walk_after: datetime | None = None  # check_stale walks the positions after it
        self._first_look: dict[str, datetime] = {}  # a position with no quote: first looked at
        self._no_quote: set[str] = set()  # said to have had no quote in its grace

    def on_quotes(self, updates: Iterable[LegUpdate]) -> None:
        """Keep the latest quote per leg for the next evaluation (the feed calls this)."""
        pending = self._pending
        for u in updates:
            pending[u.leg] = u.quote
        self.wake.set()

    def forget(self, closed: Iterable[str]) -> None:
        """Positions closed and let go by the book (at the close): nothing of them kept."""
        for pid in closed:
            self._said.pop(pid, None)
            self._first_look.pop(pid, None)
            self._no_quote.discard(pid)

    def backlog(self) -> int:
        """Legs updated and not evaluated yet."""
        return len(self._pending)

    def recheck(self, position_id: str) -> None:
        """Evaluate the position again on its legs' latest quotes (its state changed by a
        human's hand: a close asked, a book changed), without waiting for a new quote."""
        watch = self.book.watches.get(position_id)
        if watch is None:
            return
        watchlist = self.book.watchlist
        for n in watchlist.legs_of(watch):
            quote = watchlist.latest[n]
            if quote is not None:
                self._pending.setdefault(watchlist.keys[n], quote)
        self.wake.set()

    def positions_changed(self) -> None:
        """New positions in the book: the next staleness check walks them all."""
        self._walk_after = None

    def evaluate(
        self,
        now: datetime,
        limit: int | None = None,
        closes: int | None = None,
        until: float | None = None,
    ) -> int:
        """Re-evaluate the positions holding a leg updated since the last call (the first
        ``limit`` such legs, oldest first, stopping after the leg that made the ``closes``-th
        close decision, or after an evaluation that ended past ``until`` (perf_counter); the
        rest wait for the next call); queue each close decision. No I/O. Returns the number
        of closes decided."""
        if not self._pending:
            return 0
        pending = self._take(limit)
        at = self._market_time(now)
        self.policy.round(at)
        decided = 0

        def act(watch: PositionWatch, close: Close) -> None:
            nonlocal decided
            if self._decide(watch, close, at):
                decided += 1

        watchlist, rates, now = self.book.watchlist, self.rates, at.now
        ids, holders, latest, gates = (
            watchlist.ids,
            watchlist.holders,
            watchlist.latest,
            watchlist.gates,
        )
        admits, judge = watchlist.admits, watchlist.judge
        screened = evaluations = taken = 0
        items = iter(pending.items())
        for key, quote in items:
            taken += 1
            n = ids.get(key)
            if n is None or not holders[n]:
                continue  # no open position holds it (any more)
            latest[n] = quote
            if gates[n] is not None and admits(  # (no units worked out where no gate is)
                n, now, units(quote.bid), units(quote.ask), quote.delta, quote.underlying_price
            ):
                screened += 1
                continue
            evaluations += judge(n, quote, at, rates, act)
            if (closes is not None and decided >= closes) or (
                until is not None and time.perf_counter() > until
            ):
                rest = dict(items)  # older than what came since: first in line
                if rest:
                    self._pending = rest | self._pending
                break
        views = self.views
        views.updates += taken
        views.screened += screened
        views.evaluations += evaluations
        return decided

    def _take(self, limit: int | None) -> dict[LegKey, Quote]:
        """The first ``limit`` legs pending (all when None), oldest first, taken out."""
        pending = self._pending
        if limit is None or len(pending) <= limit:
            self._pending = {}
            return pending
        batch = dict(islice(pending.items(), limit))
        for leg in batch:
            del pending[leg]
        return batch

    def _decide(self, watch: PositionWatch, close: Close, at: MarketTime) -> bool:
        pid = watch.state.position.id
        if not self.policy.admits(pid, close, at):
            return False
        natural = natural_debit(watch, watch.quotes)  # (judged: the watch has every leg's latest)
        if natural is None:
            return False
        if close.replaces:
            if not self.policy.replacing(pid):
                return False
        else:
            watch.state = apply(watch.state, CloseSent(close))
        quotes = {
            "natural": str(natural),
            "legs": [
                None if q is None else {"bid": str(q.bid), "ask": str(q.ask), "delta": q.delta}
                for q in watch.quotes
            ],
        }
        self.views.decided[close.reason.value] += 1
        key = (close.reason, close.label, close.contracts, close.tranche, close.replaces)
        said = _log.debug if self._said.get(pid) == key else _log.info
        self._said[pid] = key
        with bound_contextvars(position_id=pid):  # a decision made (not per quote)
            said(
                "exit.decided",
                reason=close.reason.value,
                label=close.label,
                contracts=close.contracts,
                debit=str(close.debit),
                natural=str(natural),
                replaces=close.replaces,
            )
            stored = self.book.stored[pid]
            self.intents.put(
                Decided(watch, stored, close, at, natural, quotes, time.perf_counter())
            )
        return True

    async def check_stale(self, now: datetime) -> None:
        """Log ``data.stale`` once when an open position's newest quote grows older than its
        book's limit in regular hours, and ``data.fresh`` when quotes come again.

        A position with no quote yet is not stale (stale is a quote that stopped moving):
        it has its book's limit from when it was first looked at in regular hours (a
        start, an addition, the open) for its first quote, then ``data.no_quote`` is said
        once; a restart no longer says every position stale before its first quotes."""
        at = self._market_time(now)
        if not at.regular_hours:
            return
        stale = self.views.stale
        # No position can go stale before the earliest newest + limit of the last walk
        # (a newest only moves on, but for a quote out of order: hence a walk every
        # STALE_WALK at least). Stale positions are walked each round, to say "fresh".
        if not stale and self._walk_after is not None and now <= self._walk_after:
            return
        walk_after = now + STALE_WALK
        turns = Turns()
        for pid, watch, newest in self.book.newest_quotes():
            await turns.take()
            limit = watch.state.plan.stale_after
            if newest is None:  # no quote yet: its own grace, then said once
                first = self._first_look.setdefault(pid, now)
                walk_after = min(walk_after, first + limit)
                if now - first > limit and pid not in self._no_quote:
                    self._no_quote.add(pid)
                    _log.warning("data.no_quote", position_id=pid, waited_s=limit.total_seconds())
                continue
            self._first_look.pop(pid, None)
            self._no_quote.discard(pid)
            is_stale = now - newest > limit
            if not is_stale:
                walk_after = min(walk_after, newest + limit)
            if is_stale and pid not in stale:
                stale.add(pid)
                _log.warning(
                    DATA_STALE,
                    position_id=pid,
                    newest=newest.isoformat(),
                    limit_s=limit.total_seconds(),
                )
            elif not is_stale and pid in stale:
                stale.discard(pid)
                _log.info("data.fresh", position_id=pid)
        self._walk_after = walk_after
