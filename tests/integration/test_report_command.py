"""``spreadwatch report`` and ``positions list --all``'s realised column, from fills with
known prices and commissions on a real PostgreSQL: exact to the cent."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from service.store.repository import SqlStore
from tests.factories import three_fills
from tests.support import Run, StoreRun

Cli = Callable[..., Run]


@pytest.fixture
def filled(db_url: str, monkeypatch: pytest.MonkeyPatch, cli: Cli, run: StoreRun[Any]) -> Cli:
    """The CLI on a database holding :func:`tests.factories.three_fills`'s fills."""

    async def write(store: SqlStore) -> None:
        await three_fills(store)

    run(write)
    monkeypatch.setenv("DATABASE_URL", db_url)
    return cli


def words(out: str) -> list[str]:
    """The table's lines, its columns one space apart (the rule under the header left)."""
    lines = out.splitlines()
    return [" ".join(line.split()) for line in lines[:1] + lines[2:]]


def test_the_report_by_book_adds_fills_net_of_commissions_to_the_cent(filled: Cli) -> None:
    """P1: (1.00 - 0.50) x 400 - 1.30 = 198.70 and (1.00 - 1.50) x 600 - 0 = -300.00;
    C1: (2.15 - 0.45) x 100 - 1.0051 = 168.9949 -> 168.99. Commissions 1.30 + 1.0051."""
    out = filled("report")
    assert out.code == 0, out.err
    assert words(out.out) == [
        "book realised closes fills contracts commissions",
        "INCOME_POP $168.99 1 1 1 $1.01",
        "PRIMARY -$101.30 2 2 10 $1.30",
        "total $67.69 3 3 11 $2.31",
    ]


def test_the_report_by_day_takes_the_exchanges_day(filled: Cli) -> None:
    """The stop's fill at 22:30 New York is the 4th's, though the 5th in UTC."""
    assert words(filled("report", "--by", "day").out) == [
        "day realised closes fills contracts commissions",
        "2027-03-04 -$101.30 2 2 10 $1.30",
        "2027-03-05 $168.99 1 1 1 $1.01",
        "total $67.69 3 3 11 $2.31",
    ]


def test_the_report_by_reason_since_a_day(filled: Cli) -> None:
    assert words(filled("report", "--by", "reason").out) == [
        "reason realised closes fills contracts commissions",
        "loss_stop -$300.00 1 1 6 $0.00",
        "profit_target $367.69 2 2 5 $2.31",
        "total $67.69 3 3 11 $2.31",
    ]
    assert words(filled("report", "--by", "reason", "--since", "2027-03-05").out) == [
        "reason realised closes fills contracts commissions",
        "profit_target $168.99 1 1 1 $1.01",
        "total $168.99 1 1 1 $1.01",
    ]
    assert filled("report", "--since", "2027-03-06").out == "no fills since 2027-03-06\n"


def test_positions_list_all_shows_each_positions_realised_pnl(filled: Cli) -> None:
    listed = words(filled("positions", "list", "--all").out)
    assert listed[0].endswith(" credit DTE realised")
    by_id = {line.split()[0]: line.split()[-1] for line in listed[1:]}
    assert by_id == {"C1": "$168.99", "P1": "-$101.30"}
    assert not filled("positions", "list").out.splitlines()[0].endswith("realised")
