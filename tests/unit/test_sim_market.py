"""The simulated market: seeded paths, scripted moves, BSM quotes, update cadence."""

from __future__ import annotations

import itertools
import math
import random
import statistics
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from brokers.sim.market import Move, SimMarket, Underlying, _Path, tick_of
from rules.clock import years_to_expiry
from rules.greeks import Rates, bsm_price
from rules.model import Right, quote_problem
from service.ports import LegKey
from tests.factories import STORE_EXPIRY as EXPIRY

START = datetime(2027, 3, 1, 14, 30, tzinfo=UTC)  # 09:30 New York
PUT = LegKey("SPY", EXPIRY, Right.PUT, Decimal("450"))
CALL = LegKey("SPY", EXPIRY, Right.CALL, Decimal("500"))


def market(*moves: Move, seed: int = 7, vol: float = 0.25, **kw: object) -> SimMarket:
    return SimMarket([Underlying("SPY", 470.0, vol=vol, moves=list(moves))], START, seed=seed, **kw)  # type: ignore[arg-type]


def path(m: SimMarket, minutes: int, step: timedelta = timedelta(seconds=30)) -> list[float]:
    out = []
    t = START
    while t < START + timedelta(minutes=minutes):
        t += step
        m.step(t)
        out.append(m.spot("SPY"))
    return out


def test_the_same_seed_gives_the_same_quotes_to_the_digit() -> None:
    runs = []
    for _ in range(2):
        m = market()
        m.subscribe(PUT)
        m.subscribe(CALL)
        runs.append([(u.leg, u.quote) for u in m.step(START + timedelta(minutes=5))])
    assert runs[0] == runs[1]
    other = market(seed=8)
    other.subscribe(PUT)
    other.subscribe(CALL)
    assert [(u.leg, u.quote) for u in other.step(START + timedelta(minutes=5))] != runs[0]


def test_log_returns_spread_as_vol_sqrt_dt() -> None:
    """Seeded, so the same every run: 30-second log returns over ten days have standard
    deviation vol x sqrt(dt), to 2%."""
    m = SimMarket([Underlying("SPY", 470.0, vol=0.30, drift=0.10)], START, seed=11)
    prices = path(m, 60 * 24 * 10)
    returns = [math.log(b / a) for a, b in itertools.pairwise(prices)]
    dt = 30 / (365 * 24 * 3600)
    assert statistics.stdev(returns) == pytest.approx(0.30 * math.sqrt(dt), rel=0.02)


class NoShocks(random.Random):
    def gauss(self, mu: float = 0.0, sigma: float = 1.0) -> float:
        return 0.0


def test_without_shocks_the_log_price_drifts_by_mu_less_half_sigma_squared() -> None:
    """The drift of GBM in log space (Ito): (drift - vol^2 / 2) per year."""
    p = _Path(Underlying("SPY", 100.0, vol=0.40, drift=0.10), START, NoShocks())
    assert p.at(START + timedelta(days=365)) == pytest.approx(100 * math.exp(0.10 - 0.08))
    assert p.at(START + timedelta(days=730)) == pytest.approx(100 * math.exp(2 * (0.10 - 0.08)))


@pytest.mark.parametrize(
    ("move", "factor"),
    [
        (Move("rally", START + timedelta(minutes=10), 0.03, timedelta(minutes=20)), 1.03),
        (Move("selloff", START + timedelta(minutes=10), 0.05, timedelta(minutes=20)), 0.95),
        (Move("gap", START + timedelta(minutes=10), -0.04), 0.96),
    ],
)
def test_a_scripted_move_scales_the_seeded_path_by_its_size(move: Move, factor: float) -> None:
    """The same seed with and without the move: the ratio of the two paths is 1 before the
    move starts and exactly 1 + size once it is done."""
    plain, moved = path(market(), 60), path(market(move), 60)
    ratios = [b / a for a, b in zip(plain, moved, strict=True)]
    assert ratios[:19] == pytest.approx([1.0] * 19)  # minutes 0.5 .. 9.5
    assert ratios[-1] == pytest.approx(factor)


def test_a_rally_is_spread_over_its_duration_and_a_gap_is_at_once() -> None:
    rally = Move("rally", START, 0.04, timedelta(minutes=40))
    half = rally.log_offset(START + timedelta(minutes=20))
    assert half == pytest.approx(math.log(1.04) / 2)
    gap = Move("gap", START, 0.04)
    assert gap.log_offset(START - timedelta(microseconds=1)) == 0.0
    assert gap.log_offset(START) == pytest.approx(math.log(1.04))


def test_chop_swings_and_leaves_the_price_where_the_path_is() -> None:
    chop = Move("chop", START, 0.02, timedelta(minutes=30), period=timedelta(minutes=10))
    assert chop.log_offset(START + timedelta(minutes=2, seconds=30)) == pytest.approx(
        math.log(1.02)
    )
    assert chop.log_offset(START + timedelta(minutes=7, seconds=30)) == pytest.approx(
        math.log(0.98)
    )
    assert chop.log_offset(START + timedelta(minutes=30)) == 0.0


