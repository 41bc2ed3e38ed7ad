"""The store's contract, one suite for every store: in memory and on PostgreSQL.

Each test runs once per store (the ``run`` fixture of tests/integration/contract/conftest.py):
positions imported and read, manual closes, close intents and their refusals,
orders sent and ended, fills applied once per execution id, over-fills refused,
the audit trail and the broker's contract ids. What only PostgreSQL has
(migrations, constraints, locks, connections) is tested in tests/integration/test_store.py.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from rules.machine import Hold, HoldReason
from service.errors import StoreRefused
from service.ports import Store, order_ref
from tests.factories import OPENED, PROFIT_CLOSE, condor, fill, intent, vertical
from tests.support import PortRun as Run

# Positions -------------------------------------------------------------------------


def test_imported_positions_reload_exactly(run: Run[Any]) -> None:
    async def go(store: Store) -> Any:
        await store.import_positions([vertical(), condor()], "DU123")
        return await store.open_positions()

    loaded = run(go)
    assert [s.position for s in loaded] == [condor(), vertical()]  # by opening time, then id
    assert str(loaded[0].position.legs[2].strike) == "450"
    first = loaded[1]
    assert (first.account, first.remaining, first.profit_closed, first.stage) == ("DU123", 10, 0, 0)
    assert (first.status, first.initial_dte, first.version) == ("open", 46, 1)
    assert isinstance(first.position.entry_credit, Decimal)


def test_an_import_is_all_or_nothing(run: Run[Any]) -> None:
    async def go(store: Store) -> Any:
        await store.import_positions([vertical("P1")], "DU1")
        with pytest.raises(StoreRefused, match="position 'P1': id: already stored"):
            await store.import_positions([vertical("P2"), vertical("P1"), vertical("P3")], "DU1")
        return await store.all_positions()

    assert [s.position.id for s in run(go)] == ["P1"]


def test_a_manual_close_is_recorded_and_audited(run: Run[Any]) -> None:
    async def go(store: Store) -> Any:
        await store.import_positions([vertical()], "DU1")
        await store.request_manual_close("P1", "manual")
        with pytest.raises(StoreRefused, match="no such position"):
            await store.request_manual_close("nope", "manual")
        return await store.detail("P1")

    detail = run(go)
    assert detail.stored.manual_close == "manual"
    assert [e.kind for e in detail.events] == ["imported", "manual close requested"]


# Orders and fills --------------------------------------------------------------------


def test_fills_apply_once_and_complete_a_tranche(run: Run[Any]) -> None:
    async def go(store: Store) -> Any:
        await store.import_positions([vertical()], "DU1")
        await store.record_intent(intent(quantity=4))
        first = await store.apply_fill(fill("E1", 1, "0.49"))
        again = await store.apply_fill(fill("E1", 1, "0.49"))
        rest = await store.apply_fill(fill("E2", 3, "0.50"))
        return first, again, rest, await store.detail("P1")

    first, again, rest, detail = run(go)
    assert (first.applied, first.remaining, first.order_status) == (True, 9, "partially_filled")
    assert (again.applied, again.remaining, again.order_filled) == (False, 9, 1)
    assert (rest.applied, rest.remaining, rest.order_status) == (True, 6, "filled")
    stored = detail.stored
    assert (stored.remaining, stored.profit_closed, stored.stage, stored.status) == (
        6,
        4,
        1,
        "open",
    )
    (order,) = detail.orders
    assert order.avg_price == Decimal("0.4975")  # (0.49 + 3 x 0.50) / 4
    assert [f.exec_id for f in detail.fills] == ["E1", "E2"]
    kinds = [e.kind for e in detail.events]
    assert kinds == ["imported", "close intent", "filled", "filled"]
    assert detail.events[1].quotes["legs"][0]["bid"] == "0.61"
    assert detail.events[2].pnl == Decimal("51.0000")  # (1.00 - 0.49) x 100 x 1


def test_an_execution_id_seen_with_other_figures_is_refused(run: Run[Any]) -> None:
    """The same execution id for another order (or quantity, or price) is no repeat of a
    known fill: it is a broker or adapter fault, and nothing is applied."""

    async def go(store: Store) -> Any:
        await store.import_positions([vertical(), vertical("P2")], "DU1")
        await store.record_intent(intent(quantity=4))
        await store.record_intent(intent("P2", quantity=4))
        await store.apply_fill(fill("E1", 2))
        with pytest.raises(StoreRefused, match="E1: exec_id: already recorded as 2 of P1:0:1"):
            await store.apply_fill(fill("E1", 2, order_ref="P2:0:1"))
        return await store.detail("P2")

    assert run(go).stored.remaining == 10


def test_a_stop_that_fills_everything_closes_the_position(run: Run[Any]) -> None:
    async def go(store: Store) -> Any:
        await store.import_positions([vertical()], "DU1")
        await store.record_intent(intent(quantity=10, stage=None, reason="loss_stop"))
        await store.apply_fill(fill("E1", 10, "1.50", order_ref="P1:stop:1"))
        return await store.all_positions(), await store.open_positions()

    (stored,), still_open = run(go)
    assert (stored.remaining, stored.status, stored.profit_closed) == (0, "closed", 0)
    assert stored.closed_at == OPENED + timedelta(days=3)
    assert still_open == []


def test_racing_fills_on_one_position_leave_it_exact(run: Run[Any]) -> None:
    """Ten fills of one spread each, applied at once from separate connections, plus every
    one of them twice more: exactly ten spreads come off, each execution once."""

    async def go(store: Store) -> Any:
        await store.import_positions([vertical()], "DU1")
        await store.record_intent(intent(quantity=10))
        fills = [fill(f"E{n}", 1, f"0.{40 + n}") for n in range(10)]
        results = await asyncio.gather(*(store.apply_fill(f) for f in fills * 3))
        return results, await store.detail("P1")

    results, detail = run(go)
    assert sum(r.applied for r in results) == 10
    assert detail.stored.remaining == 0
    assert detail.stored.status == "closed"
    assert len(detail.fills) == 10
    assert detail.orders[0].filled == 10
    assert detail.orders[0].avg_price == Decimal("0.445")  # mean of 0.40 .. 0.49


@pytest.mark.parametrize(
    "cents",
    [
        (41, 46, 43, 42, 40, 44, 49, 45, 48, 47),  # a running average, rounded: 0.445001
        (44, 46, 43, 48, 47, 41, 42, 45, 49, 40),  # a running average, rounded: 0.444999
    ],
)
def test_the_average_price_does_not_depend_on_the_order_of_fills(
    run: Run[Any], cents: tuple[int, ...]
) -> None:
    """Fills at 0.40 .. 0.49 average 0.445 exactly, in whatever order they come: an
    average kept step by step, rounded at each step, would drift a millionth either way
    (and did, in the racing test). Both stores keep it."""

    async def go(store: Store) -> Any:
        await store.import_positions([vertical()], "DU1")
        await store.record_intent(intent(quantity=10))
        for c in cents:
            await store.apply_fill(fill(f"E{c}", 1, f"0.{c}"))
        return await store.detail("P1")

    assert run(go).orders[0].avg_price == Decimal("0.445")


def test_an_over_fill_is_refused_and_writes_nothing(run: Run[Any]) -> None:
    async def go(store: Store) -> Any:
        await store.import_positions([vertical()], "DU1")
        await store.record_intent(intent(quantity=4))
        with pytest.raises(StoreRefused, match="5 spreads, but order P1:0:1 has 4 unfilled"):
            await store.apply_fill(fill("E1", 5))
        return await store.detail("P1")

    detail = run(go)
    assert (detail.stored.remaining, detail.fills) == (10, [])


def test_never_two_live_close_orders_and_never_more_than_remains(run: Run[Any]) -> None:
    async def go(store: Store) -> Any:
        await store.import_positions([vertical()], "DU1")
        with pytest.raises(StoreRefused, match="11 spreads to close, 10 remaining"):
            await store.record_intent(intent(quantity=11))
        await store.record_intent(intent(quantity=4))
        with pytest.raises(StoreRefused, match="has P1:0:1 live"):
            await store.record_intent(replace(intent(quantity=10), order_ref="P1:stop:1"))
        await store.end_order("P1:0:1", "cancelled", "replaced by a stop")
        await store.record_intent(replace(intent(quantity=10), order_ref="P1:stop:1"))
        return await store.live_orders(), await store.detail("P1")

    live, detail = run(go)
    assert [o.order_ref for o in live] == ["P1:stop:1"]
    assert [o.status for o in detail.orders] == ["cancelled", "intent"]


def test_decisions_and_order_progress_are_audited(run: Run[Any]) -> None:
    """A close decision keeps its figures and the quotes; a hold its reason; a sent order
    its broker ids; the trail reads in order."""
    close = PROFIT_CLOSE

    async def go(store: Store) -> Any:
        await store.import_positions([vertical()], "DU1")
        await store.record_decision("P1", Hold(HoldReason.STALE, "no update for 120 s"))
        await store.record_decision("P1", close, {"legs": [{"bid": "0.60"}]})
        await store.record_intent(intent(quantity=4))
        await store.order_sent("P1:0:1", "working", broker_order_id=17, perm_id=99001)
        await store.apply_fill(fill("E1", 4, "0.48"))
        await store.order_sent("P1:0:1", "working")  # late: the fill stands
        await store.end_order("P1:0:1", "cancelled")  # late too
        return await store.detail("P1")

    detail = run(go)
    kinds = [e.kind for e in detail.events]
    assert kinds == [
        "imported",
        "hold",
        "decision",
        "close intent",
        "order working",
        "filled",
        "order working",  # the late "sent" is in the trail; the late cancel is not
    ]
    hold, decision = detail.events[1], detail.events[2]
    assert (hold.reason, hold.detail) == ("stale", "no update for 120 s")
    assert decision.reason == "profit_target"
    assert (decision.mark, decision.pnl, decision.pct_of_max) == (
        Decimal("0.48"),
        Decimal("208.00"),
        Decimal("0.52"),
    )
    assert (decision.contracts_closed, decision.contracts_remaining) == (4, 10)
    assert decision.quotes == {"legs": [{"bid": "0.60"}]}
    (order,) = detail.orders
    assert (order.broker_order_id, order.perm_id, order.status) == (17, 99001, "filled")


def test_order_refs_are_deterministic() -> None:
    assert order_ref("SPY-P-10", 0, 1) == "SPY-P-10:0:1"
    assert order_ref("SPY-P-10", None, 2) == "SPY-P-10:stop:2"


def test_contract_ids_are_kept_per_leg(run: Run[Any]) -> None:
    async def go(store: Store) -> Any:
        await store.import_positions([condor()], "DU1")
        before = await store.contract_ids("C1")
        await store.record_contract_ids("C1", {0: 7001, 3: 7004})
        with pytest.raises(StoreRefused, match="leg 4: no such leg"):
            await store.record_contract_ids("C1", {4: 1})
        return before, await store.contract_ids("C1")

    before, after = run(go)
    assert before == {0: None, 1: None, 2: None, 3: None}
    assert after == {0: 7001, 1: None, 2: None, 3: 7004}


def test_a_burst_of_intents_writes_each_that_may_be_and_says_why_of_the_others(
    run: Run[Any],
) -> None:
    """One call, four orders: P1's is written with its decision (one statement); P2 asks
    for more than remains, P9 does not exist, and P1's second would sit beside its first:
    each is refused with its reason and nothing of it is written."""
    close = PROFIT_CLOSE

    async def go(store: Store) -> Any:
        await store.import_positions([vertical(), replace(vertical(), id="P2")], "DU1")
        second = replace(intent(), order_ref="P1:0:2", attempt=2)
        results = await store.record_intents(
            [
                (intent(), close),
                (intent("P2", quantity=11), close),
                (intent("P9"), None),
                (second, None),
            ]
        )
        return results, await store.detail("P1"), await store.detail("P2")

    results, p1, p2 = run(go)
    assert results == [
        None,
        "order P2:0:1: quantity: 11 spreads to close, 10 remaining",
        "order P9:0:1: position 'P9': no such position",
        "order P1:0:2: position P1 has P1:0:1 live",
    ]
    assert [(o.order_ref, o.status, o.quantity) for o in p1.orders] == [("P1:0:1", "intent", 4)]
    decision, written = p1.events[-2:]
    assert (decision.kind, decision.mark, decision.pnl, decision.pct_of_max) == (
        "decision",
        Decimal("0.48"),
        Decimal("208.00"),
        Decimal("0.52"),
    )
    assert decision.detail == "triggers: profit_target"
    assert (written.kind, written.order_ref, written.mark) == (
        "close intent",
        "P1:0:1",
        Decimal("0.50"),
    )
    assert written.quotes == intent().quotes
    assert (written.contracts_closed, written.contracts_remaining) == (4, 10)
    assert (p1.stored.status, p1.stored.version) == ("closing", p2.stored.version + 1)
    assert (p2.orders, p2.stored.status, [e.kind for e in p2.events]) == (
        [],
        "open",
        ["imported"],
    )


def test_a_sent_order_keeps_the_brokers_ids_and_an_unknown_one_is_refused(
    run: Run[Any],
) -> None:
    """order_sent (one statement): the first ids stay when a later status brings none, a
    status further along stays, a repeat changes nothing but the trail, and an order the
    store does not know is refused with nothing written."""

    async def go(store: Store) -> Any:
        await store.import_positions([vertical()], "DU1")
        await store.record_intent(intent(quantity=4))
        await store.order_sent("P1:0:1", "submitted", broker_order_id=17)
        await store.order_sent("P1:0:1", "working", perm_id=99001)
        before = (await store.detail("P1")).orders[0].updated_at
        await store.order_sent("P1:0:1", "working")  # nothing new: updated_at stays
        after = (await store.detail("P1")).orders[0].updated_at
        await store.apply_fill(fill("E1", 1, "0.49"))
        await store.order_sent("P1:0:1", "working", broker_order_id=18)
        with pytest.raises(StoreRefused, match="no order P9:0:1"):
            await store.order_sent("P9:0:1", "working")
        return before, after, await store.detail("P1")

    before, after, detail = run(go)
    order = detail.orders[0]
    assert before == after
    assert (order.status, order.broker_order_id, order.perm_id) == (
        "partially_filled",
        18,
        99001,
    )
    sent = [(e.kind, e.detail) for e in detail.events if e.kind.startswith("order")]
    assert sent == [
        ("order submitted", None),
        ("order working", "perm id 99001"),
        ("order working", None),
        ("order working", None),
    ]


def test_orders_sent_in_a_burst_attempts_and_ends(run: Run[Any]) -> None:
    """orders_sent marks each known order not further along (an unknown one is no error);
    order_attempts is the highest attempt per open position and stage; an order ended
    twice is ended once; a position with a live order reads as closing and, its order
    ended, open again; and the port's refusals say what they refuse."""

    async def go(store: Store) -> Any:
        await store.import_positions([vertical(), vertical("P2")], "DU1")
        await store.record_intent(intent(quantity=4))
        second = replace(intent("P2", quantity=2), order_ref="P2:0:3", attempt=3)
        await store.record_intent(second)
        closing = {s.position.id: s.status for s in await store.open_positions()}
        await store.orders_sent(["P1:0:1", "P2:0:3", "P9:0:1"])
        await store.apply_fill(fill("E1", 2, order_ref="P2:0:3"))
        await store.orders_sent(["P2:0:3"], "working")  # filled already: stays
        attempts = await store.order_attempts()
        await store.end_order("P1:0:1", "cancelled", "by hand")
        await store.end_order("P1:0:1", "cancelled", "again")
        with pytest.raises(StoreRefused, match="no order P9:0:1"):
            await store.end_order("P9:0:1", "rejected")
        with pytest.raises(ValueError, match="filled"):
            await store.end_order("P1:0:1", "filled")
        with pytest.raises(ValueError, match="cancelled"):
            await store.order_sent("P1:0:1", "cancelled")
        with pytest.raises(StoreRefused, match="no such position"):
            await store.record_decision("P9", Hold(HoldReason.STALE))
        with pytest.raises(StoreRefused, match="no such position"):
            await store.detail("P9")
        live = await store.live_orders()
        return closing, attempts, live, await store.detail("P1"), await store.detail("P2")

    closing, attempts, live, p1, p2 = run(go)
    assert closing == {"P1": "closing", "P2": "closing"}
    assert attempts == {("P1", 0): 1, ("P2", 0): 3}
    assert live == []
    assert (p1.stored.status, p1.orders[0].status) == ("open", "cancelled")
    assert [(e.kind, e.detail) for e in p1.events if e.kind.startswith("order")] == [
        ("order queued", None),
        ("order cancelled", "by hand"),
    ]
    assert (p2.stored.status, p2.stored.remaining, p2.orders[0].status) == ("open", 8, "filled")
    assert [e.kind for e in p2.events] == ["imported", "close intent", "order queued", "filled"]


