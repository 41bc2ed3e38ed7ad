"""Replay with screens decides exactly as replay without them.

A screen lets replay skip evaluating a row on which no position can close
(rules.watch.Screen); the positions catch up on skipped rows when they are
next evaluated. Skipping must change nothing: on seeded benchmark streams
(every exit type, shared legs, condors, bad rows, broker and local deltas)
the exits, the log and the P&L are the same with and without screens.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from rules.books import DEFAULT_BOOKS
from rules.greeks import Rates
from service.inputs import load_positions
from service.replay import Replay, Summary, read_ticks, write_summary
from service.replay.rows import batches_of
from tests.factories import generate


def replay(data: Path, *, screen: bool) -> tuple[str, str, Summary]:
    books = dict(DEFAULT_BOOKS)
    run = Replay(load_positions(data / "positions.toml", books), books, Rates(), screen=screen)
    out, log = io.StringIO(), io.StringIO()
    with read_ticks(data / "ticks.csv") as ticks:
        summary = run.run(batches_of(ticks), out, log)
    write_summary(summary, run, log)
    return out.getvalue(), log.getvalue(), summary


def without_counts(log: str) -> list[str]:
    """The log without its first summary line (row counts and timing differ by design)."""
    return [line for line in log.splitlines() if " evaluations in " not in line]


@pytest.mark.parametrize(
    ("seed", "updates", "no_delta"),
    [(1, 40_000, False), (2, 40_000, False), (3, 40_000, False), (4, 6_000, True)],
)
def test_screens_change_no_exit(tmp_path: Path, seed: int, updates: int, no_delta: bool) -> None:
    data = generate(tmp_path, seed, updates, no_delta=no_delta)
    out, log, screened = replay(data, screen=True)
    want_out, want_log, every = replay(data, screen=False)
    assert out == want_out
    assert without_counts(log) == without_counts(want_log)
    assert out.count("\n") > 20  # exits of every kind happen on these streams
    assert (screened.rows, screened.applied) == (every.rows, every.applied)
    assert every.screened == 0
    assert every.evaluations >= screened.applied - screened.idle
    # local deltas are screened by their local bands (rules.bsm.LocalBand): less often
    assert screened.screened > (0.5 if no_delta else 0.8) * screened.applied
