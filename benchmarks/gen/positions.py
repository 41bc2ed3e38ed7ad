"""Positions: opened before the stream, written as positions.toml, and read back as replay would."""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_FLOOR, Decimal
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from rules.books import DEFAULT_BOOKS, BookPolicy
from rules.clock import expiry_instant
from rules.model import Leg, Position, Right, Side, Strategy, check_position

from .market import Floats, Underlyings, bsm, session_open, strike_for_delta, strike_text

MULTIPLIER = 100
SIDES = {
    Strategy.PUT_CREDIT: ["P"],
    Strategy.CALL_CREDIT: ["C"],
    Strategy.IRON_CONDOR: ["P", "C"],
}


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


@dataclass(slots=True)
class Draft:
    """A position that fits: drawn, priced at the model mid, and still open at the start."""

    strategy: Strategy
    opened_at: datetime
    expiry: date
    legs: list[tuple[str, int, int]]  # (right, strike in tenths, sign)
    credit_c: int  # entry credit in cents


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
        strategy = [Strategy.PUT_CREDIT, Strategy.CALL_CREDIT, Strategy.IRON_CONDOR][
            int(rng.choice(3, p=[0.4, 0.25, 0.35]))
        ]
        qty = int(rng.integers(1, 3)) if rng.random() < 0.15 else int(rng.integers(3, 21))
        stages = fallback_stages(rng, choices[book_name], strategy, days[0])
        draft = place(rng, stages, und, u, DEFAULT_BOOKS[book_name], start, hist)
        if draft is None:
            raise SystemExit(f"could not place position {i + 1} on {und.names[u]}")
        position = new_position(i, book_name, und.names[u], qty, draft)
        check_position(position)
        idx = [
            contracts.setdefault((u, draft.expiry, r, k10), len(contracts))
            for r, k10, _ in draft.legs
        ]
        made.append(Made(position, idx, [sg for _, _, sg in draft.legs]))
    return made, contracts


def fallback_stages(
    rng: np.random.Generator,
    choices: tuple[list[tuple[date, date]], list[tuple[date, date]]],
    strategy: Strategy,
    day0: date,
) -> list[tuple[list[tuple[date, date]], Strategy]]:
    """The (opened date, expiry) pools to draw from, in order, each with its strategy.

    The drawn choice first; then fallbacks for an underlying that has moved far since
    the older opening dates (a short strike now too near, or the target already met).
    """
    inside, after = choices
    drawn = inside if (rng.random() < 0.25 and inside) or not after else after
    other = after if drawn is inside else inside
    recent = [(o, e) for o, e in inside + after if (day0 - o).days <= 8]
    turned = Strategy.PUT_CREDIT if strategy is not Strategy.PUT_CREDIT else Strategy.CALL_CREDIT
    stages = [
        (drawn, strategy),
        (other, strategy),
        (recent, strategy),
        (other, turned),
        (recent, Strategy.PUT_CREDIT),
        (recent, Strategy.CALL_CREDIT),
    ]
    return [(pool, kind) for pool, kind in stages if pool]


