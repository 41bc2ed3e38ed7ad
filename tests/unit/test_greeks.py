"""Local Greeks: BSM price, delta and implied volatility against textbook values."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from rules.clock import expiry_instant
from rules.greeks import (
    GreeksUnavailable,
    Rates,
    bsm_delta,
    bsm_price,
    implied_vol,
    local_delta,
)
from rules.model import Right
from tests.factories import EXPIRY

HULL = Rates(rate=0.10, dividend=0.0)
NOW = datetime(2025, 5, 21, 15, 0, tzinfo=UTC)  # 30 days before expiry
NO_RATES = Rates(rate=0.0, dividend=0.0)


def test_call_price_matches_hull() -> None:
    """Hull's BSM example: S=42, K=40, r=10%, sigma=20%, T=0.5 -> call 4.76."""
    assert bsm_price(Right.CALL, 42, 40, 0.5, 0.20, HULL) == pytest.approx(4.76, abs=0.005)


def test_put_price_matches_hull() -> None:
    """Hull's BSM example: the same put is worth 0.81."""
    assert bsm_price(Right.PUT, 42, 40, 0.5, 0.20, HULL) == pytest.approx(0.81, abs=0.005)


def test_call_delta_matches_hull() -> None:
    """Hull's delta-hedging example: S=49, K=50, r=5%, sigma=20%, T=0.3846 -> N(d1) = 0.522."""
    delta = bsm_delta(Right.CALL, 49, 50, 0.3846, 0.20, Rates(rate=0.05))
    assert delta == pytest.approx(0.522, abs=0.0005)


def test_put_delta_is_call_delta_minus_one() -> None:
    """Without dividends, put delta = call delta - 1."""
    call = bsm_delta(Right.CALL, 49, 50, 0.3846, 0.20, Rates(rate=0.05))
    put = bsm_delta(Right.PUT, 49, 50, 0.3846, 0.20, Rates(rate=0.05))
    assert put == pytest.approx(call - 1, abs=1e-12)


def test_implied_vol_recovers_hulls_sigma() -> None:
    """The price 4.7594 of Hull's call gives back sigma = 20%."""
    price = bsm_price(Right.CALL, 42, 40, 0.5, 0.20, HULL)
    assert implied_vol(price, Right.CALL, 42, 40, 0.5, HULL) == pytest.approx(0.20, abs=1e-9)


@given(
    right=st.sampled_from([Right.PUT, Right.CALL]),
    strike=st.integers(min_value=80, max_value=120),
    years=st.floats(min_value=0.05, max_value=1.0),
    sigma=st.floats(min_value=0.10, max_value=0.80),
)
@settings(max_examples=200, deadline=None)
def test_price_to_iv_to_price_round_trips(
    right: Right, strike: int, years: float, sigma: float
) -> None:
    """Price -> implied vol -> price gives the same price (spot 100, r 4%)."""
    rates = Rates()
    price = bsm_price(right, 100.0, strike, years, sigma, rates)
    assume(price > 0.01)
    iv = implied_vol(price, right, 100.0, strike, years, rates)
    assert bsm_price(right, 100.0, strike, years, iv, rates) == pytest.approx(price, abs=1e-8)


def test_local_delta_from_a_mid_price() -> None:
    """An at-the-money 30-day put priced at its 20% vol value has delta near -0.5."""
    years = (expiry_instant(EXPIRY) - NOW) / timedelta(days=365)
    price = bsm_price(Right.PUT, 100.0, 100.0, years, 0.20, NO_RATES)
    delta = local_delta(Right.PUT, 100.0, EXPIRY, price, 100.0, NOW, NO_RATES)
    assert delta == pytest.approx(bsm_delta(Right.PUT, 100.0, 100.0, years, 0.20, NO_RATES))
    assert -0.55 < delta < -0.45


def test_price_below_intrinsic_gives_the_payoff_delta_of_an_itm_put() -> None:
    """A put struck 100 with the stock at 80 priced 5.00 (< 20 intrinsic): delta -1."""
    assert local_delta(Right.PUT, 100.0, EXPIRY, 5.0, 80.0, NOW, Rates()) == -1.0


