"""The demo's script on the simulated market: five spreads and the moves that close them.

``spreadwatch demo`` (service.cli.demo) runs it. Five spreads are opened at
the simulated market's own prices at 10:00 New York on Tuesday 2027-03-02,
and the market makes these moves in the next twelve minutes:

- SPY rallies 7%: the 10-lot put spread scales out 4/4/2 at 50/75/90%;
- DIA sells off 5%: the 2-lot call spread takes its single exit at 50%;
- QQQ sells off 5%: the put spread's loss stop closes all 6;
- IWM slips 2%: the short 194 put passes 0.30 delta, the delta stop fires;
- XLF's spread is 20 days from expiry: the 21-DTE time stop closes it.

The monitor, the order desk, the store and the simulated broker are the
ones the daemon uses; orders are repriced toward the natural until they fill.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from brokers.sim.market import Move, SimMarket, Underlying
from rules.clock import new_york
from rules.model import Leg, Position, Right, Side, Strategy
from rules.pricing import RepriceSchedule
from service.ports import leg_key

T0 = datetime(2027, 3, 2, 15, 0, tzinfo=UTC)  # Tuesday 10:00 New York
EXPIRY = date(2027, 4, 16)
LATENCY = timedelta(milliseconds=200)  # the simulated broker's, from order to fill
SCHEDULE = RepriceSchedule(
    steps=4, interval=timedelta(seconds=4), stop_interval=timedelta(seconds=1)
)


@dataclass(frozen=True)
class Spread:
    underlying: str
    strategy: Strategy
    short: int
    long: int
    contracts: int
    expiry: date = EXPIRY
    opened_days_before_expiry: int = 45


UNDERLYINGS = [
    Underlying(
        "SPY",
        470.0,
        vol=0.15,
        moves=[Move("rally", T0 + timedelta(minutes=1), 0.07, timedelta(minutes=6))],
    ),
    Underlying(
        "DIA",
        380.0,
        vol=0.15,
        moves=[Move("selloff", T0 + timedelta(minutes=1), 0.05, timedelta(minutes=5))],
    ),
    Underlying(
        "QQQ",
        400.0,
        vol=0.15,
        moves=[Move("selloff", T0 + timedelta(minutes=1), 0.05, timedelta(minutes=5))],
    ),
    Underlying(
        "IWM",
        200.0,
        vol=0.15,
        moves=[Move("selloff", T0 + timedelta(minutes=1), 0.02, timedelta(minutes=8))],
    ),
    Underlying("XLF", 40.0, vol=0.20),
]
SPREADS = [
    Spread("SPY", Strategy.PUT_CREDIT, 450, 445, 10),
    Spread("DIA", Strategy.CALL_CREDIT, 395, 400, 2),
    Spread("QQQ", Strategy.PUT_CREDIT, 383, 378, 6),
    Spread("IWM", Strategy.PUT_CREDIT, 194, 175, 5),
    Spread("XLF", Strategy.PUT_CREDIT, 38, 37, 3, expiry=T0.date() + timedelta(days=20)),
]


def position_for(spec: Spread, prefix: str, market: SimMarket) -> Position:
    right = Right.CALL if spec.strategy is Strategy.CALL_CREDIT else Right.PUT
    legs = (
        Leg(right, Decimal(spec.short), spec.expiry, Side.SHORT),
        Leg(right, Decimal(spec.long), spec.expiry, Side.LONG),
    )
    draft = Position(
        id=f"{prefix}-{spec.underlying}",
        book="PRIMARY",
        underlying=spec.underlying,
        strategy=spec.strategy,
        legs=legs,
        contracts=spec.contracts,
        entry_credit=Decimal(1),
        opened_at=datetime.combine(
            spec.expiry - timedelta(days=spec.opened_days_before_expiry), time(9, 45), new_york()
        ),
    )
    short, long_ = (market.quote(leg_key(draft, i), T0) for i in range(2))
    mid = (short.bid + short.ask - long_.bid - long_.ask) / 2  # type: ignore[operator]
    return replace(draft, entry_credit=mid.quantize(Decimal("0.01")))


def demo_market() -> SimMarket:
    """The scripted market of the demo, from :data:`T0`."""
    return SimMarket(UNDERLYINGS, T0, seed=3)


def demo_positions(prefix: str, market: SimMarket) -> list[Position]:
    """The demo's spreads, sold at ``market``'s mid at :data:`T0`, ids ``{prefix}-{UNDERLYING}``."""
    return [position_for(spec, prefix, market) for spec in SPREADS]
