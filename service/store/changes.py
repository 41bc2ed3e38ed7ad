"""What both stores decide alike: why a change is refused, the statuses orders and
positions take, and what a fill changes (from :func:`rules.machine.fill_outcome`, with
the P&L of :mod:`rules.pnl`). Only the storage differs between the stores.
"""

from __future__ import annotations

from collections.abc import Mapping, Set
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, NamedTuple

from rules.machine import (
    TRANSITIONS,
    EventKind,
    IllegalTransition,
    Phase,
    fill_outcome,
)
from rules.pnl import pct_of_max, realised_pnl
from service.errors import StoreRefused
from service.ports import (
    ENDED_STATUSES,
    EVERY_POSITION,
    FINAL_ORDER_STATUSES,
    SENT_STATUSES,
    CloseIntent,
    Commission,
    ControlKind,
    Fill,
    OrderStatus,
    StoredFill,
    StoredOrder,
    StoredPosition,
)
from service.store.rows import event_values

# the position's status once a close intent is written, and once its order ended
ON_INTENT = TRANSITIONS[(Phase.OPEN, EventKind.CLOSE_SENT)]
ON_END = TRANSITIONS[(Phase.CLOSING, EventKind.ORDER_ENDED)]
# what each sent status replaces: the broker's word comes in any order, and an order only
# goes on (queued, written once the order is handed to the broker, never replaces the
# acknowledgement written before it; nothing replaces partly filled or a final status)
REPLACES: dict[OrderStatus, frozenset[OrderStatus]] = {
    OrderStatus.QUEUED: frozenset({OrderStatus.INTENT}),
    OrderStatus.SUBMITTED: frozenset({OrderStatus.INTENT, OrderStatus.QUEUED}),
    OrderStatus.WORKING: frozenset(
        {OrderStatus.INTENT, OrderStatus.QUEUED, OrderStatus.SUBMITTED, OrderStatus.WORKING}
    ),
}


PRICE = Decimal("0.000001")  # an order's average price
CENT = Decimal("0.01")  # a fill's P&L and share of the maximum


def already_stored(position_id: str) -> StoreRefused:
    return StoreRefused(f"position '{position_id}': id: already stored")


def no_position(position_id: str) -> StoreRefused:
    return StoreRefused(f"position '{position_id}': no such position")


def no_order(order_ref: str, what: str = "") -> StoreRefused:
    return StoreRefused(f"{what}order_ref: no order {order_ref}")


def no_leg(position_id: str, index: int) -> StoreRefused:
    return StoreRefused(f"position '{position_id}': leg {index}: no such leg")


def already_closed(position_id: str) -> StoreRefused:
    return StoreRefused(f"position '{position_id}': already closed")


def already_void(position_id: str) -> StoreRefused:
    return StoreRefused(f"position '{position_id}': void (no longer watched)")


def order_working(position_id: str, order_ref: str) -> StoreRefused:
    return StoreRefused(
        f"position '{position_id}': close order {order_ref} is working at the broker: "
        "wait for it to end (or cancel it there), then void"
    )


def held_by(void: str | None, attention: str | None) -> str | None:
    """Why no order may go for a position a human holds: void, or needs attention."""
    if void is not None:
        return f"void ({void})"
    return None if attention is None else f"needs attention ({attention})"


def controllable(stored: StoredPosition) -> None:
    """Refuse a human's change to a position that is closed or void."""
    pid = stored.position.id
    if stored.status is Phase.CLOSED:
        raise already_closed(pid)
    if stored.void is not None:
        raise already_void(pid)


# The audit kinds of a position's control (rows.control_values)
VOIDED, BOOK_CHANGED, ATTENTION, RESUMED, EXPIRED = (
    ControlKind.VOIDED.value,
    ControlKind.BOOK_CHANGED.value,
    ControlKind.ATTENTION.value,
    ControlKind.RESUMED.value,
    ControlKind.EXPIRED.value,
)
# The notification channel of a human's changes (payload: the position id, or "*": many)
CHANNEL = "spreadwatch_positions"
EVERY = EVERY_POSITION


def intent_refusal(
    intent: CloseIntent,
    remaining: int | None,
    live: str | None,
    taken: bool = False,
    held: str | None = None,
) -> str | None:
    """Why ``intent`` may not be written, given its position's ``remaining`` (None: no
    such position), its live order's ref (None: none), whether its order_ref is
    ``taken`` by an order stored before, and why a human holds it (:func:`held_by`);
    None when it may."""
    ref, pid = intent.order_ref, intent.position_id
    if taken:
        return f"order {ref}: order_ref: already stored"
    if remaining is None:
        return f"order {ref}: position '{pid}': no such position"
    if held is not None:
        return f"order {ref}: position '{pid}': {held}: no order goes"
    if not 0 < intent.quantity <= remaining:
        return f"order {ref}: quantity: {intent.quantity} spreads to close, {remaining} remaining"
    if live is not None:
        return f"order {ref}: position {pid} has {live} live"
    return None


def sent_status(status: str) -> OrderStatus:
    """``order_sent``'s status, checked: queued, submitted or working."""
    if status not in SENT_STATUSES:
        raise ValueError(status)
    return OrderStatus(status)


