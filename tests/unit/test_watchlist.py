"""Watchlist (rules/watchlist.py): legs shared by positions, their latest quotes, and gates.

Two put spreads share the 395 put: the first is short 400 / long 395, the second
short 395 / long 390. Quotes are kept as the rules' Quote (the live monitor's
form); replay keeps its CSV lines the same way and is compared with and without
screens in tests/e2e/test_replay_screen.py.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from rules.clock import market_time
from rules.greeks import Rates
from rules.machine import Close, CloseSent, ExitReason, Filled, Phase, apply
from rules.model import Quote
from rules.watch import PositionWatch, units
from rules.watchlist import Watchlist
from tests.factories import d, put_spread, quote, state_of
from tests.unit.test_watch import NOW

RATES = Rates()
UPPER = put_spread(short="400", long="395")  # credit 1.00: targets 0.50 / 0.25 / 0.10
LOWER = replace(put_spread(short="395", long="390"), id="put-2")
P400, P395, P390 = "P400", "P395", "P390"


def kept(q: Quote) -> Quote:
    return q


def listed(*positions: object) -> tuple[Watchlist[Quote, str], list[PositionWatch]]:
    wl: Watchlist[Quote, str] = Watchlist(kept)
    watches = []
    for p in positions:
        watch = PositionWatch(state_of(p))  # type: ignore[arg-type]
        strikes = [f"P{leg.strike}" for leg in watch.state.position.legs]
        wl.add(watch, strikes)
        watches.append(watch)
    return wl, watches


def offer(
    wl: Watchlist[Quote, str], key: str, q: Quote, acts: list[tuple[str, Close]] | None = None
) -> bool:
    """What the monitor does with a leg's new quote: keep it, and judge it unless every
    holder's screen admits it. True: admitted."""
    leg = wl.ids[key]
    wl.latest[leg] = q
    if wl.admits(leg, q.ts, units(q.bid), units(q.ask), q.delta):
        return True

    def act(watch: PositionWatch, close: Close) -> None:
        if acts is not None:
            acts.append((watch.state.position.id, close))
        watch.state = apply(watch.state, CloseSent(close))

    wl.judge(leg, q, market_time(q.ts), RATES, act)
    return False


def calm(wl: Watchlist[Quote, str]) -> None:
    """Mids 1.50 / 0.70 / 0.05: the first spread at a debit of 0.80, the second at 0.65,
    both inside their quiet bands (credits 1.00: first target 0.50, loss stop 1.50)."""
    offer(wl, P400, quote("1.50", NOW, -0.20))
    offer(wl, P395, quote("0.70", NOW, -0.12))
    offer(wl, P390, quote("0.05", NOW, -0.03))


def test_new_keys_are_said_once_and_shared_legs_have_both_holders() -> None:
    wl: Watchlist[Quote, str] = Watchlist(kept)
    first, second = PositionWatch(state_of(UPPER)), PositionWatch(state_of(LOWER))
    assert wl.add(first, [P400, P395]) == [P400, P395]
    assert wl.add(second, [P395, P390]) == [P390]
    assert [(w.state.position.id, i) for w, i in wl.holders[wl.ids[P395]]] == [
        ("put-1", 1),
        ("put-2", 0),
    ]


def test_a_calm_quote_of_a_shared_leg_is_admitted_by_both_and_kept() -> None:
    wl, (first, second) = listed(UPPER, LOWER)
    calm(wl)
    later = quote("0.71", NOW + timedelta(seconds=1), -0.12)
    assert offer(wl, P395, later)
    assert wl.latest[wl.ids[P395]] is later
    assert first.quotes[1] is not later  # not given to the watches: nothing was judged
    assert wl.quotes(first)[1] is later  # but it is the leg's latest for every reader
    assert wl.quotes(second)[0] is later


def test_a_quote_one_holder_refuses_is_judged_by_every_holder_after_they_catch_up() -> None:
    """The 400 put moves (admitted: the first spread's debit 0.85), then the 395 put drops
    so far that the second spread reaches its first target: both holders are judged, and
    the first one sees the admitted 400 quote it was never given."""
    wl, (first, second) = listed(UPPER, LOWER)
    calm(wl)
    moved = quote("1.55", NOW + timedelta(seconds=1), -0.21)
    assert offer(wl, P400, moved)
    acts: list[tuple[str, Close]] = []
    drop = quote("0.40", NOW + timedelta(seconds=2), -0.08)  # second spread: debit 0.35
    assert not offer(wl, P395, drop, acts)
    assert [(pid, c.reason.value, c.contracts) for pid, c in acts] == [
        ("put-2", "profit_target", 4)
    ]
    assert first.quotes[0] is moved  # caught up before it was evaluated
    assert first.quotes[1] is drop
    assert second.quotes[0] is drop
    assert second.state.phase is Phase.CLOSING


