"""An option contract as a broker knows it, and what the account holds and did of it.

These are values of :mod:`service.ports` (imported from there), kept in a module of
their own so the ports stay one sitting long: :class:`LegKey`, what ``positions sync``
reads from the broker's account (:class:`Holding`, :class:`LegFill`, through the
:class:`Account` port) and what it must not import again (:class:`StoredLeg`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import NamedTuple, Protocol

from rules.model import Right, Side


class LegKey(NamedTuple):
    """An option contract as a broker knows it (a position's leg, without its side).

    A NamedTuple: every quote is filed under its leg, and a tuple hashes and compares
    in C (a frozen dataclass's ``__hash__`` and ``__eq__`` are Python functions)."""

    underlying: str
    expiry: date
    right: Right
    strike: Decimal


@dataclass(frozen=True)
class Holding:
    """One option position the account holds, as the broker reports it (IB: a
    ``position`` message of ``reqPositions``)."""

    leg: LegKey
    con_id: int  # the broker's contract id; 0 when it has none (the simulated broker)
    quantity: int  # contracts, short < 0
    avg_cost: Decimal  # per contract, multiplier included (IB's avgCost), >= 0 either side
    multiplier: int


@dataclass(frozen=True)
class LegFill:
    """One execution of one option contract (IB: an execution of a leg, by conId)."""

    exec_id: str
    con_id: int
    leg: LegKey
    quantity: int  # bought > 0, sold < 0
    price: Decimal  # per share
    time: datetime


@dataclass(frozen=True)
class StoredLeg:
    """A leg of a stored position not closed or void (what a sync must not import again)."""

    position_id: str
    leg: LegKey
    side: Side
    con_id: int | None


class Account(Protocol):
    """What the broker says the account holds, and the executions it still has."""

    async def holdings(self) -> list[Holding]: ...

    async def leg_fills(self) -> list[LegFill]: ...