def ended_status(status: str) -> OrderStatus:
    """``end_order``'s status, checked: cancelled or rejected."""
    if status not in ENDED_STATUSES:
        raise ValueError(status)
    return OrderStatus(status)


def after_end(order: str, remaining: int, phase: Phase) -> Phase | None:
    """The position's phase once its ``order`` (its status now) ended unfilled; None when
    the order had ended already (filled before the cancel reached the broker...): then
    nothing changes."""
    if OrderStatus(order) in FINAL_ORDER_STATUSES:
        return None
    return ON_END if remaining > 0 else phase


# Fills ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class FillChange:
    """What a new execution writes: the order's figures, the position's, the audit row."""

    filled: int
    paid: Decimal
    avg_price: Decimal
    order_status: OrderStatus
    remaining: int
    profit_closed: int
    stage: int
    status: Phase
    closed_at: datetime | None  # set when the last contract fills
    event: dict[str, Any]


def repeat_of(fill: Fill, known: StoredFill) -> None:
    """An execution id seen before must be the same execution (else: refused)."""
    if (known.order_ref, known.quantity, known.price) != (
        fill.order_ref,
        fill.quantity,
        fill.price,
    ):
        raise StoreRefused(
            f"fill {fill.exec_id}: exec_id: already recorded as {known.quantity} "
            f"of {known.order_ref} at {known.price}"
        )


def stored_fill(fill: Fill) -> StoredFill:
    """A fill as the store keeps it."""
    return StoredFill(
        fill.exec_id, fill.order_ref, fill.quantity, fill.price, fill.commission, fill.time
    )


def commission_added(
    fills: Mapping[str, StoredFill], reports: Set[str], commission: Commission
) -> StoredFill | None:
    """The fill with a late commission report added (a commission none said counts as 0);
    None when that report was added before. Refused: a fill not recorded."""
    fill = fills.get(commission.exec_id)
    if fill is None:
        raise StoreRefused(
            f"commission {commission.report_id}: fill {commission.exec_id} is not recorded"
        )
    if commission.report_id in reports:
        return None
    return replace(fill, commission=(fill.commission or Decimal(0)) + commission.amount)


class Standing(NamedTuple):
    """What a fill needs of its position (a ``positions`` row, or a stored position's)."""

    id: str
    remaining: int
    profit_closed: int
    stage: int
    entry_credit: Decimal
    multiplier: int


def standing(stored: StoredPosition) -> Standing:
    p = stored.position
    return Standing(
        p.id, stored.remaining, stored.profit_closed, stored.stage, p.entry_credit, p.multiplier
    )


def fill_change(fill: Fill, order: StoredOrder, position: Standing) -> FillChange:
    """A new execution of ``order`` applied to ``position`` (both as stored now).

    The state change is the domain's (:func:`rules.machine.fill_outcome`): the fill
    proves its order works, so the position is taken as CLOSING on it. Raises
    :class:`StoreRefused` for more than the order's unfilled rest or the position's
    remaining (nothing is written)."""
    try:
        out = fill_outcome(
            position.id,
            Phase.CLOSING,
            position.remaining,
            position.profit_closed,
            position.stage,
            order.working(position.entry_credit, position.multiplier),
            fill.quantity,
        )
    except IllegalTransition as exc:
        raise StoreRefused(
            f"fill {fill.exec_id}: quantity: {fill.quantity} spreads, but order "
            f"{order.order_ref} has {order.quantity - order.filled} unfilled and position "
            f"{position.id} {position.remaining} remaining"
        ) from exc
    # the average from the exact total paid: the same to the digit whatever order
    # concurrent fills were applied in
    paid = order.paid + fill.price * fill.quantity
    return FillChange(
        filled=out.filled,
        paid=paid,
        avg_price=(paid / out.filled).quantize(PRICE, ROUND_HALF_UP),
        order_status=OrderStatus.FILLED if out.order_complete else OrderStatus.PARTIALLY_FILLED,
        remaining=out.remaining,
        profit_closed=out.profit_closed,
        stage=out.stage,
        status=out.phase,
        closed_at=fill.time if out.phase is Phase.CLOSED else None,
        event=_filled_values(fill, order, position, out.remaining),
    )


def _filled_values(
    fill: Fill, order: StoredOrder, position: Standing, remaining: int
) -> dict[str, Any]:
    """The audit row of a fill: its P&L (:mod:`rules.pnl`) and share of the maximum, to
    the cent."""
    credit = position.entry_credit
    pnl = realised_pnl(credit, fill.price, position.multiplier, fill.quantity)
    return event_values(
        position_id=position.id,
        kind="filled",
        reason=order.reason,
        label=order.label,
        order_ref=order.order_ref,
        mark=fill.price,
        pnl=pnl.quantize(CENT, ROUND_HALF_UP),
        pct_of_max=pct_of_max(credit, fill.price).quantize(CENT, ROUND_HALF_UP),
        contracts_closed=fill.quantity,
        contracts_remaining=remaining,
        detail=f"execution {fill.exec_id}",
    )
