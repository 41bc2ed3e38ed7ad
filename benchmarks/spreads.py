"""The benchmarks' spreads: 5-wide put spreads, each sold at the simulated market's mid."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta
from decimal import Decimal

from brokers.sim.market import SimMarket
from rules.model import Leg, Position, Right, Side, Strategy
from service.ports import leg_key

CENT = Decimal("0.01")


def put_spread_at_mid(
    pid: str, underlying: str, short: Decimal, expiry: date, market: SimMarket, at: datetime
) -> Position:
    """10 put spreads ``short``/``short - 5`` opened the day before ``at``, sold at their mid
    at ``at`` (at least 0.05)."""
    draft = Position(
        id=pid,
        book="PRIMARY",
        underlying=underlying,
        strategy=Strategy.PUT_CREDIT,
        legs=(
            Leg(Right.PUT, short, expiry, Side.SHORT),
            Leg(Right.PUT, short - 5, expiry, Side.LONG),
        ),
        contracts=10,
        entry_credit=Decimal(1),
        opened_at=at - timedelta(days=1),
    )
    s, lg = (market.quote(leg_key(draft, i), at) for i in range(2))
    mid = (s.bid + s.ask - lg.bid - lg.ask) / 2  # type: ignore[operator]
    return replace(draft, entry_credit=max(mid, Decimal("0.05")).quantize(CENT))
