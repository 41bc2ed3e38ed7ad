"""The simulated market seeded from positions: the one place its starting prices are set.

Each underlying starts 5% out of the money of the short strikes of its first
spread (between them for an iron condor), on a seeded path, so the daemon,
the fake IB gateway and the tests see the same market for the same positions.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from brokers.sim.market import SimMarket, Underlying
from rules.model import Position, Right, Side

SEED = 11
VOL = 0.20


def spot_for(position: Position) -> float:
    """A spot 5% out of the money of the position's short strikes."""
    shorts = [leg for leg in position.legs if leg.side is Side.SHORT]
    puts = [float(leg.strike) for leg in shorts if leg.right is Right.PUT]
    calls = [float(leg.strike) for leg in shorts if leg.right is Right.CALL]
    if puts and calls:
        return (max(puts) + min(calls)) / 2
    return max(puts) * 1.05 if puts else min(calls) / 1.05


def spots_for(positions: Iterable[Position]) -> dict[str, float]:
    """Each underlying's starting spot, from the first position on it."""
    spots: dict[str, float] = {}
    for p in positions:
        spots.setdefault(p.underlying, spot_for(p))
    return spots


def underlying_for(position: Position) -> Underlying:
    """The underlying of ``position`` as it starts when a position on it is the first."""
    return Underlying(position.underlying, spot_for(position), vol=VOL)


def market_for(positions: Iterable[Position], start: datetime) -> SimMarket:
    """The simulated market for ``positions`` from ``start``."""
    spots = spots_for(positions)
    return SimMarket([Underlying(u, s, vol=VOL) for u, s in spots.items()], start, seed=SEED)
