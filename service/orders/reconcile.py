"""On start: the store's live orders and the account's holdings against the broker's.

:meth:`Reconciler.orders` runs before the positions are loaded: executions the
store has not seen are applied (once each, by execution id); an order the
broker no longer works is ended as cancelled; one it still works is adopted
(repriced and followed from now). One placed before the executions the broker
reports (IB: today's only; a daemon down overnight after a late fill) may have filled
unseen: it is ended, and the account decides once the positions are loaded
(:meth:`Reconciler.unseen`): where the account holds what the open positions imply on
each of the position's legs, it did not fill (said so); else the position needs
attention, with the holdings, rather than traded on as if nothing had happened. An order
still ``queued`` (handed to the broker's client, never acknowledged) that the broker
neither works, lists nor filled today never reached it: ended as cancelled, no alarm;
one the broker works is recorded as acknowledged (``submitted``) and adopted.
:meth:`Reconciler.holdings` runs after: it says where the account holds other than the
open positions imply (not fixed: closes of those legs are refused until a human looks).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from service.errors import StoreRefused
from service.logs import get_logger
from service.orders.execute import Attempts
from service.orders.working import WorkingOrders
from service.ports import (
    Commission,
    Completed,
    Execution,
    Fill,
    LegKey,
    OrderGateway,
    OrderStatus,
    Store,
    StoredOrder,
)

_log = get_logger("spreadwatch.orders")
_monitor_log = get_logger("spreadwatch.monitor")
NOT_WORKING = "not working at the broker on start"
NEVER_SENT = "queued, never acknowledged: never reached the broker"


def unknown_outcome(order_ref: str, placed: datetime) -> str:
    """Why an order's outcome is unknown: placed before the executions the broker reports."""
    return (
        f"order {order_ref}, placed {placed:%Y-%m-%d %H:%M} UTC, no longer works at the broker, "
        "which reports today's executions only"
    )


def moved(order_ref: str, placed: datetime, differ: Sequence[tuple[LegKey, int, int]]) -> str:
    """Why a position needs attention: its order's outcome unknown, and the account holds
    other than the open positions imply (``differ``: leg, held, implied)."""
    held = "; ".join(f"{leg.underlying} {leg.expiry} {leg.right.value} {leg.strike}: the "
                     f"account holds {have}, the open positions imply {want}"
                     for leg, have, want in differ)  # fmt: skip
    return (
        f"{unknown_outcome(order_ref, placed)}, and the account moved ({held}): it may have "
        "filled unseen; compare the account (`spreadwatch positions sync`), then void or "
        "resume the position"
    )


class Listed:
    """The broker's completed orders, found by perm id where the store knows an order's (it
    is the broker's own, unique), else by order ref (the latest)."""

    def __init__(self, completed: Sequence[Completed]) -> None:
        self.by_perm = {c.perm_id: c for c in completed}
        self.by_ref = {c.order_ref: c for c in completed}

    def of(self, order: StoredOrder) -> Completed | None:
        if order.perm_id:
            return self.by_perm.get(order.perm_id)
        return self.by_ref.get(order.order_ref)


@dataclass(frozen=True)
class Unseen:
    """An order ended at start whose outcome the broker's executions cannot tell."""

    order_ref: str
    position_id: str
    placed: datetime


