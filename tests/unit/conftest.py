"""Shared builders for the unit tests of rules/: positions, quotes and exchange times.

Dates are chosen so that DTEs are what a test says: ``EXPIRY`` is a Friday and
``at_dte(n)`` is 11:00 New York time ``n`` calendar days before it. Quotes of a
vertical are built from the debit a test wants, so the mid (or natural) debit
is exact in Decimal.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from rules.books import BookPolicy
from rules.clock import MarketTime
from rules.machine import Close, CloseSent, ExitState, Filled, apply, open_state
from rules.model import Leg, Position, Quote, Right, Side, Strategy

NY = ZoneInfo("America/New_York")
EXPIRY = date(2025, 6, 20)  # a Friday
HALF_SPREAD = Decimal("0.01")


def d(text: str) -> Decimal:
    return Decimal(text)


def opened_before(days: int, expiry: date = EXPIRY) -> datetime:
    """10:00 New York time ``days`` calendar days before ``expiry``: initial DTE = ``days``."""
    return datetime.combine(expiry - timedelta(days=days), time(10, 0), tzinfo=NY)


def at_dte(dte: int, expiry: date = EXPIRY, *, regular_hours: bool = True) -> MarketTime:
    """11:00 New York time on the session ``dte`` calendar days before ``expiry``."""
    session = expiry - timedelta(days=dte)
    return MarketTime(datetime.combine(session, time(11, 0), tzinfo=NY), session, regular_hours)


def _vertical(
    right: Right,
    contracts: int,
    credit: str | Decimal,
    short: str,
    long: str,
    expiry: date,
    opened_at: datetime | None,
    underlying: str,
    book: str,
) -> Position:
    return Position(
        id=f"{'put' if right is Right.PUT else 'call'}-1",
        book=book,
        underlying=underlying,
        strategy=Strategy.PUT_CREDIT if right is Right.PUT else Strategy.CALL_CREDIT,
        legs=(
            Leg(right, Decimal(short), expiry, Side.SHORT),
            Leg(right, Decimal(long), expiry, Side.LONG),
        ),
        contracts=contracts,
        entry_credit=Decimal(credit),
        opened_at=opened_before(45, expiry) if opened_at is None else opened_at,
    )


def put_spread(
    contracts: int = 10,
    credit: str | Decimal = "1.00",
    short: str = "400",
    long: str = "395",
    expiry: date = EXPIRY,
    opened_at: datetime | None = None,
    *,
    underlying: str = "SPY",
    book: str = "PRIMARY",
) -> Position:
    """A put credit vertical; legs are (short put, long put). Opened 45 DTE by default."""
    return _vertical(Right.PUT, contracts, credit, short, long, expiry, opened_at, underlying, book)


def call_spread(
    contracts: int = 10,
    credit: str | Decimal = "1.00",
    short: str = "450",
    long: str = "455",
    expiry: date = EXPIRY,
    opened_at: datetime | None = None,
) -> Position:
    """A call credit vertical; legs are (short call, long call). Opened 45 DTE by default."""
    return _vertical(
        Right.CALL, contracts, credit, short, long, expiry, opened_at, "SPY", "PRIMARY"
    )


def iron_condor(contracts: int = 10, credit: str | Decimal = "2.00") -> Position:
    """Legs: long put 395, short put 400, short call 450, long call 455. Opened 45 DTE."""
    return Position(
        id="ic-1",
        book="PRIMARY",
        underlying="SPY",
        strategy=Strategy.IRON_CONDOR,
        legs=(
            Leg(Right.PUT, Decimal("395"), EXPIRY, Side.LONG),
            Leg(Right.PUT, Decimal("400"), EXPIRY, Side.SHORT),
            Leg(Right.CALL, Decimal("450"), EXPIRY, Side.SHORT),
            Leg(Right.CALL, Decimal("455"), EXPIRY, Side.LONG),
        ),
        contracts=contracts,
        entry_credit=Decimal(credit),
        opened_at=opened_before(45),
    )


def quote(
    mid: str | Decimal,
    ts: datetime,
    delta: float | None = None,
    underlying_price: float | None = None,
) -> Quote:
    """A valid quote one cent either side of ``mid``."""
    m = Decimal(mid)
    return Quote(m - HALF_SPREAD, m + HALF_SPREAD, ts, delta, underlying_price)


def vertical_quotes(
    debit: str | Decimal,
    ts: datetime,
    *,
    long_mid: str = "0.20",
    short_delta: float | None = -0.10,
    long_delta: float | None = -0.05,
) -> list[Quote]:
    """(short, long) quotes whose mid debit is exactly ``debit``; natural is ``debit`` + 0.02."""
    short_mid = Decimal(debit) + Decimal(long_mid)
    return [quote(short_mid, ts, short_delta), quote(long_mid, ts, long_delta)]


def state_of(position: Position, book: BookPolicy | None = None) -> ExitState:
    return open_state(position, BookPolicy() if book is None else book)


def filled(state: ExitState, close: Close) -> ExitState:
    """The state after ``close`` was sent and filled completely."""
    state = apply(state, CloseSent(close))
    return apply(state, Filled(close.contracts))
