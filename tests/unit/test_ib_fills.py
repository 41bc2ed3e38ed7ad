"""Combo fills grouped as IB sends them (brokers/ib/fills.py), on ib_async's own values:
legs matched to their BAG execution by execId prefix and order, never by equal times;
fills from the legs where IB sends no BAG execution; commissions pending until every
leg's report is in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from ib_async import Bag, CommissionReport, Contract, Execution, Fill

from brokers.ib.grouping import Grouper, late_reports

AT = datetime(2027, 3, 2, 15, 0, tzinfo=UTC)
SHORT, LONG = 700001, 700002


def fill(exec_id: str, con_id: int, side: str, shares: float, price: float, at: datetime,
         commission: float | None = None) -> Any:  # fmt: skip
    contract = Bag(conId=28812380) if con_id == 0 else Contract(secType="OPT", conId=con_id)
    report = CommissionReport() if commission is None else CommissionReport(exec_id, commission)
    ex = Execution(execId=exec_id, time=at, side=side, shares=shares, price=price,
                   permId=1001, orderRef="P1:stop:1")  # fmt: skip
    return Fill(contract, ex, report, at)


def test_legs_stamped_after_their_bag_are_matched_by_execid_prefix_and_order() -> None:
    """Two fills of one order; each fill's legs stamped a second after its BAG, and the
    second fill's BAG before the first one's legs: each leg goes to the fill whose BAG
    execId it shares the most with, its report with it."""
    g = Grouper()
    late = AT + timedelta(seconds=1)
    g.add(fill("0001.00a0.01.01", 0, "BOT", 2, 0.92, AT), 2)
    g.add(fill("0001.00b0.01.01", 0, "BOT", 1, 0.95, late), 2)
    g.add(fill("0001.00a1.01.01", SHORT, "BOT", 2, 2.43, late, 1.30), 2)
    g.add(fill("0001.00b1.01.01", SHORT, "BOT", 1, 2.45, late, 0.65), 2)
    g.add(fill("0001.00a2.01.01", LONG, "SLD", 2, 1.51, late, 1.30), 2)
    g.add(fill("0001.00b2.01.01", LONG, "SLD", 1, 1.50, late + timedelta(seconds=1), 0.65), 2)
    first, second = g.groups
    assert (first.key, second.key) == ("0001.00a0.01.01", "0001.00b0.01.01")
    x, y = first.execution(), second.execution()
    assert x is not None
    assert y is not None
    assert (x.quantity, x.price, x.commission) == (2, Decimal("0.92"), Decimal("2.60"))
    assert (y.quantity, y.price, y.commission) == (1, Decimal("0.95"), Decimal("1.30"))
    assert [r for r, _ in x.reports] == ["0001.00a1.01.01", "0001.00a2.01.01"]


def test_a_fill_whose_reports_are_not_all_in_is_pending_then_each_report_said_once() -> None:
    g = Grouper()
    g.add(fill("0001.00a0.01.01", 0, "BOT", 2, 0.92, AT), 2)
    short = fill("0001.00a1.01.01", SHORT, "BOT", 2, 2.43, AT)
    long_ = fill("0001.00a2.01.01", LONG, "SLD", 2, 1.51, AT, 1.30)
    g.add(short, 2)
    g.add(long_, 2)
    (group,) = g.groups
    execution = group.execution()
    assert execution is not None
    assert (execution.commission, execution.reports) == (None, ())  # pending
    group.passed = True
    assert [(c.report_id, c.amount) for c in late_reports(group)] == [
        ("0001.00a2.01.01", Decimal("1.3"))
    ]
    g.report(short, Decimal("1.30"))
    assert [c.report_id for c in late_reports(group)] == ["0001.00a1.01.01"]
    assert late_reports(group) == []  # each once


def test_legs_only_make_the_fill_at_the_bought_leg_less_the_sold_one() -> None:
    g = Grouper()
    g.add(fill("0001.00a1.01.01", SHORT, "BOT", 4, 2.43, AT, 2.60), 2)
    g.add(fill("0001.00a2.01.01", LONG, "SLD", 4, 1.51, AT, 2.60), 2)
    (group,) = g.groups
    assert group.bag is None
    assert group.whole()
    execution = group.execution()
    assert execution is not None
    assert (execution.exec_id, execution.quantity) == ("0001.00a1.01.01", 4)
    assert execution.price == Decimal("0.92")
    assert execution.commission == Decimal("5.20")


def test_an_execution_seen_before_is_not_grouped_again() -> None:
    g = Grouper()
    bag = fill("0001.00a0.01.01", 0, "BOT", 2, 0.92, AT)
    assert g.add(bag, 2) is not None
    assert g.add(bag, 2) is None
    assert len(g.groups) == 1


def test_the_fills_of_the_days_before_the_last_go_and_the_day_s_stay() -> None:
    """A daemon runs for weeks and IB sends the day's executions only: the fills whose
    every execution came before ``before`` go, with their execIds; the others stay."""
    g = Grouper()
    old = AT - timedelta(days=2)
    for f in (fill("0001.00a0.01.01", 0, "BOT", 2, 0.92, old),
              fill("0001.00a1.01.01", SHORT, "BOT", 2, 2.43, old, 1.30),
              fill("0002.00b0.01.01", 0, "BOT", 1, 0.95, AT)):  # fmt: skip
        assert g.corrects(f) is None  # (as the adapter asks first)
        g.add(f, 2)
    assert g.let_go(AT - timedelta(days=1)) == {"P1:stop:1"}
    (kept,) = g.groups
    assert kept.key == "0002.00b0.01.01"
    assert sorted(g.where) == ["0002.00b0.01.01"]
    assert sorted(g.bases.values()) == ["0002.00b0.01.01"]
    assert g.let_go(AT - timedelta(days=1)) == set()


def test_the_adapter_lets_go_of_done_orders_and_fills_past_the_second_midnight() -> None:
    """The IB adapter, past New York's midnight, keeps the day before (a gateway's day may
    begin before New York's); past the next one, the done orders and the fills of the
    first day go, and an order still working stays."""
    from brokers.ib.broker import IbBroker  # noqa: PLC0415
    from brokers.ib.orders import _Placed  # noqa: PLC0415
    from service.settings import IbSettings  # noqa: PLC0415

    now = [AT]
    broker = IbBroker(IbSettings(), now=lambda: now[0])
    broker._turn()
    for ref, quantity in (("P1:stop:1", 2), ("P2:stop:1", 3), ("P3:stop:1", 1)):
        broker._placed[ref] = _Placed(1, 1001, Contract(), quantity, Decimal(1), at=AT)
    broker._grouper.add(fill("0001.00a0.01.01", 0, "BOT", 2, 0.92, AT), 2)
    broker._filled["P1:stop:1"] = 2  # filled
    broker._ended.add("P3:stop:1")  # cancelled
    now[0] = AT + timedelta(days=1)
    broker._turn()
    assert sorted(broker._placed) == ["P1:stop:1", "P2:stop:1", "P3:stop:1"]
    now[0] = AT + timedelta(days=2)
    broker._turn()
    assert sorted(broker._placed) == ["P2:stop:1"]  # (still working: a human decides)
    assert (broker._filled, broker._ended, broker._grouper.groups) == ({}, set(), [])
