"""On start: the store's live orders and the account's holdings against the broker's.

:meth:`Reconciler.orders` runs before the positions are loaded: executions the
store has not seen are applied (once each, by execution id); an order the
broker no longer works is ended as cancelled; one it still works is adopted
(repriced and followed from now). One placed before the executions the broker
reports (IB: today's only; a daemon down overnight after a late fill) may have filled
unseen: it is ended, and its position needs attention, rather than ended as
cancelled as if nothing had happened. An order still ``queued`` (handed to the broker's
client, never acknowledged) that the broker neither works nor filled today never reached
it: ended as cancelled, no alarm; one the broker works is recorded as acknowledged
(``submitted``) and adopted. :meth:`Reconciler.holdings` runs after: it
says where the account holds other than the open positions imply (not fixed:
closes of those legs are refused until a human looks).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from service.errors import StoreRefused
from service.logs import get_logger
from service.orders.execute import Attempts
from service.orders.working import WorkingOrders
from service.ports import Commission, Execution, Fill, LegKey, OrderGateway, OrderStatus, Store

_log = get_logger("spreadwatch.orders")
_monitor_log = get_logger("spreadwatch.monitor")
NOT_WORKING = "not working at the broker on start"
NEVER_SENT = "queued, never acknowledged: never reached the broker"


def unknown_outcome(order_ref: str, placed: datetime) -> str:
    """Why an order's outcome is unknown: placed before the executions the broker reports."""
    return (
        f"order {order_ref}, placed {placed:%Y-%m-%d %H:%M} UTC, no longer works at the broker, "
        "which reports today's executions only: whether it filled is unknown; compare the "
        "account (`spreadwatch positions sync`), then void or resume the position"
    )


class Reconciler:
    def __init__(
        self, store: Store, gateway: OrderGateway, working: WorkingOrders, attempts: Attempts
    ) -> None:
        self.store = store
        self.gateway = gateway
        self.working = working
        self.attempts = attempts

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
        working = {o.order_ref for o in await self.gateway.open_orders()}
        seen_from = self.gateway.executions_from(now)
        for ref, order in live.items():
            if ref in working:
                if order.status is OrderStatus.QUEUED:  # the broker has it: acknowledged
                    await self.store.order_sent(ref, "submitted")
                if self.working.live_for(order.position_id) is None:
                    self.working.adopt(order, now)
                    done.append(f"{ref}: working at the broker: adopted")
            elif seen_from is not None and order.created_at < seen_from:
                # placed before the executions the broker reports: it may have filled unseen
                why = unknown_outcome(ref, order.created_at)
                await self.store.end_order(ref, "cancelled", why)
                await self.store.mark_attention(order.position_id, why)
                done.append(f"{ref}: {why}: ended, its position needs attention")
            else:  # (queued: handed to the broker's client, which never sent it)
                detail = NEVER_SENT if order.status is OrderStatus.QUEUED else NOT_WORKING
                await self.store.end_order(ref, "cancelled", detail)
                done.append(f"{ref}: {detail}: ended as cancelled")
        for line in done:
            _log.info("reconcile.line", detail=line)
        await self.attempts.load()  # now, not on the first decision
        return done

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
