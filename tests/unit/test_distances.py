"""Each open position's distance to every trigger: exact figures, worked by hand, and the
nearest trigger chosen right at each boundary (the reached ones are those the rules fire)."""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import generate_latest

from rules.books import DEFAULT_BOOKS
from rules.evaluate import DEFAULT_RATES
from rules.exits import ExitReason, fired
from rules.machine import Close, CloseSent, Filled, apply
from rules.model import Quote
from service.app.book import PositionBook
from service.app.distances import (
    OrderView,
    PositionView,
    TriggerView,
    Working,
    ordered,
    position_view,
)
from service.app.readmodel import ReadModel
from service.http.server import Ops, position_gauges
from tests.factories import at_dte, call_spread, iron_condor, opened_before, put_spread, state_of
from tests.support import ROOT

D = Decimal
LOSS, DELTA, TIME, PROFIT = (
    ExitReason.LOSS_STOP,
    ExitReason.DELTA_STOP,
    ExitReason.TIME_STOP,
    ExitReason.PROFIT_TARGET,
)


def by_reason(view: PositionView) -> dict[ExitReason, TriggerView]:
    return {t.reason: t for t in view.triggers}


def figures(t: TriggerView) -> tuple[Decimal | None, Decimal, Decimal | None, Decimal | None]:
    return t.value, t.threshold, t.distance, t.left


def test_a_put_spread_far_from_everything_nearest_its_first_profit_target() -> None:
    """PRIMARY, 10 contracts of SPY 400/395 puts for 1.00, opened 45 DTE, seen at 30 DTE.

    Short 400P 0.73/0.77 (delta -0.22), long 395P 0.18/0.22, quoted 5 s ago.
    Mid debit = 0.75 - 0.20 = 0.55; natural = 0.77 - 0.18 = 0.59 (the book's mark: mid).
    P&L = (1.00 - 0.55) x 100 x 10 = $450; 0.45 / 1.00 = 45% of max ($1,000).
    Profit (50%): target debit 1.00 x (1 - 0.50) = 0.50; 0.55 - 0.50 = 0.05 points to
      go, of the 0.50 from entry: left 0.1.
    Loss (150%): 1.50 - 0.55 = 0.95 points; of 1.50 - 1.00 = 0.50: left 1.9.
    Delta (0.30): 0.30 - 0.22 = 0.08; left 0.08 / 0.30 = 0.2666...
    Time: min(21, floor(45 x 0.5) = 22) = 21 DTE: 30 - 21 = 9 days; of 45 - 21 = 24: left 0.375.
    Nearest: profit (0.1).
    """
    at = at_dte(30)
    ts = at.now - timedelta(seconds=5)
    quotes = [Quote(D("0.73"), D("0.77"), ts, -0.22), Quote(D("0.18"), D("0.22"), ts, -0.10)]
    view = position_view(state_of(put_spread()), quotes, at, DEFAULT_RATES)
    assert (view.debit_mid, view.debit_natural, view.debit) == (D("0.55"), D("0.59"), D("0.55"))
    assert (view.pnl, view.pnl_pct, view.max_profit) == (D("450.00"), D("0.45"), D("1000.00"))
    assert (view.dte, view.initial_dte, view.time_stop_dte) == (30, 45, 21)
    assert (view.quote_age, view.legs[0].delta, view.legs[0].delta_source) == (
        5.0,
        D("-0.22"),
        "broker",
    )
    t = by_reason(view)
    assert [x.reason for x in view.triggers] == [LOSS, DELTA, TIME, PROFIT]  # the spec's order
    assert figures(t[PROFIT]) == (D("0.55"), D("0.50"), D("0.05"), D("0.1"))
    assert figures(t[LOSS]) == (D("0.55"), D("1.50"), D("0.95"), D("1.9"))
    assert figures(t[DELTA]) == (D("0.22"), D("0.3"), D("0.08"), D("0.08") / D("0.3"))
    assert figures(t[TIME]) == (D(30), D(21), D(9), D("0.375"))
    assert (t[PROFIT].label, view.next_target, view.nearest) == (
        "Profit Target (50%)",
        D("0.50"),
        PROFIT,
    )


