"""Many positions over shared legs: each leg's latest quote, and the gates that spare
evaluation where no close can come.

A feed sends one leg's quote at a time; a leg may be held by several positions
(one spread's short put is another's long put). For each leg the watchlist
keeps its latest quote, in whatever form the caller keeps it (replay: the CSV
line, parsed again only when needed; the live monitor: the ``Quote``), and a
gate: the :class:`rules.watch.Screen` of every position holding the leg, and
the earliest of their deadlines. A quote that every screen admits before the
deadline cannot make any holder close, so the caller only keeps it
(:meth:`Watchlist.admits`). Any other quote is judged (:meth:`Watchlist.judge`):
each holder first catches up on its other legs' latest quotes, then is
evaluated; the caller acts on a close; then the holder gets a new screen and
its legs new gates.

A watch's screen is closed whenever its exit state changes (a fill, an order
ended), so a gate never admits a quote on a state its screen was not built
for: the next quote of that leg is judged, and the gate built anew.

Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from datetime import datetime
from typing import Generic, TypeVar

from rules.clock import MarketTime
from rules.greeks import Rates
from rules.machine import Close
from rules.model import Quote
from rules.screen import Screen
from rules.watch import PositionWatch

K = TypeVar("K")  # the form a leg's latest quote is kept in
L = TypeVar("L", bound=Hashable)  # the caller's key of a leg

# A leg's gate: the earliest deadline of its holders' screens (in the caller's time
# form, see ``instant``), and each holder's screen with the leg's index in it.
Gate = tuple[datetime, tuple[tuple[Screen, int], ...]]
Act = Callable[[PositionWatch, Close], None]


def _same(instant: datetime) -> datetime:
    return instant


class Watchlist(Generic[K, L]):
    """Watches over shared legs (ids 0, 1, ... in the order first held).

    ``to_quote`` turns a kept quote into the rules' ``Quote``; ``instant`` turns a
    screen's deadline (aware UTC) into the form the caller's ``now`` has (replay
    compares naive UTC: faster). ``screens=False`` judges every quote (tests compare
    the two ways). The hot path reads ``holders``, ``latest`` and ``gates`` (lists by
    leg id) directly; they are only ever changed in place.
    """

    def __init__(
        self,
        to_quote: Callable[[K], Quote],
        *,
        instant: Callable[[datetime], datetime] = _same,
        screens: bool = True,
    ) -> None:
        self._to_quote = to_quote
        self._instant = instant
        self.screens = screens
        self.ids: dict[L, int] = {}  # a leg's key -> its id
        self.keys: list[L] = []
        self.holders: list[list[tuple[PositionWatch, int]]] = []  # (watch, leg's index in it)
        self.latest: list[K | None] = []
        self.gates: list[Gate | None] = []
        self._legs: dict[int, tuple[int, ...]] = {}  # id(watch) -> its legs' ids, in order
        self._seen: dict[int, list[K | None]] = {}  # id(watch) -> what each leg was last given

    def add(self, watch: PositionWatch, keys: Sequence[L]) -> list[L]:
        """Watch a position whose legs are ``keys``; returns the keys no one held before."""
        new = []
        legs = []
        for i, key in enumerate(keys):
            leg = self.ids.get(key)
            if leg is None:
                leg = self.ids[key] = len(self.keys)
                self.keys.append(key)
                self.holders.append([])
                self.latest.append(None)
                self.gates.append(None)
            if not self.holders[leg]:
                new.append(key)
            self.holders[leg].append((watch, i))
            self.gates[leg] = None  # the new holder has no screen yet
            legs.append(leg)
        self._legs[id(watch)] = tuple(legs)
        self._seen[id(watch)] = [None] * len(legs)
        return new

    def release(self, watch: PositionWatch) -> list[L]:
        """Stop watching a (closed) position; returns the keys no one holds any more (their
        latest quote is forgotten: a new holder waits for a fresh one)."""
        gone = []
        self._seen.pop(id(watch), None)
        for leg in self._legs.pop(id(watch), ()):
            left = [(w, i) for w, i in self.holders[leg] if w is not watch]
            self.holders[leg] = left
            if not left:
                self.latest[leg] = None
                gone.append(self.keys[leg])
            self.gates[leg] = self._gate(leg)
        return gone

    def legs_of(self, watch: PositionWatch) -> tuple[int, ...]:
        return self._legs.get(id(watch), ())

    def quotes(self, watch: PositionWatch) -> list[Quote | None]:
        """The latest quote of each of the watch's legs (those its screen admitted too)."""
        latest, to_quote = self.latest, self._to_quote
        out: list[Quote | None] = []
        for leg in self._legs.get(id(watch), ()):
            kept = latest[leg]
            out.append(None if kept is None else to_quote(kept))
        return out

    def admits(
        self,
        leg: int,
        now: datetime,
        bid: int | None,
        ask: int | None,
        delta: float | None,
        spot: float | None = None,
    ) -> bool:
        """The leg's new quote (prices in screen units, the broker's delta, the underlying's
        price) can make no holder close: every
        holder's screen admits it (and keeps it) before the gate's deadline. The caller
        has kept the quote as ``latest[leg]`` either way."""
        gate = self.gates[leg]
        if gate is None or not now < gate[0]:
            return False
        for screen, i in gate[1]:  # noqa: SIM110  (all() of a generator costs more, per quote)
            if not screen.admits(i, bid, ask, delta, spot):
                return False  # (a holder that admitted it is screened anew by judge)
        return True

    def judge(self, leg: int, quote: Quote, at: MarketTime, rates: Rates, act: Act) -> int:
        """Evaluate every position holding ``leg`` on its new ``quote`` (kept already as
        ``latest[leg]``), after each has caught up on its other legs; ``act`` on each
        close (it may change the watch's state); then screen each anew. Returns the
        number of positions evaluated."""
        kept = self.latest[leg]
        listeners = self.holders[leg]
        for watch, i in listeners:
            seen = self._seen[id(watch)]
            seen[i] = kept  # given below, by update
            self._catch_up(watch, seen)
            decision = watch.update(i, quote, at, rates)
            if decision.__class__ is Close:
                act(watch, decision)
        for watch, _ in listeners:
            self.rescreen(watch, at, rates)
        return len(listeners)

    def rescreen(self, watch: PositionWatch, at: MarketTime, rates: Rates) -> None:
        """Build the watch's screen again (if it is still watched; its local bands at
        ``rates``), then its legs' gates."""
        legs = self._legs.get(id(watch))
        if legs is None or not self.screens:
            return
        watch.screen(at, rates)
        for leg in legs:
            self.gates[leg] = self._gate(leg)

    def _catch_up(self, watch: PositionWatch, seen: list[K | None]) -> None:
        """Give the watch the quotes its legs got since it last looked (admitted ones)."""
        latest = self.latest
        for j, leg in enumerate(self._legs[id(watch)]):
            kept = latest[leg]
            if kept is not seen[j] and kept is not None:
                seen[j] = kept
                watch.store(j, self._to_quote(kept))

    def _gate(self, leg: int) -> Gate | None:
        """The leg's holders' screens and the earliest deadline; None if one has none."""
        holders = self.holders[leg]
        if not self.screens or not holders:
            return None
        entries = []
        deadline: datetime | None = None
        for watch, i in holders:
            screen = watch.current_screen
            if screen is None:
                return None
            entries.append((screen, i))
            instant = self._instant(screen.deadline)
            if deadline is None or instant < deadline:
                deadline = instant
        assert deadline is not None
        return deadline, tuple(entries)
