"""The account's option holdings as credit spreads: the pure part of ``positions sync``.

Theory of operation. Holdings already in a stored position (matched by conId, or by
leg when either side has no conId) are set apart first, so they never take part in
the pairing of the others; they are grouped the same way, by the position holding
them, and said as stored. The rest are paired per (underlying, expiry, right,
multiplier, trading class: SPX's monthly options never pair with its weekly SPXW):

1. Shorts are taken nearest the money first (puts: highest strike first; calls:
   lowest first). Each pairs with the unpaired long **of the same quantity** on its
   protective side (puts: a lower strike; calls: a higher one) nearest its strike.
   Such a pair is a credit vertical when the short's price is above the long's, else
   a debit spread.
2. A short still alone pairs with the nearest long of the same quantity on the
   other side: a debit spread (a long nearer the money than the short it covers).
3. What is left: shorts and longs both left in the group are quantities that do not
   pair (a ratio); a short alone is a naked short; a long alone is a long alone.

A put credit vertical and a call credit vertical of the same underlying, expiry,
quantity, multiplier and trading class make an iron condor: puts by short strike from the highest,
each with the call vertical whose short strike is the nearest at or above its own.

Holdings split across spreads of different quantities are not divided: their
quantities do not pair, and are said so.

A vertical's credit per share: when the opening executions of both legs cover the
quantity held (sold for the short, bought for the long, the latest first, as FIFO
leaves the latest lots open), their quantity-weighted prices, short minus long, and
it opened at the latest of them; else the holdings' average costs, short minus long,
divided by the multiplier (IB's avgCost is per contract, multiplier included), and
the time it opened is not known. Rounded to 6 places (the store's scale for money).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum

from rules.model import Right, Strategy
from service.ports import Holding, LegFill, LegKey, StoredLeg

MONEY = Decimal("0.000001")  # the store's scale for money


class Why(StrEnum):
    """Why holdings cannot be placed in a spread."""

    NAKED_SHORT = "naked short"
    LONG_ALONE = "long alone"
    DEBIT = "debit spread"
    RATIO = "quantities do not pair"
    STORED = "already in a stored position"
    INVALID = "not a valid credit spread"


@dataclass(frozen=True)
class Unplaced:
    """Holdings that make no credit spread, and why."""

    holdings: tuple[Holding, ...]
    why: Why
    detail: str = ""

    @property
    def reason(self) -> str:
        return f"{self.why}: {self.detail}" if self.detail else str(self.why)


@dataclass(frozen=True)
class Vertical:
    """A short and a long of one right, expiry and quantity, sold for ``credit`` a share."""

    short: Holding
    long: Holding
    credit: Decimal
    opened_at: datetime | None  # the latest opening execution's, when they cover both legs

    @property
    def right(self) -> Right:
        return self.short.leg.right

    @property
    def quantity(self) -> int:
        return -self.short.quantity


@dataclass(frozen=True)
class Spread:
    """A credit vertical, or an iron condor (its put vertical first), found in the account."""

    verticals: tuple[Vertical, ...]
    stored_as: str | None = None  # the stored position that holds its legs

    @property
    def strategy(self) -> Strategy:
        if len(self.verticals) == 2:
            return Strategy.IRON_CONDOR
        return Strategy.PUT_CREDIT if self.verticals[0].right is Right.PUT else Strategy.CALL_CREDIT

    @property
    def underlying(self) -> str:
        return self.verticals[0].short.leg.underlying

    @property
    def expiry(self) -> date:
        return self.verticals[0].short.leg.expiry

    @property
    def quantity(self) -> int:
        return self.verticals[0].quantity

    @property
    def multiplier(self) -> int:
        return self.verticals[0].short.multiplier

    @property
    def trading_class(self) -> str:
        return self.verticals[0].short.trading_class

    @property
    def credit(self) -> Decimal:
        """The spread's credit a share: an iron condor's is its verticals' sum."""
        return sum((v.credit for v in self.verticals), Decimal(0))

    @property
    def opened_at(self) -> datetime | None:
        times = [v.opened_at for v in self.verticals]
        return None if None in times else max(t for t in times if t is not None)

    @property
    def holdings(self) -> tuple[Holding, ...]:
        return tuple(h for v in self.verticals for h in (v.short, v.long))