def test_a_call_spread_of_three_nearest_its_delta_stop() -> None:
    """PRIMARY, 3 contracts of SPY 450/455 calls for 1.20, opened 30 DTE, seen at 20 DTE.

    Short 450C 1.48/1.52 (delta 0.27), long 455C 0.38/0.42.
    Mid debit = 1.50 - 0.40 = 1.10; natural = 1.52 - 0.38 = 1.14.
    P&L = (1.20 - 1.10) x 100 x 3 = $30; 0.10 / 1.20 = 8.33...% of max ($360).
    Profit (50%): target debit 0.60: 0.50 points; of 0.60: left 0.8333...
    Loss: 1.20 x 1.5 = 1.80: 0.70 points; of 0.60: left 1.1666...
    Delta: 0.30 - 0.27 = 0.03; left 0.1.
    Time: min(21, floor(30 x 0.5)) = 15 DTE: 5 days; of 30 - 15 = 15: left 0.333...
    Nearest: delta (0.1).
    """
    at = at_dte(20)
    quotes = [Quote(D("1.48"), D("1.52"), at.now, 0.27), Quote(D("0.38"), D("0.42"), at.now, 0.12)]
    position = call_spread(contracts=3, credit="1.20", opened_at=opened_before(30))
    view = position_view(state_of(position), quotes, at, DEFAULT_RATES)
    assert (view.debit_mid, view.debit_natural) == (D("1.10"), D("1.14"))
    assert (view.pnl, view.pnl_pct) == (D("30.00"), D("0.10") / D("1.20"))
    t = by_reason(view)
    assert figures(t[PROFIT]) == (D("1.10"), D("0.60"), D("0.50"), D("0.50") / D("0.60"))
    assert figures(t[LOSS]) == (D("1.10"), D("1.80"), D("0.70"), D("0.70") / D("0.60"))
    assert figures(t[DELTA]) == (D("0.27"), D("0.3"), D("0.03"), D("0.1"))
    assert figures(t[TIME]) == (D(20), D(15), D(5), D(5) / D(15))
    assert view.nearest is DELTA


def test_a_condor_past_its_first_tranche_nearest_its_second() -> None:
    """PRIMARY, 10 SPY condors 395/400/450/455 for 2.00, opened 45 DTE; the first tranche
    (4 of 10) closed; seen at 22 DTE.

    Long 395P 0.10/0.12, short 400P 0.30/0.34 (delta -0.12), short 450C 0.50/0.54 (delta
    0.18), long 455C 0.15/0.19.
    Mid debit = 0.32 + 0.52 - 0.11 - 0.17 = 0.56; natural = 0.34 + 0.54 - 0.10 - 0.15 = 0.63.
    P&L = (2.00 - 0.56) x 100 x 6 remaining = $864; 1.44 / 2.00 = 72% of max ($2,000).
    Profit (75%, the next): target debit 2.00 x 0.25 = 0.50: 0.06 points; of 1.50: left 0.04.
    Loss: 3.00 - 0.56 = 2.44; of 1.00: left 2.44.
    Delta: the nearest short leg 0.18: 0.12 to go; left 0.4.
    Time: 21 DTE stop: 1 day; of 24: left 0.041666...
    Nearest: profit (0.04 < 0.0416...), stage 1 of 3.
    """
    at = at_dte(22)
    q = [("0.10", "0.12", None), ("0.30", "0.34", -0.12), ("0.50", "0.54", 0.18)]
    quotes = [Quote(D(b), D(a), at.now, delta) for b, a, delta in q]
    quotes.append(Quote(D("0.15"), D("0.19"), at.now))
    state = replace(state_of(iron_condor()), remaining=6, profit_closed=4)
    view = position_view(state, quotes, at, DEFAULT_RATES)
    assert (view.debit_mid, view.debit_natural) == (D("0.56"), D("0.63"))
    assert (view.pnl, view.pnl_pct) == (D("864.00"), D("0.72"))
    assert (view.stage, view.tranches, view.remaining, view.contracts) == (1, 3, 6, 10)
    t = by_reason(view)
    assert figures(t[PROFIT]) == (D("0.56"), D("0.50"), D("0.06"), D("0.04"))
    assert t[PROFIT].label == "Profit Target (75%)"
    assert figures(t[LOSS]) == (D("0.56"), D("3.00"), D("2.44"), D("2.44"))
    assert figures(t[DELTA]) == (D("0.18"), D("0.3"), D("0.12"), D("0.4"))
    assert figures(t[TIME]) == (D(22), D(21), D(1), D(1) / D(24))
    assert view.nearest is PROFIT


