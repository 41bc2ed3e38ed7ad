"""Seeded benchmark data for ``spreadwatch replay``: DIR/positions.toml and DIR/ticks.csv.

    .venv/bin/python benchmarks/generate.py --out benchmarks/data [--seed 7]
        [--positions 1000] [--underlyings 50] [--updates 1000000] [--days 5] [--no-delta]

The same arguments give the same bytes. The market:

- Underlyings (20..600) follow geometric Brownian motion through regular hours
  (09:30-16:00 America/New_York) of consecutive weekdays from ``--start``, with a
  realised volatility below their implied one (premium decays). A few are
  scripted so that every exit type happens: steady rallies and sell-offs (profit
  targets on one side, delta stops on the other) and gaps toward short strikes
  (loss stops).
- Every leg is priced by Black-Scholes-Merton at its underlying's one (smile-free)
  implied volatility; bid/ask sit around the model price, 3-8% wide, on 0.01 ticks.
- Positions were opened days to weeks before the stream at 0.15-0.25 short delta,
  for the model mid, and are all still open when it starts (no trigger holds).
  Expiries are chosen so that some time stops fall inside the stream.
- Each session opens with a burst that quotes every leg, highest |delta| first
  (so a short leg is requoted before its long leg after a gap). A small set of
  legs that between them cover every position (mostly short legs) is quoted
  every ~100 s, so that no position goes 120 s (stale_after) without a row; the
  other rows are spread over the session, more near the open and close, each
  leg's rows evenly spaced with jitter, legs held by more positions more often.
  With too few --updates for that pace, staleness episodes appear (reported).
- With --days 1 the time stops that "fall inside the stream" fall on its only
  day, so they fire at the first evaluation.

After writing, the script replays the rows with a cheap vectorised model of the
rules (mid marks, fills at the mark, first match wins: loss, delta, time,
profit; no evaluation while a leg's quote predates the session or the mid
debit is outside [0, width], as rules.machine holds) and prints how many
positions can hit, and do hit, each exit type. It exits 1 when a stop type or
a PRIMARY profit target never fires. The model delta stands in for the local
one with --no-delta.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
import tomllib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from pathlib import Path
from statistics import NormalDist
from typing import TextIO

import numpy as np
from numpy.typing import NDArray
from scipy.special import ndtr

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from rules.books import DEFAULT_BOOKS, BookPolicy  # noqa: E402
from rules.clock import OPEN, expiry_instant, new_york  # noqa: E402
from rules.greeks import Rates  # noqa: E402
from rules.model import Leg, Position, Right, Side, Strategy, check_position  # noqa: E402
from rules.plan import make_plan  # noqa: E402

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
MULTIPLIER = 100
BURST_MS = 2_000  # the opening burst's window
HEARTBEAT_S = 100  # the heartbeat legs' pace; with the jitter no gap reaches 120 s
CALM, RALLY, SELLOFF, GAP_DOWN, GAP_UP = "calm", "rally", "selloff", "gap_down", "gap_up"
HEADER = "ts,underlying,expiry,right,strike,bid,ask,delta,underlying_price\n"
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


@dataclass(slots=True)
class Made:
    """One generated position and what the self-check needs of it."""

    position: Position
    contracts_idx: list[int]  # contract index per leg
    signs: list[int]  # +1 short, -1 long


def expiry_choices(
    book: BookPolicy, days: list[date]
) -> tuple[list[tuple[date, date]], list[tuple[date, date]]]:
    """(opened date, expiry) pairs whose time stop falls inside the stream, and after it."""
    first, last = days[0], days[-1]
    lo = first + timedelta(days=1) if len(days) > 1 else first
    max_dte = max(60, (last - first).days + 45)
    opens = [first - timedelta(days=n) for n in range(3, 43)]
    opens = [o for o in opens if o.weekday() < 5]
    fridays = [last + timedelta(days=n) for n in range(1, max_dte + 8)]
    fridays = [e for e in fridays if e.weekday() == 4]
    inside: list[tuple[date, date]] = []
    after: list[tuple[date, date]] = []
    for o in opens:
        for e in fridays:
            initial = (e - o).days
            if not 14 <= initial <= max_dte:
                continue
            by_fraction = int((initial * book.time_stop_fraction).to_integral_value(ROUND_FLOOR))
            stop_date = e - timedelta(days=min(book.time_stop_dte, by_fraction))
            if lo <= stop_date <= last:
                inside.append((o, e))
            elif stop_date > last:
                after.append((o, e))
    return inside, after


def strike_for_delta(is_put: bool, delta: float, s: float, t: float, iv: float) -> float:
    """The strike whose BSM |delta| is ``delta`` (q = 0 up to the dividend factor)."""
    d1 = NORMAL.inv_cdf(1 - delta) if is_put else NORMAL.inv_cdf(delta)
    return s * math.exp(-d1 * iv * math.sqrt(t) + (RATES.rate + 0.5 * iv * iv) * t)


def make_positions(
    rng: np.random.Generator,
    n: int,
    und: Underlyings,
    days: list[date],
    hist: dict[date, Floats],
) -> tuple[list[Made], dict[tuple[int, date, str, int], int]]:
    choices = {name: expiry_choices(book, days) for name, book in DEFAULT_BOOKS.items()}
    start = session_open(days[0])
    contracts: dict[tuple[int, date, str, int], int] = {}
    made: list[Made] = []
    owner = np.resize(rng.permutation(len(und.names)), n)
    rng.shuffle(owner)
    for i in range(n):
        u = int(owner[i])
        book_name = "PRIMARY" if rng.random() < 0.8 else "INCOME_POP"
        book = DEFAULT_BOOKS[book_name]
        strategy = [Strategy.PUT_CREDIT, Strategy.CALL_CREDIT, Strategy.IRON_CONDOR][
            int(rng.choice(3, p=[0.4, 0.25, 0.35]))
        ]
        qty = int(rng.integers(1, 3)) if rng.random() < 0.15 else int(rng.integers(3, 21))
        inside, after = choices[book_name]
        drawn = inside if (rng.random() < 0.25 and inside) or not after else after
        other = after if drawn is inside else inside
        recent = [(o, e) for o, e in inside + after if (days[0] - o).days <= 8]
        turned = (
            Strategy.PUT_CREDIT if strategy is not Strategy.PUT_CREDIT else Strategy.CALL_CREDIT
        )
        # the drawn choice first; then fallbacks for an underlying that has moved far since
        # the older opening dates (a short strike now too near, or the target already met)
        stages = [
            (drawn, strategy),
            (other, strategy),
            (recent, strategy),
            (other, turned),
            (recent, Strategy.PUT_CREDIT),
            (recent, Strategy.CALL_CREDIT),
        ]
        stages = [(pool, kind) for pool, kind in stages if pool]
        step, iv = int(und.step10[u]), float(und.iv[u])
        for attempt in range(150 * len(stages)):
            pool, strategy = stages[attempt // 150]
            opened_on, expiry = pool[int(rng.integers(len(pool)))]
            minute = int(rng.integers(15, 375))
            opened_at = session_open(opened_on) + timedelta(minutes=minute)
            spot = float(hist[opened_on][u]) * math.exp(
                float(rng.normal(0, und.vol[u] * math.sqrt(0.5 / 252)))
            )
            t_open = (expiry_instant(expiry) - opened_at) / timedelta(days=365)
            t0 = (expiry_instant(expiry) - start) / timedelta(days=365)
            sides = {
                Strategy.PUT_CREDIT: ["P"],
                Strategy.CALL_CREDIT: ["C"],
                Strategy.IRON_CONDOR: ["P", "C"],
            }[strategy]
            legs: list[tuple[str, int, int]] = []  # (right, strike in tenths, sign)
            for right in sides:
                is_put = right == "P"
                k = strike_for_delta(is_put, float(rng.uniform(0.15, 0.25)), spot, t_open, iv)
                short10 = round(k * 10 / step) * step
                width = int(rng.integers(1, 5)) * step
                long10 = short10 - width if is_put else short10 + width
                legs += [(right, short10, 1), (right, long10, -1)]
            if min(k10 for _, k10, _ in legs) <= 0:
                continue
            is_put = np.array([r == "P" for r, _, _ in legs])
            strikes = np.array([k10 / 10 for _, k10, _ in legs])
            signs = np.array([sg for _, _, sg in legs], dtype=float)
            sig = np.full(len(legs), iv)
            p_open, d_open = bsm(
                is_put, np.full(len(legs), spot), strikes, np.full(len(legs), t_open), sig
            )
            credit_c = round(float(signs @ p_open) * 100)
            width_c = max(abs(legs[j][1] - legs[j + 1][1]) for j in range(0, len(legs), 2)) * 10
            short_d_open = np.abs(d_open[signs > 0])
            if not (
                5 <= credit_c < width_c and np.all((short_d_open > 0.1) & (short_d_open < 0.3))
            ):
                continue
            # still open when the stream starts: no profit target, stop or delta stop holds
            s_start = np.full(len(legs), float(und.s0[u]))
            p0, d0 = bsm(is_put, s_start, strikes, np.full(len(legs), t0), sig)
            ratio = float(signs @ p0) * 100 / credit_c
            first_target = float(book.targets[0])
            if not (1 - first_target + 0.05 < ratio < 1.1 and np.all(np.abs(d0[signs > 0]) < 0.25)):
                continue
            position = Position(
                id=f"P{i + 1:04d}",
                book=book_name,
                underlying=und.names[u],
                strategy=strategy,
                legs=tuple(
                    Leg(
                        Right(r),
                        Decimal(strike_text(k10)),
                        expiry,
                        Side.SHORT if sg > 0 else Side.LONG,
                    )
                    for r, k10, sg in legs
                ),
                contracts=qty,
                entry_credit=Decimal(credit_c) / 100,
                opened_at=opened_at,
                multiplier=MULTIPLIER,
            )
            check_position(position)
            idx = [contracts.setdefault((u, expiry, r, k10), len(contracts)) for r, k10, _ in legs]
            made.append(Made(position, idx, [sg for _, _, sg in legs]))
            break
        else:
            raise SystemExit(f"could not place position {i + 1} on {und.names[u]}")
    return made, contracts


def write_positions(path: Path, made: list[Made]) -> None:
    out = [
        "# spreadwatch replay benchmark positions, written by benchmarks/generate.py.\n",
    ]
    for m in made:
        p = m.position
        legs = "".join(
            f'  {{ right = "{leg.right.value}", strike = {leg.strike}, '
            f'expiry = "{leg.expiry.isoformat()}", side = "{leg.side.value}" }},\n'
            for leg in p.legs
        )
        out.append(
            f"\n[[positions]]\n"
            f'id = "{p.id}"\n'
            f'book = "{p.book}"\n'
            f'underlying = "{p.underlying}"\n'
            f'strategy = "{p.strategy.value}"\n'
            f"contracts = {p.contracts}\n"
            f"entry_credit = {p.entry_credit:.2f}\n"
            f'opened_at = "{p.opened_at.isoformat(timespec="seconds")}"\n'
            f"multiplier = {p.multiplier}\n"
            f"legs = [\n{legs}]\n"
        )
    path.write_text("".join(out), encoding="utf-8")


def reread_positions(path: Path) -> int:
    """Parse the file as replay would and validate every position again."""
    with path.open("rb") as f:
        doc = tomllib.load(f)
    for p in doc["positions"]:
        check_position(
            Position(
                id=p["id"],
                book=p["book"],
                underlying=p["underlying"],
                strategy=Strategy(p["strategy"]),
                legs=tuple(
                    Leg(
                        Right(leg["right"]),
                        Decimal(str(leg["strike"])),
                        date.fromisoformat(leg["expiry"]),
                        Side(leg["side"]),
                    )
                    for leg in p["legs"]
                ),
                contracts=p["contracts"],
                entry_credit=Decimal(str(p["entry_credit"])),
                opened_at=datetime.fromisoformat(p["opened_at"]),
                multiplier=p.get("multiplier", 100),
            )
        )
    return len(doc["positions"])


@dataclass(slots=True)
class Contracts:
    u: Ints
    is_put: NDArray[np.bool_]
    strike: Floats
    expiry_epoch: Floats
    key: list[str]  # "SPY,2027-03-19,P,450"
    weight: Floats  # relative update rate
    heartbeat: Ints  # a few legs that between them cover every position (see cover())


def contract_table(
    contracts: dict[tuple[int, date, str, int], int], made: list[Made], und: Underlyings
) -> Contracts:
    keys = list(contracts)
    weight = np.full(len(keys), 0.25)
    for m in made:  # share each position's need for fresh quotes among its legs
        for c, sign in zip(m.contracts_idx, m.signs, strict=True):
            weight[c] += (1.5 if sign > 0 else 1.0) / len(m.contracts_idx)
    return Contracts(
        u=np.array([k[0] for k in keys], dtype=np.int64),
        is_put=np.array([k[2] == "P" for k in keys]),
        strike=np.array([k[3] / 10 for k in keys]),
        expiry_epoch=np.array([expiry_instant(k[1]).timestamp() for k in keys]),
        key=[f"{und.names[u]},{e.isoformat()},{r},{strike_text(k10)}" for u, e, r, k10 in keys],
        weight=weight,
        heartbeat=cover(made, len(keys)),
    )


def cover(made: list[Made], n_contracts: int) -> Ints:
    """Legs, short ones first, such that every position holds one (greedy set cover).

    They are quoted at least every ~100 s, so that no position goes 120 s
    (SPEC's stale_after) without a row for one of its legs: the stream tests the
    rules, not the staleness episodes. Liquid near-the-money legs update often in
    real feeds too.
    """
    holders: list[list[int]] = [[] for _ in range(n_contracts)]
    short = np.zeros(n_contracts, dtype=np.int64)
    for i, m in enumerate(made):
        for c, sign in zip(m.contracts_idx, m.signs, strict=True):
            holders[c].append(i)
            short[c] |= sign > 0
    count = np.array([len(h) for h in holders], dtype=np.int64)
    covered = np.zeros(len(made), dtype=bool)
    chosen: list[int] = []
    while not covered.all():
        c = int(np.argmax(count * 2 + short))
        chosen.append(c)
        for i in holders[c]:
            if not covered[i]:
                covered[i] = True
                for other in made[i].contracts_idx:
                    count[other] -= 1
    return np.array(sorted(chosen), dtype=np.int64)


def intraday_profile(n: int = 1001) -> tuple[Floats, Floats]:
    """CDF of a U-shaped activity profile over the session (busier at the open and close)."""
    x = np.linspace(0.0, 1.0, n)
    density = 1.0 + 2.0 * (2 * x - 1) ** 2
    cdf = np.concatenate([[0.0], np.cumsum((density[1:] + density[:-1]) / 2)])
    return cdf / cdf[-1], x


def allocate(total: int, weight: Floats) -> Ints:
    """Split ``total`` rows by weight (largest remainder)."""
    quota = weight / weight.sum() * total
    n = np.floor(quota).astype(np.int64)
    rest = total - int(n.sum())
    if rest > 0:
        n[np.argsort(-(quota - n), kind="stable")[:rest]] += 1
    return n


class Table:
    """Cached text of small non-negative integers in a fixed format (fast CSV cells)."""

    def __init__(self, fmt: Callable[[int], str]) -> None:
        self.fmt = fmt
        self.cells: list[str] = []

    def __call__(self, values: Ints) -> list[str]:
        top = int(values.max(initial=0))
        if top >= len(self.cells):
            self.cells += [self.fmt(v) for v in range(len(self.cells), top + 1)]
        cells = self.cells
        return [cells[v] for v in values.tolist()]


@dataclass(slots=True)
class Stream:
    """The compact copy of every row that the self-check replays."""

    t: list[Ints]  # ms since the first session's date at 00:00 + day * DAY_MS
    contract: list[Ints]
    mid2: list[Ints]  # bid + ask in cents (twice the mid)
    delta4: list[Ints]  # delta * 10_000 as written (model delta even with --no-delta)
    day: list[Ints]


def generate_day(
    rng: np.random.Generator,
    k: int,
    d: date,
    rows: int,
    open_log: Floats,
    und: Underlyings,
    con: Contracts,
    profile: tuple[Floats, Floats],
) -> tuple[Floats, Ints, Ints, Ints, Ints, Ints, Ints]:
    """One session: the underlyings' path and the rows, sorted by time."""
    n_u, n_c = len(und.names), len(con.key)
    dt = 1 / TRADING_YEAR_S
    z = rng.standard_normal((n_u, SESSION_S))
    steps = (und.vol * math.sqrt(dt))[:, None] * z
    steps += ((und.drift / SESSION_S) - 0.5 * und.vol**2 * dt)[:, None]
    steps[:, 0] = 0.0
    log_path = open_log[:, None] + np.cumsum(steps, axis=1)
    for u in np.flatnonzero((und.jump_day == k) & (und.jump_second > 0)):
        log_path[u, und.jump_second[u] :] += und.jump[u]
    path_c = np.rint(np.exp(log_path) * 100).astype(np.int64)
    open_epoch = session_open(d).timestamp()

    def model(ms: Ints, c: Ints) -> tuple[Ints, Floats, Floats]:
        s_c = path_c[con.u[c], ms // 1000]
        t = (con.expiry_epoch[c] - open_epoch - ms / 1000) / YEAR_S
        price, delta = bsm(con.is_put[c], s_c / 100, con.strike[c], t, und.iv[con.u[c]])
        return s_c, price, delta

    # bursts: every leg at the open; an underlying's legs after its intraday jump
    burst_ms: list[Ints] = []
    burst_c: list[Ints] = []
    opening = rows >= 3 * n_c
    events = [(u, 0) for u in range(n_u)] if opening else []
    for u in np.flatnonzero(und.jump_day == k):
        if und.jump_second[u] > 0 or not opening:
            events.append((int(u), int(und.jump_second[u])))
    for u, second in events:
        cs = np.flatnonzero(con.u == u)
        if len(cs) == 0:
            continue
        at = second * 1000 + (int(rng.integers(0, 1000)) if second == 0 else 0)
        _, _, delta = model(np.full(len(cs), at), cs)
        cs = cs[np.argsort(-np.abs(delta), kind="stable")]
        burst_ms.append(at + np.cumsum(rng.integers(0, 3, len(cs))))
        burst_c.append(cs)
    n_burst = sum(len(b) for b in burst_c)
    if n_burst > rows:  # too few rows for bursts: drop them
        burst_ms, burst_c, n_burst = [], [], 0
    # the opening burst has the first two seconds to itself
    lead = BURST_MS if n_burst and opening else 0
    span = SESSION_MS - lead
    # the heartbeat: its legs at a steady pace, each with its own phase, jittered by +-8%
    hb = con.heartbeat
    free = rows - n_burst
    per_hb = min(math.ceil(SESSION_S / HEARTBEAT_S), int(0.75 * free) // max(len(hb), 1))
    c_hb = np.repeat(hb, per_hb)
    if per_hb > 0:
        phase = np.repeat(rng.random(len(hb)), per_hb)
        slot = np.tile(np.arange(per_hb), len(hb)) + phase + rng.uniform(-0.08, 0.08, len(c_hb))
        ms_hb = lead + np.clip(np.floor(slot * span / per_hb), 0, span - 1).astype(np.int64)
    else:
        ms_hb = np.zeros(0, dtype=np.int64)
    # the other rows: each leg evenly through the session with jitter, on the activity profile
    per_c = allocate(free - len(c_hb), con.weight)
    c_reg = np.repeat(np.arange(n_c), per_c)
    start_of = np.repeat(np.cumsum(per_c) - per_c, per_c)
    rank = np.arange(len(c_reg)) - start_of
    u01 = (rank + rng.random(len(c_reg))) / np.repeat(np.maximum(per_c, 1), per_c)
    cdf, x = profile
    ms_reg = lead + np.minimum(np.floor(np.interp(u01, cdf, x) * span), span - 1)
    ms = np.concatenate([*burst_ms, ms_hb, ms_reg.astype(np.int64)])
    c = np.concatenate([*burst_c, c_hb, c_reg]).astype(np.int64)
    order = np.argsort(ms, kind="stable")
    ms, c = ms[order], c[order]
    s_c, price, delta = model(ms, c)
    bid, ask = quote_cents(price, und.frac[con.u[c]])
    delta4 = np.rint(delta * 10_000).astype(np.int64)
    return log_path[:, -1], ms, c, bid, ask, delta4, s_c


def write_rows(
    f: TextIO,
    d: date,
    day: tuple[Ints, Ints, Ints, Ints, Ints, Ints],
    no_delta: bool,
    keys: list[str],
    cells: dict[str, Table],
    times: list[str],
    chunk: int = 100_000,
) -> None:
    """One session's rows (ms, contract, bid, ask, delta4, underlying cents) as CSV lines."""
    ms, c, bid, ask, delta4, s_c = day
    offset = session_open(d).isoformat()[-6:]
    prefix = f"{d.isoformat()}T"
    for a in range(0, len(ms), chunk):
        sl = slice(a, a + chunk)
        sec = (ms[sl] // 1000).tolist()
        milli = cells["ms"](ms[sl] % 1000)
        b, k, up = cells["cents"](bid[sl]), cells["cents"](ask[sl]), cells["cents"](s_c[sl])
        dl = [""] * len(sec) if no_delta else cells["delta"](delta4[sl] + 10_000)
        lines = [
            f"{prefix}{times[s]}{m}{offset},{keys[ci]},{bb},{aa},{dd},{uu}\n"
            for s, m, ci, bb, aa, dd, uu in zip(
                sec, milli, c[sl].tolist(), b, k, dl, up, strict=True
            )
        ]
        f.write("".join(lines))


def first(cond: NDArray[np.bool_]) -> int:
    """Index of the first True, or len(cond) when there is none."""
    return int(np.argmax(cond)) if cond.any() else len(cond)


def self_check(made: list[Made], stream: Stream, days: list[date]) -> tuple[list[str], bool]:
    """Replay the rows with a cheap model of SPEC.md's rules, per position."""
    t = np.concatenate(stream.t)
    c = np.concatenate(stream.contract)
    mid2 = np.concatenate(stream.mid2)
    delta4 = np.abs(np.concatenate(stream.delta4))
    day = np.concatenate(stream.day)
    order = np.argsort(c, kind="stable")  # rows of each contract, in time order
    starts = np.concatenate([[0], np.cumsum(np.bincount(c, minlength=int(c.max()) + 1))])
    day_ord = np.array([d.toordinal() for d in days])
    can: Counter[str] = Counter()
    did: Counter[str] = Counter()
    stale_positions = stale_gaps = 0
    for m in made:
        p = m.position
        book = DEFAULT_BOOKS[p.book]
        plan = make_plan(p, book)
        two_hundred = Decimal(200)
        target2 = [
            int((d * two_hundred).to_integral_value(ROUND_FLOOR)) for d in plan.target_debits
        ]
        loss2 = int((plan.loss_debit * two_hundred).to_integral_value(ROUND_CEILING))
        delta_min = int((Decimal(str(plan.delta_stop)) * 10_000).to_integral_value(ROUND_CEILING))
        stop_ord = (p.expiry - timedelta(days=plan.time_stop_dte)).toordinal()
        lists = [order[starts[ci] : starts[ci + 1]] for ci in m.contracts_idx]
        ev = np.sort(np.concatenate(lists))
        # staleness: RTH stretches of stale_after (120 s) without a row for any leg
        limit = plan.stale_after / timedelta(milliseconds=1)
        gaps = 0
        for k in range(len(days)):
            tk = t[ev[day[ev] == k]] - k * DAY_MS
            gaps += int(np.count_nonzero(np.diff(np.concatenate([[0], tk, [SESSION_MS]])) >= limit))
        stale_gaps += gaps
        stale_positions += gaps > 0
        ok = np.ones(len(ev), dtype=bool)
        debit2 = np.zeros(len(ev), dtype=np.int64)
        short_delta = np.zeros(len(ev), dtype=np.int64)
        for rows_j, sign in zip(lists, m.signs, strict=True):
            at = np.searchsorted(rows_j, ev, side="right") - 1
            latest = rows_j[np.maximum(at, 0)]
            ok &= (at >= 0) & (day[latest] == day[ev])  # rules.machine: no quote from before today
            debit2 += sign * mid2[latest]
            if sign > 0:
                short_delta = np.maximum(short_delta, delta4[latest])
        # rules.machine holds while the legs' mids are inconsistent (debit outside [0, width])
        width = max(
            abs(a.strike - b.strike) for a, b in zip(p.legs[::2], p.legs[1::2], strict=True)
        )
        ok &= (debit2 >= 0) & (debit2 <= int(width * two_hundred))
        ev, debit2, short_delta = ev[ok], debit2[ok], short_delta[ok]
        never = len(ev)
        loss, delta_hit = debit2 >= loss2, short_delta >= delta_min
        time_hit = day_ord[day[ev]] >= stop_ord
        hits = [debit2 <= x for x in target2]
        for name, cond in (("loss_stop", loss), ("delta_stop", delta_hit)):
            can[name] += bool(cond.any())
        can["time_stop"] += bool(day_ord[0] <= stop_ord <= day_ord[-1])
        for target in book.targets:  # every target of the book, whatever the contracts
            reach = p.entry_credit * (1 - target) * two_hundred
            can[f"{p.book} {float(target):.0%}"] += bool(
                np.any(debit2 <= int(reach.to_integral_value(ROUND_FLOOR)))
            )
        stop = min(first(loss), first(delta_hit), first(time_hit))
        done = first(hits[-1])  # the last (or only) profit target closes what is left
        end = min(stop, done)
        if end == never:
            did["open at the end"] += 1
        elif stop <= done:  # at one evaluation the stops come before the targets
            did[
                "close "
                + ("loss_stop" if loss[end] else "delta_stop" if delta_hit[end] else "time_stop")
            ] += 1
        else:
            did["close profit_target"] += 1
        at_row: dict[int, int] = {}  # tranches before the end; a gap reports the highest
        for i, cond in enumerate(hits):
            r = first(cond)
            if r < stop and r <= done:
                at_row[r] = i
        for i in at_row.values():
            did[f"{p.book} target {float(plan.targets[i]):.0%}"] += 1

    def targets(counter: Counter[str], fmt: str) -> str:
        return "; ".join(
            f"{name} "
            + " / ".join(f"{float(t):.0%} {counter[fmt.format(name, float(t))]}" for t in b.targets)
            for name, b in DEFAULT_BOOKS.items()
        )

    lines = [
        f"can hit (ever, on the rows): loss_stop {can['loss_stop']}, "
        f"delta_stop {can['delta_stop']}, time_stop (its date in the stream) {can['time_stop']}",
        f"can hit profit targets: {targets(can, '{} {:.0%}')}",
        f"first match, per position: loss_stop {did['close loss_stop']}, "
        f"delta_stop {did['close delta_stop']}, time_stop {did['close time_stop']}, "
        f"profit_target (the last tranche) {did['close profit_target']}, "
        f"still open at the end {did['open at the end']}",
        f"profit exits (a gap counts once, at its highest target): "
        f"{targets(did, '{} target {:.0%}')}",
        f"staleness: {stale_positions} positions with {stale_gaps} RTH stretches of "
        f">= stale_after without a row",
    ]
    need = [can["loss_stop"], can["delta_stop"], can["time_stop"]]
    need += [did[f"close {r}"] for r in ("loss_stop", "delta_stop", "time_stop")]
    need += [did[f"PRIMARY target {float(t):.0%}"] for t in DEFAULT_BOOKS["PRIMARY"].targets]
    return lines, all(n > 0 for n in need)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, required=True, help="output directory")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--positions", type=int, default=1000)
    ap.add_argument("--underlyings", type=int, default=50)
    ap.add_argument("--updates", type=int, default=1_000_000, help="leg-quote rows in all")
    ap.add_argument("--days", type=int, default=5, help="consecutive trading days")
    ap.add_argument(
        "--start",
        type=date.fromisoformat,
        default=date(2027, 3, 1),
        help="first session (a Monday; weekends are skipped)",
    )
    ap.add_argument("--no-delta", action="store_true", help="leave the delta column empty")
    args = ap.parse_args(argv)
    if min(args.positions, args.underlyings, args.updates, args.days) < 1:
        ap.error("--positions, --underlyings, --updates and --days must be >= 1")
    began = time.perf_counter()
    rng = np.random.default_rng(args.seed)
    days = trading_days(args.start, args.days)
    und = make_underlyings(rng, args.underlyings, args.days)
    hist = price_history(rng, und, days[0])
    made, contracts = make_positions(rng, args.positions, und, days, hist)
    con = contract_table(contracts, made, und)
    args.out.mkdir(parents=True, exist_ok=True)
    positions_path, ticks_path = args.out / "positions.toml", args.out / "ticks.csv"
    write_positions(positions_path, made)
    n_read = reread_positions(positions_path)

    first = datetime.combine(days[0], OPEN)
    times = [(first + timedelta(seconds=s)).strftime("%H:%M:%S") for s in range(SESSION_S)]
    cells = {
        "ms": Table(".{:03d}".format),
        "cents": Table(lambda v: f"{v // 100}.{v % 100:02d}"),
        "delta": Table(lambda v: f"{(v - 10_000) / 10_000:.4f}"),
    }
    profile = intraday_profile()
    stream = Stream([], [], [], [], [])
    log_open = np.log(und.s0)
    per_day = allocate(args.updates, np.ones(len(days)))
    with ticks_path.open("w", encoding="ascii", newline="") as f:
        f.write(HEADER)
        for k, d in enumerate(days):
            if k > 0:  # overnight: a quarter of a day's variance, plus any scripted gap
                log_open = log_open + und.vol * rng.standard_normal(len(und.names)) * math.sqrt(
                    0.25 / 252
                )
                log_open = log_open + np.where(
                    (und.jump_day == k) & (und.jump_second == 0), und.jump, 0.0
                )
            close_log, ms, c, bid, ask, delta4, s_c = generate_day(
                rng, k, d, int(per_day[k]), log_open, und, con, profile
            )
            write_rows(f, d, (ms, c, bid, ask, delta4, s_c), args.no_delta, con.key, cells, times)
            stream.t.append(ms + k * DAY_MS)
            stream.contract.append(c)
            stream.mid2.append(bid + ask)
            stream.delta4.append(delta4)
            stream.day.append(np.full(len(ms), k, dtype=np.int64))
            log_open = close_log
    written = time.perf_counter() - began
    summary, good = self_check(made, stream, days)

    rows = sum(len(x) for x in stream.t)
    used = {und.names[u] for u in np.unique(con.u)}
    books = Counter(m.position.book for m in made)
    strategies = Counter(m.position.strategy.value for m in made)
    scripted = Counter(s for s in und.scenario if s != CALM)
    print(
        f"positions: {n_read} ({', '.join(f'{k} {v}' for k, v in sorted(books.items()))}; "
        f"{', '.join(f'{k} {v}' for k, v in sorted(strategies.items()))}; "
        f"{sum(m.position.contracts >= 3 for m in made)} of >= 3 contracts)"
    )
    print(
        f"underlyings: {len(used)} quoted (scripted: "
        f"{', '.join(f'{k} {v}' for k, v in sorted(scripted.items()))}); "
        f"legs quoted: {len(con.key)}"
    )
    print(f"days: {len(days)} ({days[0]} .. {days[-1]}); rows: {rows:,}")
    print(
        f"files: {positions_path} {positions_path.stat().st_size:,} B; "
        f"{ticks_path} {ticks_path.stat().st_size:,} B"
    )
    print(
        "self-check (rules.machine's order and holds: mid marks, fills at the mark, "
        "no leg quote from before today, mid debit within [0, width]):"
    )
    for line in summary:
        print(f"  {line}")
    print(f"time: {written:.1f} s to write, {time.perf_counter() - began:.1f} s in all")
    if not good:
        print("FAILED: some exit type never happens in this stream", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