def test_price_below_intrinsic_gives_the_payoff_delta_of_an_itm_call() -> None:
    """A call struck 100 with the stock at 120 priced 5.00 (< 20 intrinsic): delta +1."""
    assert local_delta(Right.CALL, 100.0, EXPIRY, 5.0, 120.0, NOW, Rates()) == 1.0


@pytest.mark.parametrize(
    ("right", "spot", "delta"),
    [
        (Right.PUT, 80.0, -1.0),
        (Right.PUT, 120.0, 0.0),
        (Right.CALL, 120.0, 1.0),
        (Right.CALL, 80.0, 0.0),
    ],
    ids=["itm-put", "otm-put", "itm-call", "otm-call"],
)
def test_past_expiry_gives_the_payoff_delta(right: Right, spot: float, delta: float) -> None:
    """After the 16:00 New York expiry instant, delta is the payoff's: +-1 ITM, 0 OTM."""
    after = expiry_instant(EXPIRY) + timedelta(minutes=1)
    assert local_delta(right, 100.0, EXPIRY, 1.0, spot, after, Rates()) == delta


def test_a_put_priced_above_its_strike_has_no_implied_vol() -> None:
    """A put cannot be worth more than its strike: GreeksUnavailable."""
    with pytest.raises(GreeksUnavailable):
        local_delta(Right.PUT, 100.0, EXPIRY, 150.0, 80.0, NOW, Rates())


def test_a_call_priced_above_the_stock_has_no_implied_vol() -> None:
    """A call cannot be worth more than the stock: GreeksUnavailable."""
    with pytest.raises(GreeksUnavailable):
        local_delta(Right.CALL, 100.0, EXPIRY, 130.0, 120.0, NOW, Rates())


@dataclass(frozen=True)
class Case:
    """One option's BSM inputs, drawn over the ranges the local Greeks' properties cover."""

    right: Right
    spot: float
    strike: float
    years: float
    sigma: float
    rates: Rates


def _case(
    right: Right,
    spot: float,
    moneyness: float,
    years: float,
    sigma: float,
    rate: float,
    dividend: float,
) -> Case:
    return Case(right, spot, spot * moneyness, years, sigma, Rates(rate=rate, dividend=dividend))


CASES = st.builds(
    _case,
    right=st.sampled_from([Right.PUT, Right.CALL]),
    spot=st.floats(min_value=5, max_value=2000),
    moneyness=st.floats(min_value=0.5, max_value=1.5),
    years=st.floats(min_value=0.001, max_value=3.0),
    sigma=st.floats(min_value=0.01, max_value=2.0),
    rate=st.floats(min_value=-0.01, max_value=0.15),
    dividend=st.floats(min_value=0.0, max_value=0.08),
)


@settings(max_examples=300, deadline=None)
@given(case=CASES)
def test_delta_is_vollibs_analytical_delta(case: Case) -> None:
    """The closed form computed here gives vollib's own analytical delta (which the
    service does not import: it pulls in scipy)."""
    from vollib.black_scholes_merton.greeks.analytical import delta  # noqa: PLC0415

    c, rates = case, case.rates
    flag = "c" if c.right is Right.CALL else "p"
    want = delta(flag, c.spot, c.strike, c.years, rates.rate, c.sigma, rates.dividend)
    got = bsm_delta(c.right, c.spot, c.strike, c.years, c.sigma, rates)
    assert got == pytest.approx(want, abs=1e-12)


def test_a_price_vollib_solves_to_zero_volatility_gives_the_payoff_delta() -> None:
    """A deep in-the-money call a day from expiry priced at its 50% value: vollib's IV is
    0.0 (the price is within rounding of intrinsic), so the delta is the payoff's, +1
    (it divided by zero before)."""
    now = expiry_instant(EXPIRY) - timedelta(days=1, hours=3)
    years = (expiry_instant(EXPIRY) - now) / timedelta(days=365)
    price = bsm_price(Right.CALL, 100.0, 80.46875, years, 0.5, Rates())
    assert implied_vol(price, Right.CALL, 100.0, 80.46875, years, Rates()) == 0.0
    assert local_delta(Right.CALL, 80.46875, EXPIRY, price, 100.0, now, Rates()) == 1.0
