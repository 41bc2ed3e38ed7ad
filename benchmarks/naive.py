"""A naive single-file evaluator of the same exit rules: the yardstick for replay.

No validation of quotes, no staleness, no exchange time, no state machine, no
output but a count: what "fast and wrong" costs on this machine, written lean
(lists, locals), so replay's figure can be read against it:

    python benchmarks/naive.py [--decimal] POSITIONS.toml TICKS.csv

Money (prices, credits, the debit and its fraction of the credit) is float, or with
``--decimal`` Decimal, as replay keeps it: issue 21's targets are against the
Decimal evaluator; the float one is "fast and wrong" itself (deltas are floats in
both, as in replay).
"""

from __future__ import annotations

import sys
import time
import tomllib
from datetime import date
from decimal import Decimal
from typing import Any

TARGETS = {"PRIMARY": ("0.5", "0.75", "0.9"), "INCOME_POP": ("0.35", "0.6", "0.8")}
TIME_STOP = {"PRIMARY": 21, "INCOME_POP": 14}
CREDIT, CONTRACTS, SIDES, MIDS, DELTAS, STAGE, TARGET, STOP_DATE, OPEN = range(9)


def strike_key(text: str) -> str:
    """A strike as legs are keyed, however it is written: "185", "185.0", "185.00"."""
    return format(Decimal(text).normalize(), "f")


Money = Any  # float or Decimal: the class, called on a text to read it


def load(
    path: str, money: Money
) -> tuple[dict[tuple[str, str, str, str], list[tuple[int, int]]], list[list[Any]]]:
    with open(path, "rb") as f:
        positions = tomllib.load(f, parse_float=money)["positions"]
    targets = {book: tuple(money(t) for t in ts) for book, ts in TARGETS.items()}
    legs: dict[tuple[str, str, str, str], list[tuple[int, int]]] = {}
    state = []
    for n, p in enumerate(positions):
        for i, leg in enumerate(p["legs"]):
            key = (p["underlying"], leg["expiry"], leg["right"], strike_key(str(leg["strike"])))
            legs.setdefault(key, []).append((n, i))
        expiry = date.fromisoformat(p["legs"][0]["expiry"])
        opened = date.fromisoformat(p["opened_at"][:10])
        stop = min(TIME_STOP[p["book"]], (expiry - opened).days // 2)
        state.append(
            [
                money(p["entry_credit"]),
                p["contracts"],
                [money(1 if leg["side"] == "short" else -1) for leg in p["legs"]],
                [None] * len(p["legs"]),
                [0.0] * len(p["legs"]),
                0,
                targets[p["book"]],
                str(date.fromordinal(expiry.toordinal() - stop)),
                True,
            ]
        )
    return legs, state


def main(positions_path: str, ticks_path: str, money: Money = float) -> None:
    legs, state = load(positions_path, money)
    half, loss, zero = money("0.5"), money("1.5"), money(0)
    keys: dict[str, str] = {}  # a strike as the CSV writes it -> as legs are keyed
    rows = exits = 0
    started = time.perf_counter()
    with open(ticks_path) as f:
        next(f)
        for line in f:
            rows += 1
            ts, und, exp, right, strike, bid, ask, delta, _spot = line.split(",")
            try:
                key = keys[strike]
            except KeyError:
                key = keys[strike] = strike_key(strike)
            holders = legs.get((und, exp, right, key))
            if holders is None:
                continue
            for n, i in holders:
                s = state[n]
                if not s[OPEN]:
                    continue
                mids = s[MIDS]
                mids[i] = (money(bid) + money(ask)) * half
                if delta:
                    s[DELTAS][i] = float(delta)
                if None in mids:
                    continue
                sides, deltas = s[SIDES], s[DELTAS]
                debit, short_delta = zero, 0.0
                for j in range(len(mids)):
                    debit += sides[j] * mids[j]
                    if sides[j] > 0 and abs(deltas[j]) > short_delta:
                        short_delta = abs(deltas[j])
                credit = s[CREDIT]
                pct = (credit - debit) / credit
                if debit >= loss * credit or short_delta >= 0.30 or ts[:10] >= s[STOP_DATE]:
                    s[OPEN] = False
                    exits += 1
                elif pct >= s[TARGET][s[STAGE]]:
                    s[STAGE] += 1
                    exits += 1
                    if s[STAGE] == 3 or s[CONTRACTS] < 3:
                        s[OPEN] = False
    seconds = time.perf_counter() - started
    print(
        f"naive ({money.__name__}): {rows} rows, {exits} exits in {seconds:.2f}s "
        f"({rows / seconds:,.0f} rows/s)",
        file=sys.stderr,
    )


if __name__ == "__main__":
    args = sys.argv[1:]
    decimal = "--decimal" in args
    paths = [a for a in args if a != "--decimal"]
    main(paths[0], paths[1], Decimal if decimal else float)