def test_without_quotes_the_marks_are_blank_and_only_the_time_stop_is_judged() -> None:
    at = at_dte(30)
    view = position_view(state_of(put_spread()), [None, None], at, DEFAULT_RATES)
    assert (view.debit, view.pnl, view.quote_age, view.legs[0].delta) == (None, None, None, None)
    t = by_reason(view)
    assert (t[PROFIT].distance, t[LOSS].distance, t[DELTA].distance) == (None, None, None)
    assert view.nearest is TIME


def test_at_entry_every_trigger_is_a_whole_way_off_and_the_tie_goes_to_the_first() -> None:
    """At the opening session, a debit of the credit and a delta of 0: every trigger's
    share left is 1; the nearest is the first in the spec's order (the loss stop)."""
    at = at_dte(45)
    quotes = [Quote(D("1.19"), D("1.21"), at.now, 0.0), Quote(D("0.19"), D("0.21"), at.now, 0.0)]
    view = position_view(state_of(put_spread()), quotes, at, DEFAULT_RATES)
    assert {t.left for t in view.triggers} == {D(1)}
    assert view.nearest is LOSS


@given(
    debit=st.integers(min_value=0, max_value=500),  # cents: 0.00 to 5.00 (the width)
    delta=st.integers(min_value=0, max_value=60),  # hundredths, either sign
    negative=st.booleans(),
    dte=st.integers(min_value=0, max_value=45),
    profit_closed=st.sampled_from([0, 4, 8, 10]),
)
def test_the_triggers_reached_are_those_the_rules_fire_and_the_nearest_is_the_first(
    debit: int, delta: int, negative: bool, dte: int, profit_closed: int
) -> None:
    """On every boundary (a debit of a target or the loss debit to the cent, a delta of the
    stop, the time stop's day) a distance of 0 is 'reached' exactly when the rule fires."""
    at = at_dte(dte)
    short = D(debit) / 100 + D("0.20")
    d = (-delta if negative else delta) / 100
    quotes = [Quote(short, short, at.now, d), Quote(D("0.20"), D("0.20"), at.now, -0.01)]
    state = replace(state_of(put_spread()), remaining=10 - profit_closed)
    state = replace(state, profit_closed=profit_closed)
    view = position_view(state, quotes, at, DEFAULT_RATES)
    hits = fired(state.plan.exits, D(debit) / 100, quotes, at, DEFAULT_RATES, profit_closed, 10)
    expected = [] if hits is None else [hit.reason for hit in hits]
    assert [t.reason for t in view.triggers if t.reached] == expected
    if expected:
        assert view.nearest is expected[0]
    else:
        least = min(t.left for t in view.triggers if t.left is not None)
        assert by_reason(view)[view.nearest].left == least  # type: ignore[index]


