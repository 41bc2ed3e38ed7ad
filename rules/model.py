"""Positions, legs and leg quotes: the nouns of the exit rules.

Money (option prices, credits, debits, P&L) is ``Decimal`` everywhere. Model
inputs that are not money (delta, the underlying's price for the local Greeks)
are floats.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Final, NamedTuple

from rules.clock import expiry_instant


class Right(enum.StrEnum):
    PUT = "P"
    CALL = "C"


class Side(enum.StrEnum):
    SHORT = "short"
    LONG = "long"


class Strategy(enum.StrEnum):
    PUT_CREDIT = "put_credit"
    CALL_CREDIT = "call_credit"
    IRON_CONDOR = "iron_condor"


# Each member by its text (a member finds itself too): a lookup where calling the class,
# Right("P"), is an interpreted call, ~4,600 instructions even compiled
RIGHTS: Final[dict[str, Right]] = {r.value: r for r in Right}
SIDES: Final[dict[str, Side]] = {s.value: s for s in Side}
STRATEGIES: Final[dict[str, Strategy]] = {s.value: s for s in Strategy}


# A hot type's __init__ is written out (init=False): mypyc compiles it, not the one
# dataclasses would generate (docs/performance.md, "Core types built natively").
@dataclass(frozen=True, slots=True, init=False)
class Leg:
    right: Right
    strike: Decimal
    expiry: date
    side: Side

    def __init__(self, right: Right, strike: Decimal, expiry: date, side: Side) -> None:
        object.__setattr__(self, "right", right)
        object.__setattr__(self, "strike", strike)
        object.__setattr__(self, "expiry", expiry)
        object.__setattr__(self, "side", side)


@dataclass(frozen=True, slots=True, init=False)
class Position:
    """One defined-risk credit spread as it was opened.

    ``contracts`` is the original number of spreads; what is still open lives
    in the exit state (``rules.machine.ExitState``), not here.
    """

    id: str
    book: str
    underlying: str
    strategy: Strategy
    legs: tuple[Leg, ...]
    contracts: int
    entry_credit: Decimal
    opened_at: datetime
    multiplier: int = 100
    # the exchange's name for its options' class where the underlying has several (SPX's
    # monthly SPX and weekly SPXW); empty: the underlying's only one
    trading_class: str = ""

    def __init__(
        self,
        id: str,
        book: str,
        underlying: str,
        strategy: Strategy,
        legs: tuple[Leg, ...],
        contracts: int,
        entry_credit: Decimal,
        opened_at: datetime,
        multiplier: int = 100,
        trading_class: str = "",
    ) -> None:
        object.__setattr__(self, "id", id)
        object.__setattr__(self, "book", book)
        object.__setattr__(self, "underlying", underlying)
        object.__setattr__(self, "strategy", strategy)
        object.__setattr__(self, "legs", legs)
        object.__setattr__(self, "contracts", contracts)
        object.__setattr__(self, "entry_credit", entry_credit)
        object.__setattr__(self, "opened_at", opened_at)
        object.__setattr__(self, "multiplier", multiplier)
        object.__setattr__(self, "trading_class", trading_class)

    @property
    def expiry(self) -> date:
        return self.legs[0].expiry

    @property
    def max_profit(self) -> Decimal:
        return self.entry_credit * self.multiplier * self.contracts


class Quote(NamedTuple):
    """The latest quote of one leg, as the broker sent it.

    A NamedTuple rather than a dataclass because one is built for every market
    data update; validity is judged by :func:`quote_problem`, never assumed.
    """

    bid: Decimal | None
    ask: Decimal | None
    ts: datetime
    delta: float | None = None
    underlying_price: float | None = None


MAX_PRICE: Final = Decimal(1_000_000)  # no option trades at a million: such a quote is garbage


def quote_problem(q: Quote) -> str | None:
    """Why a quote must not be acted on, or None when it is usable.

    Usable means: both sides present and finite, bid >= 0, ask > 0 (an ask of
    zero is no offer) and bid <= ask. IB's -1 "no price" fails the bid/ask
    sign test; NaN fails the finiteness test.
    """
    bid, ask = q.bid, q.ask
    if bid is None or ask is None:
        return "missing side"
    if not (bid.is_finite() and ask.is_finite()):
        return "not a number"
    if bid < 0 or ask <= 0:
        return "negative or zero price"
    if ask >= MAX_PRICE:
        return "price of a million or more"
    if bid > ask:
        return "crossed"
    return None


def usable_delta(delta: float | None) -> float | None:
    """The broker's delta when it is a real number in [-1, 1] (IB sends -2 or NaN for none)."""
    if delta is None or not math.isfinite(delta) or not -1.0 <= delta <= 1.0:
        return None
    return delta


