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
from datetime import date, datetime, timedelta
from typing import Final

from rules.clock import years_to_expiry

NO_VOL: Final = math.nan  # "no answer": the caller asks vollib
_SQRT2: Final = math.sqrt(2.0)
_INV_SQRT_2PI: Final = 1.0 / math.sqrt(2.0 * math.pi)
_EPS: Final = 2.220446049250313e-16
_TOL: Final = 1e-13  # in sigma: Newton's last step and its rounding, each
_STEPS: Final = 8


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


# A Newton delta within this of the stop (plus 100 x Newton's 1e-13 in IV times the
# delta's slope in sigma) is not answered: vollib's delta decides there.
_NEAR_STOP: Final = 1e-9


def newton_delta(
    price: float,
    call: bool,
    spot: float,
    strike: float,
    years: float,
    rates: tuple[float, float],
    guess: float,
    stop: float,
) -> tuple[float, float]:
    """(delta, IV) of the option priced ``price``, the IV by :func:`newton_vol` from
    ``guess``, the delta as rules.greeks.bsm_delta computes it; (NaN, NaN) where Newton
    does not answer or the delta's magnitude is within a hair of ``stop`` (NaN: none),
    so that whether ``|delta| >= stop`` is left to vollib's IV there."""
    rate, dividend = rates
    sigma = newton_vol(price, call, spot, strike, years, rate, dividend, guess)
    if math.isnan(sigma):
        return NO_VOL, NO_VOL
    root = math.sqrt(years)
    d1 = (math.log(spot / strike) + (rate - dividend + sigma * sigma / 2) * years) / (sigma * root)
    carry = math.exp(-dividend * years)
    delta = carry * normal_cdf(d1) if call else -carry * normal_cdf(-d1)
    # |d delta / d sigma| = e^(-qT) phi(d1) |d2| / sigma
    slope = carry * _INV_SQRT_2PI * math.exp(-0.5 * d1 * d1) * abs(d1 - sigma * root) / sigma
    if abs(abs(delta) - stop) <= _NEAR_STOP + 1e-11 * slope:  # (a NaN stop: never)
        return NO_VOL, NO_VOL
    return delta, sigma


# The local screen ------------------------------------------------------------------
#
# A short leg's local delta is delta(S, sigma, T) with sigma the IV of its mid P at
# spot S and time T. For an out-of-the-money short put (S > K), in Black's terms,
# |delta| = e^(-qT) N(-d1), d1 = a/v + v/2 with a = ln(F/K) > 0, v = sigma sqrt(T):
# - d1 grows with F (so with S): |delta| falls as the spot rises;
# - over 0 < v <= V, a/v + v/2 is least at v = V while V <= sqrt(2a), else at
#   v = sqrt(2a), where it is sqrt(2a) (|delta| is not monotone in sigma: it comes
#   back down for a huge IV, but this bound holds on the whole interval).
# So on the box S >= edge (edge > K), sigma <= high, T in [T1, T0] (the window):
#   |delta| <= max_T e^(-qT) N(-d1*), d1* = bound above with a = ln(edge min_T g / K),
#   g = e^((r-q)T) and V = high sqrt(T0).
# A short call (S < K) is the mirror: delta = e^(-qT) N(d1) with a = ln(F/K) < 0 and
# d1 = a/v + v/2 increasing in v and in F: on S <= edge (< K), sigma <= high,
#   delta <= max_T e^(-qT) N(a/V + V/2), a = ln(edge max_T g / K).
# The box is accepted when that bound is below the stop by _MARGIN.
#
# Its sigma bound is checked on the price, with no IV solved: Black's price b(F, K, v)
# rises with v, falls with F for a put and rises with F for a call, so over the window
#   P(S, high', T) >= min_T e^(-rT) b(S max_T g, K, high' sqrt(T1))   (a put; a call
# takes S min_T g), high' = high (1 - 1e-6). A mid below that cap (less 1e-9 of it) has
# an IV below high': no IV can be solved from it that reaches the stop. A mid at or
# below intrinsic has the payoff's delta, 0 out of the money (S beyond the edge). A
# mid above the maximum has no delta (the rule does not judge it): the cap is below it.

_MARGIN: Final = 1e-9  # the bound must clear the stop by this (rounding, Newton's 1e-13)
_SLACK: Final = 1e-6  # the cap's sigma: a hair under the box's (vollib's and Newton's rounding)
# (spot distance, sigma headroom) of the boxes tried, widest first (not Final: mypyc 2.4 keeps a
# Final tuple of floats unboxed, and reads it back as unset)
_SIZES = ((0.08, 0.5), (0.04, 0.30), (0.02, 0.15), (0.01, 0.07), (0.004, 0.03), (0.0015, 0.012))


