"""Closing orders: built from a position, and checked at the gateway boundary.

A close buys back the short legs and sells the long ones, one contract of
each per spread. :func:`check_close` is the last check before an order goes
to a broker, and it refuses loudly (:class:`NotAClose`) an order that could
open or increase exposure: more spreads than remain, a leg the account does
not hold, a buy of a leg held long or a sell of a leg held short, or more
contracts of a leg than are held.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

from rules.model import Position, Side
from service.ports import Action, ComboLeg, ComboOrder, LegKey, leg_key


class NotAClose(RuntimeError):
    """An order that would not only close: refused before it reaches the broker."""


def closing_order(position: Position, ref: str, quantity: int, limit: Decimal) -> ComboOrder:
    """Close ``quantity`` spreads of ``position`` at a debit of ``limit`` each."""
    return ComboOrder(
        order_ref=ref,
        legs=tuple(
            ComboLeg(leg_key(position, i), Action.BUY if leg.side is Side.SHORT else Action.SELL)
            for i, leg in enumerate(position.legs)
        ),
        quantity=quantity,
        limit=limit,
    )


def check_close(
    order: ComboOrder,
    held: Mapping[LegKey, int],
    remaining: int,
    expected: Mapping[LegKey, int] | None = None,
) -> None:
    """Refuse ``order`` unless it only reduces what the account holds (see the module).

    ``expected`` is what the open positions together imply the account holds per
    contract (short < 0). Spreads can share a contract (one's short put is another's
    long put), so the account's net may be 0 while both are open: then the check is
    that the account holds exactly what the positions imply, and the order (built from
    one position's own legs) takes that position's part off. Without ``expected``
    the account's net must be on the closing side and large enough.
    """
    ref = order.order_ref
    if not 0 < order.quantity <= remaining:
        raise NotAClose(f"order {ref}: {order.quantity} spreads, {remaining} remaining")
    if order.limit < 0:
        raise NotAClose(f"order {ref}: a credit limit ({order.limit}) is no closing debit")
    for combo_leg in order.legs:
        leg, contracts = combo_leg.leg, order.quantity * combo_leg.ratio
        have = held.get(leg, 0)
        if expected is not None:
            want = expected.get(leg, 0)
            if have != want:
                raise NotAClose(
                    f"order {ref}: {leg.underlying} {leg.expiry} {leg.right.value} "
                    f"{leg.strike}: account holds {have}, the open positions imply {want}"
                )
            continue
        closes = have < 0 if combo_leg.action is Action.BUY else have > 0
        if not closes:
            raise NotAClose(
                f"order {ref}: {combo_leg.action.value} {leg.underlying} {leg.expiry} "
                f"{leg.right.value} {leg.strike} would open or increase: account holds {have}"
            )
        if contracts > abs(have):
            raise NotAClose(
                f"order {ref}: {combo_leg.action.value} {contracts} {leg.underlying} "
                f"{leg.expiry} {leg.right.value} {leg.strike}: account holds only {have}"
            )
