"""Seeded benchmark data for ``spreadwatch replay``: DIR/positions.toml and DIR/ticks.csv.

    .venv/bin/python benchmarks/generate.py --out benchmarks/data [--seed 7]
        [--positions 1000] [--underlyings 50] [--updates 1000000] [--days 5] [--no-delta]
        [--ts-precision ms|us|ns]

The same arguments give the same bytes. The market:

- Underlyings (20..600) follow geometric Brownian motion through regular hours
  (09:30-16:00 America/New_York) of consecutive weekdays from ``--start``, with a
  realised volatility below their implied one (premium decays). A few are
  scripted so that every exit type happens: steady rallies and sell-offs (profit
  targets on one side, delta stops on the other) and gaps toward short strikes
  (loss stops).
- Every leg is priced by Black-Scholes-Merton at its underlying's one (smile-free)
  implied volatility; bid/ask sit around the model price, 3-8% wide, on 0.01 ticks.
- Positions were opened days to weeks before the stream at 0.15-0.25 short delta,
  for the model mid, and are all still open when it starts (no trigger holds).
  Expiries are chosen so that some time stops fall inside the stream.
- Each session opens with a burst that quotes every leg, highest |delta| first
  (so a short leg is requoted before its long leg after a gap). A small set of
  legs that between them cover every position (mostly short legs) is quoted
  every ~100 s, so that no position goes 120 s (stale_after) without a row; the
  other rows are spread over the session, more near the open and close, each
  leg's rows evenly spaced with jitter, legs held by more positions more often.
  With too few --updates for that pace, staleness episodes appear (reported).
- With --days 1 the time stops that "fall inside the stream" fall on its only
  day, so they fire at the first evaluation.

After writing, the script replays the rows with a cheap vectorised model of the
rules (mid marks, fills at the mark, first match wins: loss, delta, time,
profit; no evaluation while a leg's quote predates the session or the mid
debit is outside [0, width], as rules.machine holds) and prints how many
positions can hit, and do hit, each exit type. It exits 1 when a stop type or
a PRIMARY profit target never fires. The model delta stands in for the local
one with --no-delta.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import date
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
for _path in (str(ROOT), str(HERE)):  # the project's rules package; gen/ beside this script
    if _path not in sys.path:
        sys.path.insert(0, _path)

from gen.check import self_check  # noqa: E402
from gen.market import make_underlyings, price_history, trading_days  # noqa: E402
from gen.positions import make_positions, reread_positions, write_positions  # noqa: E402
from gen.report import print_report  # noqa: E402
from gen.stream import contract_table, write_ticks  # noqa: E402


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, required=True, help="output directory")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--positions", type=int, default=1000)
    ap.add_argument("--underlyings", type=int, default=50)
    ap.add_argument("--updates", type=int, default=1_000_000, help="leg-quote rows in all")
    ap.add_argument("--days", type=int, default=5, help="consecutive trading days")
    ap.add_argument(
        "--start",
        type=date.fromisoformat,
        default=date(2027, 3, 1),
        help="first session (a Monday; weekends are skipped)",
    )
    ap.add_argument("--no-delta", action="store_true", help="leave the delta column empty")
    ap.add_argument(
        "--ts-precision",
        choices=["ms", "us", "ns"],
        default="ms",
        help="timestamps' fraction: milliseconds (default), or micro- or nanoseconds",
    )
    args = ap.parse_args(argv)
    if min(args.positions, args.underlyings, args.updates, args.days) < 1:
        ap.error("--positions, --underlyings, --updates and --days must be >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    began = time.perf_counter()
    rng = np.random.default_rng(args.seed)
    days = trading_days(args.start, args.days)
    und = make_underlyings(rng, args.underlyings, args.days)
    hist = price_history(rng, und, days[0])
    made, contracts = make_positions(rng, args.positions, und, days, hist)
    con = contract_table(contracts, made, und)
    args.out.mkdir(parents=True, exist_ok=True)
    positions_path, ticks_path = args.out / "positions.toml", args.out / "ticks.csv"
    write_positions(positions_path, made)
    n_read = reread_positions(positions_path)
    stream = write_ticks(
        ticks_path, rng, days, args.updates, args.no_delta, und, con, args.ts_precision
    )
    written = time.perf_counter() - began
    summary, good = self_check(made, stream, days)
    paths = (positions_path, ticks_path)
    print_report(n_read, made, und, con, days, stream, paths, summary)
    print(f"time: {written:.1f} s to write, {time.perf_counter() - began:.1f} s in all")
    if not good:
        print("FAILED: some exit type never happens in this stream", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
