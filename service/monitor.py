"""The monitor: every open position's exit state machine, re-evaluated on each leg update.

Four kinds of work, which never wait on one another:

- **quotes** (:meth:`Monitor.on_quotes`, called by the feed): kept, the latest
  per leg; a burst for one leg collapses to its newest quote, so there is no
  backlog;
- **evaluation** (:meth:`Monitor.evaluate`, synchronous, no I/O): the positions
  holding an updated leg, and only those, are re-evaluated, unless every one of
  them admits the quote by its screen (a :class:`rules.watchlist.Watchlist`
  gate: no close can come of it, so it is only kept); a close decision moves
  the position to CLOSING at once (so it is decided once) and is queued;
- **orders** (a few workers, :meth:`Monitor.work`): each queued decision goes
  to the order manager, which writes the intent, sends the order and records
  it as sent; a decision that was not sent puts the position back to OPEN;
- **order events** (:meth:`Monitor.on_events`, one follower in arrival order):
  fills, cancels and rejections go to the store, then to the exit states.

Besides, every half second of market time: live orders are repriced toward
their natural, and a position whose quotes have gone stale is said so once.

Live, :meth:`Monitor.run` runs all of it in one ``asyncio.TaskGroup`` beside
the broker's feed until ``stop`` is set. Tests, the demo and the benchmark
drive the same pieces one step at a time with :meth:`Monitor.step`.

The store is the truth: :meth:`load` reconciles the store's live orders with
the broker, then builds the exit states from the store (what remains, what
profit targets have closed, which order still works).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import math
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal
from itertools import islice
from typing import Any

from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, ProgrammingError
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

from rules.books import BookPolicy
from rules.clock import MarketTime
from rules.greeks import Rates
from rules.machine import (
    Close,
    CloseSent,
    ExitReason,
    ExitState,
    Filled,
    OrderEnded,
    Phase,
    Working,
    apply,
)
from rules.machine import natural_debit as machine_natural
from rules.model import Quote, Side
from rules.plan import make_plan
from rules.watch import PositionWatch, units
from rules.watchlist import Watchlist
from service.logs import get_logger
from service.manager import CloseRequest, OrderManager
from service.orders import NotAClose
from service.ports import (
    Clock,
    Feed,
    LegKey,
    LegUpdate,
    OrderEvent,
    Store,
    StoredPosition,
    leg_key,
    position_of,
)
from service.presentation import format_close_line
from service.turns import TURN, Turns

_log = get_logger("spreadwatch.monitor")
REFUSALS, REFUSAL_SPAN = 3, timedelta(seconds=5)  # close-only refusals before it is left alone
EVENT_ATTEMPTS = 6  # tries of an order event's store write when the database is not there


def _transient(exc: BaseException) -> bool:
    """A lost or refused database connection (worth another try), not a refusal."""
    if isinstance(exc, DBAPIError):
        return not isinstance(exc, IntegrityError | DataError | ProgrammingError)
    return isinstance(exc, OSError | asyncio.TimeoutError)


def _said_retry(state: RetryCallState) -> None:
    exc = state.outcome.exception() if state.outcome is not None else None
    _log.warning("store retry", attempt=state.attempt_number, detail=f"{exc}")


BATCH = 64  # decisions whose intents commit in one transaction, at most
SLICE = 64  # legs evaluated between two turns of the event loop, live
# close decisions between two turns (each costs ~50 us: a burst of them would keep the
# order workers' database round trips waiting)
SLICE_CLOSES = 8
# the longest evaluation waits for decided closes' intents to commit (a database that
# does not answer must not stop the stops being evaluated)
WRITE_WAIT = 0.05
HOUSEKEEPING = 0.5  # seconds of market time between repricing and staleness rounds
STALE_WALK = timedelta(seconds=5)  # the longest between two walks of check_stale


def natural_debit(watch: PositionWatch, quotes: Sequence[Quote | None]) -> Decimal | None:
    """The position's natural debit on its legs' ``quotes``, None while a leg has no
    two-sided quote."""
    if any(q is None or q.bid is None or q.ask is None for q in quotes):
        return None
    return machine_natural(watch.state.plan, quotes)  # type: ignore[arg-type]


def _kept(quote: Quote) -> Quote:
    return quote


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """No cyclic garbage collection inside (it would walk the new objects again and again:
    half of a 10,000-position load); the collector runs as before afterwards."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def exit_state(
    stored: StoredPosition, book: BookPolicy, live: Mapping[str, Any] | None = None
) -> ExitState:
    """The rules' state of a stored position; ``live``: its order still working (a row of
    ``Store.live_orders``), which makes it CLOSING."""
    position = stored.position
    plan = make_plan(position, book)
    if stored.remaining == 0:
        return ExitState(position, plan, Phase.CLOSED, 0, stored.profit_closed)
    if live is None:
        return ExitState(position, plan, Phase.OPEN, stored.remaining, stored.profit_closed)
    reason = ExitReason(live["reason"])
    limit = live["limit_price"] or Decimal(0)
    close = Close(
        contracts=live["quantity"],
        reason=reason,
        label=live["label"],
        target=live["target"],
        tranche=live["stage"],
        debit=limit,
        pnl=(position.entry_credit - limit) * position.multiplier * live["quantity"],
        pct_of_max=(position.entry_credit - limit) / position.entry_credit,
        triggers=(reason,),
    )
    working = Working(close, live["filled"])
    return ExitState(position, plan, Phase.CLOSING, stored.remaining, stored.profit_closed, working)


