"""The read model keeps the newest closes and rejections; its counts run on."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

from rules.books import DEFAULT_BOOKS
from rules.machine import Close, ExitReason
from rules.state import Phase
from service.app.book import PositionBook
from service.app.readmodel import ReadModel
from service.ports import Commission, Execution, OrderEvent, OrderStatus
from service.presentation import daemon_close_line
from service.store.rows import new_stored
from tests.factories import put_spread

AT = datetime(2027, 3, 2, 15, 0, tzinfo=UTC)


def stop(contracts: int) -> Close:
    return Close(
        contracts=contracts,
        reason=ExitReason.LOSS_STOP,
        label="loss stop",
        target=None,
        tranche=None,
        debit=Decimal("1.50"),
        pnl=Decimal(-50) * contracts,
        pct_of_max=Decimal("-0.5"),
        triggers=(ExitReason.LOSS_STOP,),
    )


def views(keep: int) -> ReadModel:
    return ReadModel(PositionBook(dict(DEFAULT_BOOKS), subscribe=lambda leg: None), keep)


def test_closes_are_kept_to_the_newest_and_read_from_a_count() -> None:
    v, position = views(keep=3), put_spread(contracts=10, credit="1.00")
    for k in range(1, 6):
        v.close_sent(AT, f"P1:stop:{k}", stop(k), position, 0.0)
    assert v.closes == 5
    assert [ref for _, ref, _ in v.decisions] == ["P1:stop:3", "P1:stop:4", "P1:stop:5"]
    assert v.close_lines(4) == [daemon_close_line(position, stop(5), AT)]
    assert len(v.close_lines(0)) == 3  # from the oldest kept
    assert [ref for _, ref, _ in v.decisions_since(3)] == ["P1:stop:4", "P1:stop:5"]
    assert v.close_lines(5) == []
    assert len(v.sent_latency) == 5


def test_rejections_are_kept_to_the_newest_and_read_from_a_count() -> None:
    v = views(keep=2)
    for k in range(1, 4):
        v.order_event(OrderEvent(f"P1:stop:{k}", OrderStatus.REJECTED, 0, 10, AT, reason=f"no {k}"))
    assert (v.rejected, v.order_statuses["rejected"]) == (3, 3)
    assert v.rejections_since(0) == [("P1:stop:2", "no 2"), ("P1:stop:3", "no 3")]
    assert v.rejections_since(2) == [("P1:stop:3", "no 3")]
    assert v.rejections_since(3) == []


def test_a_fill_whose_commission_is_not_known_says_pending_and_its_report_follows() -> None:
    """IB's commission reports may come after the fill: its FILLED line says "commission
    pending" (its P&L before commission), and each report that comes is a COMMISSION line
    that takes it off the position's realised P&L."""
    v, position = views(keep=10), put_spread(contracts=10, credit="1.00")
    pending = Execution("E1", "P1:stop:1", 4, Decimal("0.50"), None, AT)
    v.filled(position, pending)
    (line,) = v.fill_lines()
    assert "4 contracts @ 0.50 - commission pending - realised P&L: $200.00" in line
    assert line.endswith("(before commission)")
    assert v.fills_since(0)[0].pending
    v.commission(position.id, AT, Commission("E1", "E1.1", Decimal("1.30")), Decimal("1.30"))
    v.commission(position.id, AT, Commission("E1", "E1.2", Decimal("1.30")), Decimal("2.60"))
    assert v.commissions == 2
    assert v.commission_lines(1) == [
        f"2027-03-02 10:00:00 ET COMMISSION: {position.id} $1.30 more on fill E1 - "
        "its commission $2.60 - position realised: $197.40"
    ]
    assert v.realised[position.id] == Decimal("197.40")


def test_a_fill_whose_commission_is_known_says_it() -> None:
    v, position = views(keep=10), put_spread(contracts=10, credit="1.00")
    v.filled(position, Execution("E1", "P1:stop:1", 4, Decimal("0.50"), Decimal("2.60"), AT))
    (line,) = v.fill_lines()
    assert "commission $2.60 - realised P&L: $197.40" in line
    assert "pending" not in line


def test_the_book_lets_go_of_closed_positions_when_pruned_and_keeps_the_open() -> None:
    """A closed position stays in the book (its legs released) until the daemon prunes it
    at the day's close; the open ones stay, and a second prune finds nothing more."""
    book = PositionBook(dict(DEFAULT_BOOKS), subscribe=lambda leg: None)
    positions = [replace(put_spread(contracts=4, credit="1.00"), id=pid) for pid in ("A", "B")]
    book.load([new_stored(p, "DU1") for p in positions], {})
    closing = book.watches["A"].state
    book.watches["A"].state = replace(closing, phase=Phase.CLOSED, remaining=0)
    assert sorted(book.watches) == ["A", "B"]
    assert (book.prune_closed(), sorted(book.watches), sorted(book.stored)) == (["A"], ["B"], ["B"])
    assert book.prune_closed() == []
    assert book.remaining() == {"B": 4}


def test_at_each_close_the_lists_keep_the_session_just_ended_and_counts_run_on() -> None:
    """A daemon runs for weeks: at each close (turn_day) what came before the previous
    close goes, whatever ``keep`` allows; readers by count read on; the closed positions
    let go by the book are forgotten (their realised P&L is the store's)."""
    v, position = views(keep=10_000), put_spread(contracts=10, credit="1.00")
    fill = Execution("E1", "P1:stop:1", 1, Decimal("0.50"), Decimal("1.30"), AT)
    for k in range(1, 4):  # day 1
        v.close_sent(AT, f"P1:stop:{k}", stop(1), position, 0.0)
        v.filled(position, replace(fill, exec_id=f"E{k}"))
        v.order_event(OrderEvent(f"P1:stop:{k}", OrderStatus.REJECTED, 0, 1, AT, reason="no"))
    v.turn_day([])  # day 1's close: day 1 is the session just ended, kept
    assert (len(v.decisions), len(v.fill_lines()), len(v.rejections)) == (3, 3, 3)
    v.close_sent(AT, "P1:stop:4", stop(1), position, 0.0)  # day 2
    v.filled(position, replace(fill, exec_id="E4"))
    v.turn_day([position.id])  # day 2's close: day 1 goes
    assert [ref for _, ref, _ in v.decisions] == ["P1:stop:4"]
    assert (len(v.sent_latency), len(v.fill_lines()), len(v.rejections)) == (1, 1, 0)
    assert (v.closes, v.fills, v.rejected) == (4, 4, 3)
    assert v.close_lines(3) == [daemon_close_line(position, stop(1), AT)]
    assert v.close_lines(0) == v.close_lines(3)  # from the oldest kept
    assert position.id not in v.realised
    v.turn_day([])  # a day with nothing: day 2 goes
    assert (v.close_lines(0), v.fills_since(0), v.closes) == ([], [], 4)


def test_fill_latency_is_a_running_count_and_sum() -> None:
    """The metric is a summary: its count and sum only ever rise (a bounded list of the
    latencies made its count fall once full)."""
    v, position = views(keep=2), put_spread(contracts=10, credit="1.00")
    for k in range(1, 5):
        v.close_sent(AT, f"P1:stop:{k}", stop(1), position, 0.0)
        fill = Execution(f"E{k}", f"P1:stop:{k}", 1, Decimal("0.50"), None, AT)
        v.order_event(OrderEvent(f"P1:stop:{k}", OrderStatus.FILLED, 1, 0, AT, execution=fill))
    v.turn_day([])
    v.turn_day([])
    assert v.fill_latency_count == 4
    assert v.fill_latency_sum > 0
