"""``spreadwatch positions sync [--apply]``: the credit spreads the broker's account holds,
found and (with ``--apply``) imported.

It reads the account (``settings.broker``: IB, or the simulated broker holding the
store's open positions), groups its option holdings into credit verticals and iron
condors (:mod:`service.sync.group`), and prints what it found and what it cannot place,
with why. ``--apply`` imports the new ones in one transaction, all or none; the legs of
a stored position are never imported again, so a second run imports nothing. Without
``--apply`` nothing is written.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import TextIO

from service import bootstrap
from service.cli.admin import table, with_store
from service.errors import InputError
from service.inputs import load_books
from service.ports import Holding, Store
from service.settings import Settings
from service.sync.build import Found, Plan, plan
from service.sync.group import Unplaced, group

FOUND_COLUMNS = ("id", "strategy", "legs", "qty", "credit", "book", "opened", "status")
UNPLACED_COLUMNS = ("leg", "qty", "avg cost", "reason")
NO_EXECUTIONS = "time of sync (no executions)"


def check_books(settings: Settings) -> None:
    """The sync's books exist in the books file: else one line naming the setting."""
    known = load_books(settings.books_file)
    named = [("sync.book", settings.sync.book)]
    named += [(f"sync.books.{u}", b) for u, b in sorted(settings.sync.books.items())]
    for where, book in named:
        if book not in known:
            names = ", ".join(sorted(known))
            raise InputError(f"settings: {where}: unknown book '{book}' (known: {names})")


def positions_sync(settings: Settings, apply: bool, out: TextIO) -> None:
    check_books(settings)
    now = datetime.now(UTC)

    async def go(store: Store) -> Plan:
        async with bootstrap.account(settings, store) as account:
            holdings, fills = await account.holdings(), await account.leg_fills()
        grouping = group(holdings, fills, await store.stored_legs())
        taken = [s.position.id for s in await store.all_positions()]
        found = plan(
            grouping, book=settings.sync.book, books=settings.sync.books, taken=taken, now=now
        )
        if apply and found.new:
            await store.import_positions(found.new, settings.account)
        return found

    found = with_store(settings, go)
    out.write(render(found, apply))


def render(found: Plan, applied: bool) -> str:
    """The spreads found, then what cannot be placed, then a line of what was done."""
    new = "imported" if applied else "new: would import"
    lines = []
    if found.found:
        lines.append("spreads found in the account:\n")
        lines.append(table(FOUND_COLUMNS, [_found_row(f, new) for f in found.found]))
    else:
        lines.append("no credit spread found in the account\n")
    if found.unplaced:
        lines.append("\ncannot place:\n")
        rows = [r for u in found.unplaced for r in _unplaced_rows(u)]
        lines.append(table(UNPLACED_COLUMNS, rows))
    count = len(found.new)
    if applied:
        lines.append(f"\nimported {count} position{'s' if count != 1 else ''}\n")
    elif count:
        lines.append(f"\n{count} new: run with --apply to import them\n")
    return "".join(lines)


def _money(value: Decimal) -> str:
    """A price with at least cents, and the sub-cents it has (1.075, 1.15, 2.00)."""
    text = f"{value.normalize():f}"
    whole, _, cents = text.partition(".")
    return f"{whole}.{cents.ljust(2, '0')}"


def _leg(h: Holding) -> str:
    return f"{'-' if h.quantity < 0 else '+'}{h.leg.right.value}{h.leg.strike.normalize():f}"


def _found_row(f: Found, new: str) -> list[str]:
    p = f.position
    stored = f.stored_as
    return [
        p.id,
        p.strategy.value,
        " ".join(_leg(h) for h in f.spread.holdings),
        str(p.contracts),
        _money(p.entry_credit),
        "-" if stored else p.book,
        p.opened_at.isoformat(timespec="seconds") if f.from_executions else NO_EXECUTIONS,
        f"already stored as {stored}" if stored else new,
    ]


def _unplaced_rows(u: Unplaced) -> list[list[str]]:
    return [
        [
            f"{h.leg.underlying} {h.leg.expiry} {h.leg.right.value}{h.leg.strike.normalize():f}",
            f"{h.quantity:+d}",
            _money(h.avg_cost),
            u.reason,
        ]
        for h in u.holdings
    ]
