"""The position book: every open position's watch, as stored and as the rules see it.

It holds each position's :class:`rules.watch.PositionWatch` (its exit state
and its legs' latest quotes) and its stored row, and the watchlist that files
the quotes by leg. From them it says what the open positions imply the account
holds per contract, which legs are watched, and how old each position's
newest quote is.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from decimal import Decimal

from rules.books import BookPolicy
from rules.machine import ExitState, Phase
from rules.machine import natural_debit as machine_natural
from rules.model import Quote, Side
from rules.plan import make_plan
from rules.watch import PositionWatch
from rules.watchlist import Watchlist
from service.ports import LegKey, OrderEvent, StoredOrder, StoredPosition, leg_key, position_of


def natural_debit(watch: PositionWatch, quotes: Sequence[Quote | None]) -> Decimal | None:
    """The position's natural debit on its legs' ``quotes``, None while a leg has no
    two-sided quote."""
    if any(q is None or q.bid is None or q.ask is None for q in quotes):
        return None
    return machine_natural(watch.state.plan, quotes)  # type: ignore[arg-type]


def exit_state(
    stored: StoredPosition, book: BookPolicy, live: StoredOrder | None = None
) -> ExitState:
    """The rules' state of a stored position; ``live``: its order still working (a row of
    ``Store.live_orders``), which makes it CLOSING; a close asked by hand is ``manual``."""
    position = stored.position
    plan = make_plan(position, book)
    if stored.remaining == 0:
        return ExitState(position, plan, Phase.CLOSED, 0, stored.profit_closed)
    manual = stored.manual_close is not None
    if live is None:
        return ExitState(
            position, plan, Phase.OPEN, stored.remaining, stored.profit_closed, manual=manual
        )
    working = live.working(position.entry_credit, position.multiplier)
    return ExitState(
        position, plan, Phase.CLOSING, stored.remaining, stored.profit_closed, working, manual
    )


def _kept(quote: Quote) -> Quote:
    return quote


class PositionBook:
    def __init__(
        self,
        books: Mapping[str, BookPolicy],
        *,
        subscribe: Callable[[LegKey], None],
        unsubscribe: Callable[[LegKey], None] | None = None,
    ) -> None:
        self.books = books
        self._subscribe = subscribe
        self._unsubscribe = unsubscribe
        self.watches: dict[str, PositionWatch] = {}
        self.stored: dict[str, StoredPosition] = {}
        # the watched legs (LegKey), their latest quotes and their screens' gates
        self.watchlist: Watchlist[Quote, LegKey] = Watchlist(_kept)
        # position -> spreads in executions received but not yet applied: the broker's
        # positions already show them, the exit states not yet (see expected_holdings)
        self._unapplied: Counter[str] = Counter()

    # Filling it -------------------------------------------------------------------------

    def load(
        self,
        positions: Iterable[StoredPosition],
        live: Mapping[str, StoredOrder],
        only: set[str] | None = None,
    ) -> None:
        """Watch each open position (or those of ``only``) and subscribe its legs; ``live``:
        the order working at the broker per position (a row of ``Store.live_orders``),
        which makes it CLOSING."""
        for stored in positions:
            position = stored.position
            if only is not None and position.id not in only:
                continue
            order = live.get(position.id)
            watch = PositionWatch(exit_state(stored, self.books[position.book], order))
            self.watches[position.id] = watch
            self.stored[position.id] = stored
            keys = [leg_key(position, i) for i in range(len(position.legs))]
            for key in self.watchlist.add(watch, keys):
                self._subscribe(key)

    def drop(self, position_id: str) -> None:
        """Stop watching a position (void, expired): its legs let go where no other
        position holds them."""
        watch = self.watches.pop(position_id, None)
        self.stored.pop(position_id, None)
        if watch is not None:
            self.release(watch)

    def prune_closed(self) -> list[str]:
        """Let go of the closed positions (kept until now for the day's views, their legs
        released when they closed): the daemon calls this once a day, at the close, so the
        book holds the open positions and one day's closed ones. The ones that went."""
        closed = [pid for pid, w in self.watches.items() if w.state.phase is Phase.CLOSED]
        for pid in closed:
            del self.watches[pid]
            self.stored.pop(pid, None)
        return closed

    def rebook(self, stored: StoredPosition, book: BookPolicy) -> None:
        """The position under another book: its exit state anew, what has been done kept."""
        watch = self.watches[stored.position.id]
        state = watch.state
        watch.state = replace(
            state, position=stored.position, plan=make_plan(stored.position, book)
        )
        self.stored[stored.position.id] = stored

    def release(self, watch: PositionWatch) -> None:
        """A closed position's legs: unsubscribed where no other open position holds them."""
        for key in self.watchlist.release(watch):
            if self._unsubscribe is not None:
                self._unsubscribe(key)

    def received(self, event: OrderEvent) -> None:
        if event.execution is not None:
            self._unapplied[position_of(event.order_ref)] += event.execution.quantity

    def applied(self, event: OrderEvent) -> None:
        if event.execution is not None:
            pid = position_of(event.order_ref)
            left = self._unapplied[pid] - event.execution.quantity
            if left > 0:
                self._unapplied[pid] = left
            else:
                del self._unapplied[pid]

    # Reading it -------------------------------------------------------------------------

    def watch(self, position_id: str) -> PositionWatch | None:
        return self.watches.get(position_id)

    def natural_of(self, position_id: str) -> Decimal | None:
        """The position's natural debit on its legs' latest quotes (None: not known)."""
        watch = self.watches.get(position_id)
        return None if watch is None else natural_debit(watch, self.watchlist.quotes(watch))

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

    def holders_of(self, leg: LegKey) -> list[str]:
        """The watched positions that hold ``leg``."""
        n = self.watchlist.ids.get(leg)
        return [] if n is None else [w.state.position.id for w, _ in self.watchlist.holders[n]]

    def watched_legs(self) -> list[LegKey]:
        """The contracts some open position holds (subscribed)."""
        wl = self.watchlist
        return [key for key, held in zip(wl.keys, wl.holders, strict=True) if held]

    def newest_quotes(self) -> Iterator[tuple[str, PositionWatch, datetime | None]]:
        """Each open position, its watch and the time of its newest leg quote (None yet)."""
        latest, legs_of = self.watchlist.latest, self.watchlist.legs_of
        for pid, watch in list(self.watches.items()):
            if watch.state.phase is not Phase.CLOSED:
                ts = [q.ts for leg in legs_of(watch) if (q := latest[leg]) is not None]
                yield pid, watch, max(ts, default=None)

    def staleness(self, now: datetime) -> dict[str, float]:
        """Seconds since each open position's newest leg quote (inf before any)."""
        return {
            pid: math.inf if newest is None else (now - newest).total_seconds()
            for pid, _, newest in self.newest_quotes()
        }

    def remaining(self) -> dict[str, int]:
        return {pid: w.state.remaining for pid, w in self.watches.items()}