@dataclass(frozen=True)
class Grouping:
    spreads: tuple[Spread, ...]
    unplaced: tuple[Unplaced, ...]


def group(
    holdings: Iterable[Holding],
    fills: Sequence[LegFill] = (),
    stored: Sequence[StoredLeg] = (),
) -> Grouping:
    """The credit spreads ``holdings`` make and what they cannot place (see the module)."""
    held = [h for h in holdings if h.quantity]
    owners = {id(h): _owner(h, stored) for h in held}
    spreads, unplaced = _place([h for h in held if owners[id(h)] is None], fills)
    for pid in sorted({o for o in owners.values() if o is not None}):
        mine, lost = _place([h for h in held if owners[id(h)] == pid], fills)
        spreads += [replace(s, stored_as=pid) for s in mine]
        unplaced += [Unplaced(u.holdings, Why.STORED, pid) for u in lost]
    return Grouping(tuple(spreads), tuple(unplaced))


def _same(con_id: int | None, leg: LegKey, holding: Holding) -> bool:
    """The same contract as ``holding``'s: by conId when both know it, else by the leg."""
    if con_id and holding.con_id:
        return con_id == holding.con_id
    return leg == holding.leg


def _owner(holding: Holding, stored: Sequence[StoredLeg]) -> str | None:
    """The stored position holding this contract: by conId when both sides know it, else
    by the leg."""
    return next((s.position_id for s in stored if _same(s.con_id, s.leg, holding)), None)


def _place(
    holdings: Sequence[Holding], fills: Sequence[LegFill]
) -> tuple[list[Spread], list[Unplaced]]:
    groups: dict[tuple[str, date, Right, int, str], list[Holding]] = {}
    for h in holdings:
        key = (h.leg.underlying, h.leg.expiry, h.leg.right, h.multiplier, h.trading_class)
        groups.setdefault(key, []).append(h)
    verticals: list[Vertical] = []
    unplaced: list[Unplaced] = []
    for key in sorted(groups):
        found, lost = _pair(groups[key], fills)
        verticals += found
        unplaced += lost
    return _condors(verticals), unplaced


def _protects(short: Holding, long: Holding) -> bool:
    """``long`` is on ``short``'s protective side: a lower put, a higher call."""
    if short.leg.right is Right.PUT:
        return long.leg.strike < short.leg.strike
    return long.leg.strike > short.leg.strike


def _nearest(short: Holding, longs: Iterable[Holding]) -> Holding | None:
    """The long of ``short``'s quantity nearest its strike (the lower strike on a tie)."""
    fits = [lg for lg in longs if lg.quantity == -short.quantity]
    if not fits:
        return None
    return min(fits, key=lambda lg: (abs(lg.leg.strike - short.leg.strike), lg.leg.strike))


def _pair(
    holdings: list[Holding], fills: Sequence[LegFill]
) -> tuple[list[Vertical], list[Unplaced]]:
    """One (underlying, expiry, right, multiplier)'s holdings, paired (see the module)."""
    puts = holdings[0].leg.right is Right.PUT
    shorts = sorted(
        (h for h in holdings if h.quantity < 0), key=lambda h: h.leg.strike, reverse=puts
    )
    longs = sorted((h for h in holdings if h.quantity > 0), key=lambda h: h.leg.strike)
    verticals: list[Vertical] = []
    unplaced: list[Unplaced] = []
    alone: list[Holding] = []
    for short in shorts:
        long = _nearest(short, (lg for lg in longs if _protects(short, lg)))
        if long is None:
            alone.append(short)
            continue
        longs.remove(long)
        vertical = _vertical(short, long, fills)
        if vertical.credit > 0:
            verticals.append(vertical)
        else:
            unplaced.append(_debit(short, long, vertical.credit))
    left: list[Holding] = []
    for short in alone:
        long = _nearest(short, longs)
        if long is None:
            left.append(short)
            continue
        longs.remove(long)
        unplaced.append(_debit(short, long, _vertical(short, long, fills).credit))
    return verticals, unplaced + _leftovers(left, longs)