def test_positions_are_ordered_nearest_trigger_first_a_reached_one_before_all() -> None:
    """Three put spreads at 30 DTE: one at its loss stop (1.50, reached), one 0.05 from its
    first target (left 0.1), one without quotes (nearest the time stop, left 0.375)."""
    at = at_dte(30)

    def seen(pid: str, short: str | None) -> PositionView:
        state = state_of(replace(put_spread(), id=pid))
        if short is None:
            return position_view(state, [None, None], at, DEFAULT_RATES)
        s = D(short)
        quotes = [Quote(s, s, at.now, -0.2), Quote(D("0.20"), D("0.20"), at.now, -0.1)]
        return position_view(state, quotes, at, DEFAULT_RATES)

    views = [seen("quiet", None), seen("near", "0.75"), seen("stopped", "1.70")]
    assert [v.id for v in ordered(views)] == ["stopped", "near", "quiet"]
    assert [v.nearest for v in ordered(views)] == [LOSS, PROFIT, TIME]


def test_the_metrics_carry_each_positions_pnl_share_nearest_left_and_short_delta() -> None:
    """The put spread worked by hand above: 45% of max, its first target 0.1 of its way
    off, a short delta of 0.22; a position without quotes has the time stop's share only."""
    at = at_dte(30)
    quotes = [Quote(D("0.73"), D("0.77"), at.now, -0.22), Quote(D("0.18"), D("0.22"), at.now)]
    seen = position_view(state_of(put_spread()), quotes, at, DEFAULT_RATES)
    quiet = position_view(
        state_of(replace(put_spread(), id="quiet")), [None, None], at, DEFAULT_RATES
    )
    samples = {
        (family.name, sample.labels["position"]): sample.value
        for family in position_gauges([seen, quiet])
        for sample in family.samples
    }
    assert samples == {
        ("spreadwatch_position_pnl_pct_of_max", "put-1"): 0.45,
        ("spreadwatch_position_nearest_trigger_left", "put-1"): 0.1,
        ("spreadwatch_position_short_delta", "put-1"): 0.22,
        ("spreadwatch_position_nearest_trigger_left", "quiet"): 0.375,
    }


def test_the_sample_grafana_dashboard_reads_only_metrics_the_daemon_exposes() -> None:
    """docker/grafana-dashboard.json: every spreadwatch_* series its panels ask for is one
    /metrics names (a renamed metric fails here, not on a trader's empty panel)."""
    views = ReadModel(PositionBook(dict(DEFAULT_BOOKS), subscribe=lambda leg: None))

    async def ok() -> bool:
        return True

    ops = Ops(views, lambda: at_dte(30).now, broker_connected=lambda: True, database_ok=ok)

    async def scrape() -> str:  # (in the loop's thread, as the daemon's server scrapes)
        return generate_latest(ops.registry).decode()

    exposed = set(re.findall(r"^# TYPE (\w+)", asyncio.run(scrape()), re.M))
    exposed |= {f"{name}_total" for name in exposed}  # (counters are scraped as name_total)
    board = json.loads((ROOT / "docker" / "grafana-dashboard.json").read_text())
    asked = {
        name
        for panel in board["panels"]
        for target in panel["targets"]
        for name in re.findall(r"spreadwatch_\w+", target["expr"])
    }
    assert "spreadwatch_position_nearest_trigger_left" in asked
    assert asked <= exposed, asked - exposed


def test_a_working_close_is_shown_with_the_desks_limit_step_and_age() -> None:
    """The loss stop's close of all 10 sent at a 1.60 mark, 4 filled; the desk walks it at
    1.65, step 2, sent 12 s ago."""
    at = at_dte(30)
    close = Close(10, LOSS, "Loss Stop (150% of credit)", None, None, D("1.60"), D("-600"),
                  D("-0.6"), (LOSS,))  # fmt: skip
    state = apply(apply(state_of(put_spread()), CloseSent(close)), Filled(4))
    working = Working(D("1.65"), 2, at.now - timedelta(seconds=12))
    view = position_view(state, [None, None], at, DEFAULT_RATES, working=working)
    assert (view.phase, view.remaining) == ("closing", 6)
    assert view.order == OrderView("loss_stop", "Loss Stop (150% of credit)", 10, 4, D("1.60"),
                                   D("1.65"), 2, 12.0)  # fmt: skip
