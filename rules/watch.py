"""Incremental evaluation: one position's leg quotes, judged as each one arrives.

:func:`rules.machine.evaluate` judges a whole snapshot, re-checking every leg.
A feed changes one leg at a time, so :class:`PositionWatch` keeps what
evaluate would recompute from scratch: which legs hold a usable quote, the
running sum of the legs' signed prices, and the newest and oldest quote
times. Each update checks only the new quote, then hands the same figures to
the same :func:`rules.machine.judge` that evaluate ends in, so the two decide
alike; a property test holds them equal on random streams.

A watch is a mutable cache, not a new kind of state: the exit state is still
the immutable ``ExitState``, which the owner replaces after ``apply``.
Pure: no I/O, no clock, no logging.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal, InvalidOperation

from rules.clock import MarketTime
from rules.greeks import Rates
from rules.machine import (
    DEFAULT_RATES,
    HOLD_CLOSED,
    HOLD_MISSING,
    HOLD_NO_TRIGGER,
    MAX_PRICE,
    Decision,
    ExitState,
    Phase,
    evaluate,
    judge,
)
from rules.model import Quote, Side

_ZERO = Decimal(0)
_HALF = Decimal("0.5")
_CLOSED = Phase.CLOSED
_OPEN = Phase.OPEN


def _usable(q: Quote) -> bool:
    """bid >= 0, ask > 0, bid <= ask, finite: ``quote_problem(q) is None``, fast."""
    bid, ask = q.bid, q.ask
    if bid is None or ask is None:
        return False
    try:  # a NaN raises (or, with the trap off, compares False)
        return _ZERO <= bid <= ask < MAX_PRICE and ask > _ZERO
    except InvalidOperation:
        return False


class PositionWatch:
    """The latest quote of each leg of one position, and the sums evaluate needs."""

    __slots__ = (
        "_bad",
        "_mid2",
        "_natural",
        "_natural_mark",
        "_newest",
        "_ok",
        "_oldest",
        "_short",
        "quotes",
        "state",
    )

    def __init__(self, state: ExitState) -> None:
        legs = state.position.legs
        self.state = state
        self.quotes: list[Quote | None] = [None] * len(legs)
        self._short = tuple(leg.side is Side.SHORT for leg in legs)
        self._ok = [False] * len(legs)  # leg i's latest quote is usable
        self._bad = len(legs)  # legs whose latest quote is missing or unusable
        self._mid2 = _ZERO  # sum of (bid + ask), + for short legs, - for long, over usable legs
        self._natural = _ZERO  # sum of (short: ask, long: -bid) over usable legs
        self._natural_mark = state.plan.natural  # keep _natural only where it is used
        self._newest: datetime | None = None
        self._oldest: datetime | None = None

    def update(
        self,
        i: int,
        q: Quote,
        at: MarketTime,
        *,
        rates: Rates = DEFAULT_RATES,
        feed_problem: str | None = None,
    ) -> Decision:
        """Leg ``i`` now quotes ``q``: the decision, as ``evaluate`` would give it."""
        old = self.quotes[i]
        self.quotes[i] = q
        short = self._short[i]
        ok = _usable(q)
        change = _ZERO  # to sum(+/-(bid + ask))
        if self._ok[i]:  # retire the old quote's share
            assert old is not None
            change = old.bid + old.ask  # type: ignore[operator]
            if self._natural_mark:
                self._natural -= old.ask if short else -old.bid  # type: ignore[operator]
            if not ok:
                self._bad += 1
        elif ok:
            self._bad -= 1
        if ok:
            change = q.bid + q.ask - change  # type: ignore[operator]
            if self._natural_mark:
                self._natural += q.ask if short else -q.bid  # type: ignore[operator]
        else:
            change = -change
        if short:
            self._mid2 += change
        else:
            self._mid2 -= change
        self._ok[i] = ok
        ts = q.ts
        newest, oldest = self._newest, self._oldest
        if old is None or newest is None or oldest is None or ts < newest or old.ts == oldest:
            self._times()
            newest, oldest = self._newest, self._oldest
        else:  # in time order, and the replaced quote was not the oldest
            self._newest = newest = ts

        # The quiet path: when every check below holds, judge() would say "no
        # trigger" (each check is one of its conditions, a little stricter), so
        # say it without the call. Anything else goes to the full judge.
        state = self.state
        plan = state.plan
        high2 = plan.quiet_high2
        if (
            ok
            and not self._bad
            and state.phase is _OPEN
            and feed_problem is None
            and high2 is not None
            and plan.quiet_low2 < self._mid2 < high2
            and at.session_date < plan.time_stop_date
            and (
                not at.regular_hours
                or (
                    at.now - newest < plan.stale_after  # type: ignore[operator]
                    and at.session_open is not None
                    and oldest >= at.session_open  # type: ignore[operator]
                )
            )
        ):
            stop = plan.delta_stop
            quotes = self.quotes
            for s in plan.short_legs:
                d = quotes[s].delta  # type: ignore[union-attr]
                if d is None or not -stop < d < stop:  # missing, NaN or at the stop
                    break
            else:
                return HOLD_NO_TRIGGER
        return self.judge(at, rates=rates, feed_problem=feed_problem)

    def judge(
        self, at: MarketTime, *, rates: Rates = DEFAULT_RATES, feed_problem: str | None = None
    ) -> Decision:
        """The decision now, with no new quote (time passing, a fill applied)."""
        state = self.state
        if state.phase is _CLOSED:
            return HOLD_CLOSED
        if feed_problem is not None or self._bad:
            # the rare paths: let evaluate word the reason
            return evaluate(state, self.quotes, at, rates=rates, feed_problem=feed_problem)
        newest, oldest = self._newest, self._oldest
        if newest is None or oldest is None:
            return HOLD_MISSING
        mid = self._mid2 * _HALF
        debit = self._natural if state.plan.natural else mid
        usable: list[Quote] = self.quotes  # type: ignore[assignment]  # _bad == 0
        return judge(state, usable, debit, mid, newest, oldest, at, rates)

    def _times(self) -> None:
        newest = oldest = None
        for q in self.quotes:
            if q is None:
                continue
            ts = q.ts
            if newest is None or ts > newest:
                newest = ts
            if oldest is None or ts < oldest:
                oldest = ts
        self._newest, self._oldest = newest, oldest
