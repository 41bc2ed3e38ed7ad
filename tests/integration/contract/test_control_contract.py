"""The store's contract for a human's changes and what needs one, for every store: void,
book changed, needs attention, resumed, expired, the controls the daemon polls, and the
changes it listens for. Nothing is ever deleted: each change is an audit row."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest

from rules.machine import Phase
from service.errors import StoreRefused
from service.ports import ControlKind, PositionControl, Store
from tests.factories import condor, intent, vertical
from tests.support import PortRun as Run


def test_a_void_position_is_kept_with_its_trail_and_no_longer_watched(run: Run[Any]) -> None:
    async def go(store: Store) -> Any:
        await store.import_positions([vertical("P1"), vertical("P2")], "DU1")
        await store.void("P1", "closed at the broker by hand")
        for change in (
            store.void("P1", "again"),
            store.request_manual_close("P1", "manual"),
            store.set_book("P1", "INCOME_POP"),
        ):
            with pytest.raises(StoreRefused, match="position 'P1': void"):
                await change
        return (
            [s.position.id for s in await store.open_positions()],
            [s.position.id for s in await store.all_positions()],
            await store.controls(),
            await store.detail("P1"),
        )

    watched, every, controls, detail = run(go)
    assert (watched, every, list(controls)) == (["P2"], ["P1", "P2"], ["P2"])
    assert detail.stored.void == "closed at the broker by hand"
    assert detail.stored.shown_status() == "void"
    assert detail.stored.remaining == 10
    assert [e.kind for e in detail.events] == ["imported", ControlKind.VOIDED.value]


def test_a_void_is_refused_while_a_close_order_is_live(run: Run[Any]) -> None:
    async def go(store: Store) -> Any:
        await store.import_positions([vertical("P1")], "DU1")
        await store.record_intent(intent("P1", 10, None, "loss_stop"))
        with pytest.raises(StoreRefused, match=r"close order P1:stop:1 is working at the broker"):
            await store.void("P1", "by mistake")
        await store.end_order("P1:stop:1", "cancelled")
        await store.void("P1", "by mistake")
        return (await store.detail("P1")).stored

    assert run(go).void == "by mistake"


def test_no_order_is_written_for_a_position_void_or_needing_attention(run: Run[Any]) -> None:
    async def go(store: Store) -> Any:
        await store.import_positions([vertical("P1"), vertical("P2")], "DU1")
        await store.void("P1", "by mistake")
        assert await store.mark_attention("P2", "the account holds -6")
        return await store.record_intents(
            [
                (intent("P1", 10, None, "loss_stop"), None),
                (intent("P2", 10, None, "loss_stop"), None),
            ]
        ), await store.live_orders()

    refused, live = run(go)
    assert refused == [
        "order P1:stop:1: position 'P1': void (by mistake): no order goes",
        "order P2:stop:1: position 'P2': needs attention (the account holds -6): no order goes",
    ]
    assert live == []


def test_attention_is_said_once_per_reason_and_cleared_by_a_resume(run: Run[Any]) -> None:
    async def go(store: Store) -> Any:
        await store.import_positions([vertical("P1")], "DU1")
        said = [
            await store.mark_attention("P1", "holds -6"),
            await store.mark_attention("P1", "holds -6"),
            await store.mark_attention("P1", "holds -4"),
        ]
        during = (await store.controls())["P1"]
        await store.resume("P1")
        return said, during, (await store.controls())["P1"], await store.detail("P1")

    said, during, after, detail = run(go)
    assert said == [True, False, True]
    assert during == PositionControl("PRIMARY", None, "holds -4")
    assert after == PositionControl("PRIMARY", None, None)
    assert [(e.kind, e.detail) for e in detail.events[1:]] == [
        ("needs attention", "holds -6"),
        ("needs attention", "holds -4"),
        ("attention cleared", "resumed by hand"),
    ]


def test_a_book_changed_and_a_position_closed_out_as_expired(run: Run[Any]) -> None:
    async def go(store: Store) -> Any:
        await store.import_positions([vertical("P1"), condor("C1")], "DU1")
        await store.set_book("P1", "INCOME_POP")
        await store.close_expired("C1", "expired 2027-04-16 worthless")
        with pytest.raises(StoreRefused, match="already closed"):
            await store.void("C1", "too late")
        return await store.positions(["P1", "C1", "nope"]), await store.detail("C1")

    found, expired = run(go)
    by_id = {s.position.id: s for s in found}
    assert set(by_id) == {"P1", "C1"}
    assert by_id["P1"].position.book == "INCOME_POP"
    assert (by_id["C1"].remaining, by_id["C1"].status) == (0, Phase.CLOSED)
    assert expired.stored.closed_at is not None
    assert (expired.events[-1].kind, expired.events[-1].detail) == (
        "expired",
        "expired 2027-04-16 worthless",
    )


def test_a_humans_changes_are_told_to_listeners(run: Run[Any]) -> None:
    """What a listener hears: "*" once it listens (anything may have changed before), then
    each change a human makes, by position id ("*" for an import); not the daemon's
    own marks."""

    async def go(store: Store) -> list[str]:
        heard: list[str] = []
        await store.import_positions([vertical("P1")], "DU1")
        listening = asyncio.create_task(store.listen(heard.append))
        for _ in range(200):
            if heard:
                break
            await asyncio.sleep(0.01)
        await store.import_positions([vertical("P2")], "DU1")
        await store.request_manual_close("P1", "manual")
        await store.mark_attention("P2", "holds -6")
        await store.set_book("P2", "INCOME_POP")
        await store.void("P2", "by mistake")
        for _ in range(200):
            if heard[-1:] == ["P2"] and len(heard) >= 5:
                break
            await asyncio.sleep(0.01)
        listening.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await listening
        return heard

    assert run(go) == ["*", "*", "P1", "P2", "P2"]


def test_a_store_is_bound_to_the_first_venue_it_is_given(run: Run[Any]) -> None:
    async def go(store: Store) -> list[str]:
        return [await store.bind("ib:DU1"), await store.bind("sim"), await store.bind("ib:DU1")]

    assert run(go) == ["ib:DU1", "ib:DU1", "ib:DU1"]