def _debit(short: Holding, long: Holding, credit: Decimal) -> Unplaced:
    side = "below" if long.leg.strike < short.leg.strike else "above"
    detail = f"long {_leg(long)} {side} short {_leg(short)}"
    if credit < 0:
        detail += f", the long costs {(-credit).normalize():f} a share more"
    elif credit == 0:
        detail += ", both at the same price"
    return Unplaced((short, long), Why.DEBIT, detail)


def _leftovers(shorts: list[Holding], longs: list[Holding]) -> list[Unplaced]:
    if shorts and longs:
        detail = ", ".join(f"{h.quantity:+d} {_leg(h)}" for h in (*shorts, *longs))
        return [Unplaced((*shorts, *longs), Why.RATIO, detail)]
    return [Unplaced((h,), Why.NAKED_SHORT) for h in shorts] + [
        Unplaced((h,), Why.LONG_ALONE) for h in longs
    ]


def _leg(h: Holding) -> str:
    return f"{h.leg.right.value}{h.leg.strike.normalize():f}"


def _vertical(short: Holding, long: Holding, fills: Sequence[LegFill]) -> Vertical:
    """The vertical's credit a share: from the opening executions when they cover both legs,
    else from the average costs (see the module)."""
    sold, bought = _opening(short, fills), _opening(long, fills)
    if sold is not None and bought is not None:
        credit = sold[0] - bought[0]
        opened: datetime | None = max(sold[1], bought[1])
    else:
        credit = (short.avg_cost - long.avg_cost) / short.multiplier
        opened = None
    return Vertical(short, long, credit.quantize(MONEY), opened)


def _opening(holding: Holding, fills: Sequence[LegFill]) -> tuple[Decimal, datetime] | None:
    """The quantity-weighted price a share of the executions that opened what is held (the
    latest first, as FIFO leaves the latest lots open) and the latest one's time; None
    when they do not cover the quantity held."""
    sign = 1 if holding.quantity > 0 else -1
    mine = sorted(
        (f for f in fills if f.quantity * sign > 0 and _same(f.con_id, f.leg, holding)),
        key=lambda f: (f.time, f.exec_id),
        reverse=True,
    )
    want, got, paid = abs(holding.quantity), 0, Decimal(0)
    for f in mine:
        take = min(abs(f.quantity), want - got)
        got += take
        paid += f.price * take
        if got == want:
            return paid / want, mine[0].time
    return None


def _condors(verticals: list[Vertical]) -> list[Spread]:
    """Put and call credit verticals of one underlying, expiry, quantity and multiplier
    combined into iron condors (see the module); the others as they are."""
    calls = sorted(
        (v for v in verticals if v.right is Right.CALL), key=lambda v: v.short.leg.strike
    )
    spreads: list[Spread] = []
    puts = sorted(
        (v for v in verticals if v.right is Right.PUT),
        key=lambda v: v.short.leg.strike,
        reverse=True,
    )
    for put in puts:
        call = next((c for c in calls if _fits(put, c)), None)
        if call is None:
            spreads.append(Spread((put,)))
        else:
            calls.remove(call)
            spreads.append(Spread((put, call)))
    spreads += [Spread((c,)) for c in calls]
    return sorted(spreads, key=_order)


def _fits(put: Vertical, call: Vertical) -> bool:
    p, c = put.short, call.short
    return (p.leg.underlying, p.leg.expiry, p.multiplier, p.trading_class, put.quantity) == (
        c.leg.underlying,
        c.leg.expiry,
        c.multiplier,
        c.trading_class,
        call.quantity,
    ) and c.leg.strike >= p.leg.strike


def _order(spread: Spread) -> tuple[str, date, str, tuple[Decimal, ...]]:
    strikes = tuple(h.leg.strike for h in spread.holdings)
    return spread.underlying, spread.expiry, spread.strategy.value, strikes
