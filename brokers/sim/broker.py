"""A simulated broker that really keeps orders, executions and positions.

It trades on a :class:`brokers.sim.market.SimMarket`'s quotes. An order is
submitted at once and works after ``latency``. A working combo limit order
fills when it is marketable: when its limit covers the natural debit (the
asks of the legs it buys less the bids of the legs it sells). It fills at
that natural debit, ``fill_size`` spreads at a time (all at once if None),
one fill per market step. Each fill is an :class:`service.ports.Execution`
with a unique id and a commission per contract per leg. Legs' positions move
by the fills; the broker's positions are signed (short < 0).

Failures, for the service's tests:
- ``reject``: a function of the order that returns a reason to reject it,
  or None.
- :meth:`drop`: the connection is lost until :meth:`reconnect`. Calls raise
  :class:`BrokerDisconnected`. Orders still fill at the broker, but their
  events are lost (as with a real gateway); :meth:`executions` and
  :meth:`open_orders` tell the truth afterwards.

A daemon runs for weeks: when the market's time passes New York's midnight, the
executions and the orders done before the midnight before it (two days kept: a
reconciliation at any time of the day finds the day before's too), and the quotes of
legs nothing holds or works, are let go.

Synchronous and driven by the caller's time (``now``): deterministic.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from rules.clock import Midnights
from rules.model import Position, Quote, Side
from service.ports import (
    Action,
    ComboOrder,
    Completed,
    Execution,
    Holding,
    LegKey,
    LegUpdate,
    OrderEvent,
    OrderStatus,
    leg_key,
)

COMMISSION_PER_CONTRACT = Decimal("0.65")
LONG_PRICE = Decimal("0.50")  # a share: what hold_spreads says each long leg cost
FINAL = ("filled", "cancelled", "rejected")


class BrokerDisconnected(ConnectionError):
    """The connection to the broker is down."""


class OrderRefused(ValueError):
    """An order the broker cannot take at all (malformed, unknown order_ref...)."""


@dataclass
class _Order:
    order: ComboOrder
    limit: Decimal
    placed: datetime
    status: OrderStatus = OrderStatus.SUBMITTED
    filled: int = 0

    @property
    def remaining(self) -> int:
        return self.order.quantity - self.filled


class SimBroker:
    def __init__(
        self,
        *,
        latency: timedelta = timedelta(milliseconds=200),
        fill_size: int | None = None,
        reject: Callable[[ComboOrder], str | None] | None = None,
    ) -> None:
        self.latency = latency
        self.fill_size = fill_size
        self.reject = reject
        self._orders: dict[str, _Order] = {}
        self._open: dict[str, _Order] = {}  # the orders not final, which the market may fill
        self._executions: list[Execution] = []
        self._positions: dict[LegKey, int] = {}  # signed, never 0 (a flat leg is dropped)
        self._costs: dict[LegKey, Decimal] = {}  # a contract's average cost, multiplier in
        self._multipliers: dict[LegKey, int] = {}
        self._quotes: dict[LegKey, Quote] = {}
        self._events: list[OrderEvent] = []
        self._midnights = Midnights()  # the market's time, as it passes New York's midnight
        self._connected = True
        self._exec_seq = 0
        # execution ids are unique across brokers and runs, as a real broker's are
        self._exec_prefix = f"sim-{uuid.uuid4().hex[:12]}"

    # The account ---------------------------------------------------------------------

    def hold(
        self, leg: LegKey, quantity: int, avg_cost: Decimal = Decimal(0), multiplier: int = 100
    ) -> None:
        """Start with ``quantity`` contracts of ``leg`` (negative: short) opened at
        ``avg_cost`` a contract, the multiplier included (as IB's avgCost)."""
        held = self._positions.get(leg, 0)
        if held * quantity > 0:  # more of the same side: the cost is averaged
            total = abs(held) + abs(quantity)
            old = self._costs.get(leg, Decimal(0))
            avg_cost = (old * abs(held) + avg_cost * abs(quantity)) / total
        self._costs[leg] = avg_cost
        self._multipliers[leg] = multiplier
        self._move(leg, quantity)

    def _move(self, leg: LegKey, quantity: int) -> None:
        held = self._positions.get(leg, 0) + quantity
        if held:
            self._positions[leg] = held
        else:
            self._positions.pop(leg, None)
            self._costs.pop(leg, None)
            self._multipliers.pop(leg, None)

    def hold_spreads(self, position: Position, spreads: int) -> None:
        """Start with ``spreads`` of ``position``: its short legs short, its long legs long,
        at costs that give its entry credit exactly: each long at LONG_PRICE a share, each
        short at LONG_PRICE plus its vertical's share of the credit (a condor's half)."""
        short_price = LONG_PRICE + position.entry_credit / (len(position.legs) // 2)
        for i, leg in enumerate(position.legs):
            short = leg.side is Side.SHORT
            cost = (short_price if short else LONG_PRICE) * position.multiplier
            self.hold(
                leg_key(position, i), -spreads if short else spreads, cost, position.multiplier
            )

    def avg_cost(self, leg: LegKey) -> Decimal:
        """What a contract of ``leg`` cost on average, the multiplier included (0: unknown)."""
        return self._costs.get(leg, Decimal(0))

    def holdings(self) -> list[Holding]:
        """The account's option positions, with their costs (no contract ids: 0)."""
        self._check()
        return [
            Holding(leg, 0, quantity, self.avg_cost(leg), self._multipliers.get(leg, 100))
            for leg, quantity in sorted(self._positions.items())
        ]

    def positions(self) -> dict[LegKey, int]:
        self._check()
        return dict(self._positions)

    def executions(self) -> list[Execution]:
        self._check()
        return list(self._executions)

    def completed(self) -> list[Completed]:
        """The orders done (final) that the broker still lists (no perm ids here: 0)."""
        self._check()
        return [
            Completed(ref, 0, str(o.status), o.filled)
            for ref, o in self._orders.items()
            if o.status in FINAL
        ]

    def open_orders(self) -> list[OrderEvent]:
        """Orders not final, as their latest status."""
        self._check()
        return [self._event(o, o.status, o.placed) for o in self._open.values()]

    # Orders ---------------------------------------------------------------------------

    def place(self, order: ComboOrder, now: datetime) -> None:
        self._check()
        if order.order_ref in self._orders:
            raise OrderRefused(f"order_ref {order.order_ref} is already in use")
        if order.quantity <= 0 or not order.legs:
            raise OrderRefused(f"order {order.order_ref}: no legs or no quantity")
        state = _Order(order, order.limit, now)
        self._orders[order.order_ref] = state
        reason = self.reject(order) if self.reject is not None else None
        if reason:
            state.status = OrderStatus.REJECTED
            self._emit(self._event(state, OrderStatus.REJECTED, now, reason=reason))
            return
        self._open[order.order_ref] = state
        self._emit(self._event(state, OrderStatus.SUBMITTED, now))

    def modify(self, order_ref: str, limit: Decimal, now: datetime) -> None:
        self._check()
        state = self._live(order_ref)
        state.limit = limit
        self._emit(self._event(state, state.status, now))

    def cancel(self, order_ref: str, now: datetime) -> None:
        self._check()
        state = self._live(order_ref)
        state.status = OrderStatus.CANCELLED
        del self._open[order_ref]
        self._emit(self._event(state, OrderStatus.CANCELLED, now))

    def limit(self, order_ref: str) -> Decimal:
        """An order's limit as the broker has it now (after any modify)."""
        state = self._orders.get(order_ref)
        if state is None:
            raise OrderRefused(f"no order {order_ref}")
        return state.limit

    def events(self) -> list[OrderEvent]:
        """The events since the last call (what a connected client would have received)."""
        out, self._events = self._events, []
        return out

    # The market -------------------------------------------------------------------------

    def on_market(self, updates: Iterable[LegUpdate], now: datetime) -> None:
        """New quotes: working orders that are marketable fill, one fill each."""
        before = self._midnights.passed(now)
        if before is not None:
            self._let_go(before)
        for u in updates:
            self._quotes[u.leg] = u.quote
        for state in list(self._open.values()):
            if state.status == "submitted" and now - state.placed >= self.latency:
                state.status = OrderStatus.WORKING
                self._emit(self._event(state, OrderStatus.WORKING, now))
            if state.status in ("working", "partially_filled"):
                self._try_fill(state, now)

    def _let_go(self, midnight: datetime) -> None:
        """A new day: what only the days before ``midnight`` needed goes (open orders and
        what is held stay, with their legs' quotes)."""
        self._executions = [e for e in self._executions if e.time >= midnight]
        self._orders = {
            ref: o for ref, o in self._orders.items() if ref in self._open or o.placed >= midnight
        }
        needed = set(self._positions)
        needed.update(leg.leg for o in self._open.values() for leg in o.order.legs)
        self._quotes = {leg: q for leg, q in self._quotes.items() if leg in needed}

    def trade(self, updates: list[LegUpdate], now: datetime) -> list[OrderEvent]:
        """New quotes in, the events they caused out (the monitor's broker step)."""
        self.on_market(updates, now)
        return self.events()

    def natural(self, order: ComboOrder) -> Decimal | None:
        """The debit to fill one spread now: buys at the ask, sells at the bid."""
        debit = Decimal(0)
        for leg in order.legs:
            q = self._quotes.get(leg.leg)
            if q is None or q.bid is None or q.ask is None:
                return None
            debit += (q.ask if leg.action is Action.BUY else -q.bid) * leg.ratio
        return debit

    def _try_fill(self, state: _Order, now: datetime) -> None:
        natural = self.natural(state.order)
        if natural is None or state.limit < natural:
            return
        size = state.remaining if self.fill_size is None else min(self.fill_size, state.remaining)
        self._exec_seq += 1
        legs = sum(leg.ratio for leg in state.order.legs)
        execution = Execution(
            exec_id=f"{self._exec_prefix}-{self._exec_seq:06d}",
            order_ref=state.order.order_ref,
            quantity=size,
            price=natural,
            commission=COMMISSION_PER_CONTRACT * legs * size,
            time=now,
        )
        self._executions.append(execution)
        for leg in state.order.legs:
            self._move(leg.leg, size * leg.ratio * (1 if leg.action is Action.BUY else -1))
        state.filled += size
        state.status = OrderStatus.FILLED if state.remaining == 0 else OrderStatus.PARTIALLY_FILLED
        if state.remaining == 0:
            del self._open[state.order.order_ref]
        self._emit(self._event(state, state.status, now, execution=execution))

    # The connection -----------------------------------------------------------------------

    def drop(self) -> None:
        self._connected = False

    def reconnect(self) -> None:
        self._connected = True

    @property
    def connected(self) -> bool:
        return self._connected

    def _check(self) -> None:
        if not self._connected:
            raise BrokerDisconnected("the simulated broker's connection is down")

    def _live(self, order_ref: str) -> _Order:
        state = self._orders.get(order_ref)
        if state is None:
            raise OrderRefused(f"no order {order_ref}")
        if state.status in FINAL:
            raise OrderRefused(f"order {order_ref} is already {state.status}")
        return state

    def _emit(self, event: OrderEvent) -> None:
        if self._connected:  # events while the connection is down are lost
            self._events.append(event)

    @staticmethod
    def _event(
        state: _Order,
        status: OrderStatus,
        at: datetime,
        *,
        execution: Execution | None = None,
        reason: str = "",
    ) -> OrderEvent:
        return OrderEvent(
            order_ref=state.order.order_ref,
            status=status,
            filled=state.filled,
            remaining=state.remaining,
            at=at,
            execution=execution,
            reason=reason,
        )
