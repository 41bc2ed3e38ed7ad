"""A chaos round's market: put spreads, each on an underlying of its own, and a script of
the fake gateway (``--script``) that drives them through their triggers one after the
other, so that close orders keep coming for the whole round.

Every spread is 100/95 on a 105 underlying (the fake gateway starts an underlying 5% out
of the money of its first spread), 39 days to expiry, sold at its mid. Half of them are
*stops*: at their turn their underlying gaps to the short strike (delta past 0.30: one
close of every contract). The others are *profits*: at their turn their underlying rallies
in three steps, each past one of the profit targets (50, 75, 90% of the credit: three
tranche closes). The turns are shuffled by the round's seed, ``gap`` market minutes
apart."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from rules.clock import years_to_expiry
from rules.greeks import Rates, bsm_price
from rules.model import Right

START = datetime.fromisoformat("2026-12-07T10:00:00-05:00")  # a Monday, in regular hours
EXPIRY = date(2027, 1, 15)
SHORT, LONG, SPOT = 100, 95, 105.0
VOL = 0.20  # the fake gateway's (brokers.sim.seed.VOL)
TARGETS = (0.50, 0.75, 0.90)  # the PRIMARY book's


@dataclass(frozen=True)
class Spread:
    id: str
    underlying: str
    contracts: int
    credit: Decimal
    stop: bool  # a stop (one close of all) or a profit (three tranches)


def _mid(spot: float, at: datetime) -> float:
    years = years_to_expiry(EXPIRY, at)
    short = bsm_price(Right.PUT, spot, SHORT, years, VOL, Rates())
    return short - bsm_price(Right.PUT, spot, LONG, years, VOL, Rates())


def _spot_for(value: float, at: datetime) -> float:
    """The spot at which the spread's mid is ``value`` (bisection: the mid falls as the
    spot rises)."""
    low, high = 50.0, 300.0
    for _ in range(60):
        middle = (low + high) / 2
        low, high = (middle, high) if _mid(middle, at) > value else (low, middle)
    return high


@dataclass(frozen=True)
class Scenario:
    spreads: list[Spread]
    moves: list[tuple[datetime, str, Decimal]]  # when, underlying, its price then

    def positions_toml(self) -> str:
        out = []
        for s in self.spreads:
            out.append(
                f'[[positions]]\nid = "{s.id}"\nbook = "PRIMARY"\nunderlying = "{s.underlying}"\n'
                f'strategy = "put_credit"\ncontracts = {s.contracts}\nentry_credit = {s.credit}\n'
                'opened_at = "2026-11-16T10:00:00-05:00"\nlegs = [\n'
                f'  {{ right = "P", strike = {SHORT}, expiry = "{EXPIRY}", side = "short" }},\n'
                f'  {{ right = "P", strike = {LONG}, expiry = "{EXPIRY}", side = "long" }},\n]\n'
            )
        return "\n".join(out)

    def script_toml(self) -> str:
        return "\n".join(
            f'[[moves]]\nat = {at.isoformat()}\nunderlying = "{u}"\nprice = {price}\n'
            for at, u, price in self.moves
        )


def scenario(seed: int, spreads: int = 20, gap: float = 3.0, first: float = 4.0) -> Scenario:
    """``spreads`` spreads (half stops), their turns ``gap`` market minutes apart from
    ``first`` minutes after the start, shuffled by ``seed``."""
    rng = random.Random(seed)
    credit = Decimal(repr(round(_mid(SPOT, START), 2)))
    made = [
        Spread(f"K{n:02d}", "K" + chr(65 + n // 26) + chr(65 + n % 26), rng.randint(3, 8),
               credit, stop=n % 2 == 0)
        for n in range(spreads)
    ]  # fmt: skip
    turns = [s for s in made for _ in range(1 if s.stop else 3)]
    rng.shuffle(turns)
    moves: list[tuple[datetime, str, Decimal]] = []
    steps: dict[str, int] = {}
    for k, s in enumerate(turns):
        at = START + timedelta(minutes=first + gap * k)
        if s.stop:
            price = SHORT * 0.99
        else:
            step = steps[s.id] = steps.get(s.id, -1) + 1
            price = _spot_for(float(credit) * (1 - TARGETS[step]) * 0.8, at)
        moves.append((at, s.underlying, Decimal(repr(round(price, 2)))))
    return Scenario(made, moves)
