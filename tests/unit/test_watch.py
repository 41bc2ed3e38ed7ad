"""PositionWatch (rules/watch.py) decides exactly like evaluate, tick after tick.

A watch keeps running sums of the legs' prices and the newest/oldest quote
times, and its ``update`` has a quiet path that answers "no trigger" without
calling ``judge``. Every test here holds it to the snapshot
:func:`rules.machine.evaluate` on the same quotes at the same time:

- a hypothesis property over random positions, books and leg-update streams
  (invalid quotes, deltas at the stop, sessions opening and closing, older
  timestamps), with closes sent, filled in part or in full and ended;
- a seeded run of the same streams showing every exit reason, the data holds
  and the quiet path all occur, so the property is not vacuous;
- the quiet path's boundaries (profit target, loss stop, delta stop, time
  stop, previous session, staleness) each reach the full judge;
- the bookkeeping of usable legs and quote times.

Times are UTC and ``at`` is always ``market_time(now)``, as replay builds it.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_FLOOR, Decimal
from typing import Protocol, TypeVar

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from rules.books import INCOME_POP, PRIMARY, BookPolicy
from rules.bsm import black
from rules.clock import MarketTime, market_time
from rules.machine import (
    HOLD_NO_TRIGGER,
    HOLD_PREVIOUS_SESSION,
    HOLD_STALE,
    Close,
    CloseSent,
    Decision,
    ExitReason,
    ExitState,
    Filled,
    Hold,
    HoldReason,
    OrderEnded,
    Phase,
    apply,
    evaluate,
)
from rules.model import Position, Quote, Side, quote_problem, usable_delta
from rules.watch import PositionWatch, Screen, units
from tests.factories import (
    NY,
    call_spread,
    d,
    iron_condor,
    put_spread,
    quote,
    state_of,
    vertical_quotes,
)

T = TypeVar("T")

CENT = Decimal("0.01")
TICK = Decimal("0.0001")  # every generated price has this exponent: see the last tests
NATURAL = BookPolicy(mark="natural")
BOOKS: tuple[tuple[str, BookPolicy], ...] = (
    ("PRIMARY", PRIMARY),
    ("INCOME_POP", INCOME_POP),
    ("NATURAL", NATURAL),
)


# the random streams' properties: a stream is slow to draw and large
STREAMS = settings(
    max_examples=250,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def ny(day: date, hour: int, minute: int = 0, second: int = 0) -> datetime:
    """A New York wall-clock instant, in UTC (the rules' convention)."""
    return datetime.combine(day, time(hour, minute, second), tzinfo=NY).astimezone(UTC)


# Random streams ----------------------------------------------------------------


class Picker(Protocol):
    """Where a stream's choices come from: hypothesis draws or a seeded Random."""

    def pick(self, options: Sequence[T]) -> T: ...

    def number(self, low: int, high: int) -> int: ...


class DrawPicker:
    """Choices drawn by hypothesis; an index so that shrinking prefers the first option."""

    def __init__(self, data: st.DataObject) -> None:
        self._data = data

    def pick(self, options: Sequence[T]) -> T:
        return options[self.number(0, len(options) - 1)]

    def number(self, low: int, high: int) -> int:
        return self._data.draw(st.integers(min_value=low, max_value=high))


class SeededPicker:
    def __init__(self, seed: int) -> None:
        self._rng = random.Random(seed)

    def pick(self, options: Sequence[T]) -> T:
        return options[self._rng.randrange(len(options))]

    def number(self, low: int, high: int) -> int:
        return self._rng.randint(low, high)


_BELOW = math.nextafter(0.3, 0.0)
_ABOVE = math.nextafter(0.3, 1.0)
# Calm values first (shrinking goes there), then the stop's neighbourhood on both
# sides and both signs, then what IB sends for "no value".
DELTAS: tuple[float | None, ...] = (-0.10, 0.10, -0.05, 0.20, -0.25) * 5 + (
    0.3,
    -0.3,
    _BELOW,
    -_BELOW,
    _ABOVE,
    -_ABOVE,
    0.2999,
    -0.2999,
    0.3001,
    -0.3001,
    0.45,
    -0.45,
    1.0,
    -1.0,
    None,
    None,
    None,
    float("nan"),
    -2.0,
    math.inf,
)
UNDERLYINGS: tuple[float | None, ...] = (None, None, 380.0, 398.0, 425.0, 452.0, 470.0)
HALF_SPREADS = tuple(Decimal(s) for s in ("0.01", "0.02", "0.05", "0", "0.10"))
SPOILS = ("no-bid", "no-ask", "ib-minus-one", "nan-bid", "nan-ask", "crossed", "zero-ask", "huge")
VALIDITY = ("ok",) * 80 + SPOILS
STEPS = ("tick",) * 5 + ("seconds", "seconds", "stale", "minutes", "close", "open", "day")
STAMPS = ("now",) * 6 + ("lag", "edge", "older", "yesterday")
STALE_AFTER = PRIMARY.stale_after_delta  # 120 s in every book here
FEEDS: tuple[str | None, ...] = (None,) * 9 + ("market data farm down",)
FIRST_DAY = date(2025, 5, 19)  # PRIMARY's time stop is 2025-05-30, INCOME_POP's 2025-06-06


def pick_position(p: Picker) -> tuple[Position, BookPolicy]:
    kind = p.pick(("put", "call", "condor"))
    contracts = p.number(1, 12)
    name, book = p.pick(BOOKS)
    position: Position
    if kind == "condor":
        position = iron_condor(contracts, Decimal(p.number(100, 300)) * CENT)
    else:
        credit = Decimal(p.number(50, 250)) * CENT
        builder = put_spread if kind == "put" else call_spread
        position = builder(contracts, credit)
    return replace(position, book=name), book


def debit_targets(position: Position, book: BookPolicy, width: Decimal) -> list[Decimal]:
    """Mid debits worth aiming at: calm ones first, then every threshold and its neighbours."""
    c = position.entry_credit
    loss = c * book.loss_stop_multiple
    out = [c * Decimal("0.9"), c, c * Decimal("1.2"), c * Decimal("0.8")] * 4
    for edge in [c * (1 - t) for t in book.targets] + [loss]:
        out += [edge - CENT, edge, edge + CENT]
    out += [Decimal(0), width, width + CENT, -CENT]
    return [x.quantize(TICK) for x in out]


def advance(p: Picker, now: datetime) -> datetime:
    """Time moves on: by seconds, past the stale limit, across 16:00 or 09:30, or a day."""
    kind = p.pick(STEPS)
    if kind == "tick":
        return now + timedelta(seconds=p.number(0, 20))
    if kind == "seconds":
        return now + timedelta(seconds=p.number(21, 200))
    if kind == "stale":  # exactly the stale limit, or a second either side
        return now + STALE_AFTER + timedelta(seconds=p.number(-1, 1))
    if kind == "minutes":
        return now + timedelta(minutes=p.number(3, 90))
    if kind == "day":
        return now + timedelta(days=1, seconds=p.number(0, 60))
    local = now.astimezone(NY)
    wall = time(16, 0) if kind == "close" else time(9, 30)
    edge = datetime.combine(local.date(), wall, tzinfo=NY)
    if edge <= local:
        edge = datetime.combine(local.date() + timedelta(days=1), wall, tzinfo=NY)
    then = edge.astimezone(UTC) + timedelta(seconds=p.number(-3, 3))
    return then if then > now else now + timedelta(seconds=1)


def mid_of(q: Quote) -> Decimal:
    return (q.bid + q.ask) / 2  # type: ignore[operator]


MANUAL_ASKED = (False,) * 39 + (True,)  # now and then, a human asks for a close


class Stream:
    """One position watched through a random stream of leg updates, checked at every step."""

    def __init__(self, p: Picker) -> None:
        self.p = p
        self.position, book = pick_position(p)
        state = state_of(self.position, book)
        self.watch = PositionWatch(state)
        self.quotes: list[Quote | None] = [None] * len(self.position.legs)
        legs = self.position.legs
        self.partner = [
            next(j for j, o in enumerate(legs) if j != i and o.right is leg.right)
            for i, leg in enumerate(legs)
        ]
        self.targets = debit_targets(self.position, book, state.plan.width)
        # sometimes the day before the time stop or the day itself
        stop = state.plan.time_stop_date
        day = p.pick((None, None, None, stop - timedelta(days=1), stop))
        day = FIRST_DAY + timedelta(days=p.number(0, 18)) if day is None else day
        start = datetime.combine(day, time(0), tzinfo=NY)
        self.now = (start + timedelta(minutes=p.number(8 * 60, 17 * 60))).astimezone(UTC)
        self.seen: Counter[str] = Counter()
        self.quiet = 0
        self.last: tuple[int, Quote, MarketTime, str | None]  # the latest update, for settle

    def usable(self, i: int) -> Quote | None:
        q = self.quotes[i]
        return q if q is not None and quote_problem(q) is None else None

    def side_debit(self, i: int) -> Decimal | None:
        """The vertical of leg i: short mid - long mid, None when a leg is unusable."""
        a, b = self.usable(i), self.usable(self.partner[i])
        if a is None or b is None:
            return None
        short, long_ = (a, b) if self.position.legs[i].side is Side.SHORT else (b, a)
        return mid_of(short) - mid_of(long_)

    def pick_mid(self, i: int) -> Decimal:
        """Leg i's mid: mostly one that puts the spread's debit on a chosen target."""
        p = self.p
        if p.pick(("target",) * 5 + ("wild",)) == "wild":
            return Decimal(p.number(1, 700)) * CENT
        target = p.pick(self.targets)
        other = Decimal(0)
        if len(self.position.legs) == 4:  # the other vertical of the condor
            j = next(
                k
                for k, leg in enumerate(self.position.legs)
                if leg.right is not self.position.legs[i].right
            )
            known = self.side_debit(j)
            other = self.position.entry_credit / 2 if known is None else known
        want = target - other
        partner = self.usable(self.partner[i])
        short = self.position.legs[i].side is Side.SHORT
        if partner is None:
            base = Decimal("0.30") if short else Decimal("0.30") + want
        else:
            base = mid_of(partner)
        mid = base + want if short else base - want
        return max(mid, CENT).quantize(TICK)

    def pick_quote(self, i: int) -> Quote:
        p = self.p
        mid = self.pick_mid(i)
        half = p.pick(HALF_SPREADS)
        bid, ask = max(mid - half, Decimal(0)).quantize(TICK), (mid + half).quantize(TICK)
        stamp = p.pick(STAMPS)
        if stamp == "now":
            ts = self.now
        elif stamp == "lag":
            ts = self.now - timedelta(seconds=p.number(1, 150))
        elif stamp == "edge":  # on the stale limit, or a second either side
            ts = self.now - STALE_AFTER + timedelta(seconds=p.number(-1, 1))
        elif stamp == "older":  # older than this leg's previous quote
            before = self.quotes[i]
            ts = (self.now if before is None else before.ts) - timedelta(seconds=p.number(1, 900))
        else:
            ts = self.now - timedelta(days=1, seconds=p.number(0, 3600))
        q = Quote(bid, ask, ts, p.pick(DELTAS), p.pick(UNDERLYINGS))
        return spoil(q, p.pick(VALIDITY))

    def step(self, n: int) -> None:
        self.settle(self.update(n))

    def update(self, n: int) -> Decision:
        """Time moves, one leg gets a new quote: the watch's decision, checked."""
        p = self.p
        legs = len(self.quotes)
        self.now = advance(p, self.now)
        at = market_time(self.now)
        i = n if n < legs else p.number(0, legs - 1)  # every leg quoted first, then at random
        q = self.pick_quote(i)
        feed = p.pick(FEEDS)
        self.quotes[i] = q
        if not self.watch.state.manual and p.pick(MANUAL_ASKED):  # `positions close`
            self.watch.state = replace(self.watch.state, manual=True)
        before = self.watch.judged
        got = self.watch.update(i, q, at, feed_problem=feed)
        if self.watch.judged == before:  # (it took the quiet path)
            self.quiet += got == HOLD_NO_TRIGGER
        want = evaluate(self.watch.state, list(self.quotes), at, feed_problem=feed)
        assert got == want, self.why("update", i, q, at)
        self.seen[tally(got)] += 1
        self.last = (i, q, at, feed)
        return got

    def settle(self, decision: Decision) -> None:
        """Act on the decision; after any apply, the watch's judge() is evaluate's too."""
        state = react(self.p, self.watch.state, decision)
        if state is not self.watch.state:
            self.watch.state = state
            i, q, at, feed = self.last
            again = self.watch.judge(at, feed_problem=feed)
            assert again == evaluate(state, list(self.quotes), at, feed_problem=feed), self.why(
                "judge after apply", i, q, at
            )

    def why(self, what: str, i: int, q: Quote, at: MarketTime) -> str:
        return (
            f"{what} differs from evaluate: {self.position.strategy.value} "
            f"x{self.position.contracts} credit {self.position.entry_credit}, "
            f"state {self.watch.state.phase.value} remaining {self.watch.state.remaining} "
            f"profit_closed {self.watch.state.profit_closed}; leg {i} <- {q}; at {at}; "
            f"quotes {self.quotes}"
        )

    def closed(self) -> bool:
        return self.watch.state.phase is Phase.CLOSED

    def run(self, steps: int) -> Counter[str]:
        """``steps`` updates, or three more once the position is closed."""
        after = 0
        for n in range(steps):
            self.step(n)
            after += self.closed()
            if after > 3:
                break
        return self.seen


def spoil(q: Quote, kind: str) -> Quote:
    """The quote as sent, or one way of being unusable."""
    if kind == "ok":
        return q
    if kind == "no-bid":
        return q._replace(bid=None)
    if kind == "no-ask":
        return q._replace(ask=None)
    if kind == "ib-minus-one":
        return q._replace(bid=Decimal(-1), ask=Decimal(-1))
    if kind == "nan-bid":
        return q._replace(bid=Decimal("NaN"))
    if kind == "nan-ask":
        return q._replace(ask=Decimal("NaN"))
    if kind == "crossed":
        assert q.ask is not None
        return q._replace(bid=q.ask + Decimal("0.05"))
    if kind == "zero-ask":
        return q._replace(bid=Decimal(0), ask=Decimal(0))
    assert kind == "huge"
    return q._replace(ask=Decimal(1_000_000))


def react(p: Picker, state: ExitState, decision: Decision) -> ExitState:
    """What the service does with a decision: send, fill (in part or in full), end, cancel."""
    if isinstance(decision, Close):
        if decision.replaces:  # cancel the working profit close; a part may fill first
            if p.pick(("cancel", "part")) == "part":
                state = fill_part(p, state)
            return apply(state, OrderEnded()) if state.phase is Phase.CLOSING else state
        state = apply(state, CloseSent(decision))
    if state.phase is not Phase.CLOSING:
        return state
    action = p.pick(("wait", "fill", "part", "end"))
    if action == "fill":
        working = state.working
        assert working is not None
        return apply(state, Filled(working.close.contracts - working.filled))
    if action == "part":
        state = fill_part(p, state)
        if state.phase is Phase.CLOSING and p.pick((False, True)):
            state = apply(state, OrderEnded())
        return state
    if action == "end":
        return apply(state, OrderEnded())
    return state


def fill_part(p: Picker, state: ExitState) -> ExitState:
    working = state.working
    assert working is not None
    return apply(state, Filled(p.number(1, working.close.contracts - working.filled)))


def tally(decision: Decision) -> str:
    if isinstance(decision, Close):
        return f"close {decision.reason.value}" + (" replaces" if decision.replaces else "")
    return f"hold {decision.reason.value}" + (
        " previous session" if decision == HOLD_PREVIOUS_SESSION else ""
    )


@STREAMS
@given(data=st.data())
def test_update_decides_like_evaluate_on_random_streams(data: st.DataObject) -> None:
    """After every leg update (and every apply), the watch's decision == evaluate's."""
    p = DrawPicker(data)
    seen = Stream(p).run(p.number(4, 50))
    for what in seen:
        event(what)


def test_seeded_streams_reach_every_exit_reason_and_hold() -> None:
    """Guard on the property's generator: the same streams, seeded, close for each of
    the four reasons, replace a working profit close, hold for every data problem and
    go through the quiet path, all while staying equal to evaluate."""
    seen: Counter[str] = Counter()
    quiet = 0
    for seed in range(600):
        stream = Stream(SeededPicker(seed))
        seen += stream.run(60)
        quiet += stream.quiet
    for reason in ExitReason:
        assert seen[f"close {reason.value}"] > 0, (reason, seen)
    assert sum(n for what, n in seen.items() if what.endswith("replaces")) > 0, seen
    for wanted in (
        "hold stale",
        "hold stale previous session",
        "hold invalid_quote",
        "hold missing_quote",
        "hold inconsistent_quotes",
        "hold order_working",
        "hold feed",
        "hold no_trigger",
    ):
        assert seen[wanted] > 0, (wanted, seen)
    assert quiet > 0, seen


# The quiet path and its boundaries ---------------------------------------------

# Tuesday 2025-05-20, 11:00 New York: regular hours, 31 DTE; PRIMARY's time stop is
# 2025-05-30 (21 DTE of a 45-DTE entry). Credit 1.00: targets at debits 0.50 / 0.25 /
# 0.10, loss stop at 1.50.
DAY = date(2025, 5, 20)
NOW = ny(DAY, 11)
CALM = "0.80"


def watched(
    debit: str = CALM,
    *,
    at: MarketTime | None = None,
    short_delta: float | None = -0.10,
    long_ts: datetime | None = None,
    position: Position | None = None,
    book: BookPolicy | None = None,
) -> tuple[PositionWatch, Decision]:
    """A watch fed the long leg, then the short leg: the decision of that second update."""
    at = market_time(NOW) if at is None else at
    short, long_ = vertical_quotes(debit, at.now, short_delta=short_delta)
    if long_ts is not None:
        long_ = long_._replace(ts=long_ts)
    watch = PositionWatch(state_of(put_spread() if position is None else position, book))
    watch.update(1, long_, at)
    return watch, watch.update(0, short, at)


def same_as_evaluate(watch: PositionWatch, decision: Decision, at: MarketTime) -> Decision:
    want = evaluate(watch.state, list(watch.quotes), at)
    assert decision == want
    return decision


def test_a_calm_vertical_takes_the_quiet_path() -> None:
    """Mid book, small deltas, debit between the first target and the loss stop,
    regular hours, fresh quotes: no trigger, and judge is not even called."""
    at = market_time(NOW)
    short, long_ = vertical_quotes(CALM, NOW)
    watch = PositionWatch(state_of(put_spread()))
    watch.update(1, long_, at)
    before = watch.judged
    decision = watch.update(0, short, at)
    assert watch.judged == before
    assert decision == HOLD_NO_TRIGGER == evaluate(watch.state, [short, long_], at)


def test_a_calm_condor_takes_the_quiet_path() -> None:
    """The quiet path covers four legs too: condor credit 2.00, debit 1.60, deltas small."""
    at = market_time(NOW)
    quotes = [
        quote("0.20", NOW, -0.05),
        quote("1.00", NOW, -0.12),
        quote("1.00", NOW, 0.12),
        quote("0.20", NOW, 0.05),
    ]
    watch = PositionWatch(state_of(iron_condor()))
    for i in range(3):
        watch.update(i, quotes[i], at)
    before = watch.judged
    decision = watch.update(3, quotes[3], at)
    assert watch.judged == before
    assert decision == HOLD_NO_TRIGGER == evaluate(watch.state, quotes, at)


def close_reason(decision: Decision) -> ExitReason:
    assert isinstance(decision, Close), decision
    return decision.reason


def test_debit_exactly_at_the_first_target_closes_the_first_tranche() -> None:
    """Debit 0.50 == credit x (1 - 0.50): the quiet band's low edge goes to judge."""
    watch, decision = watched("0.50")
    same_as_evaluate(watch, decision, market_time(NOW))
    assert isinstance(decision, Close)
    assert (decision.reason, decision.contracts) == (ExitReason.PROFIT_TARGET, 4)


def test_debit_exactly_at_another_books_first_target_closes() -> None:
    """INCOME_POP's first target is 35%: debit 0.65 on a 1.00 credit closes."""
    watch, decision = watched("0.65", book=INCOME_POP)
    same_as_evaluate(watch, decision, market_time(NOW))
    assert close_reason(decision) is ExitReason.PROFIT_TARGET


def test_debit_exactly_at_the_loss_stop_closes_everything() -> None:
    """Debit 1.50 == 1.5 x credit: the quiet band's high edge goes to judge."""
    watch, decision = watched("1.50")
    same_as_evaluate(watch, decision, market_time(NOW))
    assert isinstance(decision, Close)
    assert (decision.reason, decision.contracts) == (ExitReason.LOSS_STOP, 10)


def test_debit_above_the_width_is_inconsistent_not_quiet() -> None:
    """Credit 4.00 on a 5-wide spread puts the loss stop (6.00) past the width: a mid debit
    of 5.01 is no consistent market, and the band's high edge is the width."""
    position = put_spread(credit="4.00")
    watch, decision = watched("5.01", position=position)
    same_as_evaluate(watch, decision, market_time(NOW))
    assert isinstance(decision, Hold)
    assert decision.reason is HoldReason.INCONSISTENT_QUOTES


@pytest.mark.parametrize("delta", [-0.30, 0.30, -0.31])
def test_short_delta_at_the_stop_closes_everything(delta: float) -> None:
    """|delta| == 0.30 (either sign) is the delta stop, not quiet."""
    watch, decision = watched(short_delta=delta)
    same_as_evaluate(watch, decision, market_time(NOW))
    assert close_reason(decision) is ExitReason.DELTA_STOP


def test_short_delta_just_inside_the_stop_is_quiet() -> None:
    """The float just below 0.30 is no trigger."""
    watch, decision = watched(short_delta=-math.nextafter(0.3, 0.0))
    assert same_as_evaluate(watch, decision, market_time(NOW)) == HOLD_NO_TRIGGER


@pytest.mark.parametrize("delta", [None, float("nan"), -2.0])
def test_a_missing_broker_delta_is_computed_not_assumed_calm(delta: float | None) -> None:
    """No usable broker delta: judge computes one from the mid and the underlying. A short
    400 put quoted 4.00 with the underlying at 398 is well past 0.30."""
    at = market_time(NOW)
    short = Quote(Decimal("3.99"), Decimal("4.01"), NOW, delta, 398.0)
    long_ = Quote(Decimal("3.19"), Decimal("3.21"), NOW, -0.25, 398.0)  # debit 0.80
    watch = PositionWatch(state_of(put_spread()))
    watch.update(1, long_, at)
    decision = watch.update(0, short, at)
    same_as_evaluate(watch, decision, at)
    assert close_reason(decision) is ExitReason.DELTA_STOP


def test_the_time_stop_date_closes_everything() -> None:
    """2025-05-30 is 21 DTE: calm prices and deltas, and still the time stop."""
    at = market_time(ny(date(2025, 5, 30), 11))
    watch, decision = watched(at=at)
    same_as_evaluate(watch, decision, at)
    assert close_reason(decision) is ExitReason.TIME_STOP


def test_the_day_before_the_time_stop_is_quiet() -> None:
    """2025-05-29 is 22 DTE: no trigger."""
    at = market_time(ny(date(2025, 5, 29), 15, 59, 59))
    watch, decision = watched(at=at)
    assert same_as_evaluate(watch, decision, at) == HOLD_NO_TRIGGER


def test_the_other_legs_quote_from_before_the_open_holds() -> None:
    """The long leg last quoted yesterday (one second before today's 09:30 open): the
    short leg's fresh quote does not make the position judgeable."""
    watch, decision = watched(long_ts=ny(DAY, 9, 29, 59))
    same_as_evaluate(watch, decision, market_time(NOW))
    assert decision == HOLD_PREVIOUS_SESSION


def test_the_other_legs_quote_from_the_open_itself_is_current() -> None:
    """A quote stamped exactly 09:30:00 is today's: quiet."""
    watch, decision = watched(long_ts=ny(DAY, 9, 30))
    assert same_as_evaluate(watch, decision, market_time(NOW)) == HOLD_NO_TRIGGER


def test_no_update_for_exactly_stale_after_holds_as_stale() -> None:
    """Both legs quoted 120 s before now during regular hours: stale, not quiet."""
    at = market_time(NOW)
    then = NOW - timedelta(seconds=120)
    short, long_ = vertical_quotes(CALM, then)
    watch = PositionWatch(state_of(put_spread()))
    watch.update(1, long_, at)
    decision = watch.update(0, short, at)
    same_as_evaluate(watch, decision, at)
    assert decision == HOLD_STALE


def test_an_old_quote_after_hours_is_not_stale() -> None:
    """At 17:00 the staleness and session checks do not apply: an hour-old pair is quiet."""
    at = market_time(ny(DAY, 17))
    short, long_ = vertical_quotes(CALM, ny(DAY, 16))
    watch = PositionWatch(state_of(put_spread()))
    watch.update(1, long_._replace(ts=ny(DAY - timedelta(days=1), 12)), at)
    decision = watch.update(0, short, at)
    assert same_as_evaluate(watch, decision, at) == HOLD_NO_TRIGGER


def test_after_the_first_tranche_the_second_target_closes_the_second() -> None:
    """First tranche (4 of 10) filled at 0.50: 0.26 is no trigger, 0.25 (75%) closes the
    second tranche of 4, as evaluate says."""
    at = market_time(NOW)
    watch, decision = watched("0.50")
    assert isinstance(decision, Close)
    watch.state = apply(apply(watch.state, CloseSent(decision)), Filled(4))
    short, _ = vertical_quotes("0.26", NOW)
    assert same_as_evaluate(watch, watch.update(0, short, at), at) == HOLD_NO_TRIGGER
    short, _ = vertical_quotes("0.25", NOW)
    decision = same_as_evaluate(watch, watch.update(0, short, at), at)
    assert isinstance(decision, Close)
    assert (decision.reason, decision.tranche, decision.contracts) == (
        ExitReason.PROFIT_TARGET,
        1,
        4,
    )


def test_a_partly_filled_tranche_is_worked_again_at_its_target() -> None:
    """2 of the first tranche's 4 filled, then the order ended: at 0.50 the other 2 close
    (the first target is still the quiet band's edge)."""
    at = market_time(NOW)
    watch, decision = watched("0.50")
    assert isinstance(decision, Close)
    state = apply(apply(watch.state, CloseSent(decision)), Filled(2))
    watch.state = apply(state, OrderEnded())
    short, _ = vertical_quotes("0.51", NOW)
    assert same_as_evaluate(watch, watch.update(0, short, at), at) == HOLD_NO_TRIGGER
    short, _ = vertical_quotes("0.50", NOW)
    decision = same_as_evaluate(watch, watch.update(0, short, at), at)
    assert isinstance(decision, Close)
    assert (decision.reason, decision.tranche, decision.contracts) == (
        ExitReason.PROFIT_TARGET,
        0,
        2,
    )


def test_a_feed_problem_is_not_quiet() -> None:
    """Calm quotes while the market data farm is down: evaluate's FEED hold."""
    at = market_time(NOW)
    watch, _ = watched(CALM)
    short, _ = vertical_quotes(CALM, NOW)
    decision = watch.update(0, short, at, feed_problem="market data farm down")
    assert decision == evaluate(
        watch.state, list(watch.quotes), at, feed_problem="market data farm down"
    )
    assert decision == Hold(HoldReason.FEED, "market data farm down")


def test_a_closed_position_is_not_quiet() -> None:
    """Once the last contract has filled, calm quotes give HOLD_CLOSED, not "no trigger"."""
    at = market_time(NOW)
    watch, decision = watched("1.50")
    assert isinstance(decision, Close)
    watch.state = apply(apply(watch.state, CloseSent(decision)), Filled(decision.contracts))
    assert watch.state.phase is Phase.CLOSED
    short, _ = vertical_quotes(CALM, NOW)
    decision = watch.update(0, short, at)
    assert same_as_evaluate(watch, decision, at) == Hold(HoldReason.CLOSED)


def test_a_natural_book_never_takes_the_quiet_path() -> None:
    """The quiet band is in mid units: a natural-mark book always goes to judge."""
    at = market_time(NOW)
    short, long_ = vertical_quotes(CALM, NOW)
    watch = PositionWatch(state_of(put_spread(), NATURAL))
    watch.update(1, long_, at)
    before = watch.judged
    decision = watch.update(0, short, at)
    assert watch.judged == before + 1
    assert same_as_evaluate(watch, decision, at) == HOLD_NO_TRIGGER


def test_a_working_close_is_not_quiet() -> None:
    """CLOSING: the profit target still reached holds for the working order, and a loss
    stop replaces it, as evaluate says."""
    at = market_time(NOW)
    watch, decision = watched("0.50")
    assert isinstance(decision, Close)
    watch.state = apply(watch.state, CloseSent(decision))
    short, _ = vertical_quotes("0.50", NOW)
    decision = watch.update(0, short, at)
    assert same_as_evaluate(watch, decision, at) == Hold(HoldReason.ORDER_WORKING)
    short, _ = vertical_quotes("1.50", NOW)
    decision = watch.update(0, short, at)
    same_as_evaluate(watch, decision, at)
    assert isinstance(decision, Close)
    assert (decision.reason, decision.replaces) == (ExitReason.LOSS_STOP, True)


# Bookkeeping ---------------------------------------------------------------------


@pytest.mark.parametrize("kind", SPOILS)
def test_a_leg_gone_invalid_and_back_decides_like_evaluate(kind: str) -> None:
    """valid -> invalid -> valid: the invalid quote holds, and its successor's price is
    counted exactly once (the sums hold no trace of the invalid quote)."""
    at = market_time(NOW)
    watch, _ = watched(CALM)
    short, _ = vertical_quotes("0.50", NOW)
    bad = watch.update(0, spoil(short, kind), at)
    assert isinstance(same_as_evaluate(watch, bad, at), Hold)
    assert bad.reason is HoldReason.INVALID_QUOTE
    back = watch.update(0, short, at)
    same_as_evaluate(watch, back, at)
    assert isinstance(back, Close)
    assert (back.reason, back.debit) == (ExitReason.PROFIT_TARGET, Decimal("0.50"))


def test_both_legs_invalid_then_both_valid_again() -> None:
    """Two unusable legs, then each restored in turn: each step is evaluate's verdict."""
    at = market_time(NOW)
    watch, _ = watched(CALM)
    short, long_ = vertical_quotes("1.50", NOW)
    steps: list[tuple[int, Quote]] = [
        (0, spoil(short, "nan-bid")),
        (1, spoil(long_, "no-ask")),
        (0, short),
        (1, long_),
    ]
    for i, q in steps:
        same_as_evaluate(watch, watch.update(i, q, at), at)
    assert close_reason(watch.judge(at)) is ExitReason.LOSS_STOP


def test_an_older_replacement_of_the_newest_quote_makes_the_data_stale() -> None:
    """Legs at now-10 s; leg 0 replaced by a quote 200 s old (leg 1 is still newest: not
    stale), then leg 1 by one 130 s old: the newest time went down, and it is stale."""
    at = market_time(NOW)
    short, long_ = vertical_quotes(CALM, NOW - timedelta(seconds=10))
    watch = PositionWatch(state_of(put_spread()))
    watch.update(0, short, at)
    watch.update(1, long_, at)
    first = watch.update(0, short._replace(ts=NOW - timedelta(seconds=200)), at)
    assert same_as_evaluate(watch, first, at) == HOLD_NO_TRIGGER
    second = watch.update(1, long_._replace(ts=NOW - timedelta(seconds=130)), at)
    assert same_as_evaluate(watch, second, at) == HOLD_STALE


def test_an_older_replacement_of_the_oldest_quote_is_seen() -> None:
    """Leg 0 (the older of two fresh quotes) replaced by one from before the open."""
    at = market_time(NOW)
    short, long_ = vertical_quotes(CALM, NOW - timedelta(seconds=30))
    watch = PositionWatch(state_of(put_spread()))
    watch.update(0, short, at)
    watch.update(1, long_._replace(ts=NOW - timedelta(seconds=5)), at)
    decision = watch.update(0, short._replace(ts=ny(DAY, 9, 0)), at)
    assert same_as_evaluate(watch, decision, at) == HOLD_PREVIOUS_SESSION


def test_replacing_the_oldest_quote_with_a_fresh_one_clears_the_previous_session() -> None:
    """Yesterday's long-leg quote is the oldest; when it is replaced by a fresh one the
    oldest time rises and the position is judged again."""
    at = market_time(NOW)
    watch, decision = watched("0.50", long_ts=ny(DAY - timedelta(days=1), 15, 59))
    assert same_as_evaluate(watch, decision, at) == HOLD_PREVIOUS_SESSION
    _, long_ = vertical_quotes("0.50", NOW)
    decision = watch.update(1, long_, at)
    assert close_reason(same_as_evaluate(watch, decision, at)) is ExitReason.PROFIT_TARGET


def test_a_newer_quote_on_a_leg_that_is_not_the_oldest_keeps_the_oldest() -> None:
    """Leg 1 is yesterday's; leg 0 updated twice in time order: still previous session."""
    watch, _ = watched(long_ts=ny(DAY - timedelta(days=1), 15, 0))
    short, _ = vertical_quotes(CALM, NOW + timedelta(seconds=30))
    at = market_time(NOW + timedelta(seconds=30))
    decision = watch.update(0, short, at)
    assert same_as_evaluate(watch, decision, at) == HOLD_PREVIOUS_SESSION


def test_the_stale_and_previous_session_verdicts_follow_out_of_order_quotes() -> None:
    """A scripted stream of in-order and out-of-order stamps on a condor: at each update
    the watch's verdict is evaluate's."""
    position = iron_condor()
    watch = PositionWatch(state_of(position))
    mids = ("0.20", "1.00", "1.00", "0.20")
    deltas = (-0.05, -0.12, 0.12, 0.05)
    script: list[tuple[int, int, int]] = [  # (leg, seconds after 09:30, quote age in s)
        (0, 60, 0),
        (1, 61, 0),
        (2, 62, 0),
        (3, 63, 0),
        (1, 70, 120),  # older than the open: previous session
        (1, 80, 0),  # back
        (2, 300, 200),  # nothing newer than 120 s? leg 1 is 220 s old: stale
        (3, 301, 0),
        (0, 302, 3600),
        (0, 303, 1),
    ]
    verdicts = []
    for leg, offset, age in script:
        now = ny(DAY, 9, 30) + timedelta(seconds=offset)
        at = market_time(now)
        q = quote(mids[leg], now - timedelta(seconds=age), deltas[leg])
        verdicts.append(same_as_evaluate(watch, watch.update(leg, q, at), at))
    assert HOLD_PREVIOUS_SESSION in verdicts
    assert HOLD_STALE in verdicts
    assert verdicts[-1] == HOLD_NO_TRIGGER


# Decimal text --------------------------------------------------------------------


def test_a_price_with_more_decimals_leaves_no_trace_in_an_inconsistent_hold() -> None:
    """Hold details quote the mid debit: after a 1.005/1.015 quote was replaced, the
    watch's detail must still read like evaluate's (the Decisions compare equal)."""
    at = market_time(NOW)
    watch = PositionWatch(state_of(put_spread()))
    watch.update(0, Quote(Decimal("1.005"), Decimal("1.015"), NOW, -0.10), at)
    watch.update(1, Quote(Decimal("0.49"), Decimal("0.51"), NOW, -0.05), at)
    decision = watch.update(0, Quote(Decimal("0.19"), Decimal("0.21"), NOW, -0.10), at)
    same_as_evaluate(watch, decision, at)


def test_a_price_with_more_decimals_leaves_no_trace_in_a_closes_debit() -> None:
    """Replay writes ``str(close.debit)``: the watch's Close must carry evaluate's text
    ("0.500"), whatever prices earlier quotes were written with."""
    at = market_time(NOW)
    watch = PositionWatch(state_of(put_spread()))
    watch.update(0, Quote(Decimal("1.005"), Decimal("1.015"), NOW, -0.10), at)
    watch.update(1, Quote(Decimal("0.19"), Decimal("0.21"), NOW, -0.05), at)
    decision = watch.update(0, Quote(Decimal("0.69"), Decimal("0.71"), NOW, -0.10), at)
    want = evaluate(watch.state, list(watch.quotes), at)
    assert isinstance(decision, Close)
    assert isinstance(want, Close)
    assert str(decision.debit) == str(want.debit)


# The screen: what a feed may skip ------------------------------------------------


def admit(
    screen: Screen,
    i: int,
    bid: Decimal | None,
    ask: Decimal | None,
    delta: float | None,
    spot: float | None = None,
) -> bool:
    """Screen.admits on Decimal prices, converted to its units as replay's memo does."""
    return screen.admits(i, units(bid), units(ask), delta, spot)


EDGE_STEPS = (-TICK, Decimal(0), TICK, -CENT, CENT, Decimal("-0.00001"), Decimal("0.00001"))
# a local band's edges: the spot a hair either side of its edge, the mid of its cap
SPOT_STEPS = (-1e-9, 0.0, 1e-9, 1e-4, -1e-4, 0.01, 0.05, 0.1)
CAP_STEPS = tuple(
    Decimal(x) for x in ("-0.0001", "0", "0.0001", "-0.01", "-0.05", "-0.2", "0.2", "1")
)


def local_quote(p: Picker, screen: Screen | None, i: int, now: datetime) -> Quote | None:
    """A quote of leg i with no broker delta on or about its local band's edges: the spot
    at the band's edge (or a hair inside or out), the mid at the cap there (or about) or
    where it was (the debit unchanged)."""
    band = None if screen is None else screen.bands[i]
    if screen is None or band is None:
        return None
    sign = -1.0 if band.call else 1.0  # inside: below a call's edge, above a put's
    spot = band.edge * (1.0 + sign * p.pick(SPOT_STEPS))
    if p.pick(("cap", "kept")) == "cap":
        cap = band.disc * black(band.call, spot * band.grow, band.strike, band.v_low)
        total = 2 * (Decimal(cap).quantize(TICK) + p.pick(CAP_STEPS))
    else:
        total = Decimal(screen.sums[i]).scaleb(-4)
    bid = max(total / 2 - p.pick(HALF_SPREADS), Decimal(0)).quantize(TICK, ROUND_FLOOR)
    return Quote(bid, total - bid, now, p.pick((None, None, float("nan"), -2.0)), spot)


class ScreenedStream(Stream):
    """The same random streams, screened as replay screens them: while the screen admits
    each new quote (before its deadline) the watch is not consulted, and evaluate must
    not close; a quote it does not admit is evaluated, and the screen built anew."""

    def __init__(self, p: Picker) -> None:
        super().__init__(p)
        self.screen: Screen | None = None
        self.admitted = False

    def pick_quote(self, i: int) -> Quote:
        """Often a quote that puts 2 x the mid debit on or about an edge of the band."""
        screen, p = self.screen, self.p
        how = p.pick(("stream", "edge", "edge", "inside", "local"))
        if how == "stream":
            return super().pick_quote(i)
        if how == "local":  # on or about the edges of leg i's local band, if it has one
            return local_quote(p, screen, i, self.now) or super().pick_quote(i)
        half = p.pick(HALF_SPREADS)
        delta = p.pick((*DELTAS[:25], None, _BELOW, -_BELOW, 0.3, -0.3))
        if screen is None:  # a calm, valid, current quote, so that screens arise
            mid = self.pick_mid(i)
            return Quote(max(mid - half, Decimal(0)), mid + half, self.now, delta, None)
        sign = 1 if screen.short[i] else -1
        if how == "edge":  # leg i's bid + ask that puts 2 x mid exactly on an edge
            edge = p.pick((screen.low2, screen.high2))
            total = Decimal(screen.sums[i] + sign * (edge - screen.mid2)).scaleb(-4)
            total += p.pick(EDGE_STEPS)
        else:  # anywhere inside, in tenths of the band
            goal = screen.low2 + (screen.high2 - screen.low2) * p.number(1, 9) // 10
            total = Decimal(screen.sums[i] + sign * (goal - screen.mid2)).scaleb(-4)
        bid = (total / 2 - half).quantize(TICK, ROUND_FLOOR)  # bid + ask == total, exactly
        return Quote(bid, total - bid, self.now, delta, p.pick(UNDERLYINGS))

    def update(self, n: int) -> Decision:
        screen = self.screen
        got = super().update(n)  # still checked against evaluate, as every update
        i, q, at, _feed = self.last
        self.admitted = (
            screen is not None
            and at.now < screen.deadline
            and admit(screen, i, q.bid, q.ask, q.delta, q.underlying_price)
        )
        if self.admitted:
            assert not isinstance(got, Close), self.why("admitted by the screen", i, q, at)
            self.seen["admitted"] += 1
            if screen is not None and screen.bands[i] is not None and usable_delta(q.delta) is None:
                self.seen["admitted by a local band"] += 1
        return got

    def settle(self, decision: Decision) -> None:
        before = self.watch.state
        super().settle(decision)
        if not self.admitted or self.watch.state is not before:
            # replay builds the screen anew after each update it does not admit
            self.screen = self.watch.screen(self.last[2])
            self.seen["screen" if self.screen is not None else "no screen"] += 1
            if self.screen is not None and any(self.screen.bands):
                self.seen["local band"] += 1


@STREAMS
@given(data=st.data())
def test_no_quote_the_screen_admits_can_close(data: st.DataObject) -> None:
    """Quotes admitted one by one never lead evaluate to a close, whatever else happens
    to times, validity and deltas."""
    p = DrawPicker(data)
    for what in ScreenedStream(p).run(p.number(4, 50)):
        event(what)


def test_seeded_screened_streams_admit_often_and_close_between() -> None:
    """Guard on that property: screens arise and admit quotes, and the same streams still
    close for every reason (on the updates the screen did not admit)."""
    seen = seeded_closing_every_way(ScreenedStream, 600)
    assert seen["admitted"] > 300, seen
    assert seen["screen"] > 300, seen


def seeded_closing_every_way(kind: type[ScreenedStream], seeds: int) -> Counter[str]:
    """What ``seeds`` seeded streams of ``kind`` saw, once checked that they close for
    every reason."""
    seen: Counter[str] = Counter()
    for seed in range(seeds):
        seen += kind(SeededPicker(seed)).run(60)
    for reason in ExitReason:
        assert seen[f"close {reason.value}"] > 0, (reason, seen)
    return seen


# Local Greeks: short legs mostly without a broker delta, the underlying mostly where the
# short strikes (400 put, 450 call) are out of the money, sometimes near or past them
LOCAL_DELTAS: tuple[float | None, ...] = (None,) * 8 + (float("nan"), -2.0, -0.10, 0.10)
LOCAL_SPOTS: tuple[float | None, ...] = (
    *(405.0, 410.0, 415.0, 420.0, 425.0, 430.0, 435.0, 440.0) * 3,
    *(None, 380.0, 398.0, 401.0, 447.0, 452.0, 470.0),
)


class LocalScreenedStream(ScreenedStream):
    """The screened streams with local Greeks: empty delta columns and underlying prices,
    and quotes of legs with a local band, on its edges (local_quote), more often."""

    def pick_quote(self, i: int) -> Quote:
        p = self.p
        if p.pick(("band", "other")) == "band":
            q = local_quote(p, self.screen, i, self.now)
            if q is not None:
                return q
        q = super().pick_quote(i)
        return q._replace(delta=p.pick(LOCAL_DELTAS), underlying_price=p.pick(LOCAL_SPOTS))

    def update(self, n: int) -> Decision:
        """Once every leg has quoted, half the updates go to a leg with a local band."""
        screen = self.screen
        if n >= len(self.quotes) and screen is not None and self.p.pick((True, False)):
            banded = [j for j, band in enumerate(screen.bands) if band is not None]
            if banded:
                n = self.p.pick(banded)
        return super().update(n)


@settings(STREAMS, max_examples=500)
@given(seed=st.integers(min_value=0, max_value=2**32))
def test_no_quote_a_local_band_admits_can_close(seed: int) -> None:
    """With local Greeks too, quotes admitted one by one (by the mid band and each short
    leg's local band, before the screen's deadline) never lead evaluate to a close. (A
    seeded stream of 60 updates: drawn choice by choice, few streams reach a local band.)"""
    for what in LocalScreenedStream(SeededPicker(seed)).run(60):
        event(what)


def test_seeded_local_streams_are_screened_by_local_bands_and_close_between() -> None:
    """Guard on that property: local bands arise and admit quotes, on their edges too, and
    the same streams still close for every reason, the delta stop included."""
    seen = seeded_closing_every_way(LocalScreenedStream, 1500)
    assert seen["local band"] > 500, seen
    assert seen["admitted by a local band"] > 80, seen


def calm_screen() -> tuple[PositionWatch, Screen]:
    """Credit 1.00 at mid debit 0.80 (short mid 1.00, long 0.20), PRIMARY."""
    watch, decision = watched()
    assert decision == HOLD_NO_TRIGGER
    screen = watch.screen(market_time(NOW))
    assert screen is not None
    return watch, screen


def test_the_screen_of_a_calm_vertical() -> None:
    """2 x mid = 2.00 - 0.40 = 1.60, inside (2 x 0.50, 2 x 1.50) = (1.00, 3.00); the
    deadline is 00:00 New York on the time stop date, in UTC."""
    _, screen = calm_screen()
    assert (screen.low2, screen.mid2, screen.high2) == (10_000, 16_000, 30_000)  # units
    assert screen.sums == [20_000, 4_000]
    assert screen.short == (True, False)
    assert screen.delta_stop == float(PRIMARY.delta_stop)
    assert screen.deadline == ny(date(2025, 5, 30), 0)
    assert screen.deadline.tzinfo is UTC


def test_a_quote_on_the_target_is_not_admitted_a_hair_above_is() -> None:
    """Short leg bid + ask 1.40 puts 2 x mid on 1.00, the first target: not admitted (and
    evaluate closes); 1.4002 is admitted, and kept."""
    watch, screen = calm_screen()
    at = market_time(NOW + timedelta(seconds=5))
    on_target = Quote(d("0.69"), d("0.71"), at.now, -0.10, None)
    assert not admit(screen, 0, on_target.bid, on_target.ask, on_target.delta)
    assert screen.mid2 == 16_000  # refused: nothing kept
    assert close_reason(watch.update(0, on_target, at)) is ExitReason.PROFIT_TARGET
    _, screen = calm_screen()
    assert admit(screen, 0, d("0.6901"), d("0.7101"), -0.10)
    assert (screen.mid2, screen.sums[0]) == (10_002, 14_002)


def test_a_quote_on_the_loss_stop_is_not_admitted() -> None:
    """Long leg bid + ask -1.00 would put 2 x mid on 3.00: a long leg moving down toward
    the loss edge; 0.40 - 1.40 = -1.00 is no real quote, so use the short leg: 3.40."""
    _, screen = calm_screen()
    assert not admit(screen, 0, d("1.69"), d("1.71"), -0.10)
    assert admit(screen, 0, d("1.6899"), d("1.71"), -0.10)


def test_both_legs_moving_together_keep_the_debit_and_are_admitted() -> None:
    """The screen follows the spread, not each leg: both legs 0.50 dearer leave the debit
    at 0.80, however far each leg has moved."""
    watch, screen = calm_screen()
    at = market_time(NOW + timedelta(seconds=5))
    short = Quote(d("1.49"), d("1.51"), at.now, -0.20, None)
    long_ = Quote(d("0.69"), d("0.71"), at.now, -0.12, None)
    assert admit(screen, 0, short.bid, short.ask, short.delta)
    assert admit(screen, 1, long_.bid, long_.ask, long_.delta)
    assert screen.mid2 == 16_000
    watch.update(0, short, at)
    assert watch.update(1, long_, at) == HOLD_NO_TRIGGER


@pytest.mark.parametrize(
    ("bid", "ask", "delta", "why"),
    [
        ("0.99", "1.01", 0.3, "short delta at the stop"),
        ("0.99", "1.01", -0.3, "short delta at the stop, put side"),
        ("0.99", "1.01", None, "short delta missing (a local delta moves with time alone)"),
        ("0.99", "1.01", float("nan"), "short delta NaN"),
        (None, "1.01", -0.10, "no bid"),
        ("NaN", "1.01", -0.10, "NaN bid"),
    ],
)
def test_the_screen_refuses(bid: str | None, ask: str, delta: float | None, why: str) -> None:
    _, screen = calm_screen()
    assert not admit(screen, 0, None if bid is None else d(bid), d(ask), delta), why
    assert (screen.mid2, screen.sums) == (16_000, [20_000, 4_000])


def test_a_long_legs_delta_is_not_checked() -> None:
    _, screen = calm_screen()
    assert admit(screen, 1, d("0.19"), d("0.21"), None)
    assert admit(screen, 1, d("0.19"), d("0.21"), 0.9)


def test_an_admitted_crossed_quote_holds() -> None:
    """A crossed quote whose mid keeps the debit in the band is admitted: evaluate would
    hold on it anyway (invalid quote), and that is all the screen promises."""
    watch, screen = calm_screen()
    at = market_time(NOW + timedelta(seconds=5))
    crossed = Quote(d("1.05"), d("0.95"), at.now, -0.10, None)
    assert admit(screen, 0, crossed.bid, crossed.ask, crossed.delta)
    decision = watch.update(0, crossed, at)
    assert isinstance(decision, Hold)
    assert decision.reason is HoldReason.INVALID_QUOTE


@pytest.mark.parametrize(
    ("debit", "short_delta", "at", "book"),
    [
        ("0.50", -0.10, None, None),  # on the first target
        ("1.50", -0.10, None, None),  # on the loss stop
        (CALM, None, None, None),  # short leg without a broker delta
        (CALM, -0.30, None, None),  # short delta at the stop
        (CALM, -0.10, market_time(ny(date(2025, 5, 30), 0)), None),  # time stop day
        (CALM, -0.10, None, NATURAL),  # natural mark: no quiet band
    ],
)
def test_no_screen_where_a_close_is_near_or_cannot_be_bounded(
    debit: str, short_delta: float | None, at: MarketTime | None, book: BookPolicy | None
) -> None:
    watch, _ = watched(debit, short_delta=short_delta, at=at, book=book)
    assert watch.screen(market_time(NOW) if at is None else at) is None


def test_no_screen_with_a_leg_unquoted_or_unusable() -> None:
    at = market_time(NOW)
    short, long_ = vertical_quotes(CALM, NOW)
    watch = PositionWatch(state_of(put_spread()))
    watch.update(0, short, at)
    assert watch.screen(at) is None
    watch.update(1, long_._replace(bid=long_.ask + CENT), at)  # crossed
    assert watch.screen(at) is None
    watch.update(1, long_, at)
    assert watch.screen(at) is not None


def test_the_screen_of_a_condor() -> None:
    """Condor credit 2.00 at mid debit 1.60: 2 x mid 3.20 inside (2 x 1.00, 2 x 3.00)."""
    at = market_time(NOW)
    quotes = [
        quote("0.20", NOW, -0.05),
        quote("1.00", NOW, -0.12),
        quote("1.00", NOW, 0.12),
        quote("0.20", NOW, 0.05),
    ]
    watch = PositionWatch(state_of(iron_condor()))
    for i, q in enumerate(quotes):
        watch.update(i, q, at)
    screen = watch.screen(at)
    assert screen is not None
    assert (screen.low2, screen.mid2, screen.high2) == (20_000, 32_000, 60_000)
    assert screen.short == (False, True, True, False)
    assert not admit(screen, 2, d("0.99"), d("1.01"), 0.30)  # the call side's delta stop
    # the long call 1.00 dearer: 2 x mid 2.20 (1.20 dearer would be 2.00, the target)
    assert not admit(screen, 3, d("0.79"), d("0.81"), None)
    assert admit(screen, 3, d("0.69"), d("0.71"), None)
    assert screen.mid2 == 22_000


@pytest.mark.parametrize(
    ("price", "want"),
    [("1.2345", 12_345), ("0", 0), ("-1", -10_000), ("2.50", 25_000), ("1E+2", 1_000_000)],
)
def test_units_are_exact_ten_thousandths(price: str, want: int) -> None:
    assert units(d(price)) == want


@pytest.mark.parametrize("price", ["1.23456", "NaN", "Infinity", None])
def test_a_price_units_cannot_hold_has_none(price: str | None) -> None:
    assert units(None if price is None else d(price)) is None


def test_a_quote_with_more_decimals_is_not_admitted_but_evaluated() -> None:
    """0.98995 is no whole number of units: the screen says no, evaluate decides."""
    watch, screen = calm_screen()
    assert not admit(screen, 0, d("0.98995"), d("1.01"), -0.10)
    at = market_time(NOW + timedelta(seconds=5))
    assert watch.update(0, Quote(d("0.98995"), d("1.01"), at.now, -0.10, None), at) == (
        HOLD_NO_TRIGGER
    )


def test_no_screen_while_a_legs_price_has_more_decimals() -> None:
    watch, _ = calm_screen()
    at = market_time(NOW + timedelta(seconds=5))
    watch.update(1, Quote(d("0.19005"), d("0.21"), at.now, -0.05, None), at)
    assert watch.screen(at) is None


def test_a_band_edge_between_units_is_rounded_inward() -> None:
    """Credit 1.00003: the first target's debit is 0.500015, 2 x 1.00003 = 10,000.3 units,
    so the screen's low edge is 10,001: a mid debit of 0.50005 (2 x mid 10,001 units) is
    above the target, evaluate holds, but the screen does not admit it; 0.5001 it does."""
    position = put_spread(credit="1.00003")
    watch, _ = watched(position=position)
    screen = watch.screen(market_time(NOW))
    assert screen is not None
    assert screen.low2 == 10_001
    at = market_time(NOW + timedelta(seconds=5))
    # 2 x mid: short bid + ask - 0.40 (the long leg); 1.4001 - 0.40 = 1.0001
    assert not admit(screen, 0, d("0.69"), d("0.7101"), -0.10)
    assert watch.update(0, Quote(d("0.69"), d("0.7101"), at.now, -0.10, None), at) == (
        HOLD_NO_TRIGGER
    )
    assert admit(screen, 0, d("0.69"), d("0.7102"), -0.10)


# Screens of closing positions, and of changed states -------------------------------


def closing(debit: str = "0.50", *, book: BookPolicy | None = None) -> PositionWatch:
    """The calm vertical after a close decided at ``debit`` was sent (CLOSING)."""
    watch, decision = watched(debit, book=book)
    assert isinstance(decision, Close)
    watch.state = apply(watch.state, CloseSent(decision))
    return watch


def test_a_working_profit_close_is_screened_for_the_stops_only() -> None:
    """CLOSING on the first target: only a stop can act (replacing the close), so the band
    has no low edge: a debit deeper in profit is admitted, and evaluate holds on it for
    the working order; the loss stop's edge and a short delta at the stop are not."""
    watch = closing("0.50")
    at = market_time(NOW + timedelta(seconds=1))
    screen = watch.screen(at)
    assert screen is not None
    assert screen.high2 == 30_000  # 2 x the loss stop's 1.50
    assert screen.low2 < 0  # no low edge
    deeper = Quote(d("0.39"), d("0.41"), at.now, -0.05, None)  # mid debit 0.20
    assert admit(screen, 0, deeper.bid, deeper.ask, deeper.delta)
    assert watch.update(0, deeper, at) == Hold(HoldReason.ORDER_WORKING)
    assert not admit(screen, 0, d("1.69"), d("1.71"), -0.10)  # mid debit 1.50: loss stop
    assert not admit(screen, 0, d("0.39"), d("0.41"), -0.30)  # delta stop
    assert not admit(screen, 0, d("0.39"), d("0.41"), None)  # no broker delta


def test_a_working_profit_close_has_no_screen_on_a_stop_or_its_day() -> None:
    at = market_time(NOW + timedelta(seconds=1))
    watch = closing("0.50")
    short, _ = vertical_quotes("1.50", at.now)
    watch.store(0, short)  # the loss stop holds: evaluate replaces the close
    assert watch.screen(at) is None
    watch = closing("0.50")
    assert watch.screen(market_time(ny(date(2025, 5, 30), 0))) is None  # time stop day


def test_a_working_stop_admits_every_quote_priced_in_units() -> None:
    """CLOSING on a stop: nothing else can act, so the screen admits a debit past the loss
    stop and any delta, and has no deadline (the time stop's day changes nothing); a price
    units cannot hold, or none, still goes to evaluate."""
    watch = closing("1.50")
    assert watch.state.working is not None
    assert watch.state.working.close.reason is ExitReason.LOSS_STOP
    assert watch.screen(market_time(ny(date(2025, 5, 30), 11))) is not None  # its day
    at = market_time(NOW + timedelta(seconds=1))
    screen = watch.screen(at)
    assert screen is not None
    assert screen.deadline == datetime.max.replace(tzinfo=UTC)
    wild = Quote(d("4.89"), d("4.91"), at.now, -0.95, None)  # mid debit 4.70
    assert admit(screen, 0, wild.bid, wild.ask, wild.delta)
    assert watch.update(0, wild, at) == Hold(HoldReason.ORDER_WORKING)
    assert not admit(screen, 0, d("4.89005"), d("4.91"), -0.95)
    assert not admit(screen, 1, None, d("0.21"), -0.05)


def test_a_natural_books_working_close_is_screened_only_when_a_stop_works() -> None:
    """Natural marks have no mid band: a working profit close gets no screen; a working
    stop needs none (nothing can act)."""
    assert closing("0.48", book=NATURAL).screen(market_time(NOW)) is None
    assert closing("1.48", book=NATURAL).screen(market_time(NOW)) is not None


def test_a_change_of_state_closes_the_screen() -> None:
    """A screen is of one exit state: once the state changes (a close sent, a fill, an
    order ended) it admits nothing, so a gate that still holds it cannot let a quote
    through on a state it was not built for."""
    watch, screen = calm_screen()
    assert watch.current_screen is screen
    assert admit(screen, 0, d("0.99"), d("1.01"), -0.10)
    watch.state = replace(watch.state, profit_closed=4)
    assert watch.current_screen is None
    assert not admit(screen, 0, d("0.99"), d("1.01"), -0.10)


def test_a_screen_found_no_more_closes_the_one_before() -> None:
    """The watch moved on (a quote on the target) and has no screen now: the screen built
    before admits nothing more (it would have judged on the old quotes)."""
    watch, screen = calm_screen()
    at = market_time(NOW + timedelta(seconds=5))
    watch.update(0, Quote(d("0.69"), d("0.71"), at.now, -0.10, None), at)  # on the target
    assert watch.screen(at) is None
    assert watch.current_screen is None
    assert not admit(screen, 0, d("0.99"), d("1.01"), -0.10)