def test_quotes_are_valid_tick_aligned_and_around_the_bsm_price() -> None:
    m = market()
    m.subscribe(PUT)
    m.subscribe(CALL)
    updates = m.step(START + timedelta(minutes=30))
    assert updates
    for u in updates:
        q = u.quote
        assert quote_problem(q) is None
        assert isinstance(q.bid, Decimal)
        assert q.bid is not None
        assert q.ask is not None
        tick = tick_of(q.ask)
        assert q.ask % tick == 0
        assert q.bid % tick_of(q.bid) == 0 or q.bid == 0
        assert q.underlying_price is not None
        years = years_to_expiry(u.leg.expiry, q.ts)
        fair = bsm_price(u.leg.right, q.underlying_price, float(u.leg.strike), years, 0.25, Rates())
        assert float(q.bid) <= fair + 0.01
        assert fair - 0.01 <= float(q.ask)
        assert float(q.ask - q.bid) <= max(0.08 * fair, 0.02) + 2 * float(tick)
        assert q.delta is not None
        if u.leg.right is Right.PUT:
            assert -1 < q.delta < 0
        else:
            assert 0 < q.delta < 1


def test_each_subscribed_leg_quotes_about_every_250_ms_and_only_those() -> None:
    m = market()
    m.subscribe(PUT)
    updates = m.step(START + timedelta(seconds=60))
    assert {u.leg for u in updates} == {PUT}
    assert 200 <= len(updates) <= 300  # 60 s at 250 ms +- 20% jitter
    times = [u.quote.ts for u in updates]
    assert times == sorted(times)
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(times)]
    assert min(gaps) >= 0.2
    assert max(gaps) <= 0.3
    m.unsubscribe(PUT)
    assert m.step(START + timedelta(seconds=90)) == []


def test_the_market_does_not_go_back_and_knows_its_underlyings() -> None:
    m = market()
    m.step(START + timedelta(seconds=5))
    with pytest.raises(ValueError, match="cannot go back"):
        m.step(START)
    with pytest.raises(KeyError, match="no underlying QQQ"):
        m.subscribe(LegKey("QQQ", EXPIRY, Right.PUT, Decimal("400")))


def test_a_selloff_moves_a_put_spread_toward_its_loss_stop() -> None:
    """What the demo relies on: a 6% selloff makes the 450 put dearer and its delta
    larger in size."""
    m = market(Move("selloff", START + timedelta(minutes=1), 0.06, timedelta(minutes=5)))
    m.subscribe(PUT)
    before = m.step(START + timedelta(seconds=30))[-1].quote
    after = m.step(START + timedelta(minutes=10))[-1].quote
    assert after.bid is not None
    assert before.ask is not None
    assert after.bid > before.ask
    assert after.delta is not None
    assert before.delta is not None
    assert after.delta < before.delta - 0.1


def test_a_market_far_behind_its_clock_skips_ahead_instead_of_making_every_quote() -> None:
    """The daemon's simulated venue at a speed its legs cannot be quoted at (or a stalled
    process): its clock an hour ahead of the market. Each leg is quoted about once, at
    the clock's time, where before every quote due in the hour was made (14,400 a leg,
    held in memory at once, and the lag grew with them: 230 MB to 1.1 GB of resident
    memory in three simulated days of benchmarks/soak.py at 3000x)."""
    import asyncio  # noqa: PLC0415

    from brokers.sim.broker import SimBroker  # noqa: PLC0415
    from brokers.sim.gateway import SimVenue  # noqa: PLC0415
    from service.clock import ManualClock  # noqa: PLC0415
    from service.ports import LegUpdate  # noqa: PLC0415

    async def main() -> tuple[list[LegUpdate], list[LegUpdate]]:
        clock = ManualClock(START)
        venue = SimVenue(market(), SimBroker(), clock)
        venue.subscribe(PUT)
        venue.subscribe(CALL)
        got: list[LegUpdate] = []
        running = asyncio.create_task(venue.run(got.extend, lambda events: None))
        for _ in range(8):  # a second of market time, stepped as the loop does
            clock.now_ += timedelta(milliseconds=125)
            await asyncio.sleep(0)
        before = list(got)
        clock.now_ += timedelta(hours=1)
        for _ in range(3):
            await asyncio.sleep(0)
        running.cancel()
        return before, got[len(before) :]

    before, after = asyncio.run(main())
    assert {u.leg for u in before} == {PUT, CALL}
    assert 2 <= len(after) <= 4
    assert {u.leg for u in after} == {PUT, CALL}
    assert min(u.quote.ts for u in after) >= START + timedelta(hours=1, seconds=1) - timedelta(
        milliseconds=250
    )