class Reconciler:
    def __init__(
        self, store: Store, gateway: OrderGateway, working: WorkingOrders, attempts: Attempts
    ) -> None:
        self.store = store
        self.gateway = gateway
        self.working = working
        self.attempts = attempts
        self._unseen: list[Unseen] = []  # orders ended at start whose outcome is unknown

    async def _commissions(self, e: Execution) -> list[str]:
        """The commission reports of a fill recorded before they came (once per report id;
        the broker's executions of orders not in the store are not ours)."""
        done: list[str] = []
        for report_id, amount in e.reports:
            try:
                total = await self.store.add_commission(Commission(e.exec_id, report_id, amount))
            except StoreRefused:
                return done  # its fill is not recorded: not ours
            if total is not None:
                done.append(f"{e.order_ref}: commission {amount} added to {e.exec_id}")
        return done

    async def orders(self, now: datetime) -> list[str]:
        """The store's live orders against the broker's; what was done, a line each."""
        done: list[str] = []
        live = {o.order_ref: o for o in await self.store.live_orders()}
        for e in await self.gateway.executions():
            if e.order_ref in live:
                fill = Fill(e.exec_id, e.order_ref, e.quantity, e.price, e.time, e.commission,
                            e.reports)  # fmt: skip
                if (await self.store.apply_fill(fill)).applied:
                    done.append(f"{e.order_ref}: applied missed execution {e.exec_id}")
            done += await self._commissions(e)
        live = {o.order_ref: o for o in await self.store.live_orders()}  # after the fills
        working = {o.order_ref: o for o in await self.gateway.open_orders()}
        seen_from = self.gateway.executions_from(now)
        listed = Listed(await self.gateway.completed_orders()) if live.keys() - working else None
        for ref, order in live.items():
            if ref in working and working[ref].foreign:  # not ours to reprice or cancel
                await self.store.mark_attention(order.position_id, working[ref].foreign)
                done.append(f"{ref}: {working[ref].foreign}: its position needs attention")
            elif ref in working:
                if order.status is OrderStatus.QUEUED:  # the broker has it: acknowledged
                    await self.store.order_sent(ref, "submitted")
                if self.working.live_for(order.position_id) is None:
                    self.working.adopt(order, now)
                    done.append(f"{ref}: working at the broker: adopted")
            else:
                done.append(await self._ended(order, listed, seen_from))
        for line in done:
            _log.info("reconcile.line", detail=line)
        await self.attempts.load()  # now, not on the first decision
        return done

    async def _ended(
        self, order: StoredOrder, listed: Listed | None, seen_from: datetime | None
    ) -> str:
        """A live order the broker no longer works, ended: as the broker lists it among its
        completed orders, or, placed before the executions it reports, left for the account
        to decide (:meth:`unseen`), or as cancelled. The line said."""
        ref = order.order_ref
        done = None if listed is None else listed.of(order)
        if done is not None and done.filled > order.filled:  # fills the executions lack
            why = (
                f"order {ref}: the broker lists it {done.status} with {done.filled} filled, the "
                f"store has {order.filled}, and the broker reports no execution of the rest: "
                "compare the account (`spreadwatch positions sync`), then void or resume the "
                "position"
            )
            await self.store.end_order(ref, "cancelled", why)
            await self.store.mark_attention(order.position_id, why)
            return f"{ref}: {why}: ended, its position needs attention"
        if done is not None:
            detail = f"{done.status} at the broker with {done.filled} filled (its completed orders)"
            await self.store.end_order(ref, "cancelled", detail)
            return f"{ref}: {detail}: ended as cancelled"
        if seen_from is not None and order.created_at < seen_from:
            # placed before the executions the broker reports: it may have filled unseen
            why = unknown_outcome(ref, order.created_at)
            await self.store.end_order(ref, "cancelled", why)
            self._unseen.append(Unseen(ref, order.position_id, order.created_at))
            return f"{ref}: {why}: ended; the account's holdings decide"
        # (queued: handed to the broker's client, which never sent it)
        detail = NEVER_SENT if order.status is OrderStatus.QUEUED else NOT_WORKING
        await self.store.end_order(ref, "cancelled", detail)
        return f"{ref}: {detail}: ended as cancelled"

    async def unseen(
        self, expected: Mapping[LegKey, int], legs_of: Callable[[str], Sequence[LegKey]]
    ) -> tuple[list[str], dict[str, str]]:
        """The orders ended at start whose outcome the executions could not tell, decided
        by the account (the positions loaded, their legs known to the broker): where it
        holds what the open positions imply (``expected``) on each of the position's legs
        (``legs_of``), the order did not fill; else the position needs attention. What was
        decided, a line each, and the positions needing attention (id -> why)."""
        unseen, self._unseen = self._unseen, []
        if not unseen:
            return [], {}
        held = await self.gateway.positions()
        done: list[str] = []
        attention: dict[str, str] = {}
        for u in unseen:
            legs = legs_of(u.position_id)
            differ = [(leg, held.get(leg, 0), expected.get(leg, 0)) for leg in legs
                      if held.get(leg, 0) != expected.get(leg, 0)]  # fmt: skip
            if legs and not differ:
                done.append(f"{u.order_ref}: the account holds what the open positions imply "
                            "on its legs: it did not fill")  # fmt: skip
            else:
                attention[u.position_id] = moved(u.order_ref, u.placed, differ)
                done.append(f"{u.order_ref}: {attention[u.position_id]}: its position needs "
                            "attention")  # fmt: skip
        for line in done:
            _log.info("reconcile.line", detail=line)
        return done, attention

    async def holdings(self, expected: Mapping[LegKey, int]) -> list[str]:
        """Where the account's holdings differ from ``expected`` (the open positions'
        implied holdings), a line each."""
        held = await self.gateway.positions()
        done: list[str] = []
        for leg, want in expected.items():
            have = held.get(leg, 0)
            if have != want:  # said, not fixed: closes of these legs are refused until fixed
                line = (
                    f"{leg.underlying} {leg.expiry} {leg.right.value} {leg.strike}: the account "
                    f"holds {have}, the open positions imply {want}"
                )
                _monitor_log.warning("reconcile.holdings_differ", detail=line)
                done.append(line)
        return done
