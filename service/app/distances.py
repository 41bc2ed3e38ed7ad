"""Each open position's distance to every exit trigger: what `status`, the page and the
metrics show.

Computed when read, never on the tick path, from what the position book holds already
(each position's watch: its exit state and armed plan; the watchlist's latest quotes).
Every threshold is the plan's armed rules' own (the book's numbers, stated once in
``rules/books.py``; the rules' modules under ``rules/exits/``): nothing here restates one.

Distances are in the unit traders use, and a distance <= 0 is a trigger reached (the
rule fires on those figures, as ``rules.exits`` compares them):

- profit target: price points the debit to close (at the book's mark) must still fall
  to the next unfinished tranche's target debit (credit x (1 - target));
- loss stop: points the debit may still rise to the loss debit (credit x multiple);
- delta stop: how far the nearest short leg's |delta| is from the stop;
- time stop: calendar days to the time stop's session date.

Which is nearest: the units differ, so each trigger also says ``left``, the share of
its way still to go, 1 at entry and 0 at the trigger:

- profit: (debit - target debit) / (credit - target debit);
- loss:   (loss debit - debit) / (loss debit - credit);
- delta:  (stop - |delta|) / stop;
- time:   days left / (initial DTE - time stop DTE) (at least 1 day).

While a trigger is reached the nearest is the first reached in the spec's evaluation
order (the one that acts); otherwise the least ``left``, ties to the earlier in that
order. A trigger whose figure is not known (no usable quotes) is no candidate.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from rules.clock import MarketTime, dte
from rules.evaluate import debit_to_close, natural_debit
from rules.exits import ExitReason
from rules.exits.delta_stop import leg_delta_local
from rules.greeks import Rates
from rules.model import Quote, Side, quote_problem, usable_delta
from rules.pnl import pct_of_max, realised_pnl
from rules.state import ExitState

POINTS, DELTA, DAYS = "points", "delta", "days"
# the screens' "near": a nearest trigger with less than this share of its way left is
# shown amber (the page) or yellow (the table); sent with the API's body for the page
NEAR = Decimal("0.25")


@dataclass(frozen=True, slots=True)
class LegView:
    right: str
    strike: Decimal
    side: str
    bid: Decimal | None
    ask: Decimal | None
    age: float | None  # seconds since its latest quote
    delta: Decimal | None  # the broker's where it sent a usable one, else the local one
    delta_source: str | None  # "broker", "local" or None (not known)


@dataclass(frozen=True, slots=True)
class TriggerView:
    reason: ExitReason
    label: str
    unit: str  # POINTS, DELTA or DAYS
    value: Decimal | None  # the figure now: debit, |delta|, DTE (None: not known)
    threshold: Decimal  # where it fires, in the same unit
    distance: Decimal | None  # to the threshold; <= 0: reached
    left: Decimal | None  # share of the way from entry still to go (see the module)

    @property
    def reached(self) -> bool:
        return self.distance is not None and self.distance <= 0


@dataclass(frozen=True, slots=True)
class OrderView:
    """The close working at the broker: the rules' figures and the desk's walk."""

    reason: str
    label: str
    contracts: int
    filled: int
    mark: Decimal  # the debit it was decided on
    limit: Decimal | None  # the limit now (None: not known to this process)
    step: int | None  # the repricing step reached
    age: float | None  # seconds since it was sent


@dataclass(frozen=True, slots=True)
class Working:
    """What the order desk says of a position's live order (see ``WorkingOrders.shown``)."""

    limit: Decimal
    step: int
    sent_at: datetime


@dataclass(frozen=True, slots=True)
class FillView:
    position: str
    at: datetime
    contracts: int
    price: Decimal
    realised: Decimal  # net of its commission


@dataclass(frozen=True, slots=True)
class PositionView:
    id: str
    book: str
    underlying: str
    strategy: str
    phase: str
    contracts: int  # original
    remaining: int
    stage: int  # profit tranches done
    tranches: int
    manual: bool
    entry_credit: Decimal
    max_profit: Decimal  # dollars, of the original contracts
    mark: str  # the book's: "mid" or "natural"
    legs: tuple[LegView, ...]
    quote_age: float | None  # seconds since the newest leg quote
    debit_mid: Decimal | None
    debit_natural: Decimal | None
    debit: Decimal | None  # at the book's mark: what the rules compare
    pnl: Decimal | None  # dollars, of the contracts remaining, at the mark
    pnl_pct: Decimal | None  # of max profit, at the mark (1: all of it)
    dte: int
    initial_dte: int
    time_stop_dte: int  # the effective one
    next_target: Decimal | None  # the next unfinished tranche's target (None: all done)
    triggers: tuple[TriggerView, ...]  # in the spec's evaluation order
    nearest: ExitReason | None
    order: OrderView | None
    realised: Decimal  # the position's realised P&L so far, net
    fills_today: tuple[FillView, ...]
    attention: tuple[str, ...]  # why a human is needed (empty: nothing)


def _usable(quotes: Sequence[Quote | None]) -> list[Quote] | None:
    out = [q for q in quotes if q is not None and quote_problem(q) is None]
    return out if len(out) == len(quotes) else None


def _delta(state: ExitState, i: int, q: Quote | None, at: MarketTime, rates: Rates) -> LegView:
    leg = state.position.legs[i]
    delta: float | None = None
    source = None
    if q is not None:
        delta = usable_delta(q.delta)
        source = "broker"
        if delta is None and quote_problem(q) is None:
            delta, source = leg_delta_local(leg, q, at.now, rates), "local"
    known = delta is not None
    return LegView(
        leg.right.value,
        leg.strike,
        leg.side.value,
        None if q is None else q.bid,
        None if q is None else q.ask,
        None if q is None else (at.now - q.ts).total_seconds(),
        Decimal(repr(delta)) if known else None,
        source if known else None,
    )


