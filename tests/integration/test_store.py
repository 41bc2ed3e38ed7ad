"""What only the store on PostgreSQL has: migrations, the schema's constraints, its fill
statement, warmed connections. The store's contract (what every store does) is
tests/integration/contract/test_store_contract.py, run on PostgreSQL and in memory."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace
from decimal import Decimal
from typing import Any

import asyncpg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import event
from sqlalchemy.engine import Connection, make_url

from service.errors import StoreRefused, StoreUnavailable
from service.ports import Fill
from service.store import database
from service.store.repository import SqlStore
from service.store.schema import Base
from tests.factories import fill, intent, vertical
from tests.support import StoreRun as Run

# Migrations ----------------------------------------------------------------------


def _diff(connection: Connection) -> list[Any]:
    return list(compare_metadata(MigrationContext.configure(connection), Base.metadata))


def test_upgrade_downgrade_upgrade_and_the_models_match_the_migrated_schema(
    empty_url: str,
) -> None:
    async def go() -> list[Any]:
        assert await database.current(empty_url) is None
        await database.upgrade(empty_url)
        assert await database.current(empty_url) == database.head()
        await database.downgrade(empty_url, "base")
        assert await database.current(empty_url) is None
        await database.upgrade(empty_url)
        engine = database.engine(empty_url)
        try:
            async with engine.connect() as conn:
                return await conn.run_sync(_diff)
        finally:
            await engine.dispose()

    assert asyncio.run(go()) == []


def test_a_schema_not_at_head_is_refused_with_the_command_that_fixes_it(empty_url: str) -> None:
    with pytest.raises(database.SchemaNotAtHead) as caught:
        asyncio.run(database.require_head(empty_url))
    assert "no schema" in str(caught.value)
    assert "run `spreadwatch db upgrade`" in str(caught.value)
    asyncio.run(database.upgrade(empty_url))
    asyncio.run(database.require_head(empty_url))  # at head: no error


def test_the_url_gets_the_asyncpg_driver_and_keeps_its_password() -> None:
    url = database.async_url("postgres://sw:s3cret@db.example:5433/spreadwatch")
    assert url == "postgresql+asyncpg://sw:s3cret@db.example:5433/spreadwatch"
    assert "s3cret" not in database.redacted(url)
    with pytest.raises(database.InputError, match="not a PostgreSQL URL"):
        database.async_url("mysql://x@y/z")


# What the schema itself refuses ------------------------------------------------------


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE positions SET remaining = -1",
        "UPDATE positions SET remaining = contracts + 1",
        "UPDATE positions SET entry_credit = 0",
        "UPDATE positions SET status = 'closed'",  # with contracts remaining
        "UPDATE positions SET status = 'gone'",
        "UPDATE legs SET \"right\" = 'X'",
        "UPDATE exit_events SET kind = 'rewritten'",
        "DELETE FROM exit_events",
    ],
)
def test_constraints_hold_against_a_bad_update(
    run: Run[Any], sql: Callable[[str], None], statement: str
) -> None:
    async def setup(store: SqlStore) -> None:
        await store.import_positions([vertical()], "DU1")

    run(setup)
    with pytest.raises((asyncpg.CheckViolationError, asyncpg.RaiseError)):
        sql(statement)


def test_a_new_execution_takes_one_write_and_the_odd_ones_none(
    run: Run[Any],
) -> None:
    """New executions are written by the single write statement; a repeat, an unknown order
    and an over-fill are answered from the read, with nothing written, saying what they
    are."""
    written: list[str] = []

    async def go(store: SqlStore) -> Any:
        real = store._write_fill

        async def counted(f: Fill, *args: Any) -> Any:
            written.append(f.exec_id)
            return await real(f, *args)

        store._write_fill = counted  # type: ignore[method-assign]
        await store.import_positions([vertical()], "DU1")
        await store.record_intent(intent(quantity=4))
        await store.apply_fill(fill("E1", 1, "0.49"))
        await store.apply_fill(fill("E2", 3, "0.50"))
        await store.apply_fill(fill("E1", 1, "0.49"))
        with pytest.raises(StoreRefused, match="no order"):
            await store.apply_fill(fill("E3", 1, order_ref="P7:0:1"))
        with pytest.raises(StoreRefused, match="1 spreads, but order P1:0:1 has 0 unfilled"):
            await store.apply_fill(fill("E4", 1))
        return await store.detail("P1")

    detail = run(go)
    assert written == ["E1", "E2"]
    assert (detail.stored.remaining, detail.stored.stage, detail.stored.status) == (6, 1, "open")
    assert (detail.orders[0].avg_price, detail.orders[0].paid) == (
        Decimal("0.4975"),
        Decimal("1.99"),
    )


def test_warming_opens_the_connections_with_nothing_written(db_url: str) -> None:
    """warm(n): n connections open and pooled (each has run the order path's statements,
    as no-ops), and the database is as it was."""

    async def main() -> Any:
        engine = database.engine(db_url)
        try:
            store = SqlStore(engine)
            await store.import_positions([vertical()], "DU1")
            await store.warm(3)
            return engine.sync_engine.pool.checkedin(), await store.detail("P1")
        finally:
            await engine.dispose()

    pooled, detail = asyncio.run(main())
    assert pooled == 3
    assert ([e.kind for e in detail.events], detail.orders, detail.fills) == (
        ["imported"],
        [],
        [],
    )


def test_positions_by_id_are_one_statement_for_any_number_of_ids(db_url: str) -> None:
    """The running daemon reads the positions added or changed by id (its intake): one SQL
    text for 1 id or 7, so each connection prepares it once. With a parameter per id,
    every new count was a statement of its own, prepared and kept by every connection
    (the soak saw them pile up for days)."""
    said: list[str] = []

    async def main() -> list[list[str]]:
        engine = database.engine(db_url)
        event.listen(engine.sync_engine, "before_cursor_execute",
                     lambda *a: said.append(a[2]))  # fmt: skip
        try:
            store = SqlStore(engine)
            ids = [f"P{k}" for k in range(1, 8)]
            await store.import_positions([replace(vertical(), id=i) for i in ids], "DU1")
            found = []
            for n in (1, 3, 7):
                said.clear()
                found.append(sorted(p.position.id for p in await store.positions(ids[:n])))
                assert len(set(said)) == 2  # (the positions', then their legs')
                texts.append(tuple(said))
            return found
        finally:
            await engine.dispose()

    texts: list[tuple[str, ...]] = []
    assert asyncio.run(main()) == [["P1"], ["P1", "P2", "P3"], [f"P{k}" for k in range(1, 8)]]
    assert len(set(texts)) == 1


# Errors by kind -------------------------------------------------------------------------


def test_a_database_out_of_reach_is_unavailable_and_what_it_refuses_is_refused(
    db_url: str,
) -> None:
    """The store's callers decide by kind: a database that cannot be reached (a read, the
    order path) is StoreUnavailable; a value the database refuses is StoreRefused; a
    schema not at head is a refusal too (exit code 2)."""
    nowhere = make_url(db_url).set(host="127.0.0.1", port=1).render_as_string(False)

    async def main() -> None:
        gone = database.engine(nowhere)
        try:
            with pytest.raises(StoreUnavailable):
                await SqlStore(gone).open_positions()
            with pytest.raises(StoreUnavailable):
                await SqlStore(gone).apply_fill(fill("E1", 1))
        finally:
            await gone.dispose()
        engine = database.engine(db_url)
        try:
            store = SqlStore(engine)
            await store.import_positions([vertical()], "DU1")
            with pytest.raises(StoreRefused):
                await store.record_contract_ids("P1", {0: 2**70})  # beyond a bigint
        finally:
            await engine.dispose()

    asyncio.run(main())
    assert issubclass(database.SchemaNotAtHead, StoreRefused)
    assert database.SchemaNotAtHead.exit_code == 2
