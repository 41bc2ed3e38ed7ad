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
from datetime import UTC, datetime, time
from decimal import Decimal, InvalidOperation

from rules.clock import MarketTime, new_york
from rules.greeks import Rates
from rules.machine import (
    DEFAULT_RATES,
    HOLD_NO_TRIGGER,
    Decision,
    ExitState,
    Phase,
    evaluate,
)
from rules.model import MAX_PRICE, Quote, Side

_ZERO = Decimal(0)
_OPEN = Phase.OPEN


UNITS_PER_DOLLAR = 10_000  # a Screen's price unit: prices of up to 4 decimals are exact


def units(price: Decimal | None) -> int | None:
    """``price`` in a Screen's units (1/10,000), or None when that is not exact."""
    if price is None or not price.is_finite():
        return None
    scaled = price.scaleb(4)
    if scaled != scaled.to_integral_value():
        return None
    return int(scaled)


class Screen:
    """Admits a position's leg quotes, one at a time, on which no close can come.

    Built by :meth:`PositionWatch.screen` while the position is inside its
    quiet band. It keeps each leg's latest bid + ask and their signed sum
    ``mid2`` (twice the mid debit), all in integer :func:`units`, which add
    and compare several times faster than Decimals. A new quote of leg i is
    admitted when ``mid2`` with it stays strictly between ``low2`` and
    ``high2`` and, for a short leg, its broker delta strictly inside the delta
    stop; an admitted quote is kept. The caller admits quotes only before
    ``deadline`` (the instant the time stop's session day begins, UTC).

    Then :func:`rules.machine.evaluate` on the admitted quotes cannot close:
    a mid debit inside the band reaches no unfinished target and not the loss
    stop, the deltas not the delta stop, the date not the time stop; and if a
    quote is unusable (crossed, -1, NaN) evaluate holds anyway. The band's
    edges are rounded inward to whole units, so the screen is never looser
    than the band. Only broker deltas count: a local delta moves with time
    alone, so a short leg without one gives no screen. A quote that is not
    admitted goes to evaluate, after which the caller builds a new screen.
    """

    __slots__ = ("deadline", "delta_stop", "high2", "low2", "mid2", "short", "sums")

    def __init__(
        self,
        low2: Decimal,
        high2: Decimal,
        sums: list[int],
        short: tuple[bool, ...],
        delta_stop: float,
        deadline: datetime,
    ) -> None:
        self.low2 = math.ceil(low2.scaleb(4))  # inward: mid2 > ceil(low) means mid2 > low
        self.high2 = math.floor(high2.scaleb(4))
        self.sums = sums  # leg i's latest bid + ask, in units
        self.mid2 = sum(x if s else -x for x, s in zip(sums, short, strict=True))
        self.short = short
        self.delta_stop = delta_stop
        self.deadline = deadline

    def admits(self, i: int, bid: int | None, ask: int | None, delta: float | None) -> bool:
        """Leg i now quotes bid/ask (in units; None: missing or not exact) and delta:
        True, and kept, if no close can come of it."""
        try:
            change = bid + ask - self.sums[i]  # type: ignore[operator]
            short = self.short[i]
            mid2 = self.mid2 + change if short else self.mid2 - change
            if not self.low2 < mid2 < self.high2:
                return False
            if short and not -self.delta_stop < delta < self.delta_stop:  # type: ignore[operator]
                return False  # (at the stop, a NaN, or None: TypeError)
        except TypeError:  # no price, or one not exact in units
            return False
        self.mid2 = mid2
        self.sums[i] += change
        return True


class PositionWatch:
    """The latest quote of each leg of one position, and the sums evaluate needs."""

    __slots__ = (
        "_bad",
        "_current_since",
        "_deadline",
        "_mid2",
        "_newest",
        "_ok",
        "_quiet",
        "_short",
        "_state",
        "_sums",
        "quotes",
    )

    def __init__(self, state: ExitState) -> None:
        legs = state.position.legs
        self.quotes: list[Quote | None] = [None] * len(legs)
        self._short = tuple(leg.side is Side.SHORT for leg in legs)
        self._ok = [False] * len(legs)  # leg i's latest quote is usable
        self._sums = [_ZERO] * len(legs)  # leg i's bid + ask, when usable
        self._bad = len(legs)  # legs whose latest quote is missing or unusable
        self._mid2 = _ZERO  # sum of (bid + ask), + for short legs, - for long, over usable legs
        self._newest: datetime | None = None  # the latest quote time over the legs
        # the session open since which every leg has quoted (None: not known)
        self._current_since: datetime | None = None
        self.state = state

    @property
    def state(self) -> ExitState:
        return self._state

    @state.setter
    def state(self, state: ExitState) -> None:
        """Replace the exit state (after ``apply``); re-arms the quiet path."""
        self._state = state
        plan = state.plan
        high2 = plan.quiet_high2
        # The band's low edge is the next unfinished tranche's threshold: a profit
        # close needs a tranche past profit_closed, and thresholds fall as targets
        # rise. With every tranche done no profit can fire; 0 keeps mid >= 0.
        low2 = _ZERO
        for boundary, debit in zip(plan.cumulative, plan.target_debits, strict=True):
            if boundary > state.profit_closed:
                low2 = 2 * debit
                break
        # the instant the time stop's session day begins, in UTC
        stop_day = datetime.combine(plan.time_stop_date, time.min, new_york())
        self._deadline = stop_day.astimezone(UTC)
        self._quiet = (
            None
            if state.phase is not _OPEN or high2 is None
            else (
                low2,
                high2,
                plan.time_stop_date,
                plan.stale_after,
                plan.delta_stop,
                plan.short_legs,
            )
        )

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
        return evaluate(self._state, self.quotes, at, rates=rates, feed_problem=feed_problem)

    def screen(self, at: MarketTime) -> Screen | None:
        """A :class:`Screen` from the legs' quotes now, or None when there is none.

        There is one while the position is open at a mid mark, every leg is
        usable, its mid debit is strictly inside the quiet band, every short
        leg has a broker delta strictly inside the stop, and the time stop's
        day has not begun.
        """
        quiet = self._quiet
        if quiet is None or self._bad or at.now >= self._deadline:
            return None
        low2, high2, _stop_date, _stale_after, stop, short_legs = quiet
        if not low2 < self._mid2 < high2:
            return None
        quotes = self.quotes
        for s in short_legs:
            d = quotes[s].delta  # type: ignore[union-attr]  # every leg is usable
            if d is None or not -stop < d < stop:
                return None
        sums = [units(x) for x in self._sums]
        if None in sums:
            return None  # a price with more decimals than units hold
        return Screen(low2, high2, sums, self._short, stop, self._deadline)  # type: ignore[arg-type]
