"""A naive single-file evaluator of the same exit rules: the yardstick for replay.

Floats for money, no validation of quotes, no staleness, no state machine, no
output but counts. It is what "fast and wrong" costs, so replay's figure can be
read against it on the same machine:

    python benchmarks/naive.py POSITIONS.toml TICKS.csv
"""

from __future__ import annotations

import sys
import time
import tomllib
from datetime import date

TARGETS = {"PRIMARY": (0.5, 0.75, 0.9), "INCOME_POP": (0.35, 0.6, 0.8)}
TIME_STOP = {"PRIMARY": 21, "INCOME_POP": 14}


def main(positions_path: str, ticks_path: str) -> None:
    with open(positions_path, "rb") as f:
        positions = tomllib.load(f)["positions"]
    legs: dict[tuple[str, str, str, str], list[tuple[int, int]]] = {}
    state = []
    for n, p in enumerate(positions):
        for i, leg in enumerate(p["legs"]):
            key = (p["underlying"], leg["expiry"], leg["right"], str(leg["strike"]))
            legs.setdefault(key, []).append((n, i))
        expiry = date.fromisoformat(p["legs"][0]["expiry"])
        opened = date.fromisoformat(p["opened_at"][:10])
        stop = min(TIME_STOP[p["book"]], (expiry - opened).days // 2)
        state.append(
            {
                "credit": float(p["entry_credit"]),
                "left": p["contracts"],
                "n": p["contracts"],
                "sides": [1 if leg["side"] == "short" else -1 for leg in p["legs"]],
                "mids": [None] * len(p["legs"]),
                "deltas": [0.0] * len(p["legs"]),
                "stage": 0,
                "targets": TARGETS[p["book"]],
                "stop_date": str(date.fromordinal(expiry.toordinal() - stop)),
            }
        )
    exits = 0
    rows = 0
    started = time.perf_counter()
    with open(ticks_path) as f:
        next(f)
        for line in f:
            rows += 1
            ts, und, exp, right, strike, bid, ask, delta, _spot = line.rstrip("\n").split(",")
            for n, i in legs.get((und, exp, right, strike), ()):
                s = state[n]
                if s["left"] == 0:
                    continue
                s["mids"][i] = (float(bid) + float(ask)) / 2
                s["deltas"][i] = float(delta) if delta else 0.0
                if None in s["mids"]:
                    continue
                debit = sum(side * m for side, m in zip(s["sides"], s["mids"], strict=True))
                pct = (s["credit"] - debit) / s["credit"]
                short_delta = max(
                    abs(d) for side, d in zip(s["sides"], s["deltas"], strict=True) if side > 0
                )
                stop = debit >= 1.5 * s["credit"] or short_delta >= 0.30
                if stop or ts[:10] >= s["stop_date"] or (s["n"] < 3 and pct >= s["targets"][0]):
                    s["left"] = 0
                    exits += 1
                elif s["n"] >= 3 and s["stage"] < 3 and pct >= s["targets"][s["stage"]]:
                    s["stage"] += 1
                    s["left"] = 0 if s["stage"] == 3 else s["left"] - s["n"] * 4 // 10
                    exits += 1
    seconds = time.perf_counter() - started
    print(f"naive: {rows} rows, {exits} exits in {seconds:.2f}s ({rows / seconds:,.0f} rows/s)")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
