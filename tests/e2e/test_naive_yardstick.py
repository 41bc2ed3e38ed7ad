"""The benchmarks' yardstick (benchmarks/naive.py): its float and Decimal forms are one
evaluator, and it reads the positions of any stream. Replay's targets are ratios to
it (issue 21), so a yardstick that counted other exits, or none, would make any
figure meaningless."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.factories import generate
from tests.support import ROOT


def naive(data: Path, *flags: str) -> tuple[int, int]:
    """Rows and exits the naive evaluator counts on the stream in ``data``."""
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "naive.py"), *flags,
         str(data / "positions.toml"), str(data / "ticks.csv")],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    found = re.search(r"(\d+) rows, (\d+) exits", proc.stderr)
    assert found, proc.stderr
    return int(found.group(1)), int(found.group(2))


@pytest.mark.parametrize("seed", [3, 11])
def test_the_float_and_decimal_yardsticks_are_one_evaluator(tmp_path: Path, seed: int) -> None:
    """On a generated stream both read every row and count nearly the same exits (float
    misses one where a debit is exactly at a target: the next test)."""
    data = generate(tmp_path, seed, 20_000)
    (rows, exits), (decimal_rows, decimal_exits) = naive(data), naive(data, "--decimal")
    assert rows == decimal_rows == 20_000
    assert exits > 100  # (it matched the stream's legs: strikes keyed by value)
    assert abs(exits - decimal_exits) <= exits // 50


def test_the_decimal_yardstick_counts_in_decimal(tmp_path: Path) -> None:
    """A 0.30 credit spread at a 0.15 debit is at 50% of its maximum profit exactly:
    Decimal sees the target reached; float sees 0.4999999999999999."""
    (tmp_path / "positions.toml").write_text(
        '[[positions]]\nid = "P"\nbook = "PRIMARY"\nunderlying = "SPY"\n'
        'strategy = "put_credit"\ncontracts = 1\nentry_credit = 0.30\n'
        'opened_at = "2027-03-01"\nlegs = [\n'
        '  { right = "P", strike = 450, expiry = "2027-06-18", side = "short" },\n'
        '  { right = "P", strike = 445, expiry = "2027-06-18", side = "long" },\n]\n'
    )
    (tmp_path / "ticks.csv").write_text(
        "ts,underlying,expiry,right,strike,bid,ask,delta,underlying_price\n"
        "2027-03-02T10:00:00-05:00,SPY,2027-06-18,P,450.00,0.28,0.28,,460\n"
        "2027-03-02T10:00:01-05:00,SPY,2027-06-18,P,445,0.13,0.13,,460\n"
    )
    assert naive(tmp_path, "--decimal") == (2, 1)
    assert naive(tmp_path) == (2, 0)
