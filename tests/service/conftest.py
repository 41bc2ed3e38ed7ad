"""Builders for replay's input files."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

HEADER = "ts,underlying,expiry,right,strike,bid,ask,delta,underlying_price"

PUT_SPREAD = """
[[positions]]
id = "{id}"
book = "{book}"
underlying = "SPY"
strategy = "put_credit"
contracts = {contracts}
entry_credit = {credit}
opened_at = "{opened_at}"
legs = [
  {{ right = "P", strike = 450, expiry = "{expiry}", side = "short" }},
  {{ right = "P", strike = 445, expiry = "{expiry}", side = "long" }},
]
"""


def put_spread(
    id: str = "P1",
    book: str = "PRIMARY",
    contracts: int = 10,
    credit: str = "1.00",
    opened_at: str = "2027-03-01T10:00:00-05:00",
    expiry: str = "2027-04-16",
) -> str:
    return PUT_SPREAD.format(
        id=id, book=book, contracts=contracts, credit=credit, opened_at=opened_at, expiry=expiry
    )


def tick(ts: str, strike: int, bid: str, ask: str, delta: str = "", spot: str = "460") -> str:
    return f"{ts},SPY,2027-04-16,P,{strike},{bid},{ask},{delta},{spot}"


@pytest.fixture
def files(tmp_path: Path) -> Callable[..., tuple[Path, Path]]:
    """Write POSITIONS.toml and TICKS.csv (header added) into a temp dir."""

    def write(positions: str, ticks: list[str]) -> tuple[Path, Path]:
        p = tmp_path / "positions.toml"
        t = tmp_path / "ticks.csv"
        p.write_text(positions)
        t.write_text("\n".join([HEADER, *ticks]) + "\n")
        return p, t

    return write
