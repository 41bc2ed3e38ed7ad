"""The monitor: every open position's exit state machine, re-evaluated on each leg update.

Driven one step at a time (``await monitor.step(now)``), so a simulated
clock can run it faster than real time; the daemon calls it from its loop.
Each step:
1. takes the market's leg updates due by ``now``, the latest per leg (a
   burst for one leg collapses to its newest quote);
2. passes them to the broker side and applies the broker's order events:
   fills to the store and to the positions' exit states, cancels and
   rejections likewise;
3. evaluates only the positions holding an updated leg, and hands each close
   decision to the order manager, which writes the intent before it sends;
4. reprices the live orders toward their natural debit.

The store is the truth: :meth:`load` builds the exit states from it (what
remains, what profit targets have closed).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from decimal import Decimal

from rules.books import BookPolicy
from rules.clock import MarketTime
from rules.greeks import Rates
from rules.machine import (
    Close,
    CloseSent,
    ExitState,
    Filled,
    OrderEnded,
    Phase,
    apply,
    format_close_line,
)
from rules.machine import natural_debit as machine_natural
from rules.model import Quote, Side
from rules.plan import make_plan
from rules.watch import PositionWatch
from service.manager import OrderManager
from service.ports import LegKey, LegUpdate, OrderEvent, Store, StoredPosition, leg_key, position_of

MarketStep = Callable[[datetime], list[LegUpdate]]
BrokerStep = Callable[[list[LegUpdate], datetime], list[OrderEvent]]


def natural_debit(watch: PositionWatch) -> Decimal | None:
    """The position's natural debit now, None while a leg has no two-sided quote."""
    quotes = watch.quotes
    if any(q is None or q.bid is None or q.ask is None for q in quotes):
        return None
    return machine_natural(watch.state.plan, quotes)  # type: ignore[arg-type]


def exit_state(stored: StoredPosition, book: BookPolicy) -> ExitState:
    """The rules' state of a stored position (no working order: the manager owns those)."""
    position = stored.position
    phase = Phase.CLOSED if stored.remaining == 0 else Phase.OPEN
    return ExitState(
        position, make_plan(position, book), phase, stored.remaining, stored.profit_closed
    )


class Monitor:
    def __init__(
        self,
        store: Store,
        manager: OrderManager,
        books: dict[str, BookPolicy],
        *,
        market: MarketStep,
        broker: BrokerStep,
        subscribe: Callable[[LegKey], None],
        market_time: Callable[[datetime], MarketTime],
        rates: Rates | None = None,
    ) -> None:
        self.store = store
        self.manager = manager
        self.books = books
        self._market = market
        self._broker = broker
        self._subscribe = subscribe
        self._market_time = market_time
        self.rates = Rates() if rates is None else rates
        self.watches: dict[str, PositionWatch] = {}
        self.stored: dict[str, StoredPosition] = {}
        self._holders: dict[LegKey, list[tuple[PositionWatch, int]]] = {}
        self.decisions: list[tuple[datetime, str, Close]] = []  # every close acted on
        if manager.expected is None:
            manager.expected = self.expected_holdings

    async def load(self, only: set[str] | None = None) -> None:
        """Watch every open position in the store (or those of ``only``), subscribe its legs."""
        for stored in await self.store.open_positions():
            if only is not None and stored.position.id not in only:
                continue
            position = stored.position
            watch = PositionWatch(exit_state(stored, self.books[position.book]))
            self.watches[position.id] = watch
            self.stored[position.id] = stored
            for i in range(len(position.legs)):
                key = leg_key(position, i)
                if key not in self._holders:
                    self._subscribe(key)
                self._holders.setdefault(key, []).append((watch, i))

    async def step(self, now: datetime) -> None:
        updates = self._market(now)
        latest: dict[LegKey, Quote] = {}
        for u in updates:  # a burst for one leg: only its newest quote counts
            latest[u.leg] = u.quote
        for event in self._broker(updates, now):
            await self.on_event(event)
        at = self._market_time(now)
        for leg, quote in latest.items():
            for watch, i in self._holders.get(leg, ()):
                decision = watch.update(i, quote, at, self.rates)
                if isinstance(decision, Close):
                    await self._act(watch, decision, at)
        naturals = {
            pid: n
            for pid, w in self.watches.items()
            if w.state.phase is Phase.CLOSING and (n := natural_debit(w)) is not None
        }
        await self.manager.reprice(now, naturals)

    async def _act(self, watch: PositionWatch, decision: Close, at: MarketTime) -> None:
        natural = natural_debit(watch)
        if natural is None:
            return
        pid = watch.state.position.id
        quotes = {
            "natural": str(natural),
            "legs": [
                None if q is None else {"bid": str(q.bid), "ask": str(q.ask), "delta": q.delta}
                for q in watch.quotes
            ],
        }
        stored = replace(self.stored[pid], remaining=watch.state.remaining)
        ref = await self.manager.close(stored, decision, natural, at, quotes)
        if ref is not None:
            watch.state = apply(watch.state, CloseSent(decision))
            self.decisions.append((at.now, ref, decision))

    async def on_event(self, event: OrderEvent) -> None:
        applied = await self.manager.on_event(event)
        watch = self.watches.get(position_of(event.order_ref))
        if watch is None or watch.state.phase is not Phase.CLOSING:
            return
        if applied is not None and applied.applied and event.execution is not None:
            watch.state = apply(watch.state, Filled(event.execution.quantity))
        elif event.status in ("cancelled", "rejected"):
            watch.state = apply(watch.state, OrderEnded())

    def expected_holdings(self) -> dict[LegKey, int]:
        """What the watched positions imply the account holds per contract (short < 0)."""
        out: dict[LegKey, int] = {}
        for leg, holders in self._holders.items():
            total = 0
            for watch, i in holders:
                side = watch.state.position.legs[i].side
                total += -watch.state.remaining if side is Side.SHORT else watch.state.remaining
            out[leg] = total
        return out

    def close_lines(self, since: int = 0) -> list[str]:
        """SPEC.md's line for each close acted on, from the ``since``-th on."""
        return [
            format_close_line(self.watches[position_of(ref)].state.position, close)
            for _, ref, close in self.decisions[since:]
        ]

    def remaining(self) -> dict[str, int]:
        return {pid: w.state.remaining for pid, w in self.watches.items()}