class InvalidPosition(ValueError):
    """A position that is not a valid credit spread; ``field`` names the culprit."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def article(word: str) -> str:
    """``word`` after "a" or "an" as it is said: an iron_condor, a put_credit."""
    return f"{'an' if word[:1].lower() in 'aeiou' else 'a'} {word}"


def _vertical_problem(short: Leg, long: Leg, right: Right) -> str | None:
    if short.right is not right or long.right is not right:
        return f"a {right.name.lower()} credit vertical needs two {right.value} legs"
    if right is Right.PUT and not short.strike > long.strike:
        return "a put credit spread sells the higher strike (short strike > long strike)"
    if right is Right.CALL and not short.strike < long.strike:
        return "a call credit spread sells the lower strike (short strike < long strike)"
    return None


def check_position(p: Position) -> None:
    """Raise :class:`InvalidPosition` unless ``p`` is a defined-risk credit spread."""
    if not p.id:
        raise InvalidPosition("id", "must not be empty")
    if p.contracts <= 0:
        raise InvalidPosition("contracts", f"must be > 0, got {p.contracts}")
    if p.multiplier <= 0:
        raise InvalidPosition("multiplier", f"must be > 0, got {p.multiplier}")
    if not p.entry_credit.is_finite() or p.entry_credit <= 0:
        raise InvalidPosition("entry_credit", f"must be > 0, got {p.entry_credit}")
    if p.opened_at.tzinfo is None:
        raise InvalidPosition("opened_at", "needs a UTC offset (ISO-8601 with offset)")
    for leg in p.legs:
        if not leg.strike.is_finite() or leg.strike <= 0:
            raise InvalidPosition("legs.strike", f"must be > 0, got {leg.strike}")
    if len({leg.expiry for leg in p.legs}) > 1:
        raise InvalidPosition("legs.expiry", "all legs of a spread must share one expiry")
    # (the legs' fields, not the Legs, in a set: a dataclass's hash is interpreted)
    if len({(leg.right, leg.strike, leg.expiry, leg.side) for leg in p.legs}) != len(p.legs):
        raise InvalidPosition("legs", "the same leg appears twice")
    shorts = sorted((leg for leg in p.legs if leg.side is Side.SHORT), key=lambda leg: leg.right)
    longs = sorted((leg for leg in p.legs if leg.side is Side.LONG), key=lambda leg: leg.right)
    want = 4 if p.strategy is Strategy.IRON_CONDOR else 2
    if len(p.legs) != want or len(shorts) != len(longs):
        raise InvalidPosition(
            "legs", f"{article(p.strategy.value)} has {want} legs, half short and half long"
        )
    problem: str | None
    if p.strategy is Strategy.PUT_CREDIT:
        problem = _vertical_problem(shorts[0], longs[0], Right.PUT)
    elif p.strategy is Strategy.CALL_CREDIT:
        problem = _vertical_problem(shorts[0], longs[0], Right.CALL)
    else:
        # sorted by right: "C" < "P", so index 0 is the call side
        problem = _vertical_problem(shorts[1], longs[1], Right.PUT) or _vertical_problem(
            shorts[0], longs[0], Right.CALL
        )
        if problem is None and shorts[1].strike > shorts[0].strike:
            problem = "an iron condor's short put strike must not be above its short call strike"
    if problem is not None:
        raise InvalidPosition("legs", problem)
    width = max(abs(s.strike - lg.strike) for s, lg in zip(shorts, longs, strict=True))
    if p.entry_credit >= width:
        raise InvalidPosition(
            "entry_credit",
            f"{p.entry_credit} is not less than the spread's width {width}: not a credit spread",
        )
    if p.opened_at >= expiry_instant(p.expiry):
        raise InvalidPosition(
            "legs.expiry", f"expiry {p.expiry} is not after opened_at {p.opened_at.isoformat()}"
        )
