"""Black-Scholes-Merton in floats, for the local Greeks' hot path (compiled by mypyc).

Two things live here, both in the Black form vollib's solver uses (the price
undiscounted by ``D = e^(-rT)``, the forward ``F = S e^((r-q)T)``, the total
volatility ``v = sigma sqrt(T)``, ``d1 = ln(F/K)/v + v/2``, ``d2 = d1 - v``):

- :func:`newton_vol`: the implied volatility by Newton's method from a guess (the
  leg's previous IV), with Black's analytic vega ``F phi(d1)``. It answers only
  when it can vouch for its root to 1e-13 in sigma: the last step below that, and
  the rounding of the price (a difference of two terms) divided by vega below
  that too. Anything else (no guess, a price at or beyond intrinsic or the
  maximum, a flat vega, no convergence in a few steps) gives NaN, and the caller
  asks vollib (:func:`rules.greeks.implied_vol`).
- :class:`LocalBand`: where a short leg's local delta is provably inside the stop,
  so that a screen can admit its quotes without solving any IV (below).

Pure: no I/O, no clock.
"""

from __future__ import annotations

import math

NO_VOL = math.nan  # "no answer": the caller asks vollib
_SQRT2 = math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_EPS = 2.220446049250313e-16
_TOL = 1e-13  # in sigma: Newton's last step and its rounding, each
_STEPS = 8


def normal_cdf(x: float) -> float:
    return 0.5 * math.erfc(-x / _SQRT2)


def black(call: bool, forward: float, strike: float, v: float) -> float:
    """Black's undiscounted price at total volatility ``v`` (> 0)."""
    d1 = math.log(forward / strike) / v + 0.5 * v
    if call:
        return forward * normal_cdf(d1) - strike * normal_cdf(d1 - v)
    return strike * normal_cdf(v - d1) - forward * normal_cdf(-d1)


def newton_vol(
    price: float,
    call: bool,
    spot: float,
    strike: float,
    years: float,
    rate: float,
    dividend: float,
    guess: float,
) -> float:
    """The BSM implied volatility of ``price`` by Newton from ``guess``; NaN when Newton
    cannot vouch for it to 1e-13 (see the module's docstring)."""
    if not (guess > 0.0 and years > 0.0 and spot > 0.0 and strike > 0.0 and price > 0.0):
        return NO_VOL
    forward = spot * math.exp((rate - dividend) * years)
    target = price / math.exp(-rate * years)
    intrinsic = forward - strike if call else strike - forward
    top = forward if call else strike
    if not (target > intrinsic and target < top):  # (intrinsic may be negative: OTM)
        return NO_VOL  # below intrinsic or above the maximum: vollib says which
    root = math.sqrt(years)
    x = math.log(forward / strike)
    v = guess * root
    for _ in range(_STEPS):
        d1 = x / v + 0.5 * v
        if call:
            plus, minus = forward * normal_cdf(d1), strike * normal_cdf(d1 - v)
        else:
            plus, minus = strike * normal_cdf(v - d1), forward * normal_cdf(-d1)
        vega = forward * _INV_SQRT_2PI * math.exp(-0.5 * d1 * d1)
        if not vega > 0.0:
            return NO_VOL
        step = (plus - minus - target) / vega
        v -= step
        if not v > 0.0:
            return NO_VOL
        if abs(step) <= _TOL * root:
            rounding = 4.0 * _EPS * (plus + minus + target) / (vega * root)
            return v / root if rounding <= _TOL else NO_VOL
    return NO_VOL


def delta_slope(call: bool, spot: float, strike: float, years: float, sigma: float,
                rate: float, dividend: float) -> float:  # fmt: skip
    """|d delta / d sigma| at sigma (Black: e^(-qT) phi(d1) |d2| / sigma)."""
    root = math.sqrt(years)
    v = sigma * root
    d1 = (math.log(spot / strike) + (rate - dividend) * years) / v + 0.5 * v
    phi = _INV_SQRT_2PI * math.exp(-0.5 * d1 * d1)
    return math.exp(-dividend * years) * phi * abs(d1 - v) / sigma
