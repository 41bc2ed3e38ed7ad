"""The store's contract for ``stored_legs`` (what positions sync must not import again),
on both stores: the legs of every position not closed, with the contract ids known."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from rules.model import Right, Side
from service.ports import LegKey, Store, StoredLeg
from tests.factories import STORE_EXPIRY, condor, fill, intent, vertical
from tests.support import PortRun as Run


def test_the_legs_of_open_positions_with_their_contract_ids(run: Run[Any]) -> None:
    async def go(store: Store) -> Any:
        await store.import_positions([vertical("P1"), condor("C1")], "DU1")
        await store.record_contract_ids("P1", {0: 1001})
        return await store.stored_legs()

    legs = run(go)
    assert legs[:2] == [
        StoredLeg("C1", LegKey("QQQ", STORE_EXPIRY, Right.PUT, Decimal("395.5")), Side.LONG, None),
        StoredLeg("C1", LegKey("QQQ", STORE_EXPIRY, Right.PUT, Decimal("400.5")), Side.SHORT, None),
    ]
    assert [(s.position_id, s.leg.strike, s.side, s.con_id) for s in legs[4:]] == [
        ("P1", Decimal(450), Side.SHORT, 1001),
        ("P1", Decimal(445), Side.LONG, None),
    ]
    assert str(legs[4].leg.strike) == "450"


def test_a_closed_positions_legs_are_not_stored_legs(run: Run[Any]) -> None:
    async def go(store: Store) -> Any:
        await store.import_positions([vertical("P1"), vertical("P2")], "DU1")
        await store.record_intent(intent(quantity=10, stage=None, reason="loss_stop"))
        await store.apply_fill(fill("E1", 10, "1.50", order_ref="P1:stop:1"))
        return await store.stored_legs()

    assert {s.position_id for s in run(go)} == {"P2"}