def place(
    rng: np.random.Generator,
    stages: list[tuple[list[tuple[date, date]], Strategy]],
    und: Underlyings,
    u: int,
    book: BookPolicy,
    start: datetime,
    hist: dict[date, Floats],
) -> Draft | None:
    """Up to 150 tries per stage until a position fits; None when none does."""
    for attempt in range(150 * len(stages)):
        pool, strategy = stages[attempt // 150]
        draft = draw(rng, pool, strategy, und, u, book, start, hist)
        if draft is not None:
            return draft
    return None


def draw(
    rng: np.random.Generator,
    pool: list[tuple[date, date]],
    strategy: Strategy,
    und: Underlyings,
    u: int,
    book: BookPolicy,
    start: datetime,
    hist: dict[date, Floats],
) -> Draft | None:
    """One try: an opening time and spot, short strikes at 0.15-0.25 delta; None if it misfits."""
    step, iv = int(und.step10[u]), float(und.iv[u])
    opened_on, expiry = pool[int(rng.integers(len(pool)))]
    minute = int(rng.integers(15, 375))
    opened_at = session_open(opened_on) + timedelta(minutes=minute)
    spot = float(hist[opened_on][u]) * math.exp(
        float(rng.normal(0, und.vol[u] * math.sqrt(0.5 / 252)))
    )
    t_open = (expiry_instant(expiry) - opened_at) / timedelta(days=365)
    t0 = (expiry_instant(expiry) - start) / timedelta(days=365)
    legs: list[tuple[str, int, int]] = []  # (right, strike in tenths, sign)
    for right in SIDES[strategy]:
        is_put = right == "P"
        k = strike_for_delta(is_put, float(rng.uniform(0.15, 0.25)), spot, t_open, iv)
        short10 = round(k * 10 / step) * step
        width = int(rng.integers(1, 5)) * step
        long10 = short10 - width if is_put else short10 + width
        legs += [(right, short10, 1), (right, long10, -1)]
    if min(k10 for _, k10, _ in legs) <= 0:
        return None
    credit_c = entry_credit(legs, spot, t_open, iv)
    if credit_c is None or not still_open(legs, credit_c, float(und.s0[u]), t0, iv, book):
        return None
    return Draft(strategy, opened_at, expiry, legs, credit_c)


def leg_arrays(legs: list[tuple[str, int, int]]) -> tuple[NDArray[np.bool_], Floats, Floats]:
    """is_put, strikes and signs (+1 short, -1 long) of (right, strike in tenths, sign) legs."""
    is_put = np.array([r == "P" for r, _, _ in legs])
    strikes = np.array([k10 / 10 for _, k10, _ in legs])
    signs = np.array([sg for _, _, sg in legs], dtype=float)
    return is_put, strikes, signs


def entry_credit(
    legs: list[tuple[str, int, int]], spot: float, t_open: float, iv: float
) -> int | None:
    """The credit in cents for the model mid at the opening, or None when it does not fit.

    It fits when it is at least 5 cents and below the width, with the short legs
    between 0.1 and 0.3 delta.
    """
    is_put, strikes, signs = leg_arrays(legs)
    sig = np.full(len(legs), iv)
    p_open, d_open = bsm(is_put, np.full(len(legs), spot), strikes, np.full(len(legs), t_open), sig)
    credit_c = round(float(signs @ p_open) * 100)
    width_c = max(abs(legs[j][1] - legs[j + 1][1]) for j in range(0, len(legs), 2)) * 10
    short_d_open = np.abs(d_open[signs > 0])
    if not (5 <= credit_c < width_c and np.all((short_d_open > 0.1) & (short_d_open < 0.3))):
        return None
    return credit_c


def still_open(
    legs: list[tuple[str, int, int]],
    credit_c: int,
    s0: float,
    t0: float,
    iv: float,
    book: BookPolicy,
) -> bool:
    """Still open when the stream starts: no profit target, stop or delta stop holds."""
    is_put, strikes, signs = leg_arrays(legs)
    sig = np.full(len(legs), iv)
    s_start = np.full(len(legs), s0)
    p0, d0 = bsm(is_put, s_start, strikes, np.full(len(legs), t0), sig)
    ratio = float(signs @ p0) * 100 / credit_c
    first_target = float(book.targets[0])
    return bool(1 - first_target + 0.05 < ratio < 1.1 and np.all(np.abs(d0[signs > 0]) < 0.25))


def new_position(i: int, book_name: str, underlying: str, qty: int, draft: Draft) -> Position:
    """The i-th (0-based) position, from its draft."""
    return Position(
        id=f"P{i + 1:04d}",
        book=book_name,
        underlying=underlying,
        strategy=draft.strategy,
        legs=tuple(
            Leg(
                Right(r),
                Decimal(strike_text(k10)),
                draft.expiry,
                Side.SHORT if sg > 0 else Side.LONG,
            )
            for r, k10, sg in draft.legs
        ),
        contracts=qty,
        entry_credit=Decimal(draft.credit_c) / 100,
        opened_at=draft.opened_at,
        multiplier=MULTIPLIER,
    )


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
