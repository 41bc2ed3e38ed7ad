"""rules.bsm.LocalBand: a quote it admits has a local delta strictly inside the stop.

The band is the screens' proof for local Greeks (docs/performance.md, Local Greeks):
here it is checked directly, off any stream. Boxes are built by ``local_band`` over
random legs, rates and windows; quotes are priced by vollib at random spots beyond
(and short of) the edge, volatilities up to twice the box's and instants anywhere in
the window; whatever the band admits, vollib's local delta is inside the stop.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import assume, event, given, settings
from hypothesis import strategies as st

from rules.bsm import LocalBand, local_band
from rules.clock import expiry_instant, years_to_expiry
from rules.greeks import GreeksUnavailable, Rates, bsm_price, local_delta
from rules.model import Right
from tests.factories import EXPIRY

END = expiry_instant(EXPIRY)


@settings(max_examples=1500, deadline=None)
@given(
    call=st.booleans(),
    otm=st.floats(min_value=0.01, max_value=0.4),
    sigma=st.floats(min_value=0.05, max_value=1.5),
    days=st.floats(min_value=0.5, max_value=120),
    window=st.floats(min_value=0.0, max_value=0.1),
    rate=st.floats(min_value=-0.01, max_value=0.12),
    dividend=st.floats(min_value=0.0, max_value=0.06),
    stop=st.sampled_from([0.15, 0.30, 0.45]),
    beyond=st.floats(min_value=-0.02, max_value=0.3),
    vol=st.floats(min_value=0.0, max_value=2.0),
    when=st.floats(min_value=0.0, max_value=1.0),
)
def test_what_a_local_band_admits_is_inside_the_stop(
    call: bool,
    otm: float,
    sigma: float,
    days: float,
    window: float,
    rate: float,
    dividend: float,
    stop: float,
    beyond: float,
    vol: float,
    when: float,
) -> None:
    """Admitted (spot, mid) at any instant of the window: |local delta| < stop."""
    right, strike, rates = (Right.CALL if call else Right.PUT), 100.0, Rates(rate, dividend)
    spot = strike / (1 + otm) if call else strike * (1 + otm)
    start = END - timedelta(days=days)
    end = start + timedelta(days=days * window)
    t0, t1 = years_to_expiry(EXPIRY, start), years_to_expiry(EXPIRY, end)
    assume(t1 > 0)
    band = local_band(call, strike, spot, sigma, (t0, t1), rate, dividend, stop)
    if band is None:
        event("no band")
        return
    at = start + (end - start) * when
    row_spot = band.edge * ((1 - beyond) if call else (1 + beyond))
    high = band.v_low / (years_to_expiry(EXPIRY, end) ** 0.5)  # the cap's sigma
    years = years_to_expiry(EXPIRY, at)
    price = bsm_price(right, row_spot, strike, years, high * vol, rates)
    assume(price > 0)
    if not band.admits(row_spot, price):
        event("refused")
        return
    event("admitted")
    try:
        delta = local_delta(right, strike, EXPIRY, price, row_spot, at, rates)
    except GreeksUnavailable:
        return  # (no delta: the rule does not judge it)
    assert abs(delta) < stop, (band_of(band), row_spot, price, delta, at)


def band_of(band: LocalBand) -> tuple[float, ...]:
    return (band.edge, band.grow, band.disc, band.v_low)


def test_a_band_admits_its_own_quote_and_refuses_past_its_edge() -> None:
    """A 25-vol put struck 90 with the stock at 100, a month out: a band, which admits
    the quote it was built on and refuses the spot below its edge or a far dearer mid."""
    start = datetime(2025, 5, 21, 15, 0, tzinfo=UTC)
    t0 = years_to_expiry(EXPIRY, start)
    t1 = years_to_expiry(EXPIRY, start + timedelta(hours=12))
    band = local_band(False, 90.0, 100.0, 0.25, (t0, t1), 0.04, 0.0, 0.30)
    assert band is not None
    mid = bsm_price(Right.PUT, 100.0, 90.0, t0, 0.25, Rates())
    assert band.admits(100.0, mid)
    assert not band.admits(band.edge * (1 - 1e-9), mid)
    assert not band.admits(100.0, mid * 3)
