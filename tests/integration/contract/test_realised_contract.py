"""The store's contract for ``realised`` (the report's and ``positions list``'s P&L), on
both stores: each fill with what it realised, net of its commission, to the cent."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from service.ports import Store
from tests.factories import three_fills, vertical
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