def test_a_holder_whose_state_changed_elsewhere_admits_nothing_until_judged() -> None:
    """A fill applied by the service changes the watch's state: its screen is closed, the
    gate refuses the next quote (judged), and the holder gets a screen of the new state."""
    wl, (first, _) = listed(UPPER, LOWER)
    calm(wl)
    first.state = replace(first.state, profit_closed=4)  # as if a tranche had filled
    assert not offer(wl, P400, quote("1.51", NOW + timedelta(seconds=1), -0.20))
    assert first.current_screen is not None
    assert offer(wl, P400, quote("1.52", NOW + timedelta(seconds=2), -0.20))


def test_a_close_decided_in_judge_gets_a_screen_of_its_closing_state() -> None:
    """After the act the watch is CLOSING with a profit close working: its new screen has
    no low edge, so deeper profit is admitted; a loss-stop quote is not."""
    wl, (_, second) = listed(UPPER, LOWER)
    calm(wl)
    offer(wl, P395, quote("0.40", NOW + timedelta(seconds=1), -0.08))
    assert second.state.phase is Phase.CLOSING
    assert offer(wl, P395, quote("0.30", NOW + timedelta(seconds=2), -0.06))
    assert not offer(wl, P395, quote("1.50", NOW + timedelta(seconds=3), -0.25))


def test_no_quote_is_admitted_on_or_after_the_gate_deadline() -> None:
    wl, (first, second) = listed(UPPER, LOWER)
    calm(wl)
    leg = wl.ids[P395]
    gate = wl.gates[leg]
    assert gate is not None
    deadline = gate[0]
    assert deadline == min(first.current_screen.deadline, second.current_screen.deadline)  # type: ignore[union-attr]
    assert not wl.admits(leg, deadline, units(d("0.69")), units(d("0.71")), -0.12)
    assert wl.admits(
        leg, deadline - timedelta(seconds=1), units(d("0.69")), units(d("0.71")), -0.12
    )


def test_a_released_position_leaves_its_legs_and_the_others_gates() -> None:
    """The second spread hits its loss stop and fills: 390 is held by no one (said, and
    its quote forgotten); 395's holders and gate are the first spread's alone."""
    wl, (first, second) = listed(UPPER, LOWER)
    calm(wl)
    acts: list[tuple[str, Close]] = []
    assert not offer(wl, P395, quote("1.60", NOW + timedelta(seconds=1), -0.25), acts)
    ((pid, stop),) = acts  # the second spread's debit 1.55: its loss stop
    assert (pid, stop.reason, stop.contracts) == ("put-2", ExitReason.LOSS_STOP, 10)
    second.state = apply(second.state, Filled(10))
    assert second.state.phase is Phase.CLOSED
    assert wl.release(second) == [P390]
    assert wl.latest[wl.ids[P390]] is None
    assert wl.legs_of(second) == ()
    assert wl.holders[wl.ids[P395]] == [(first, 1)]
    # at 1.60 the first spread's legs disagreed (no screen); back at 0.70 it is judged
    # calm and screened again, and its gate alone admits the next quote
    assert not offer(wl, P395, quote("0.70", NOW + timedelta(seconds=2), -0.12))
    assert first.current_screen is not None
    assert offer(wl, P395, quote("0.71", NOW + timedelta(seconds=3), -0.12))
    assert wl.add(PositionWatch(state_of(LOWER)), [P395, P390]) == [P390]


def test_without_screens_every_quote_is_judged() -> None:
    wl: Watchlist[Quote, str] = Watchlist(kept, screens=False)
    watch = PositionWatch(state_of(UPPER))
    wl.add(watch, [P400, P395])
    for key, q in ((P400, quote("1.50", NOW, -0.2)), (P395, quote("0.70", NOW, -0.1))):
        assert not offer(wl, key, q)
    assert wl.gates == [None, None]
    assert watch.current_screen is None
