"""The database and position commands: ``spreadwatch db ...`` and ``positions ...``.

Each command validates its input first (nothing is written on bad input),
finds the database (DATABASE_URL, or the embedded server), refuses a schema
that is not at head (except ``db upgrade`` and ``db current``), and does its
work in one transaction of the store.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, TextIO, TypeVar

from rules.clock import dte, exchange_date
from service import bootstrap
from service.bootstrap import schema
from service.errors import InputError, StoreRefused
from service.inputs import load_books, load_positions, position_of
from service.ports import ControlKind, PositionDetail, RealisedRow, Store, StoredPosition
from service.presentation import dollars
from service.settings import Settings

T = TypeVar("T")
CONTROL_KINDS = {k.value for k in ControlKind}


def with_database(settings: Settings, work: Callable[[str], Coroutine[Any, Any, T]]) -> T:
    """Run ``work(url)`` with the database of ``settings`` (embedded: started, then stopped)."""
    with bootstrap.database_url(settings) as url:
        return asyncio.run(work(url))


def with_store(settings: Settings, work: Callable[[Store], Awaitable[T]]) -> T:
    """Run ``work(store)`` on a database whose schema is at head."""

    async def go() -> T:
        async with bootstrap.open_store(settings, upgrade_embedded=False) as store:
            return await work(store)

    return asyncio.run(go())


# db -----------------------------------------------------------------------------------


def db_upgrade(settings: Settings, out: TextIO) -> None:
    async def go(url: str) -> None:
        before = await schema.current(url)
        await schema.upgrade(url)
        after = await schema.current(url)
        out.write(f"database {schema.redacted(url)}: {before or 'empty'} -> {after}\n")

    with_database(settings, go)


def db_current(settings: Settings, out: TextIO) -> None:
    async def go(url: str) -> None:
        have, want = await schema.current(url), schema.head()
        state = "at head" if have == want else f"head is {want}: run `spreadwatch db upgrade`"
        revision = have or "none"
        out.write(f"database {schema.redacted(url)}: revision {revision} ({state})\n")

    with_database(settings, go)


# positions ----------------------------------------------------------------------------


def positions_import(settings: Settings, path: Path, out: TextIO) -> None:
    books = load_books(settings.books_file)
    positions = load_positions(path, books)  # all validated before anything is written
    try:
        with_store(settings, lambda store: store.import_positions(positions, settings.account))
    except StoreRefused as exc:
        raise StoreRefused(f"{path}: {exc}") from exc
    out.write(f"imported {len(positions)} positions from {path}\n")


def positions_add(settings: Settings, record: dict[str, Any], out: TextIO) -> None:
    books = load_books(settings.books_file)
    position = position_of(record, books, f"position '{record.get('id')}'")
    with_store(settings, lambda store: store.import_positions([position], settings.account))
    out.write(f"added {position.id}\n")


def positions_close(settings: Settings, position_id: str, reason: str, out: TextIO) -> None:
    with_store(settings, lambda store: store.request_manual_close(position_id, reason))
    out.write(
        f"{position_id}: close of all that remains asked ({reason}): the running daemon "
        "sends it now (in regular hours), or the next one at its start\n"
    )


def positions_void(settings: Settings, position_id: str, reason: str, out: TextIO) -> None:
    if not reason.strip():
        raise InputError("--reason: say why the position is void")
    with_store(settings, lambda store: store.void(position_id, reason))
    out.write(f"{position_id}: void ({reason}): no longer watched, nothing traded\n")


def positions_set_book(settings: Settings, position_id: str, book: str, out: TextIO) -> None:
    books = load_books(settings.books_file)
    if book not in books:
        where = settings.books_file or "the built-in books"
        raise InputError(f"{where}: book {book!r}: no such book ({', '.join(sorted(books))})")
    with_store(settings, lambda store: store.set_book(position_id, book))
    out.write(f"{position_id}: book {book}: its exit rules from now on\n")


def positions_resume(settings: Settings, position_id: str, out: TextIO) -> None:
    with_store(settings, lambda store: store.resume(position_id))
    out.write(
        f"{position_id}: resumed: watched and traded again (the holdings are checked again)\n"
    )


LIST_COLUMNS = (
    "id",
    "book",
    "underlying",
    "strategy",
    "contracts",
    "stage",
    "status",
    "credit",
    "DTE",
)


def realised_by_position(fills: Sequence[RealisedRow]) -> dict[str, Decimal]:
    """Each position's realised P&L: the sum of its fills', net of commissions."""
    totals: dict[str, Decimal] = {}
    for f in fills:
        totals[f.position_id] = totals.get(f.position_id, Decimal(0)) + f.realised
    return totals


def list_rows(
    positions: Sequence[StoredPosition],
    today: datetime,
    realised: dict[str, Decimal] | None = None,
) -> list[list[str]]:
    """The table's rows; with ``realised`` (``--all``), each position's realised P&L too
    (``-``: nothing filled)."""
    session = exchange_date(today)
    rows = [
        [
            s.position.id,
            s.position.book,
            s.position.underlying,
            s.position.strategy.value,
            f"{s.remaining}/{s.position.contracts}",
            str(s.stage),
            s.shown_status()
            + (" (manual close)" if s.manual_close and s.status != "closed" else ""),
            f"{s.position.entry_credit:.2f}",
            str(dte(s.position.expiry, session)),
        ]
        for s in positions
    ]
    if realised is not None:
        for row, s in zip(rows, positions, strict=True):
            total = realised.get(s.position.id)
            row.append("-" if total is None else dollars(total))
    return rows


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows, strict=False)]
    lines = [header, ["-" * w for w in widths], *rows]
    return (
        "\n".join(
            "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in lines
        )
        + "\n"
    )


def positions_list(settings: Settings, show_all: bool, out: TextIO) -> None:
    async def read(store: Store) -> tuple[list[StoredPosition], dict[str, Decimal] | None]:
        if not show_all:
            return await store.open_positions(), None
        return await store.all_positions(), realised_by_position(await store.realised())

    positions, realised = with_store(settings, read)
    if not positions:
        out.write("no positions\n" if show_all else "no open positions\n")
        return
    header = LIST_COLUMNS if realised is None else (*LIST_COLUMNS, "realised")
    out.write(table(header, list_rows(positions, datetime.now(UTC), realised)))


def _money(value: Decimal | None) -> str:
    return "-" if value is None else f"{value.normalize():f}"


def render_detail(detail: PositionDetail) -> str:
    s = detail.stored
    p = s.position
    asked = f", manual close asked ({s.manual_close})" if s.manual_close else ""
    lines = [
        f"{p.id}: {p.strategy.value} on {p.underlying}, book {p.book}, account {s.account}",
        f"  contracts {s.remaining}/{p.contracts} remaining, stage {s.stage}, status "
        f"{s.shown_status()}{asked}",
        f"  entry credit {_money(p.entry_credit)} x {p.multiplier}, opened "
        f"{p.opened_at.isoformat()}, initial DTE {s.initial_dte}"
        + (f", trading class {p.trading_class}" if p.trading_class else ""),
        "legs:",
    ]
    lines += [
        f"  {leg.side.value:5}  {leg.right.value}  {_money(leg.strike)}  {leg.expiry}"
        for leg in p.legs
    ]
    lines.append("orders:" if detail.orders else "orders: none")
    lines += [
        f"  {o.order_ref}  {o.reason}  {o.label}  {o.filled}/{o.quantity}"
        f"  limit {_money(o.limit_price)}  avg {_money(o.avg_price)}  {o.status}"
        for o in detail.orders
    ]
    lines.append("fills:" if detail.fills else "fills: none")
    lines += [
        f"  {f.exec_id}  {f.order_ref}  {f.quantity} @ {_money(f.price)}"
        f"  commission {_money(f.commission)}  {f.time.isoformat()}"
        for f in detail.fills
    ]
    history = [e for e in detail.events if e.kind in CONTROL_KINDS]
    lines.append("reconciliation:" if history else "reconciliation: nothing to say")
    lines += [f"  {e.at.isoformat(timespec='seconds')}  {e.kind}  {e.detail or ''}".rstrip()
              for e in history]  # fmt: skip
    lines.append("audit trail:")
    for e in detail.events:
        parts = [e.at.isoformat(timespec="seconds"), e.kind]
        parts += [str(v) for v in (e.reason, e.order_ref) if v]
        if e.mark is not None:
            parts.append(f"mark {_money(e.mark)}")
        if e.pnl is not None:
            parts.append(f"P&L {_money(e.pnl)}")
        if e.contracts_remaining is not None:
            parts.append(f"{e.contracts_remaining} remaining")
        if e.detail:
            parts.append(str(e.detail))
        lines.append("  " + "  ".join(parts))
    return "\n".join(lines) + "\n"


def positions_show(settings: Settings, position_id: str, out: TextIO) -> None:
    out.write(render_detail(with_store(settings, lambda store: store.detail(position_id))))


# The positions command's dispatch ---------------------------------------------------


def positions_command(args: argparse.Namespace, settings: Settings, out: TextIO) -> None:
    """``spreadwatch positions ACTION``: the action the parsed ``args`` name."""
    if args.action == "import":
        positions_import(settings, args.file, out)
    elif args.action == "add":
        positions_add(settings, record_of(args), out)
    elif args.action == "list":
        positions_list(settings, args.all, out)
    elif args.action == "show":
        positions_show(settings, args.id, out)
    elif args.action == "void":
        positions_void(settings, args.id, args.reason, out)
    elif args.action == "set-book":
        positions_set_book(settings, args.id, args.book, out)
    elif args.action == "resume":
        positions_resume(settings, args.id, out)
    else:
        positions_close(settings, args.id, args.reason, out)


def record_of(args: argparse.Namespace) -> dict[str, Any]:
    """``positions add`` flags as a positions-file record (validated the same way)."""
    legs = []
    for n, text in enumerate(args.leg, start=1):
        parts = text.split(":")
        if len(parts) != 4:
            raise InputError(f"--leg {n}: {text!r}: expected RIGHT:STRIKE:EXPIRY:SIDE")
        right, strike, expiry, side = parts
        legs.append({"right": right, "strike": strike, "expiry": expiry, "side": side})
    record: dict[str, Any] = {
        "id": args.id,
        "book": args.book,
        "underlying": args.underlying,
        "strategy": args.strategy,
        "contracts": args.contracts,
        "entry_credit": args.credit,
        "opened_at": args.opened_at,
        "legs": legs,
    }
    if args.multiplier is not None:
        record["multiplier"] = args.multiplier
    if args.trading_class is not None:
        record["trading_class"] = args.trading_class
    return record