@dataclass(frozen=True, slots=True)
class _Decided:
    watch: PositionWatch
    close: Close
    at: MarketTime
    natural: Decimal
    quotes: dict[str, Any]
    clock: float  # perf_counter at the decision


class Monitor:
    def __init__(
        self,
        store: Store,
        manager: OrderManager,
        books: dict[str, BookPolicy],
        *,
        subscribe: Callable[[LegKey], None],
        market_time: Callable[[datetime], MarketTime],
        unsubscribe: Callable[[LegKey], None] | None = None,
        rates: Rates | None = None,
        workers: int = 4,
    ) -> None:
        self.store = store
        self.manager = manager
        self.books = books
        self._subscribe = subscribe
        self._unsubscribe = unsubscribe
        self._market_time = market_time
        self.rates = Rates() if rates is None else rates
        self.workers = workers
        self.watches: dict[str, PositionWatch] = {}
        self.stored: dict[str, StoredPosition] = {}
        # the watched legs (LegKey), their latest quotes and their screens' gates
        self.watchlist: Watchlist[Quote, LegKey] = Watchlist(_kept)
        self._pending: dict[LegKey, Quote] = {}  # the latest quote per leg, not yet evaluated
        self._wake = asyncio.Event()
        self._decided: asyncio.Queue[_Decided] = asyncio.Queue()
        # decisions queued or being written whose intents have not committed yet; live,
        # evaluation waits for them (``_written``) before it goes on
        self._unwritten = 0
        self._written = asyncio.Event()
        self._written.set()
        self._events: asyncio.Queue[OrderEvent] = asyncio.Queue()
        # position -> spreads in executions received but not yet applied: the broker's
        # positions already show them, the exit states not yet (see expected_holdings)
        self._unapplied: Counter[str] = Counter()
        self._held: set[str] = set()  # decisions waiting for regular hours (said once)
        self._cancelling: set[str] = set()  # positions whose profit close is being replaced
        self.blocked: dict[str, str] = {}  # position -> why it is no longer acted on
        self._refusals: dict[str, tuple[int, datetime]] = {}  # position -> (count, first)
        self.stale: set[str] = set()  # positions whose quotes are stale now (said once)
        self._walk_after: datetime | None = None  # check_stale walks the positions after it
        self.decisions: list[tuple[datetime, str, Close]] = []  # every close sent
        self.sent_latency: deque[float] = deque(maxlen=100_000)  # decision -> order sent, s
        self.updates = 0  # leg updates taken (screened or evaluated)
        self.screened = 0  # leg updates every holder's screen admitted: kept, not evaluated
        self.evaluations = 0  # position evaluations (an update of a leg two positions hold: 2)
        self.decided: Counter[str] = Counter()  # close decisions by reason
        self.order_statuses: Counter[str] = Counter()  # the broker's order events by status
        self.fill_latency: deque[float] = deque(maxlen=10_000)  # order sent -> fill, s
        self._sent_at: dict[str, float] = {}  # order_ref -> perf_counter when sent
        self.heartbeat = time.monotonic()  # the loop's last housekeeping round
        self.rejections: list[tuple[str, str]] = []  # (order_ref, reason) of each rejection
        if manager.expected is None:
            manager.expected = self.expected_holdings

    # Start ------------------------------------------------------------------------------

    async def load(self, now: datetime, only: set[str] | None = None) -> list[str]:
        """Reconcile the store's live orders with the broker, then watch every open position
        (or those of ``only``) and subscribe its legs. Returns the reconciliation's lines."""
        # every connection the running loop will use, opened now (not on the order path)
        await self.store.warm(self.workers + 2)
        done = await self.manager.reconcile(now)
        live = {o["position_id"]: o for o in await self.store.live_orders()}
        with _collector_paused():  # thousands of new objects, all kept: none to collect
            for stored in await self.store.open_positions():
                position = stored.position
                if only is not None and position.id not in only:
                    continue
                order = live.get(position.id)
                if order is not None and self.manager.live_for(position.id) is None:
                    order = None  # not working at the broker: reconcile has ended it
                watch = PositionWatch(exit_state(stored, self.books[position.book], order))
                self.watches[position.id] = watch
                self.stored[position.id] = stored
                keys = [leg_key(position, i) for i in range(len(position.legs))]
                for key in self.watchlist.add(watch, keys):
                    self._subscribe(key)
        self._walk_after = None  # new positions: the next check walks them all
        held = await self.manager.gateway.positions()
        for leg, want in self.expected_holdings().items():
            have = held.get(leg, 0)
            if have != want:  # said, not fixed: closes of these legs are refused until fixed
                line = (
                    f"{leg.underlying} {leg.expiry} {leg.right.value} {leg.strike}: the account "
                    f"holds {have}, the open positions imply {want}"
                )
                _log.warning("reconciled", detail=line)
                done.append(line)
        return done

    # The four kinds of work -------------------------------------------------------------

    def on_quotes(self, updates: Iterable[LegUpdate]) -> None:
        """Keep the latest quote per leg for the next evaluation (the feed calls this)."""
        pending = self._pending
        for u in updates:
            pending[u.leg] = u.quote
        self._wake.set()

    def on_events(self, events: Iterable[OrderEvent]) -> None:
        """Queue the broker's order events, in their order (the feed calls this)."""
        for event in events:
            if event.execution is not None:
                self._unapplied[position_of(event.order_ref)] += event.execution.quantity
            self._events.put_nowait(event)

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
        pending = self._pending
        if not pending:
            return 0
        if limit is None or len(pending) <= limit:
            self._pending = {}
        else:
            batch = dict(islice(pending.items(), limit))
            for leg in batch:
                del pending[leg]
            pending = batch
        at = self._market_time(now)
        if at.regular_hours and self._held:
            self._held.clear()  # the open: held decisions are taken again on fresh quotes
        decided = 0

        def act(watch: PositionWatch, close: Close) -> None:
            nonlocal decided
            if self._decide(watch, close, at):
                decided += 1

        watchlist, rates, now = self.watchlist, self.rates, at.now
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
                n, now, units(quote.bid), units(quote.ask), quote.delta
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
        self.updates += taken
        self.screened += screened
        self.evaluations += evaluations
        return decided

    def _decide(self, watch: PositionWatch, close: Close, at: MarketTime) -> bool:
        pid = watch.state.position.id
        if pid in self.blocked:
            return False
        if not at.regular_hours:
            if pid not in self._held:
                self._held.add(pid)
                _log.info(
                    "decision held",
                    position_id=pid,
                    reason=close.reason.value,
                    detail="outside regular hours: decided again at the open",
                )
            return False
        natural = natural_debit(watch, watch.quotes)  # (judged: the watch has every leg's latest)
        if natural is None:
            return False
        if close.replaces:
            if pid in self._cancelling:
                return False
            self._cancelling.add(pid)
        else:
            watch.state = apply(watch.state, CloseSent(close))
        quotes = {
            "natural": str(natural),
            "legs": [
                None if q is None else {"bid": str(q.bid), "ask": str(q.ask), "delta": q.delta}
                for q in watch.quotes
            ],
        }
        self.decided[close.reason.value] += 1
        _log.info(
            "decision",
            position_id=pid,
            reason=close.reason.value,
            label=close.label,
            contracts=close.contracts,
            debit=str(close.debit),
            natural=str(natural),
            replaces=close.replaces,
        )
        self._decided.put_nowait(_Decided(watch, close, at, natural, quotes, time.perf_counter()))
        self._unwritten += 1
        self._written.clear()
        return True

    def _settle(self, n: int) -> None:
        """``n`` decisions' intents are committed (or will not be): evaluation may go on."""
        self._unwritten -= n
        if self._unwritten <= 0:
            self._unwritten = 0
            self._written.set()

    async def work(self) -> None:
        """Act on every queued decision (the step-driven way)."""
        while not self._decided.empty():
            await self._take(self._decided.get_nowait())

    async def _take(self, first: _Decided) -> None:
        """Act on ``first`` and on what else is queued now (up to BATCH): one burst of
        decisions, one transaction of intents."""
        items = [first]
        while len(items) < BATCH and not self._decided.empty():
            items.append(self._decided.get_nowait())
        try:
            await self._act(items)
        finally:
            for _ in items:
                self._decided.task_done()

    async def _act(self, items: list[_Decided]) -> None:
        requests = [
            CloseRequest(
                replace(self.stored[i.watch.state.position.id], remaining=i.watch.state.remaining),
                i.close,
                i.natural,
                i.at,
                i.quotes,
                i.clock,
            )
            for i in items
        ]
        unsettled = len(items)

        def written() -> None:
            nonlocal unsettled
            self._settle(unsettled)
            unsettled = 0

        try:
            results = await self.manager.close_many(requests, written)
        except Exception as exc:  # (the store or the broker: said, and decided again)
            results = [exc] * len(items)  # type: ignore[list-item]
        finally:
            written()
        for item, result in zip(items, results, strict=True):
            watch, close = item.watch, item.close
            pid = watch.state.position.id
            ref = None
            if isinstance(result, NotAClose):
                # The account may be a fill ahead of the events (the broker's positions
                # come first): decided again on the next quotes. A refusal that persists
                # (REFUSALS times over REFUSAL_SPAN) stops the automation of the position.
                now = item.at.now
                count, first = self._refusals.get(pid, (0, now))
                self._refusals[pid] = (count + 1, first)
                if count + 1 >= REFUSALS and now - first >= REFUSAL_SPAN:
                    self.blocked[pid] = str(result)
                    _log.error("close refused", position_id=pid, detail=str(result))
                else:
                    _log.warning("close refused, for now", position_id=pid, detail=str(result))
            elif isinstance(result, Exception):
                detail = f"{type(result).__name__}: {result}"
                _log.error("close failed", position_id=pid, detail=detail)
            else:
                ref = result
            if close.replaces:
                if ref is None and self.manager.live_for(pid) is None:
                    self._cancelling.discard(pid)  # nothing to cancel (yet): decide again
                continue
            if ref is None:
                if watch.state.phase is Phase.CLOSING:  # nothing went out: open again
                    watch.state = apply(watch.state, OrderEnded())
                continue
            self._refusals.pop(pid, None)
            self.sent_latency.append(time.perf_counter() - item.clock)
            self._sent_at[ref] = time.perf_counter()
            self.decisions.append((item.at.now, ref, close))

    async def follow(self) -> None:
        """Apply every queued order event (the step-driven way)."""
        while not self._events.empty():
            event = self._events.get_nowait()
            try:
                await self.on_event(event)
            finally:
                self._events.task_done()

    async def on_event(self, event: OrderEvent) -> None:
        try:
            await self._on_event(event)
        finally:  # applied to the exit state, or failed: no longer in flight
            if event.execution is not None:
                pid = position_of(event.order_ref)
                left = self._unapplied[pid] - event.execution.quantity
                if left > 0:
                    self._unapplied[pid] = left
                else:
                    del self._unapplied[pid]

    async def _on_event(self, event: OrderEvent) -> None:
        self.order_statuses[event.status] += 1
        if event.status == "rejected":
            self.rejections.append((event.order_ref, event.reason))
        if event.execution is not None and event.order_ref in self._sent_at:
            self.fill_latency.append(time.perf_counter() - self._sent_at[event.order_ref])
        if event.status in ("filled", "cancelled", "rejected"):
            self._sent_at.pop(event.order_ref, None)  # its fills are all in
        try:
            # a lost database connection is retried (a fill is applied once per exec id,
            # so a retry can never apply it twice); a refusal is final
            async for attempt in AsyncRetrying(
                retry=retry_if_exception(_transient),
                stop=stop_after_attempt(EVENT_ATTEMPTS),
                wait=wait_exponential_jitter(multiplier=0.05, max=2.0),
                before_sleep=_said_retry,
                reraise=True,
            ):
                with attempt:
                    applied = await self.manager.on_event(event)
        except Exception as exc:  # (an order that is not ours...: said, skipped)
            _log.error(
                "event failed",
                order_ref=event.order_ref,
                status=event.status,
                detail=f"{type(exc).__name__}: {exc}",
            )
            return
        pid = position_of(event.order_ref)
        watch = self.watches.get(pid)
        if watch is None or watch.state.phase is not Phase.CLOSING:
            return
        if applied is not None and applied.applied and event.execution is not None:
            watch.state = apply(watch.state, Filled(event.execution.quantity))
            if watch.state.phase is Phase.CLOSED:
                self._release(watch)
        elif event.status in ("cancelled", "rejected"):
            watch.state = apply(watch.state, OrderEnded())
            self._cancelling.discard(pid)

    def _release(self, watch: PositionWatch) -> None:
        """A closed position's legs: unsubscribed where no other open position holds them."""
        for key in self.watchlist.release(watch):
            if self._unsubscribe is not None:
                self._unsubscribe(key)

    async def housekeeping(self, now: datetime) -> None:
        """Reprice the live orders toward their natural; say which positions went stale."""
        self.heartbeat = time.monotonic()
        await self.manager.reprice(now, self._natural_of)
        await self.check_stale(now)

    def _natural_of(self, pid: str) -> Decimal | None:
        watch = self.watches.get(pid)
        return None if watch is None else natural_debit(watch, self.watchlist.quotes(watch))

    async def check_stale(self, now: datetime) -> None:
        """Log "data stale" once when an open position's newest quote grows older than its
        book's limit in regular hours, and "data fresh" when quotes come again."""
        at = self._market_time(now)
        if not at.regular_hours:
            return
        # No position can go stale before the earliest newest + limit of the last walk
        # (a newest only moves on, but for a quote out of order: hence a walk every
        # STALE_WALK at least). Stale positions are walked each round, to say "fresh".
        if not self.stale and self._walk_after is not None and now <= self._walk_after:
            return
        walk_after = now + STALE_WALK
        turns = Turns()
        for pid, watch, newest in self._newest_quotes():
            await turns.take()
            limit = watch.state.plan.stale_after
            stale = newest is None or now - newest > limit
            if newest is not None and not stale:
                walk_after = min(walk_after, newest + limit)
            if stale and pid not in self.stale:
                self.stale.add(pid)
                _log.warning(
                    "data stale",
                    position_id=pid,
                    newest=None if newest is None else newest.isoformat(),
                    limit_s=limit.total_seconds(),
                )
            elif not stale and pid in self.stale:
                self.stale.discard(pid)
                _log.info("data fresh", position_id=pid)
        self._walk_after = walk_after

    # Driving it -------------------------------------------------------------------------

    async def step(
        self,
        now: datetime,
        updates: Sequence[LegUpdate] = (),
        events: Sequence[OrderEvent] = (),
    ) -> None:
        """One step, in order: the broker's events, the evaluation of the updates, the
        orders decided, repricing. Deterministic: for tests, the demo and benchmarks."""
        self.on_events(events)
        await self.follow()
        self.on_quotes(updates)
        self.evaluate(now)
        await self.work()
        await self.housekeeping(now)

    async def run(self, feed: Feed, clock: Clock, stop: asyncio.Event) -> None:
        """Run live until ``stop`` is set: the feed, the evaluation, the order workers, the
        event follower and the housekeeping, in one TaskGroup.

        On stop: the feed, evaluation and housekeeping end; decisions not yet taken up
        are dropped (nothing of them is written; they are decided again on restart);
        orders being sent are finished (intent, order, "sent"); the events already
        received are applied. Orders still working are left working."""
        async with asyncio.TaskGroup() as tg:
            upstream = [
                tg.create_task(feed.run(self.on_quotes, self.on_events), name="feed"),
                tg.create_task(self._evaluating(clock), name="evaluate"),
                tg.create_task(self._housekeeping(clock), name="housekeeping"),
            ]
            workers = [
                tg.create_task(self._working(), name=f"orders-{k}") for k in range(self.workers)
            ]
            follower = tg.create_task(self._following(), name="events")
            await stop.wait()
            for task in upstream:
                task.cancel()
            while not self._decided.empty():
                item = self._decided.get_nowait()
                if not item.close.replaces and item.watch.state.phase is Phase.CLOSING:
                    item.watch.state = apply(item.watch.state, OrderEnded())
                self._settle(1)
                self._decided.task_done()
            await self._decided.join()
            for task in workers:
                task.cancel()
            await self._events.join()
            follower.cancel()

    async def _evaluating(self, clock: Clock) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                self.evaluate(clock.now(), SLICE, SLICE_CLOSES, time.perf_counter() + TURN)
                if self._unwritten:  # what was decided is written before more is evaluated
                    # (asyncio.timeout, not wait_for: in 3.11 wait_for can swallow a
                    # cancel that comes as the event is set, and the loop never stops)
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(WRITE_WAIT):
                            await self._written.wait()
                await asyncio.sleep(0)  # the workers' and the follower's I/O in between

    async def _working(self) -> None:
        async with self.store.hold():  # a connection of its own, for its life
            while True:
                await self._take(await self._decided.get())

    async def _following(self) -> None:
        async with self.store.hold():  # a connection of its own, for its life
            await self._follow_forever()

    async def _follow_forever(self) -> None:
        turns = Turns()
        while True:
            if self._events.empty():
                event = await self._events.get()
                turns.began()
            else:  # (no turn given: events none of which needs I/O could hold the loop)
                event = self._events.get_nowait()
            try:
                await self.on_event(event)
            finally:
                self._events.task_done()
            await turns.take()

    async def _housekeeping(self, clock: Clock) -> None:
        while True:
            await clock.sleep(HOUSEKEEPING)
            try:
                await self.housekeeping(clock.now())
            except Exception as exc:  # (said; the next round tries again)
                _log.error("housekeeping failed", detail=f"{type(exc).__name__}: {exc}")

    # Views ------------------------------------------------------------------------------

    def expected_holdings(self, legs: Iterable[LegKey] | None = None) -> dict[LegKey, int]:
        """What the watched positions imply the account holds per contract (short < 0), for
        ``legs`` (all the watched contracts when None). Executions received but not yet
        applied count: the broker's positions have them already."""
        out: dict[LegKey, int] = {}
        unapplied = self._unapplied
        ids, holders = self.watchlist.ids, self.watchlist.holders
        for leg in self.watched_legs() if legs is None else legs:
            total = 0
            n = ids.get(leg)
            for watch, i in () if n is None else holders[n]:
                position = watch.state.position
                remaining = watch.state.remaining - unapplied.get(position.id, 0)
                total += -remaining if position.legs[i].side is Side.SHORT else remaining
            out[leg] = total
        return out

    def watched_legs(self) -> list[LegKey]:
        """The contracts some open position holds (subscribed)."""
        wl = self.watchlist
        return [key for key, held in zip(wl.keys, wl.holders, strict=True) if held]

    def close_lines(self, since: int = 0) -> list[str]:
        """SPEC.md's line for each close acted on, from the ``since``-th on."""
        return [
            format_close_line(self.watches[position_of(ref)].state.position, close)
            for _, ref, close in self.decisions[since:]
        ]

    def staleness(self, now: datetime) -> dict[str, float]:
        """Seconds since each open position's newest leg quote (inf before any)."""
        return {
            pid: math.inf if newest is None else (now - newest).total_seconds()
            for pid, _, newest in self._newest_quotes()
        }

    def _newest_quotes(self) -> Iterator[tuple[str, PositionWatch, datetime | None]]:
        """Each open position, its watch and the time of its newest leg quote (None yet)."""
        latest, legs_of = self.watchlist.latest, self.watchlist.legs_of
        for pid, watch in list(self.watches.items()):
            if watch.state.phase is not Phase.CLOSED:
                ts = [q.ts for leg in legs_of(watch) if (q := latest[leg]) is not None]
                yield pid, watch, max(ts, default=None)

    def remaining(self) -> dict[str, int]:
        return {pid: w.state.remaining for pid, w in self.watches.items()}
