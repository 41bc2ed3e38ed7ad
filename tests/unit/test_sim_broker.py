"""The simulated broker: orders, fills at the natural debit, positions, failures."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from brokers.sim.broker import BrokerDisconnected, OrderRefused, SimBroker
from rules.model import Quote, Right
from service.ports import Action, ComboLeg, ComboOrder, LegKey, LegUpdate
from tests.factories import STORE_EXPIRY as EXPIRY

T0 = datetime(2027, 3, 1, 15, 0, tzinfo=UTC)
SHORT = LegKey("SPY", EXPIRY, Right.PUT, Decimal("450"))
LONG = LegKey("SPY", EXPIRY, Right.PUT, Decimal("445"))


def close_order(ref: str = "P1:0:1", quantity: int = 4, limit: str = "0.50") -> ComboOrder:
    return ComboOrder(
        order_ref=ref,
        legs=(ComboLeg(SHORT, Action.BUY), ComboLeg(LONG, Action.SELL)),
        quantity=quantity,
        limit=Decimal(limit),
    )


def quotes(at: datetime, short: tuple[str, str], long: tuple[str, str]) -> list[LegUpdate]:
    return [
        LegUpdate(SHORT, Quote(Decimal(short[0]), Decimal(short[1]), at, -0.2, 460.0)),
        LegUpdate(LONG, Quote(Decimal(long[0]), Decimal(long[1]), at, -0.1, 460.0)),
    ]


def broker(**kw: object) -> SimBroker:
    b = SimBroker(**kw)  # type: ignore[arg-type]
    b.hold(SHORT, -10)
    b.hold(LONG, 10)
    return b


def at(ms: int) -> datetime:
    return T0 + timedelta(milliseconds=ms)


def test_a_marketable_order_works_after_the_latency_and_fills_at_the_natural_debit() -> None:
    b = broker()
    b.place(close_order(limit="0.55"), at(0))
    b.on_market(quotes(at(100), ("0.60", "0.62"), ("0.10", "0.12")), at(100))  # not yet working
    assert [e.status for e in b.events()] == ["submitted"]
    b.on_market(quotes(at(250), ("0.60", "0.62"), ("0.10", "0.12")), at(250))
    events = b.events()
    assert [e.status for e in events] == ["working", "filled"]
    fill = events[-1].execution
    assert fill is not None
    assert (fill.quantity, fill.price, fill.commission) == (4, Decimal("0.52"), Decimal("5.20"))
    assert b.positions() == {SHORT: -6, LONG: 6}
    assert b.executions() == [fill]
    assert b.open_orders() == []


def test_an_order_below_the_natural_waits_until_repriced() -> None:
    b = broker()
    b.place(close_order(limit="0.45"), at(0))
    b.on_market(quotes(at(300), ("0.60", "0.62"), ("0.10", "0.12")), at(300))
    assert [e.status for e in b.events()] == ["submitted", "working"]
    b.modify("P1:0:1", Decimal("0.52"), at(400))
    b.on_market(quotes(at(500), ("0.60", "0.62"), ("0.10", "0.12")), at(500))
    assert [e.status for e in b.events()] == ["working", "filled"]


def test_partial_fills_come_one_step_at_a_time() -> None:
    b = broker(fill_size=1)
    b.place(close_order(quantity=3, limit="0.60"), at(0))
    for ms in (300, 550, 800):
        b.on_market(quotes(at(ms), ("0.60", "0.62"), ("0.10", "0.12")), at(ms))
    events = [e for e in b.events() if e.execution is not None]
    assert [(e.status, e.filled, e.remaining) for e in events] == [
        ("partially_filled", 1, 2),
        ("partially_filled", 2, 1),
        ("filled", 3, 0),
    ]
    assert len({e.execution.exec_id for e in events if e.execution}) == 3
    assert b.positions() == {SHORT: -7, LONG: 7}


def test_a_cancelled_order_never_fills() -> None:
    b = broker()
    b.place(close_order(limit="0.45"), at(0))
    b.cancel("P1:0:1", at(100))
    b.on_market(quotes(at(300), ("0.30", "0.32"), ("0.10", "0.12")), at(300))
    assert [e.status for e in b.events()] == ["submitted", "cancelled"]
    assert b.executions() == []
    with pytest.raises(OrderRefused, match="already cancelled"):
        b.modify("P1:0:1", Decimal("0.60"), at(400))


def test_a_rejected_order_says_why_and_never_works() -> None:
    b = broker(reject=lambda order: "201: margin" if order.quantity > 5 else None)
    b.place(close_order(quantity=6), at(0))
    (event,) = b.events()
    assert (event.status, event.reason) == ("rejected", "201: margin")
    b.on_market(quotes(at(300), ("0.30", "0.32"), ("0.10", "0.12")), at(300))
    assert b.events() == []
    with pytest.raises(OrderRefused, match="already in use"):
        b.place(close_order(quantity=6), at(400))


def test_fills_during_a_dropped_connection_are_not_heard_but_are_not_lost() -> None:
    b = broker()
    b.place(close_order(limit="0.60"), at(0))
    b.events()
    b.drop()
    with pytest.raises(BrokerDisconnected):
        b.place(close_order("P2:0:1"), at(100))
    with pytest.raises(BrokerDisconnected):
        b.executions()
    b.on_market(quotes(at(300), ("0.60", "0.62"), ("0.10", "0.12")), at(300))
    b.reconnect()
    assert b.events() == []  # the fill's event was lost with the connection
    (fill,) = b.executions()  # the broker still knows it: reconciliation reads it
    assert (fill.order_ref, fill.quantity) == ("P1:0:1", 4)
    assert b.positions() == {SHORT: -6, LONG: 6}


def test_no_fill_without_quotes_for_every_leg() -> None:
    b = broker()
    b.place(close_order(limit="9.99"), at(0))
    b.on_market(quotes(at(300), ("0.60", "0.62"), ("0.10", "0.12"))[:1], at(300))
    assert b.executions() == []
    assert b.natural(close_order()) is None


def test_an_orders_limit_is_what_the_last_modify_set() -> None:
    b = broker()
    b.place(close_order("A", limit="0.60"), T0)
    assert b.limit("A") == Decimal("0.60")
    b.modify("A", Decimal("0.65"), T0)
    assert b.limit("A") == Decimal("0.65")
    with pytest.raises(OrderRefused, match="no order B"):
        b.limit("B")


def test_a_leg_that_goes_flat_leaves_the_positions() -> None:
    b = broker()
    b.hold(SHORT, 10)
    assert b.positions() == {LONG: 10}


def test_past_new_yorks_midnight_the_day_before_the_last_goes_and_what_works_stays() -> None:
    """A daemon runs for weeks: the first quotes let go of nothing; past New York's
    midnight the broker keeps the day before too (a reconciliation then finds its
    executions), and past the next one the executions and done orders of the first day
    go; an order still working stays, fills and is listed."""
    b = broker(fill_size=1)
    b.place(close_order("P1:0:1", quantity=1, limit="0.60"), at(0))
    b.place(close_order("P1:0:2", quantity=3, limit="0.40"), at(0))  # below: works on
    b.on_market(quotes(at(300), ("0.60", "0.62"), ("0.10", "0.12")), at(300))
    assert [e.order_ref for e in b.executions()] == ["P1:0:1"]
    assert [(c.order_ref, c.status, c.filled) for c in b.completed()] == [("P1:0:1", "filled", 1)]
    night = datetime(2027, 3, 2, 5, 1, tzinfo=UTC)  # 00:01 in New York, the next day
    b.on_market(quotes(night, ("0.60", "0.62"), ("0.10", "0.12")), night)
    assert [e.order_ref for e in b.executions()] == ["P1:0:1"]  # (the day before: kept)
    second = night + timedelta(days=1)
    b.on_market(quotes(second, ("0.60", "0.62"), ("0.10", "0.12")), second)
    assert (b.executions(), b.completed()) == ([], [])
    assert [o.order_ref for o in b.open_orders()] == ["P1:0:2"]
    with pytest.raises(OrderRefused):
        b.limit("P1:0:1")
    b.modify("P1:0:2", Decimal("0.55"), second)
    later = second + timedelta(seconds=1)
    b.on_market(quotes(later, ("0.60", "0.62"), ("0.10", "0.12")), later)
    assert [(e.order_ref, e.time) for e in b.executions()] == [("P1:0:2", later)]
    assert b.positions() == {SHORT: -8, LONG: 8}


def test_the_first_quotes_let_go_of_nothing_whatever_their_day() -> None:
    b = broker()
    b.place(close_order(limit="0.60"), at(0))
    days_later = at(300) + timedelta(days=3)
    b.on_market(quotes(days_later, ("0.60", "0.62"), ("0.10", "0.12")), days_later)
    assert [e.order_ref for e in b.executions()] == ["P1:0:1"]
