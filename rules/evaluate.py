"""Evaluation: what to do with one position now, from its exit state and its legs' quotes.

:func:`evaluate` looks at the state, the latest quote of every leg and the
exchange time, and returns a decision value: ``Hold`` or ``Close``. It never
acts (the caller acts, then tells ``rules.machine.apply`` what happened). The
data checks are here; the triggers are the exit rules' (``rules.exits``),
asked in the spec's order: every one that holds is listed, the first acts.

Profit tranches are counted by ``profit_closed``, the contracts closed by
profit targets so far, against the plan's cumulative boundaries: tranche i is
done once ``profit_closed >= cumulative[i]``. A gap over several targets closes
every contract up to the highest boundary reached in one order. Stops (loss,
delta, time) close everything remaining. While a profit close works, a stop
that holds yields a ``Close(replaces=True)``: cancel the working order, and on
its end the next evaluation sends the stop's close.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Final

from rules.clock import MarketTime
from rules.exits import MANUAL_LABEL, TRANCHES, Hit, fired
from rules.greeks import Rates
from rules.model import MAX_PRICE, Quote, quote_problem
from rules.plan import ExitPlan
from rules.pnl import pct_of_max, realised_pnl
from rules.state import (
    HOLD_CLOSED,
    HOLD_MISSING,
    HOLD_NO_TRIGGER,
    HOLD_PREVIOUS_SESSION,
    HOLD_STALE,
    HOLD_WORKING,
    Close,
    Decision,
    ExitReason,
    ExitState,
    Hold,
    HoldReason,
    Phase,
)

DEFAULT_RATES = Rates()
_CLOSED: Final = Phase.CLOSED
_HALF: Final = Decimal("0.5")
_ZERO: Final = Decimal(0)


def debit_to_close(plan: ExitPlan, quotes: Sequence[Quote], *, mid: bool = False) -> Decimal:
    """What buying back one spread costs now, at the book's mark (mid or natural)."""
    if not plan.natural or mid:
        shorts, longs = plan.short_legs, plan.long_legs
        if len(shorts) == 1:  # a vertical: the common case, without the loops
            s, lg = quotes[shorts[0]], quotes[longs[0]]
            return (s.bid + s.ask - lg.bid - lg.ask) * _HALF  # type: ignore[operator]
    if plan.natural and not mid:
        return natural_debit(plan, quotes)
    debit = _ZERO
    for i in plan.short_legs:
        q = quotes[i]
        debit += q.bid + q.ask  # type: ignore[operator]
    for i in plan.long_legs:
        q = quotes[i]
        debit -= q.bid + q.ask  # type: ignore[operator]
    return debit * _HALF


def natural_debit(plan: ExitPlan, quotes: Sequence[Quote]) -> Decimal:
    """Buying the short legs back at the ask and selling the long ones at the bid."""
    debit = _ZERO
    for i in plan.short_legs:
        debit += quotes[i].ask  # type: ignore[operator]
    for i in plan.long_legs:
        debit -= quotes[i].bid  # type: ignore[operator]
    return debit


def _unusable(quotes: Sequence[Quote | None]) -> Hold:
    """The precise reason the fast screen in :func:`evaluate` refused the quotes."""
    for q in quotes:
        if q is None:
            return HOLD_MISSING
        problem = quote_problem(q)
        if problem is not None:
            return Hold(HoldReason.INVALID_QUOTE, problem)
    return Hold(HoldReason.INVALID_QUOTE, "unusable quote")


def _close(
    state: ExitState,
    hit: Hit,
    debit: Decimal,
    triggers: tuple[ExitReason, ...],
    replaces: bool = False,
) -> Close:
    p = state.position
    return Close(
        contracts=hit.contracts,
        reason=hit.reason,
        label=hit.label,
        target=hit.target,
        tranche=hit.tranche,
        debit=debit,
        pnl=realised_pnl(p.entry_credit, debit, p.multiplier, hit.contracts),
        pct_of_max=pct_of_max(p.entry_credit, debit),
        triggers=triggers,
        replaces=replaces,
    )


