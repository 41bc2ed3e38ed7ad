"""Local Greeks: Black-Scholes-Merton implied volatility (vollib) and delta.

Used when the broker sends no usable delta. vollib's price and implied
volatility (Jaeckel's LetsBeRational) are imported on first use, not at import
time. Delta is the closed form, computed here: vollib's greeks module imports
scipy for that one formula (half a second and about 70 MB of memory, for the
daemon and every replay); tests hold the two equal.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

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
    if not _vollib:
        from py_lets_be_rational.exceptions import (  # noqa: PLC0415
            AboveMaximumException,
            BelowIntrinsicException,
        )
        from vollib.black_scholes_merton import black_scholes_merton  # noqa: PLC0415
        from vollib.black_scholes_merton.implied_volatility import (  # noqa: PLC0415
            implied_volatility,
        )
        from vollib.helpers.exceptions import (  # noqa: PLC0415
            PriceIsAboveMaximum,
            PriceIsBelowIntrinsic,
        )

        _vollib.update(
            price=black_scholes_merton,
            iv=implied_volatility,
            below=(BelowIntrinsicException, PriceIsBelowIntrinsic),
            above=(AboveMaximumException, PriceIsAboveMaximum),
        )
    return _vollib


def load() -> None:
    """Import vollib now (a tenth of a second), not at the first quote."""
    _lib()


def _flag(right: Right) -> str:
    return "c" if right is Right.CALL else "p"


def bsm_price(
    right: Right, spot: float, strike: float, years: float, sigma: float, rates: Rates
) -> float:
    price = _lib()["price"]
    return float(price(_flag(right), spot, strike, years, rates.rate, sigma, rates.dividend))


def implied_vol(
    price: float, right: Right, spot: float, strike: float, years: float, rates: Rates
) -> float:
    """BSM implied volatility; raises ValueError-kin vollib exceptions at the bounds."""
    iv = _lib()["iv"]
    return float(iv(price, spot, strike, years, rates.rate, rates.dividend, _flag(right)))


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


def local_delta(
    right: Right,
    strike: float,
    expiry: date,
    price: float,
    spot: float,
    now: datetime,
    rates: Rates,
) -> float:
    """Delta of one option from its mid price: IV by BSM, then delta at that IV.

    At or past the expiry instant, and for a price at or below intrinsic value
    (the zero-volatility limit), delta is that of the payoff: -1/+1 in the
    money, 0 out of it. A price above the no-arbitrage maximum has no IV and
    raises :class:`GreeksUnavailable`.
    """
    years = years_to_expiry(expiry, now)
    itm = spot > strike if right is Right.CALL else spot < strike
    payoff_delta = (1.0 if right is Right.CALL else -1.0) if itm else 0.0
    if years <= 0:
        return payoff_delta
    lib = _lib()
    try:
        sigma = implied_vol(price, right, spot, strike, years, rates)
    except lib["below"]:
        return payoff_delta
    except lib["above"] as exc:
        raise GreeksUnavailable(f"price {price} is above the BSM maximum") from exc
    return bsm_delta(right, spot, strike, years, sigma, rates)
