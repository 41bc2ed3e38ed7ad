"""``spreadwatch report``: the realised P&L the store's fills add up to, grouped.

Read from the fills (``PositionStore.realised``): each fill's P&L is
(entry credit - fill price) x multiplier x contracts - commission, rounded to
the cent once (a commission the broker never said counts as 0); a group's and
the total's figures are sums of those, so the lines add up to the total.
Grouped by book, by the exchange's day of the fill (America/New_York) or by
exit reason; ``--since DATE`` keeps the fills from that day's start in New York.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal
from typing import TextIO

from rules.clock import exchange_date, new_york
from service.cli.admin import table, with_store
from service.ports import RealisedRow
from service.presentation import dollars
from service.settings import Settings

GROUPS: dict[str, Callable[[RealisedRow], str]] = {
    "book": lambda r: r.book,
    "day": lambda r: exchange_date(r.time).isoformat(),
    "reason": lambda r: r.reason,
}
COLUMNS = ("realised", "closes", "fills", "contracts", "commissions")


@dataclass
class Figures:
    """What a group's fills add up to."""

    realised: Decimal = Decimal(0)
    orders: set[str] = field(default_factory=set)  # the close orders filled (closes)
    fills: int = 0
    contracts: int = 0
    commissions: Decimal = Decimal(0)

    def add(self, row: RealisedRow) -> None:
        self.realised += row.realised
        self.orders.add(row.order_ref)
        self.fills += 1
        self.contracts += row.contracts
        self.commissions += row.commission

    def cells(self, name: str) -> list[str]:
        return [
            name,
            dollars(self.realised),
            str(len(self.orders)),
            str(self.fills),
            str(self.contracts),
            dollars(self.commissions),
        ]


def grouped(rows: Sequence[RealisedRow], by: str) -> tuple[dict[str, Figures], Figures]:
    """Each group's figures (in the groups' order) and the total's."""
    key = GROUPS[by]
    groups: dict[str, Figures] = {}
    total = Figures()
    for row in rows:
        groups.setdefault(key(row), Figures()).add(row)
        total.add(row)
    return dict(sorted(groups.items())), total


def start_of(day: date) -> datetime:
    """The instant ``day`` begins in New York (the exchange's day)."""
    return datetime.combine(day, time(0), tzinfo=new_york())


def render(rows: Sequence[RealisedRow], by: str) -> str:
    groups, total = grouped(rows, by)
    lines = [f.cells(name) for name, f in groups.items()]
    return table((by, *COLUMNS), [*lines, total.cells("total")])


def report(settings: Settings, since: date | None, by: str, out: TextIO) -> None:
    """The report on ``out``: one line a group and a total line; "no fills" when none."""
    start = None if since is None else start_of(since)
    rows = with_store(settings, lambda store: store.realised(start))
    if not rows:
        out.write("no fills" + ("" if since is None else f" since {since}") + "\n")
        return
    out.write(render(rows, by))
