"""A simulated options market: underlyings on seeded paths, option legs quoted by BSM.

Deterministic: the same seed, underlyings, moves and calls give the same
quotes, to the digit. Time is the caller's (a simulated clock may run far
faster than the wall): :meth:`SimMarket.step` moves the market to ``now``
and returns the leg quotes due by then, about every ``interval`` of
simulated time per subscribed leg (jittered, so legs do not tick in step).

- An underlying follows geometric Brownian motion (``drift``, ``vol``),
  stepped at each quote time, plus scripted moves: a ``rally`` or a
  ``selloff`` spreads a log move linearly over its duration, a ``gap`` jumps
  at one instant, ``chop`` swings the price by a sine of the given size and
  period while it lasts.
- A leg's quote is the BSM price at the underlying's implied volatility, with
  a bid/ask of ``spread_pct`` of the price each side (at least one tick),
  rounded outward to the tick: 0.01 below 3.00, 0.05 from there. The model
  delta is attached, as a broker would send it.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Literal

from rules.clock import years_to_expiry
from rules.greeks import Rates, bsm_delta, bsm_price, implied_vol
from rules.model import Quote, Right
from service.ports import LegKey, LegUpdate

MoveKind = Literal["rally", "selloff", "gap", "chop"]
YEAR = timedelta(days=365)
PENNY = Decimal("0.01")
NICKEL = Decimal("0.05")
PENNY_BELOW = Decimal("3.00")


@dataclass(frozen=True)
class Move:
    """A scripted move of an underlying: ``size`` is a fraction (0.03 = 3%)."""

    kind: MoveKind
    start: datetime
    size: float
    duration: timedelta = timedelta(0)  # a gap's is 0
    period: timedelta = timedelta(minutes=10)  # chop only

    def log_offset(self, t: datetime) -> float:
        """This move's contribution to log(price) at ``t``."""
        if t < self.start:
            return 0.0
        if self.kind == "gap":
            return math.log1p(self.size)
        done = min((t - self.start) / self.duration, 1.0) if self.duration else 1.0
        if self.kind == "rally":
            return done * math.log1p(self.size)
        if self.kind == "selloff":
            return done * math.log1p(-self.size)
        if t >= self.start + self.duration:  # chop is over
            return 0.0
        phase = 2 * math.pi * ((t - self.start) / self.period)
        return math.log1p(self.size * math.sin(phase))


@dataclass
class Underlying:
    symbol: str
    spot: float
    vol: float = 0.25  # of the path, annual
    drift: float = 0.0  # annual
    implied_vol: float | None = None  # what options are priced at; the path's vol if None
    moves: list[Move] = field(default_factory=list)


def tick_of(price: Decimal) -> Decimal:
    return PENNY if price < PENNY_BELOW else NICKEL


def _round(x: float, tick: Decimal, rounding: str) -> Decimal:
    return (Decimal(repr(x)) / tick).to_integral_value(rounding) * tick


class _Path:
    """One underlying's price: GBM in log space, scripted moves added on top."""

    def __init__(self, u: Underlying, start: datetime, rng: random.Random) -> None:
        self.u = u
        self.t = start
        self.log_base = math.log(u.spot)  # the GBM part, without scripted moves
        self.rng = rng

    def at(self, t: datetime) -> float:
        """The price at ``t`` (not before the last time asked: paths only go forward)."""
        if t > self.t:
            dt = (t - self.t) / YEAR
            u = self.u
            self.log_base += (u.drift - u.vol * u.vol / 2) * dt + u.vol * math.sqrt(
                dt
            ) * self.rng.gauss(0.0, 1.0)
            self.t = t
        return math.exp(self.log_base + sum(m.log_offset(self.t) for m in self.u.moves))


