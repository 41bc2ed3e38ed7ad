"""The market: underlyings, their price history before the stream, and BSM prices."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from statistics import NormalDist

import numpy as np
from numpy.typing import NDArray
from scipy.special import ndtr

from rules.clock import OPEN, new_york
from rules.greeks import Rates

# fmt: off
TICKERS = [
    "SPY", "QQQ", "IWM", "DIA", "AAPL", "MSFT", "NVDA", "AMZN", "GOOGL", "META", "TSLA", "AMD",
    "NFLX", "JPM", "BAC", "XOM", "CVX", "KO", "PEP", "WMT", "COST", "HD", "DIS", "INTC", "CSCO",
    "ORCL", "CRM", "ADBE", "AVGO", "QCOM", "TXN", "MU", "PYPL", "UBER", "SHOP", "BA", "CAT",
    "GE", "F", "GM", "T", "VZ", "PFE", "MRK", "JNJ", "UNH", "V", "MA", "GLD", "TLT",
]
# fmt: on
RATES = Rates()  # the local Greeks' defaults, so a local delta agrees with ours
SESSION_S = 23_400  # 09:30-16:00
SESSION_MS = SESSION_S * 1000
DAY_MS = 86_400_000
YEAR_S = 365 * 86_400  # rules.clock.years_to_expiry: calendar years of 365 days
TRADING_YEAR_S = 252 * SESSION_S  # diffusion runs in trading time
CALM, RALLY, SELLOFF, GAP_DOWN, GAP_UP = "calm", "rally", "selloff", "gap_down", "gap_up"
NORMAL = NormalDist()

Floats = NDArray[np.float64]
Ints = NDArray[np.int64]


def bsm(
    is_put: NDArray[np.bool_], s: Floats, k: Floats, t: Floats, sigma: Floats
) -> tuple[Floats, Floats]:
    """Vectorised Black-Scholes-Merton price and delta."""
    r, q = RATES.rate, RATES.dividend
    sq = sigma * np.sqrt(t)
    d1 = (np.log(s / k) + (r - q + 0.5 * sigma * sigma) * t) / sq
    d2 = d1 - sq
    dq, dr = np.exp(-q * t), np.exp(-r * t)
    call = s * dq * ndtr(d1) - k * dr * ndtr(d2)
    put = k * dr * ndtr(-d2) - s * dq * ndtr(-d1)
    price = np.maximum(np.where(is_put, put, call), 0.0)
    delta = np.where(is_put, dq * (ndtr(d1) - 1.0), dq * ndtr(d1))
    return price, delta


def quote_cents(price: Floats, frac: Floats) -> tuple[Ints, Ints]:
    """Bid and ask in cents around the model price: width max(0.01, frac * price)."""
    half = np.maximum(0.01, frac * price) / 2
    bid = np.maximum(np.floor((price - half) * 100 + 1e-9), 0).astype(np.int64)
    ask = np.ceil((price + half) * 100 - 1e-9).astype(np.int64)
    return bid, np.maximum(ask, bid + 1)


def strike_text(k10: int) -> str:
    """A strike held in tenths, written as the positions file writes it: 450 or 452.5."""
    return str(k10 // 10) if k10 % 10 == 0 else f"{k10 // 10}.{k10 % 10}"


def trading_days(start: date, n: int) -> list[date]:
    days: list[date] = []
    d = start
    while len(days) < n:
        if d.weekday() < 5:
            days.append(d)
        d += timedelta(days=1)
    return days


def session_open(d: date) -> datetime:
    return datetime.combine(d, OPEN, tzinfo=new_york())


@dataclass(slots=True)
class Underlyings:
    names: list[str]
    s0: Floats  # price at the first session's open
    iv: Floats  # implied volatility, one per underlying (no smile)
    vol: Floats  # realised volatility of the diffusion
    frac: Floats  # quoted width as a fraction of the option's price
    step10: Ints  # strike grid in tenths of a point
    scenario: list[str]
    drift: Floats  # scripted log move per session
    jump: Floats  # scripted log gap
    jump_day: Ints  # session of the gap (-1: none)
    jump_second: Ints  # second of that session (0: at the open, an overnight gap)


def make_underlyings(rng: np.random.Generator, n: int, days: int) -> Underlyings:
    names = [*TICKERS[:n], *(f"U{i:03d}" for i in range(len(TICKERS), n))]
    s0 = np.round(np.exp(rng.uniform(math.log(20), math.log(600), n)), 2)
    iv = rng.uniform(0.15, 0.60, n)
    vol = iv * rng.uniform(0.60, 0.85, n)
    frac = rng.uniform(0.03, 0.08, n)
    step10 = np.select([s0 < 25, s0 < 75, s0 < 200], [5, 10, 25], 50).astype(np.int64)
    # scripted underlyings: at least one of each kind, about 30% in all
    kinds = [RALLY] * max(1, n // 10) + [SELLOFF] * max(1, n // 10)
    kinds += [GAP_DOWN] * max(1, n // 16) + [GAP_UP] * max(1, n // 25)
    scenario = [CALM] * n
    for i, u in enumerate(rng.permutation(n)[: len(kinds)]):
        scenario[int(u)] = kinds[i]
    one_sd = iv * math.sqrt(21 / 365)  # a one-sigma move over three weeks
    size = rng.uniform(1.4, 2.0, n) * one_sd
    gap = rng.uniform(1.9, 2.6, n) * one_sd
    drift = np.zeros(n)
    jump = np.zeros(n)
    jump_day = np.full(n, -1, dtype=np.int64)
    jump_second = np.zeros(n, dtype=np.int64)
    for u, kind in enumerate(scenario):
        if kind in (RALLY, SELLOFF):
            drift[u] = (size[u] if kind == RALLY else -size[u]) / days
        elif kind in (GAP_DOWN, GAP_UP):
            jump[u] = -gap[u] if kind == GAP_DOWN else gap[u]
            if days > 1:  # an overnight gap before a later session
                jump_day[u] = rng.integers(1, days)
            else:  # news during the only session
                jump_day[u], jump_second[u] = 0, rng.integers(5_400, 18_000)
    return Underlyings(
        names, s0, iv, vol, frac, step10, scenario, drift, jump, jump_day, jump_second
    )


def price_history(rng: np.random.Generator, und: Underlyings, day0: date) -> dict[date, Floats]:
    """Mid-session prices of the weekdays before the stream, walked back from s0."""
    hist: dict[date, Floats] = {}
    log_s = np.log(und.s0)
    d = day0
    for _ in range(70):
        d -= timedelta(days=1)
        if d.weekday() >= 5:
            continue
        log_s = log_s - und.vol * rng.standard_normal(len(log_s)) / math.sqrt(252)
        hist[d] = np.exp(log_s)
    return hist


def strike_for_delta(is_put: bool, delta: float, s: float, t: float, iv: float) -> float:
    """The strike whose BSM |delta| is ``delta`` (q = 0 up to the dividend factor)."""
    d1 = NORMAL.inv_cdf(1 - delta) if is_put else NORMAL.inv_cdf(delta)
    return s * math.exp(-d1 * iv * math.sqrt(t) + (RATES.rate + 0.5 * iv * iv) * t)
