"""The stream: quoted contracts, the heartbeat cover, each session's rows, and ticks.csv."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TextIO

import numpy as np
from numpy.typing import NDArray

from rules.clock import OPEN, expiry_instant

from .market import (
    DAY_MS,
    SESSION_MS,
    SESSION_S,
    TRADING_YEAR_S,
    YEAR_S,
    Floats,
    Ints,
    Underlyings,
    bsm,
    quote_cents,
    session_open,
    strike_text,
)
from .positions import Made

BURST_MS = 2_000  # the opening burst's window
HEARTBEAT_S = 100  # the heartbeat legs' pace; with the jitter no gap reaches 120 s
HEADER = "ts,underlying,expiry,right,strike,bid,ask,delta,underlying_price\n"


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


@dataclass(slots=True)
class LegModel:
    """Model quotes of contracts during one session: underlying cents, price and delta."""

    path_c: Ints  # each underlying's price in cents at each second of the session
    open_epoch: float
    und: Underlyings
    con: Contracts

    def __call__(self, ms: Ints, c: Ints) -> tuple[Ints, Floats, Floats]:
        con = self.con
        s_c = self.path_c[con.u[c], ms // 1000]
        t = (con.expiry_epoch[c] - self.open_epoch - ms / 1000) / YEAR_S
        price, delta = bsm(con.is_put[c], s_c / 100, con.strike[c], t, self.und.iv[con.u[c]])
        return s_c, price, delta


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
    log_path = session_path(rng, k, open_log, und)
    path_c = np.rint(np.exp(log_path) * 100).astype(np.int64)
    model = LegModel(path_c, session_open(d).timestamp(), und, con)
    opening = rows >= 3 * len(con.key)
    burst_ms, burst_c = bursts(rng, k, opening, und, con, model)
    n_burst = sum(len(b) for b in burst_c)
    if n_burst > rows:  # too few rows for bursts: drop them
        burst_ms, burst_c, n_burst = [], [], 0
    # the opening burst has the first two seconds to itself
    lead = BURST_MS if n_burst and opening else 0
    span = SESSION_MS - lead
    free = rows - n_burst
    c_hb, ms_hb = heartbeat_rows(rng, con.heartbeat, free, lead, span)
    c_reg, ms_reg = regular_rows(rng, free - len(c_hb), con.weight, profile, lead, span)
    ms = np.concatenate([*burst_ms, ms_hb, ms_reg])
    c = np.concatenate([*burst_c, c_hb, c_reg]).astype(np.int64)
    order = np.argsort(ms, kind="stable")
    ms, c = ms[order], c[order]
    s_c, price, delta = model(ms, c)
    bid, ask = quote_cents(price, und.frac[con.u[c]])
    delta4 = np.rint(delta * 10_000).astype(np.int64)
    return log_path[:, -1], ms, c, bid, ask, delta4, s_c


def session_path(rng: np.random.Generator, k: int, open_log: Floats, und: Underlyings) -> Floats:
    """Every underlying's log price at each second of session k, with its scripted moves."""
    n_u = len(und.names)
    dt = 1 / TRADING_YEAR_S
    z = rng.standard_normal((n_u, SESSION_S))
    steps = (und.vol * math.sqrt(dt))[:, None] * z
    steps += ((und.drift / SESSION_S) - 0.5 * und.vol**2 * dt)[:, None]
    steps[:, 0] = 0.0
    log_path = open_log[:, None] + np.cumsum(steps, axis=1)
    for u in np.flatnonzero((und.jump_day == k) & (und.jump_second > 0)):
        log_path[u, und.jump_second[u] :] += und.jump[u]
    return log_path


def bursts(
    rng: np.random.Generator,
    k: int,
    opening: bool,
    und: Underlyings,
    con: Contracts,
    model: LegModel,
) -> tuple[list[Ints], list[Ints]]:
    """Bursts: every leg at the open; an underlying's legs after its intraday jump.

    Each burst quotes its legs highest |delta| first, 0-2 ms apart: (times, contracts).
    """
    burst_ms: list[Ints] = []
    burst_c: list[Ints] = []
    events = [(u, 0) for u in range(len(und.names))] if opening else []
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
    return burst_ms, burst_c


