"""The report that generate.py prints: what was written, and the self-check's counts."""

from __future__ import annotations

from collections import Counter
from datetime import date
from pathlib import Path

import numpy as np

from .market import CALM, Underlyings
from .positions import Made
from .stream import Contracts, Stream


def print_report(
    n_read: int,
    made: list[Made],
    und: Underlyings,
    con: Contracts,
    days: list[date],
    stream: Stream,
    paths: tuple[Path, Path],
    summary: list[str],
) -> None:
    """Everything but the timing line: counts, files, and the self-check's summary."""
    positions_path, ticks_path = paths
    rows = sum(len(x) for x in stream.t)
    used = {und.names[u] for u in np.unique(con.u)}
    books = Counter(m.position.book for m in made)
    strategies = Counter(m.position.strategy.value for m in made)
    scripted = Counter(s for s in und.scenario if s != CALM)
    print(
        f"positions: {n_read} ({', '.join(f'{k} {v}' for k, v in sorted(books.items()))}; "
        f"{', '.join(f'{k} {v}' for k, v in sorted(strategies.items()))}; "
        f"{sum(m.position.contracts >= 3 for m in made)} of >= 3 contracts)"
    )
    print(
        f"underlyings: {len(used)} quoted (scripted: "
        f"{', '.join(f'{k} {v}' for k, v in sorted(scripted.items()))}); "
        f"legs quoted: {len(con.key)}"
    )
    print(f"days: {len(days)} ({days[0]} .. {days[-1]}); rows: {rows:,}")
    print(
        f"files: {positions_path} {positions_path.stat().st_size:,} B; "
        f"{ticks_path} {ticks_path.stat().st_size:,} B"
    )
    print(
        "self-check (rules.machine's order and holds: mid marks, fills at the mark, "
        "no leg quote from before today, mid debit within [0, width]):"
    )
    for line in summary:
        print(f"  {line}")
