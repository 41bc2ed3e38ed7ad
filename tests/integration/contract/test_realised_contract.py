"""The store's contract for ``realised`` (the report's and ``positions list``'s P&L), on
both stores: each fill with what it realised, net of its commission, to the cent."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from service.errors import StoreRefused
from service.ports import Commission, Store
from tests.factories import fill, intent, three_fills, vertical
from tests.support import PortRun as Run


def test_each_fill_realises_its_pnl_net_of_commission_to_the_cent(run: Run[Any]) -> None:
    async def go(store: Store) -> Any:
        await three_fills(store)
        return await store.realised()

    found = run(go)
    assert [(r.exec_id, r.position_id, r.book, r.reason) for r in found] == [
        ("E1", "P1", "PRIMARY", "profit_target"),
        ("E2", "P1", "PRIMARY", "loss_stop"),
        ("E3", "C1", "INCOME_POP", "profit_target"),
    ]
    # (1.00 - 0.50) x 100 x 4 - 1.30; (1.00 - 1.50) x 100 x 6 - 0; (2.15 - 0.45) x 100 - 1.0051
    assert [r.realised for r in found] == [Decimal("198.70"), Decimal("-300.00"), Decimal("168.99")]
    assert [r.commission for r in found] == [Decimal("1.3"), Decimal(0), Decimal("1.0051")]
    assert [(r.contracts, r.price) for r in found] == [
        (4, Decimal("0.5")),
        (6, Decimal("1.5")),
        (1, Decimal("0.45")),
    ]


def test_realised_since_leaves_out_earlier_fills(run: Run[Any]) -> None:
    async def go(store: Store) -> Any:
        await three_fills(store)
        first = (await store.realised())[0]
        return await store.realised(first.time + timedelta(hours=1))

    assert [r.exec_id for r in run(go)] == ["E2", "E3"]


def test_no_fills_realise_nothing(run: Run[Any]) -> None:
    async def go(store: Store) -> Any:
        await store.import_positions([vertical("P1")], "DU1")
        return await store.realised()

    assert run(go) == []


def test_a_late_commission_report_is_added_to_its_fill_once_and_realised_with_it(
    run: Run[Any],
) -> None:
    """A fill recorded before its commission was known (IB's reports trail their
    executions, any time after): each report added once by its id, whenever it comes,
    and the fill's realised P&L (the report's) is net of it."""

    async def go(store: Store) -> Any:
        await three_fills(store)  # E2: 6 at 1.50, no commission said
        first = await store.add_commission(Commission("E2", "E2.leg1", Decimal("3.90")))
        again = await store.add_commission(Commission("E2", "E2.leg1", Decimal("3.90")))
        second = await store.add_commission(Commission("E2", "E2.leg2", Decimal("3.90")))
        return first, again, second, await store.realised()

    first, again, second, found = run(go)
    assert (first, again, second) == (Decimal("3.90"), None, Decimal("7.80"))
    e2 = next(r for r in found if r.exec_id == "E2")
    assert e2.commission == Decimal("7.80")
    assert e2.realised == Decimal("-307.80")  # (1.00 - 1.50) x 100 x 6 - 7.80


def test_the_reports_a_fill_came_with_are_not_added_again(run: Run[Any]) -> None:
    """A fill applied with the reports it adds up: the same reports coming again (IB sends
    them again on every reqExecutions) change nothing; another one is added."""

    async def go(store: Store) -> Any:
        await store.import_positions([vertical("P1")], "DU1")
        await store.record_intent(intent("P1", quantity=4))
        reports = (("E1.1", Decimal("2.60")), ("E1.2", Decimal("2.60")))
        await store.apply_fill(replace(fill("E1", 4, "0.50"), commission=Decimal("5.20"),
                                       reports=reports))  # fmt: skip
        again = await store.add_commission(Commission("E1", "E1.2", Decimal("2.60")))
        third = await store.add_commission(Commission("E1", "E1.3", Decimal("0.10")))
        return again, third, await store.realised()

    again, third, (row,) = run(go)
    assert (again, third) == (None, Decimal("5.30"))
    assert row.commission == Decimal("5.30")


def test_a_commission_for_a_fill_not_recorded_is_refused(run: Run[Any]) -> None:
    async def go(store: Store) -> Any:
        await store.import_positions([vertical("P1")], "DU1")
        with pytest.raises(StoreRefused, match="not recorded"):
            await store.add_commission(Commission("E9", "E9.1", Decimal("1")))

    run(go)