def test_a_closed_position_takes_no_manual_close_and_leaves_the_attempts(run: Run[Any]) -> None:
    async def go(store: Store) -> Any:
        await store.import_positions([vertical()], "DU1")
        await store.record_intent(intent(quantity=10, stage=None, reason="loss_stop"))
        await store.apply_fill(fill("E1", 10, "1.50", order_ref="P1:stop:1"))
        with pytest.raises(StoreRefused, match="already closed"):
            await store.request_manual_close("P1", "manual")
        return await store.order_attempts(), await store.detail("P1")

    attempts, detail = run(go)
    assert attempts == {}
    assert (detail.stored.status, detail.stored.version) == ("closed", 3)
    (filled,) = [e for e in detail.events if e.kind == "filled"]
    assert (filled.pnl, filled.pct_of_max) == (Decimal("-500.00"), Decimal("-0.50"))


def test_an_order_is_queued_until_the_broker_acknowledges_it_and_never_goes_back(
    run: Run[Any],
) -> None:
    """Issue 19, item 4: an order handed to the broker is ``queued`` (live: it blocks a
    second intent), ``submitted`` once the broker acknowledges it, then ``working``; a
    ``queued`` or ``submitted`` written after the acknowledgement (the broker's word
    comes in any order) changes nothing."""

    async def go(store: Store) -> Any:
        await store.import_positions([vertical(), vertical("P2")], "DU1")
        await store.record_intent(intent(quantity=4))
        await store.orders_sent(["P1:0:1"], "queued")
        seen = [(await store.detail("P1")).orders[0].status]
        live = [o.order_ref for o in await store.live_orders()]
        with pytest.raises(StoreRefused, match="live"):
            await store.record_intent(replace(intent(quantity=1), order_ref="P1:0:2", attempt=2))
        await store.order_sent("P1:0:1", "submitted", broker_order_id=17)
        seen.append((await store.detail("P1")).orders[0].status)
        await store.order_sent("P1:0:1", "working")
        await store.orders_sent(["P1:0:1"], "queued")  # late: stays working
        await store.order_sent("P1:0:1", "submitted")  # late: stays working
        seen.append((await store.detail("P1")).orders[0].status)
        second = replace(intent("P2", quantity=2), order_ref="P2:0:1")
        await store.record_intent(second)
        await store.order_sent("P2:0:1", "working")  # acknowledged before it was queued
        await store.orders_sent(["P2:0:1"], "queued")
        seen.append((await store.detail("P2")).orders[0].status)
        return seen, live

    seen, live = run(go)
    assert live == ["P1:0:1"]
    assert seen == ["queued", "submitted", "working", "working"]


def test_the_fill_ids_are_the_exec_ids_of_the_fills_since_an_instant(run: Run[Any]) -> None:
    """Issue 19, item 3: what the broker is told on start (the executions the store
    holds): every fill's exec id, or those at or after an instant."""

    async def go(store: Store) -> Any:
        await store.import_positions([vertical()], "DU1")
        before = await store.fill_ids()
        await store.record_intent(intent(quantity=4))
        at = fill("E1", 1).time
        await store.apply_fill(fill("E1", 1))
        await store.apply_fill(replace(fill("E2", 1), time=at + timedelta(hours=1)))
        later = await store.fill_ids(at + timedelta(minutes=1))
        return before, await store.fill_ids(), await store.fill_ids(at), later

    before, every, since, later = run(go)
    assert before == set()
    assert every == since == {"E1", "E2"}
    assert later == {"E2"}