class LocalBand:
    """Quotes of one short leg on which its local delta stays inside the stop (the box
    above): the spot beyond ``edge`` and the mid below the cap at that spot. Valid
    over the window it was built for (the screen's deadline ends it)."""

    __slots__ = ("call", "disc", "edge", "grow", "strike", "v_low")

    def __init__(
        self, call: bool, strike: float, edge: float, grow: float, disc: float, v_low: float
    ) -> None:
        self.call = call
        self.strike = strike
        self.edge = edge  # a put: spot >= edge; a call: 0 < spot <= edge
        self.grow = grow  # the forward's factor that lowers the cap most over the window
        self.disc = disc  # the least discount over the window
        self.v_low = v_low  # high' sqrt(T1)

    def admits(self, spot: float, mid: float) -> bool:
        """The leg quoting ``mid`` with the underlying at ``spot`` stays inside the stop."""
        call = self.call
        if call:
            if not 0.0 < spot <= self.edge:
                return False
        elif not spot >= self.edge:
            return False
        cap = self.disc * black(call, spot * self.grow, self.strike, self.v_low)
        return mid < cap * (1.0 - _MARGIN)  # (a NaN cap, an infinite spot: not admitted)


def local_band(
    call: bool,
    strike: float,
    spot: float,
    sigma: float,
    years: tuple[float, float],
    rate: float,
    dividend: float,
    stop: float,
) -> LocalBand | None:
    """The widest box of _SIZES around ``spot`` and ``sigma`` (a short leg's latest) whose
    delta bound clears ``stop`` over the window ``years`` = (T0, T1), T0 >= T1 > 0; None
    when none does (the leg is near its stop, or in the money)."""
    t0, t1 = years
    if not (sigma > 0.0 and spot > 0.0 and t0 >= t1 > 0.0):
        return None
    g0, g1 = math.exp((rate - dividend) * t0), math.exp((rate - dividend) * t1)
    carry = max(math.exp(-dividend * t0), math.exp(-dividend * t1))
    disc = min(math.exp(-rate * t0), math.exp(-rate * t1))
    for far, headroom in _SIZES:
        high = sigma * (1.0 + headroom)
        big_v = high * math.sqrt(t0)
        if call:
            edge = spot * (1.0 + far)
            a = math.log(edge * max(g0, g1) / strike)
            if not (edge < strike and a < 0.0):
                continue
            bound = carry * normal_cdf(a / big_v + 0.5 * big_v)
        else:
            edge = spot * (1.0 - far)
            a = math.log(edge * min(g0, g1) / strike)
            if not (edge > strike and a > 0.0):
                continue
            d1 = a / big_v + 0.5 * big_v if big_v * big_v <= 2.0 * a else math.sqrt(2.0 * a)
            bound = carry * normal_cdf(-d1)
        if bound < stop - _MARGIN:
            grow = min(g0, g1) if call else max(g0, g1)
            v_low = high * (1.0 - _SLACK) * math.sqrt(t1)
            return LocalBand(call, strike, edge, grow, disc, v_low)
    return None


_WINDOW: Final = 0.05  # of the time left to expiry, at most three days: a band's life
_LONGEST: Final = timedelta(days=3)
# a band holds from this before it is built (a clock stepped back)
_BEFORE: Final = timedelta(minutes=1)


def leg_band(
    call: bool,
    strike: float,
    expiry: date,
    quoted: tuple[float, float, float],
    now: datetime,
    rates: tuple[float, float],
    stop: float,
) -> tuple[LocalBand, datetime] | None:
    """A short leg's :class:`LocalBand` from ``now`` and its end (a whole second, so that
    a row's second before it is a row before it), for the leg's latest quote
    ``quoted`` = (spot, mid, its last IV), which the band must admit; None: none. The
    box covers a minute before ``now`` too: the screens bound a quote's time above
    (their deadline) only, and a live clock may step back a little."""
    spot, mid, sigma = quoted
    t0 = years_to_expiry(expiry, now - _BEFORE)
    ends = (now + min(_LONGEST, timedelta(days=365 * _WINDOW * t0))).replace(microsecond=0)
    t1 = years_to_expiry(expiry, ends)
    if not (t1 > 0.0 and ends > now):
        return None
    band = local_band(call, strike, spot, sigma, (t0, t1), rates[0], rates[1], stop)
    if band is None or not band.admits(spot, mid):
        return None
    return band, ends