def evaluate(
    state: ExitState,
    quotes: Sequence[Quote | None],
    at: MarketTime,
    *,
    rates: Rates = DEFAULT_RATES,
    feed_problem: str | None = None,
) -> Decision:
    """Decide what to do with one position now. ``quotes`` follow ``position.legs``.

    Nothing is acted on when the feed has a problem, a leg has no quote or an
    invalid one, no leg has updated for ``stale_after`` during regular hours, a
    leg's quote predates today's session (yesterday's frozen quote), or the
    legs' mids give a debit outside [0, width], which no consistent market
    can (one leg has moved and the other's quote has not caught up yet).
    Otherwise a human's close request (``state.manual``) acts first, then the first
    trigger in the spec's order: loss stop, delta stop, time stop, profit targets;
    every trigger that holds is listed in ``triggers``.
    """
    # This runs on every tick of every position: it is written for speed, with
    # each step's meaning in its comment. UTC datetimes keep comparisons cheap.
    if state.phase is _CLOSED:
        return HOLD_CLOSED
    if feed_problem is not None:
        return Hold(HoldReason.FEED, feed_problem)

    # 1. Every leg has a usable quote: bid >= 0, ask > 0, bid <= ask, finite.
    #    A missing quote (None) is tested; a missing price (None) raises TypeError and
    #    NaN InvalidOperation (or compares False): each ends in the slow, precise _unusable.
    newest = oldest = None
    try:
        for q in quotes:
            if q is None:  # (often, early in a replay: tested, not raised and caught)
                return _unusable(quotes)
            ts, ask = q.ts, q.ask
            if not (_ZERO <= q.bid <= ask < MAX_PRICE and ask > _ZERO):  # type: ignore[operator]
                return _unusable(quotes)
            if newest is None or oldest is None:
                newest = oldest = ts
            elif ts > newest:
                newest = ts
            elif ts < oldest:
                oldest = ts
    except (AttributeError, TypeError, InvalidOperation):
        return _unusable(quotes)
    if newest is None or oldest is None:
        return HOLD_MISSING  # a position without legs: nothing to judge
    valid: Sequence[Quote] = quotes  # type: ignore[assignment]  # checked above
    plan = state.plan
    debit = debit_to_close(plan, valid)
    mid = debit_to_close(plan, valid, mid=True) if plan.natural else debit
    return judge(state, valid, debit, mid, newest, oldest, at, rates)


def judge(
    state: ExitState,
    quotes: Sequence[Quote],
    debit: Decimal,
    mid: Decimal,
    newest: datetime,
    oldest: datetime,
    at: MarketTime,
    rates: Rates,
) -> Decision:
    """Steps 2-4 of :func:`evaluate`, on usable quotes and their figures.

    ``debit`` is at the book's mark, ``mid`` at mid; ``newest``/``oldest`` are
    the latest and earliest of the legs' quote times.
    """
    plan = state.plan

    # 2. The data is current: during regular hours some leg updated within
    #    stale_after, and no leg's quote is older than today's open.
    if at.regular_hours:
        if at.now - newest >= plan.stale_after:
            return HOLD_STALE
        session_open = at.session_open
        if session_open is not None and oldest < session_open:
            return HOLD_PREVIOUS_SESSION

    # 3. The legs agree: a mid debit outside [0, width] is no consistent market.
    if not _ZERO <= mid <= plan.width:
        return Hold(
            HoldReason.INCONSISTENT_QUOTES,
            f"mid debit {mid} outside [0, {plan.width}]: legs quoted at different moments",
        )

    # 4. The triggers, all of them (for the log), in SPEC order: the first acts.
    hits = fired(plan.exits, debit, quotes, at, rates, state.profit_closed, state.remaining)
    if state.manual:  # a human's close acts first; the rules that hold are listed after
        manual = Hit(ExitReason.MANUAL, True, state.remaining, MANUAL_LABEL)
        hits = [manual] if hits is None else [manual, *hits]
    if hits is None:
        return HOLD_NO_TRIGGER
    return _decide(state, debit, hits)


def _decide(state: ExitState, debit: Decimal, hits: list[Hit]) -> Decision:
    """Some trigger holds: the first in SPEC order acts (while a tranche's close works,
    only a stop, replacing it); all are listed."""
    triggers = tuple([hit.reason for hit in hits])
    if state.phase is Phase.CLOSING:
        working = state.working
        stop = next((hit for hit in hits if hit.stop), None)
        if stop is None or working is None or working.close.reason not in TRANCHES:
            return HOLD_WORKING
        return _close(state, stop, debit, triggers, replaces=True)
    return _close(state, hits[0], debit, triggers)