def heartbeat_rows(
    rng: np.random.Generator, hb: Ints, free: int, lead: int, span: int
) -> tuple[Ints, Ints]:
    """The heartbeat: its legs at a steady pace, each with its own phase, jittered by +-8%.

    At most 3/4 of the ``free`` rows; returns (contracts, ms), not sorted by time.
    """
    per_hb = min(math.ceil(SESSION_S / HEARTBEAT_S), int(0.75 * free) // max(len(hb), 1))
    c_hb = np.repeat(hb, per_hb)
    if per_hb > 0:
        phase = np.repeat(rng.random(len(hb)), per_hb)
        slot = np.tile(np.arange(per_hb), len(hb)) + phase + rng.uniform(-0.08, 0.08, len(c_hb))
        ms_hb = lead + np.clip(np.floor(slot * span / per_hb), 0, span - 1).astype(np.int64)
    else:
        ms_hb = np.zeros(0, dtype=np.int64)
    return c_hb, ms_hb


def regular_rows(
    rng: np.random.Generator,
    total: int,
    weight: Floats,
    profile: tuple[Floats, Floats],
    lead: int,
    span: int,
) -> tuple[Ints, Ints]:
    """The other rows: each leg evenly through the session with jitter, on the activity profile.

    ``total`` rows shared by ``weight``; returns (contracts, ms), not sorted by time.
    """
    per_c = allocate(total, weight)
    c_reg = np.repeat(np.arange(len(weight)), per_c)
    start_of = np.repeat(np.cumsum(per_c) - per_c, per_c)
    rank = np.arange(len(c_reg)) - start_of
    u01 = (rank + rng.random(len(c_reg))) / np.repeat(np.maximum(per_c, 1), per_c)
    cdf, x = profile
    ms_reg = lead + np.minimum(np.floor(np.interp(u01, cdf, x) * span), span - 1)
    return c_reg, ms_reg.astype(np.int64)


SUB_MS_DIGITS = {"ms": 0, "us": 3, "ns": 6}  # --ts-precision: digits after the millisecond


def sub_ms(sub: np.random.Generator | None, ms: Ints, digits: int) -> list[str]:
    """Digits after each row's millisecond (none for "ms"): random, and not decreasing
    within a millisecond (the rows keep their order, the stamps never go back)."""
    if sub is None or not digits:
        return [""] * len(ms)
    extra = sub.integers(0, 10**digits, len(ms))
    extra = extra[np.lexsort((extra, ms))]  # (ms is sorted: each millisecond's, ascending)
    return [f"{e:0{digits}d}" for e in extra.tolist()]


def write_rows(
    f: TextIO,
    d: date,
    day: tuple[Ints, Ints, Ints, Ints, Ints, Ints],
    no_delta: bool,
    keys: list[str],
    cells: dict[str, Table],
    times: list[str],
    chunk: int = 100_000,
    sub: tuple[np.random.Generator | None, int] = (None, 0),
) -> None:
    """One session's rows (ms, contract, bid, ask, delta4, underlying cents) as CSV lines;
    ``sub``: a generator of their digits after the millisecond, and how many."""
    ms, c, bid, ask, delta4, s_c = day
    offset = session_open(d).isoformat()[-6:]
    prefix = f"{d.isoformat()}T"
    finer = sub_ms(sub[0], ms, sub[1])
    for a in range(0, len(ms), chunk):
        sl = slice(a, a + chunk)
        sec = (ms[sl] // 1000).tolist()
        milli = [m + x for m, x in zip(cells["ms"](ms[sl] % 1000), finer[sl], strict=True)]
        b, k, up = cells["cents"](bid[sl]), cells["cents"](ask[sl]), cells["cents"](s_c[sl])
        dl = [""] * len(sec) if no_delta else cells["delta"](delta4[sl] + 10_000)
        lines = [
            f"{prefix}{times[s]}{m}{offset},{keys[ci]},{bb},{aa},{dd},{uu}\n"
            for s, m, ci, bb, aa, dd, uu in zip(
                sec, milli, c[sl].tolist(), b, k, dl, up, strict=True
            )
        ]
        f.write("".join(lines))


def csv_cells() -> dict[str, Table]:
    """The cached cell texts that write_rows uses: milliseconds, cents and deltas."""
    return {
        "ms": Table(".{:03d}".format),
        "cents": Table(lambda v: f"{v // 100}.{v % 100:02d}"),
        "delta": Table(lambda v: f"{(v - 10_000) / 10_000:.4f}"),
    }


def write_ticks(
    path: Path,
    rng: np.random.Generator,
    days: list[date],
    updates: int,
    no_delta: bool,
    und: Underlyings,
    con: Contracts,
    ts_precision: str = "ms",
) -> Stream:
    """Every session's rows, ``updates`` in all, to ``path``; their compact copy for the check.
    ``ts_precision`` "us" or "ns": the timestamps' digits after the millisecond drawn from a
    generator of their own (the rest of the stream is the "ms" one's, byte for byte)."""
    digits = SUB_MS_DIGITS[ts_precision]
    sub = np.random.default_rng(len(days) * 1_000_003 + updates) if digits else None
    first = datetime.combine(days[0], OPEN)
    times = [(first + timedelta(seconds=s)).strftime("%H:%M:%S") for s in range(SESSION_S)]
    cells = csv_cells()
    profile = intraday_profile()
    stream = Stream([], [], [], [], [])
    log_open = np.log(und.s0)
    per_day = allocate(updates, np.ones(len(days)))
    with path.open("w", encoding="ascii", newline="") as f:
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
            write_rows(f, d, (ms, c, bid, ask, delta4, s_c), no_delta, con.key, cells, times,
                       sub=(sub, digits))  # fmt: skip
            stream.t.append(ms + k * DAY_MS)
            stream.contract.append(c)
            stream.mid2.append(bid + ask)
            stream.delta4.append(delta4)
            stream.day.append(np.full(len(ms), k, dtype=np.int64))
            log_open = close_log
    return stream