class SimMarket:
    """Underlyings on seeded paths; quotes for the legs subscribed."""

    def __init__(
        self,
        underlyings: list[Underlying],
        start: datetime,
        *,
        seed: int = 7,
        interval: timedelta = timedelta(milliseconds=250),
        spread_pct: float = 0.03,
        rates: Rates | None = None,
    ) -> None:
        self._rng = random.Random(seed)
        self._paths = {
            u.symbol: _Path(u, start, random.Random(self._rng.getrandbits(64))) for u in underlyings
        }
        self._interval = interval
        self._spread_pct = spread_pct
        self._rates = Rates() if rates is None else rates
        self._due: dict[LegKey, datetime] = {}
        self.now = start

    @property
    def underlyings(self) -> list[str]:
        return list(self._paths)

    def add(self, u: Underlying) -> None:
        """Quote ``u`` too, on its own seeded path from now (an underlying already quoted
        keeps its path)."""
        if u.symbol not in self._paths:
            self._paths[u.symbol] = _Path(u, self.now, random.Random(self._rng.getrandbits(64)))

    def spot(self, symbol: str) -> float:
        """The underlying's price now (moves its path to ``now``)."""
        return self._paths[symbol].at(self.now)

    def shift(self, symbol: str, *, to: float | None = None, by: float | None = None) -> None:
        """A scripted jump of ``symbol``'s price now: to ``to``, or by the fraction ``by``
        (0.02 = 2%); its path goes on from there."""
        path = self._paths[symbol]
        size = to / path.at(self.now) - 1 if to is not None else by or 0.0
        path.u.moves.append(Move("gap", max(self.now, path.t), size))

    def vol(self, symbol: str) -> float:
        """The underlying's volatility: the implied volatility its options are priced at."""
        return self._paths[symbol].u.vol

    def computation(
        self, leg: LegKey, t: datetime, price: float | None
    ) -> tuple[float, float, float, float, float] | None:
        """A broker's option computation for ``leg`` at ``t``: implied volatility, delta,
        gamma, vega (a volatility point's worth) and theta (a day's), at the volatility
        that prices the option at ``price`` (None: at the market's own, the model's).
        None when no volatility gives that price (below intrinsic, past expiry)."""
        from vollib.black_scholes_merton.greeks import analytical  # noqa: PLC0415

        path = self._paths[leg.underlying]
        spot = path.at(max(t, path.t))
        years = years_to_expiry(leg.expiry, t)
        if years <= 0:
            return None
        strike, rates = float(leg.strike), self._rates
        sigma = path.u.implied_vol if path.u.implied_vol is not None else path.u.vol
        if price is not None:
            try:
                sigma = implied_vol(price, leg.right, spot, strike, years, rates)
            except Exception:  # (vollib's: below intrinsic, above the maximum)
                return None
            if not 0 < sigma < 10:
                return None
        flag = "c" if leg.right is Right.CALL else "p"
        args = (flag, spot, strike, years, rates.rate, sigma, rates.dividend)
        return (
            sigma,
            bsm_delta(leg.right, spot, strike, years, sigma, rates),
            float(analytical.gamma(*args)),
            float(analytical.vega(*args)),
            float(analytical.theta(*args)),
        )

    def subscribe(self, leg: LegKey) -> None:
        if leg.underlying not in self._paths:
            raise KeyError(f"no underlying {leg.underlying} in this market")
        self._due.setdefault(leg, self.now)

    def unsubscribe(self, leg: LegKey) -> None:
        self._due.pop(leg, None)

    @property
    def subscribed(self) -> set[LegKey]:
        return set(self._due)

    def skip_to(self, t: datetime) -> None:
        """Move to ``t`` quoting nothing on the way: a market that fell behind its clock
        catches up (as a feed under load conflates), each leg next due at ``t``; the paths
        move on when next asked."""
        if t <= self.now:
            return
        for leg, due in self._due.items():
            if due < t:
                self._due[leg] = t
        self.now = t

    def step(self, now: datetime) -> list[LegUpdate]:
        """Move the market to ``now``: every quote due by then, in time order."""
        if now < self.now:
            raise ValueError(f"the market is at {self.now}, it cannot go back to {now}")
        out: list[tuple[datetime, int, LegUpdate]] = []
        n = 0
        while True:
            due = [(t, leg) for leg, t in self._due.items() if t <= now]
            if not due:
                break
            for t, leg in sorted(due, key=lambda x: (x[0], str(x[1]))):
                out.append((t, n, LegUpdate(leg, self.quote(leg, t))))
                n += 1
                jitter = self._rng.uniform(0.8, 1.2)
                self._due[leg] = t + self._interval * jitter
        self.now = now
        return [u for _, _, u in sorted(out, key=lambda x: (x[0], x[1]))]

    def quote(self, leg: LegKey, t: datetime) -> Quote:
        """The leg's quote at ``t``, from its underlying's price then."""
        path = self._paths[leg.underlying]
        spot = path.at(max(t, path.t))
        u = path.u
        sigma = u.implied_vol if u.implied_vol is not None else u.vol
        years = years_to_expiry(leg.expiry, t)
        strike = float(leg.strike)
        if years <= 0:
            intrinsic = (
                max(spot - strike, 0.0) if leg.right is Right.CALL else max(strike - spot, 0.0)
            )
            price, delta = intrinsic, 0.0
        else:
            price = bsm_price(leg.right, spot, strike, years, sigma, self._rates)
            delta = bsm_delta(leg.right, spot, strike, years, sigma, self._rates)
        mid = Decimal(repr(price))
        tick = tick_of(mid)
        half = max(price * self._spread_pct, float(tick) / 2)
        bid = max(_round(price - half, tick, ROUND_FLOOR), Decimal(0))
        ask = max(_round(price + half, tick, ROUND_CEILING), tick)
        return Quote(bid, ask, t, round(delta, 4), round(spot, 2))