def _left(distance: Decimal | None, span: Decimal) -> Decimal | None:
    return None if distance is None else distance / span


def triggers(
    state: ExitState, debit: Decimal | None, legs: Sequence[LegView], at: MarketTime
) -> tuple[TriggerView, ...]:
    """Every trigger's figures, in the spec's evaluation order (the plan's)."""
    plan, credit = state.plan, state.position.entry_credit
    loss = plan.loss_debit
    stop = Decimal(repr(plan.delta_stop))
    shorts = [
        abs(leg.delta) for leg in legs if leg.side == Side.SHORT.value and leg.delta is not None
    ]
    worst = max(shorts) if len(shorts) == len(plan.short_legs) else None
    days = Decimal((plan.time_stop_date - at.session_date).days)
    span = Decimal(max(plan.initial_dte - plan.time_stop_dte, 1))
    by_reason: dict[ExitReason, TriggerView] = {
        ExitReason.LOSS_STOP: TriggerView(
            ExitReason.LOSS_STOP, plan.loss_label, POINTS, debit, loss,
            None if debit is None else loss - debit,
            _left(None if debit is None else loss - debit, loss - credit),
        ),
        ExitReason.DELTA_STOP: TriggerView(
            ExitReason.DELTA_STOP, plan.delta_label, DELTA, worst, stop,
            None if worst is None else stop - worst,
            _left(None if worst is None else stop - worst, stop),
        ),
        ExitReason.TIME_STOP: TriggerView(
            ExitReason.TIME_STOP, plan.time_label, DAYS,
            Decimal(dte(state.position.expiry, at.session_date)),
            Decimal(plan.time_stop_dte), days, days / span,
        ),
    }  # fmt: skip
    tranche = next_tranche(state)
    if tranche is not None:
        target = plan.target_debits[tranche]
        gap = None if debit is None else debit - target
        by_reason[ExitReason.PROFIT_TARGET] = TriggerView(
            ExitReason.PROFIT_TARGET, plan.labels[tranche], POINTS, debit, target, gap,
            _left(gap, credit - target),
        )  # fmt: skip
    return tuple(by_reason[rule.REASON] for rule in plan.exits if rule.REASON in by_reason)


def next_tranche(state: ExitState) -> int | None:
    """The index of the next unfinished profit tranche (None: every one is done)."""
    for i, boundary in enumerate(state.plan.cumulative):
        if boundary > state.profit_closed:
            return i
    return None


def nearest(views: Sequence[TriggerView]) -> ExitReason | None:
    """The first reached in order; else the least ``left``, ties to the earlier."""
    for view in views:
        if view.reached:
            return view.reason
    known = [(view.left, i) for i, view in enumerate(views) if view.left is not None]
    return views[min(known)[1]].reason if known else None


def ordered(views: Sequence[PositionView]) -> list[PositionView]:
    """Nearest trigger first: by the nearest trigger's share left (a reached one's is at
    most 0), then by id; a position with no trigger known last."""

    def key(view: PositionView) -> tuple[bool, Decimal, str]:
        near = next((t.left for t in view.triggers if t.reason is view.nearest), None)
        return (near is None, Decimal(0) if near is None else near, view.id)

    return sorted(views, key=key)


def position_view(
    state: ExitState,
    quotes: Sequence[Quote | None],
    at: MarketTime,
    rates: Rates,
    *,
    realised: Decimal = Decimal(0),
    attention: Sequence[str] = (),
    working: Working | None = None,
    fills: Sequence[FillView] = (),
) -> PositionView:
    """One position's figures now, from its exit state and its legs' latest ``quotes``."""
    position, plan = state.position, state.plan
    legs = tuple(_delta(state, i, q, at, rates) for i, q in enumerate(quotes))
    usable = _usable(quotes)
    mid = natural = debit = None
    if usable is not None:
        mid, natural = debit_to_close(plan, usable, mid=True), natural_debit(plan, usable)
        debit = natural if plan.natural else mid
    shown = triggers(state, debit, legs, at)
    tranche = next_tranche(state)
    ages = [leg.age for leg in legs if leg.age is not None]
    return PositionView(
        position.id, position.book, position.underlying, position.strategy.value,
        state.phase.value, position.contracts, state.remaining, state.stage,
        len(plan.cumulative), state.manual, position.entry_credit, position.max_profit,
        "natural" if plan.natural else "mid", legs, min(ages) if ages else None,
        mid, natural, debit,
        None if debit is None else realised_pnl(
            position.entry_credit, debit, position.multiplier, state.remaining
        ),
        None if debit is None else pct_of_max(position.entry_credit, debit),
        dte(position.expiry, at.session_date), plan.initial_dte, plan.time_stop_dte,
        None if tranche is None else plan.targets[tranche],
        shown, nearest(shown), _order(state, working, at), realised, tuple(fills),
        tuple(attention),
    )  # fmt: skip


def _order(state: ExitState, working: Working | None, at: MarketTime) -> OrderView | None:
    if state.working is None:
        return None
    close = state.working.close
    return OrderView(
        close.reason.value,
        close.label,
        close.contracts,
        state.working.filled,
        close.debit,
        None if working is None else working.limit,
        None if working is None else working.step,
        None if working is None else (at.now - working.sent_at).total_seconds(),
    )
