"""The trial tools, composed: the demo's scripted market and the fake IB gateway.

Part of the composition root (:mod:`service.bootstrap`, which names them): the only
other place that may build a concrete broker.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from brokers.sim import seed
from brokers.sim.broker import SimBroker
from brokers.sim.gateway import SimVenue
from rules.model import Position
from rules.pricing import RepriceSchedule
from service.clock import ManualClock
from service.errors import InputError
from service.ports import Clock

if TYPE_CHECKING:
    from brokers.ib.fake import FakeGateway


# The trial tools: the demo's market and the fake IB gateway ----------------------------


@dataclass
class Demo:
    """The demo's scripted venue and clock, its positions, and its repricing (quick enough
    for every order to fill within its minutes)."""

    venue: SimVenue
    clock: ManualClock
    positions: list[Position]
    schedule: RepriceSchedule


def demo(prefix: str) -> Demo:
    """The demo's market from its start, the simulated broker holding its spreads."""
    from brokers.sim import demo as script  # noqa: PLC0415

    market = script.demo_market()
    positions = script.demo_positions(prefix, market)
    broker = SimBroker(latency=script.LATENCY)
    for p in positions:
        broker.hold_spreads(p, p.contracts)
    clock = ManualClock(script.T0)
    return Demo(SimVenue(market, broker, clock), clock, positions, script.SCHEDULE)


@dataclass(frozen=True)
class Faults:
    """Faults the fake gateway starts with (``spreadwatch fake-gateway`` flags)."""

    delayed_only: bool = False
    bad_quotes: str = ""  # "-1" or "nan"
    reject: str | None = None
    line_limit: int = 100
    fill_size: int | None = None
    unsubscribed: frozenset[str] = frozenset()  # underlyings whose options get IB's 10089
    read_only: bool = False  # IB Gateway's "Read-Only API": every placeOrder gets 321
    inactive_then_submitted: bool = False  # a new order Inactive for a while, then Submitted
    commission_delay: float | None = None  # seconds each commission report trails (None: IB's)
    commission_first: bool = False  # commission reports before their executions
    leg_only_fills: bool = False  # no BAG execution: the legs' executions only


def fake_gateway(
    positions: Iterable[Position],
    clock: Clock,
    start: datetime,
    account: str,
    faults: Faults,
    *,
    script: Path | None = None,
    ledger: Path | None = None,
) -> FakeGateway:
    """A fake IB gateway on the simulated market seeded from ``positions``, its paper
    account holding their legs, with ``faults``; its market moved by the ``script`` file's
    moves, what it sees written to the ``ledger`` file (an InputError for a bad script or
    a ledger that cannot be written)."""
    from brokers.ib.fake import FakeGateway  # noqa: PLC0415
    from brokers.ib.fake.ledger import Ledger  # noqa: PLC0415
    from brokers.ib.fake.script import Script, load_script  # noqa: PLC0415

    held = list(positions)
    gateway = FakeGateway(seed.market_for(held, start), clock, account=account)
    if script is not None:
        gateway.script = Script(load_script(script, start, gateway.market.underlyings))
    if ledger is not None:
        try:
            gateway.ledger = Ledger(ledger)
        except OSError as exc:
            raise InputError(f"--ledger: cannot write {ledger}: {exc.strerror}") from exc
    gateway.delayed_only = faults.delayed_only
    gateway.bad_quotes = faults.bad_quotes
    gateway.reject = faults.reject
    gateway.line_limit = faults.line_limit
    gateway.broker.fill_size = faults.fill_size
    gateway.unsubscribed = faults.unsubscribed
    gateway.read_only = faults.read_only
    gateway.inactive_then_submitted = faults.inactive_then_submitted
    if faults.commission_delay is not None:
        gateway.commission_delay = faults.commission_delay
    gateway.commission_first = faults.commission_first
    gateway.leg_only_fills = faults.leg_only_fills
    for p in held:
        gateway.hold_spreads(p, p.contracts)
    return gateway
