"""Local Greeks: Black-Scholes-Merton implied volatility (vollib) and delta.

Used when the broker sends no usable delta. vollib's implied volatility
(Jaeckel's LetsBeRational) is imported on first use, not at import time, and
run in vollib's own arithmetic without its numpy wrapper (:func:`implied_vol`).
Delta is the closed form, computed here: vollib's greeks module imports
scipy for that one formula (half a second and about 70 MB of memory, for the
daemon and every replay); tests hold the two equal.

vollib's solver costs about 26 us a call in pure Python. Where the leg's previous
IV is known (:class:`Vols`, held by the position's delta stop), a few Newton
steps from it (:func:`rules.bsm.newton_vol`, compiled) give the same IV to 1e-13
in a fraction of that; where Newton cannot vouch for its answer, vollib solves
as before. The delta stop's decision is never left to that last 1e-13: a Newton
delta that close to the stop is solved again by vollib (:func:`local_delta`).
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from rules.bsm import newton_delta, newton_vol
from rules.clock import years_to_expiry
from rules.model import Right


@dataclass(frozen=True, slots=True)
class Rates:
    """Continuously compounded risk-free rate and dividend yield, annualised."""

    rate: float = 0.04
    dividend: float = 0.0


class GreeksUnavailable(ValueError):
    """The leg's price admits no implied volatility (above the no-arbitrage maximum)."""


_vollib: dict[str, Any] = {}


def _lib() -> dict[str, Any]:
    """LetsBeRational's solver and its bounds' exceptions, imported on first use (5 ms:
    not vollib's BSM module, which imports numpy for two exponentials, 0.15 s)."""
    if not _vollib:
        from py_lets_be_rational import (  # noqa: PLC0415
            implied_volatility_from_a_transformed_rational_guess,
        )
        from py_lets_be_rational.exceptions import (  # noqa: PLC0415
            AboveMaximumException,
            BelowIntrinsicException,
        )

        _vollib.update(
            solve=implied_volatility_from_a_transformed_rational_guess,
            below=BelowIntrinsicException,
            above=AboveMaximumException,
        )
    return _vollib


def load() -> None:
    """Import the solver now, not at the first quote."""
    _lib()


def bsm_price(
    right: Right, spot: float, strike: float, years: float, sigma: float, rates: Rates
) -> float:
    """vollib's BSM price (tests and benchmarks: it imports numpy)."""
    from vollib.black_scholes_merton import black_scholes_merton  # noqa: PLC0415

    flag = "c" if right is Right.CALL else "p"
    return float(black_scholes_merton(flag, spot, strike, years, rates.rate, sigma, rates.dividend))


def implied_vol(
    price: float, right: Right, spot: float, strike: float, years: float, rates: Rates
) -> float:
    """BSM implied volatility as vollib's ``black_scholes_merton.implied_volatility`` gives
    it: Jaeckel's LetsBeRational on the undiscounted price and the forward, in vollib's
    own arithmetic with math.exp for numpy.exp (which differ in the last bit for some
    arguments: a property test holds the two within 1e-9 in IV). Raises LetsBeRational's
    BelowIntrinsicException or AboveMaximumException (ValueError-kin) at the bounds, as
    vollib does."""
    lib = _lib()
    deflater = math.exp(-rates.rate * years)
    forward = spot * math.exp((rates.rate - rates.dividend) * years)
    flag = 1 if right is Right.CALL else -1
    sigma = float(lib["solve"](price / deflater, forward, strike, years, flag))
    if sigma == sys.float_info.max:  # (vollib's own checks: the solver raises first)
        raise lib["above"]
    if sigma == -sys.float_info.max:
        raise lib["below"]
    return sigma


def implied_vol_from(
    previous: float,
    price: float,
    right: Right,
    spot: float,
    strike: float,
    years: float,
    rates: Rates,
) -> float:
    """BSM implied volatility by Newton from ``previous`` (rules.bsm.newton_vol), vollib's
    where Newton does not vouch for its answer (raising as :func:`implied_vol` does)."""
    call = right is Right.CALL
    sigma = newton_vol(price, call, spot, strike, years, rates.rate, rates.dividend, previous)
    return implied_vol(price, right, spot, strike, years, rates) if math.isnan(sigma) else sigma


def bsm_delta(
    right: Right, spot: float, strike: float, years: float, sigma: float, rates: Rates
) -> float:
    """e^(-qT) N(d1) for a call, -e^(-qT) N(-d1) for a put (Hull, ch. 19)."""
    d1 = (math.log(spot / strike) + (rates.rate - rates.dividend + sigma * sigma / 2) * years) / (
        sigma * math.sqrt(years)
    )
    carry = math.exp(-rates.dividend * years)
    return carry * _normal_cdf(d1) if right is Right.CALL else -carry * _normal_cdf(-d1)


_SQRT2 = math.sqrt(2.0)


def _normal_cdf(x: float) -> float:
    return 0.5 * math.erfc(-x / _SQRT2)


class Vols:
    """Each leg's last implied volatility (NaN: none yet), where Newton starts next time.

    One per position, held by its delta stop (the rule armed for it) and read by
    its watch's screen. A memo: it changes how long a delta takes, never its
    value beyond 1e-13 in IV, nor any decision (:func:`local_delta`).
    """

    __slots__ = ("last",)

    def __init__(self, legs: int) -> None:
        self.last = [math.nan] * legs


def local_delta(
    right: Right,
    strike: float,
    expiry: date,
    price: float,
    spot: float,
    now: datetime,
    rates: Rates,
    *,
    vols: Vols | None = None,
    leg: int = 0,
    stop: float = math.nan,
) -> float:
    """Delta of one option from its mid price: IV by BSM, then delta at that IV.

    At or past the expiry instant, and for a price at or below intrinsic value
    (the zero-volatility limit, where vollib answers an IV of 0 too), delta is
    that of the payoff: -1/+1 in the money, 0 out of it. A price above the
    no-arbitrage maximum has no IV and raises :class:`GreeksUnavailable`.

    With ``vols``, the IV is Newton's from ``vols.last[leg]`` where Newton vouches
    for it (else vollib's), and is kept there for the next time. A Newton delta
    whose magnitude is within a hair of ``stop`` (the delta stop's threshold) is
    computed again from vollib's IV, so ``|delta| >= stop`` is decided exactly as
    without ``vols``.
    """
    years = years_to_expiry(expiry, now)
    call = right is Right.CALL
    if years <= 0:
        return _payoff_delta(call, spot, strike)
    if vols is not None:
        rate = (rates.rate, rates.dividend)
        delta, sigma = newton_delta(price, call, spot, strike, years, rate, vols.last[leg], stop)
        if not math.isnan(delta):  # Newton vouches for it, and it is not at the stop
            vols.last[leg] = sigma
            return delta
    lib = _lib()
    try:
        sigma = implied_vol(price, right, spot, strike, years, rates)
    except lib["below"]:
        return _payoff_delta(call, spot, strike)
    except lib["above"] as exc:
        raise GreeksUnavailable(f"price {price} is above the BSM maximum") from exc
    if not sigma > 0.0:  # vollib's zero volatility: a price within rounding of intrinsic
        return _payoff_delta(call, spot, strike)
    if vols is not None:
        vols.last[leg] = sigma
    return bsm_delta(right, spot, strike, years, sigma, rates)


def _payoff_delta(call: bool, spot: float, strike: float) -> float:
    """The payoff's delta: -1/+1 in the money, 0 out of it."""
    if call:
        return 1.0 if spot > strike else 0.0
    return -1.0 if spot < strike else 0.0
