"""The spreads found in the account as positions to import: ids, books, opening times.

Pure: the sync's time, the stored ids and the books are given. A position's id says
what it is and is stable from one sync to the next: ``SPY-20270115-P450-445`` (a put
vertical: short strike, then long), ``SPY-20270115-IC450-445-490-495`` (an iron condor:
short put, long put, short call, long call). An id the store already has for another
position gets a suffix (``-2``, ``-3``, ...).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from rules.model import InvalidPosition, Leg, Position, Side, check_position
from service.sync.group import Grouping, Spread, Unplaced, Why


@dataclass(frozen=True)
class Found:
    """A spread found in the account, as the position it is (or would be) stored as."""

    spread: Spread
    position: Position
    from_executions: bool  # opened_at and the credit are the executions'

    @property
    def stored_as(self) -> str | None:
        return self.spread.stored_as


@dataclass(frozen=True)
class Plan:
    """What a sync found, and what it cannot place."""

    found: tuple[Found, ...]
    unplaced: tuple[Unplaced, ...]

    @property
    def new(self) -> list[Position]:
        """The positions not stored yet: what ``--apply`` imports."""
        return [f.position for f in self.found if f.stored_as is None]


def plan(
    grouping: Grouping,
    *,
    book: str,
    books: Mapping[str, str],
    taken: Iterable[str],
    now: datetime,
) -> Plan:
    """Each spread of ``grouping`` as a position: ``books``' book for its underlying, else
    ``book``; opened at its executions' time, else ``now``; an id not in ``taken``. A spread
    that is not a valid position (rules.model.check_position) is said unplaced."""
    used = set(taken)
    found: list[Found] = []
    unplaced = list(grouping.unplaced)
    for spread in grouping.spreads:
        base = spread_id(spread)
        pid = base if spread.stored_as is not None else _free(base, used)
        position = _position(spread, pid, books.get(spread.underlying, book), now)
        if spread.stored_as is None:  # (a stored one is said stored, valid or not today)
            try:
                check_position(position)
            except InvalidPosition as exc:
                unplaced.append(Unplaced(spread.holdings, Why.INVALID, str(exc)))
                continue
        used.add(pid)
        found.append(Found(spread, position, spread.opened_at is not None))
    return Plan(tuple(found), tuple(unplaced))


def _strike(value: Decimal) -> str:
    return f"{value.normalize():f}"


def spread_id(spread: Spread) -> str:
    """The readable id of a spread (see the module)."""
    head = f"{spread.underlying}-{spread.expiry:%Y%m%d}"
    if len(spread.verticals) == 2:
        strikes = "-".join(_strike(h.leg.strike) for h in spread.holdings)
        return f"{head}-IC{strikes}"
    v = spread.verticals[0]
    return f"{head}-{v.right.value}{_strike(v.short.leg.strike)}-{_strike(v.long.leg.strike)}"


def _free(base: str, used: set[str]) -> str:
    pid, n = base, 1
    while pid in used:
        n += 1
        pid = f"{base}-{n}"
    return pid


def _plain(value: Decimal) -> Decimal:
    """450.0 -> 450, 395.50 -> 395.5 (never 4.5E+2)."""
    normal = value.normalize()
    return normal.quantize(Decimal(1)) if normal.as_tuple().exponent > 0 else normal  # type: ignore[operator]


def _position(spread: Spread, pid: str, book: str, now: datetime) -> Position:
    legs = tuple(
        Leg(
            h.leg.right,
            _plain(h.leg.strike),
            h.leg.expiry,
            Side.SHORT if h.quantity < 0 else Side.LONG,
        )
        for h in spread.holdings
    )
    return Position(
        id=pid,
        book=book,
        underlying=spread.underlying,
        strategy=spread.strategy,
        legs=legs,
        contracts=spread.quantity,
        entry_credit=spread.credit,
        opened_at=spread.opened_at or now,
        multiplier=spread.multiplier,
        trading_class=spread.trading_class,
    )
