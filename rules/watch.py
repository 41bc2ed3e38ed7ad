"""Incremental evaluation: one position's leg quotes, judged as each one arrives.

:func:`rules.machine.evaluate` judges a whole snapshot, re-checking every leg.
A feed changes one leg at a time, and almost every update changes nothing:
the position is nowhere near a target or a stop. :class:`PositionWatch` keeps
what it needs to see that cheaply: which legs hold a usable quote, the
running sum of the legs' signed prices, the newest quote time, and whether
every leg has quoted this session. When the update leaves the position
strictly inside its quiet band (every condition of "no trigger", a little
stricter) it answers HOLD_NO_TRIGGER at once; otherwise it asks
:func:`rules.machine.evaluate` itself. So the watch never decides anything
evaluate would not; a property test holds them equal on random streams.

A watch is a mutable cache, not a new kind of state: the exit state is still
the immutable ``ExitState``, which the owner replaces after ``apply``.
Pure: no I/O, no clock, no logging.
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, time
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Final, cast

from rules.bsm import LocalBand, leg_band
from rules.clock import MarketTime, new_york
from rules.evaluate import DEFAULT_RATES, evaluate
from rules.exits import TRANCHES, Band
from rules.exits.delta_stop import DeltaStop
from rules.greeks import Rates
from rules.model import MAX_PRICE, Quote, Right, Side, usable_delta
from rules.screen import MID_UNITS, UNITS_PER_DOLLAR, Screen, units
from rules.state import HOLD_NO_TRIGGER, Decision, ExitState, Phase

__all__ = ["UNITS_PER_DOLLAR", "PositionWatch", "Screen", "units"]  # (the screen's, re-exported)

_ZERO: Final = Decimal(0)
_OPEN: Final = Phase.OPEN


@lru_cache(maxsize=4096)
def _begins(day: date) -> datetime:
    """The instant the New York session day ``day`` begins, in UTC (a time stop's day)."""
    return datetime.combine(day, time.min, new_york()).astimezone(UTC)


# A band's open ends, in units: beyond any price (MAX_PRICE is 10**10 units)
_BELOW, _ABOVE = -(10**15), 10**15
_NEVER: Final = datetime.max.replace(tzinfo=UTC)
_NO_STOP: Final = math.inf  # no rule bounds the short legs' deltas
# a short leg's local band kept for the next screen: the band, its window, its rates
_Kept = tuple[LocalBand, datetime, datetime, Rates]
# a screen's band: low and high of mid2 in units, the short legs' delta stop, the deadline
_ScreenBand = tuple[int, int, float | None, datetime]


class PositionWatch:
    """The latest quote of each leg of one position, and the sums evaluate needs."""

    __slots__ = (
        "_bad",
        "_band",
        "_current_since",
        "_exact",
        "_exact_of",
        "_kept",
        "_mid2",
        "_newest",
        "_ok",
        "_quiet",
        "_screen",
        "_short",
        "_state",
        "_sums",
        "judged",
        "quotes",
    )

    def __init__(self, state: ExitState) -> None:
        legs = state.position.legs
        self.quotes: list[Quote | None] = [None] * len(legs)
        self._short = tuple(leg.side is Side.SHORT for leg in legs)
        self._ok = [False] * len(legs)  # leg i's latest quote is usable
        self._sums = [_ZERO] * len(legs)  # leg i's bid + ask, when usable
        self._exact: list[int | None] = [0] * len(legs)  # units(_sums[i]) (screen's), for
        self._exact_of: list[Decimal | None] = [None] * len(legs)  # that very _sums[i] object
        self._bad = len(legs)  # legs whose latest quote is missing or unusable
        self._mid2 = _ZERO  # sum of (bid + ask), + for short legs, - for long, over usable legs
        self._newest: datetime | None = None  # the latest quote time over the legs
        # the session open since which every leg has quoted (None: not known)
        self._current_since: datetime | None = None
        self._screen: Screen | None = None  # the latest built, closed on a change of state
        # each short leg's latest local band: (band, its start, its end, the rates it is at)
        self._kept: list[_Kept | None] = [None] * len(legs)
        self.judged = 0  # decisions that went to evaluate (the rest took the quiet path)
        self.state = state

    @property
    def state(self) -> ExitState:
        return self._state

    @state.setter
    def state(self, state: ExitState) -> None:
        """Replace the exit state (after ``apply``); re-arms the quiet path and closes the
        screen built for the state before."""
        self._state = state
        if self._screen is not None:
            self._screen.close()
            self._screen = None
        # Every rule's quiet band, composed once per state (the profit targets' low edge
        # moves with the tranches done): rules.exits states each, ExitPlan.band joins them.
        plan = state.plan
        band = None if state.manual else plan.band(state.profit_closed)  # (judged: it acts)
        self._quiet = (
            None
            if state.phase is not _OPEN or band is None or band.high2 is None
            else (
                _ZERO if band.low2 is None else band.low2,
                band.high2,
                date.max if band.before is None else band.before,
                plan.stale_after,
                _NO_STOP if band.delta is None else band.delta,
                () if band.delta is None else plan.short_legs,
            )
        )
        self._band = _band(state, band)

    def store(self, i: int, q: Quote) -> None:
        """Leg ``i`` now quotes ``q``: keep it and the sums, decide nothing."""
        quotes = self.quotes
        quotes[i] = q
        bid, ask = q.bid, q.ask  # usable: bid >= 0, ask > 0, bid <= ask, finite
        try:  # None raises TypeError; a NaN raises InvalidOperation (or compares False)
            ok = _ZERO <= bid <= ask < MAX_PRICE and ask > _ZERO  # type: ignore[operator]
        except (TypeError, InvalidOperation):
            ok = False
        sums = self._sums
        was_ok = self._ok[i]
        if ok:
            total = bid + ask  # type: ignore[operator]
            change = total - sums[i] if was_ok else total
            sums[i] = total
            if not was_ok:
                self._bad -= 1
                self._ok[i] = True
        else:
            change = -sums[i] if was_ok else _ZERO
            sums[i] = _ZERO
            if was_ok:
                self._bad += 1
                self._ok[i] = False
        if self._short[i]:
            self._mid2 += change
        else:
            self._mid2 -= change
        ts = q.ts
        newest = self._newest
        if newest is None or ts >= newest:
            self._newest = ts
        else:  # out of order: the newest may have been the quote just replaced
            self._newest = max(x.ts for x in quotes if x is not None)
        since = self._current_since
        if since is not None and ts < since:
            self._current_since = None

    def update(
        self,
        i: int,
        q: Quote,
        at: MarketTime,
        rates: Rates = DEFAULT_RATES,
        feed_problem: str | None = None,
    ) -> Decision:
        """Leg ``i`` now quotes ``q``: the decision, as ``evaluate`` would give it."""
        self.store(i, q)
        quotes = self.quotes
        newest: datetime = self._newest  # type: ignore[assignment]  # a leg has quoted

        # The quiet path: when every check below holds, evaluate() would say "no
        # trigger" (each check is one of its conditions, a little stricter), so
        # say it without the call. Anything else goes to evaluate. Natural-mark
        # books have no quiet band (quiet_high2 is None) and always go there.
        quiet = self._quiet
        if quiet is not None and not self._bad and feed_problem is None:
            low2, high2, stop_date, stale_after, stop, short_legs = quiet
            now, session_date, regular_hours, session_open = at
            if (
                low2 < self._mid2 < high2
                and session_date < stop_date
                and (
                    not regular_hours
                    or (
                        now - newest < stale_after
                        and (
                            self._current_since == session_open or self._quoted_since(session_open)
                        )
                    )
                )
            ):
                for s in short_legs:
                    d = quotes[s].delta  # type: ignore[union-attr]
                    if d is None or not -stop < d < stop:  # missing, NaN or at the stop
                        break
                else:
                    return HOLD_NO_TRIGGER
        return self.judge(at, rates=rates, feed_problem=feed_problem)

    def _quoted_since(self, session_open: datetime | None) -> bool:
        """Every leg's quote is from this session (no leg shows yesterday's quote)."""
        if session_open is None:
            return False
        if self._current_since == session_open:
            return True
        if all(q is not None and q.ts >= session_open for q in self.quotes):
            self._current_since = session_open
            return True
        return False

    def judge(
        self, at: MarketTime, *, rates: Rates = DEFAULT_RATES, feed_problem: str | None = None
    ) -> Decision:
        """The decision now, from scratch: exactly ``evaluate`` on the latest quotes.

        The running sums serve the quiet path's screen only (they compare
        exactly but may carry another exponent, 0.3000 for 0.300): every figure
        of a decision comes from evaluate, so the watch and evaluate agree to
        the digit.
        """
        self.judged += 1
        return evaluate(self._state, self.quotes, at, rates=rates, feed_problem=feed_problem)

    @property
    def current_screen(self) -> Screen | None:
        """The screen :meth:`screen` built last, None once the state has changed since."""
        return self._screen

    def screen(self, at: MarketTime, rates: Rates = DEFAULT_RATES) -> Screen | None:
        """A new :class:`Screen` from the legs' quotes now (kept as :attr:`current_screen`),
        or None when there is none.

        There is one while every leg is usable and priced in whole units, the
        time stop's day has not begun, and the position is
        - open at a mid mark, its mid debit strictly inside the quiet band and
          every short leg's broker delta strictly inside the stop, or, without
          one, its latest quote inside a local band (at ``rates``) from now;
        - closing with a profit close working, at a mid mark: only a stop can
          act (replacing the close), so the band has no low edge;
        - closing with a stop working: nothing can act, and it admits every
          quote priced in whole units.
        """
        if self._screen is not None:  # built on quotes the watch has moved on from
            self._screen.close()
            self._screen = None
        band = self._band
        if band is None or self._bad:
            return None
        low2, high2, stop, deadline = band
        if at.now >= deadline:
            return None
        exact, exact_of = self._exact, self._exact_of
        for i, total in enumerate(self._sums):
            if exact_of[i] is not total:  # (worked out once a sum: most legs have not moved)
                exact[i], exact_of[i] = units(total), total
        if None in exact:
            return None  # a price with more decimals than units hold
        sums = cast(list[int], list(exact))  # (the screen's own: it moves them)
        short = self._short
        mid2 = sum(x if s else -x for x, s in zip(sums, short, strict=True))
        if not low2 < mid2 < high2:
            return None
        checked = stop is not None
        bands: list[LocalBand | None] = [None] * len(short)
        if stop is not None:
            for s in self._state.plan.short_legs:
                local = self._local(s, sums[s], at.now, rates, stop)
                if local is None:
                    return None
                bands[s], ends = local
                deadline = min(deadline, ends)
        screen = Screen(
            low2,
            high2,
            sums,
            short,
            short if checked else (False,) * len(short),
            _NO_STOP if stop is None else stop,
            deadline,
            bands,
        )
        self._screen = screen
        return screen

    def _local(
        self, s: int, total: int, now: datetime, rates: Rates, stop: float
    ) -> tuple[LocalBand | None, datetime] | None:
        """Short leg s (bid + ask ``total`` units) inside the stop: by its broker's delta
        (no band, no end), else by its local band (and the band's end); None: neither."""
        q: Quote = self.quotes[s]  # type: ignore[assignment]  # every leg is usable
        d = usable_delta(q.delta)
        if d is not None:
            return (None, _NEVER) if -stop < d < stop else None
        spot, mid = q.underlying_price, total / MID_UNITS
        if spot is None:
            return None
        kept = self._kept[s]  # still valid now (its window) and for this quote: no solve
        if (
            kept is not None
            and kept[1] <= now < kept[2]
            and kept[3] == rates
            and kept[0].admits(spot, mid)
        ):
            return kept[0], kept[2]
        leg, vols = self._state.position.legs[s], self._state.plan.exit(DeltaStop).vols
        call, rate = leg.right is Right.CALL, (rates.rate, rates.dividend)
        found = leg_band(
            call, float(leg.strike), leg.expiry, (spot, mid, vols.last[s]), now, rate, stop
        )
        self._kept[s] = None if found is None else (found[0], now, found[1], rates)
        return found


def _day_begins(day: date | None) -> datetime:
    """The instant the New York session day ``day`` begins, in UTC (a time stop's day);
    never, for no day."""
    return _NEVER if day is None else _begins(day)


def _band(state: ExitState, band: Band | None) -> _ScreenBand | None:
    """A screen's band for ``state``: (low, high) of 2 x the mid debit in units, rounded
    inward, the delta stop of the short legs (None: not checked), and the deadline;
    None: no screen.

    ``band`` is every rule's band composed (open positions); while a close works
    only the stops can act, and only while it is a tranche's."""
    if state.phase is _OPEN:
        return _screened(band)
    if state.phase is Phase.CLOSING:
        working = state.working
        if working is None or working.close.reason not in TRANCHES:
            return _BELOW, _ABOVE, None, _NEVER  # a stop works: nothing else can act
        if state.manual:
            return None  # a human's close replaces the tranche's: judged
        return _screened(state.plan.band(state.profit_closed, stops_only=True))
    return None


def _screened(band: Band | None) -> _ScreenBand | None:
    """``band`` in a screen's units (None: no screen where it has no top)."""
    if band is None or band.high2 is None:
        return None
    low = _BELOW if band.low2 is None else math.ceil(band.low2.scaleb(4))  # inward
    return low, math.floor(band.high2.scaleb(4)), band.delta, _day_begins(band.before)
