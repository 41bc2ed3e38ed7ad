"""The self-check: replay the rows with a cheap vectorised model of the rules, per position.

Mid marks, fills at the mark, first match wins (loss, delta, time, profit); no
evaluation while a leg's quote predates the session or the mid debit is outside
[0, width], as rules.machine holds.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

import numpy as np
from numpy.typing import NDArray

from rules.books import DEFAULT_BOOKS
from rules.model import Position
from rules.plan import make_plan

from .market import DAY_MS, SESSION_MS, Ints
from .positions import Made
from .stream import Stream

TWO_HUNDRED = Decimal(200)  # money in cents, doubled: the mid's units (bid + ask)


@dataclass(slots=True)
class Flat:
    """Every row of the stream in one array per column, with each contract's rows indexed."""

    t: Ints  # as Stream.t
    mid2: Ints
    delta4: Ints  # |delta| * 10_000
    day: Ints
    order: Ints  # row numbers grouped by contract, each contract's in time order
    starts: Ints  # contract c's rows: order[starts[c] : starts[c + 1]]
    day_ord: Ints  # each session's date as an ordinal


def flatten(stream: Stream, days: list[date]) -> Flat:
    t = np.concatenate(stream.t)
    c = np.concatenate(stream.contract)
    mid2 = np.concatenate(stream.mid2)
    delta4 = np.abs(np.concatenate(stream.delta4))
    day = np.concatenate(stream.day)
    order = np.argsort(c, kind="stable")  # rows of each contract, in time order
    starts = np.concatenate([[0], np.cumsum(np.bincount(c, minlength=int(c.max()) + 1))])
    day_ord = np.array([d.toordinal() for d in days])
    return Flat(t, mid2, delta4, day, order, starts, day_ord)


def first(cond: NDArray[np.bool_]) -> int:
    """Index of the first True, or len(cond) when there is none."""
    return int(np.argmax(cond)) if cond.any() else len(cond)


def self_check(made: list[Made], stream: Stream, days: list[date]) -> tuple[list[str], bool]:
    """Replay the rows with a cheap model of the spec's rules, per position."""
    flat = flatten(stream, days)
    can: Counter[str] = Counter()
    did: Counter[str] = Counter()
    stale_positions = stale_gaps = 0
    for m in made:
        gaps = check_one(m, flat, len(days), can, did)
        stale_gaps += gaps
        stale_positions += gaps > 0
    return summary(can, did, stale_positions, stale_gaps)


def check_one(m: Made, flat: Flat, n_days: int, can: Counter[str], did: Counter[str]) -> int:
    """Count what m can hit and what it does hit; return its count of stale stretches."""
    p = m.position
    book = DEFAULT_BOOKS[p.book]
    plan = make_plan(p, book)
    target2 = [int((d * TWO_HUNDRED).to_integral_value(ROUND_FLOOR)) for d in plan.target_debits]
    loss2 = int((plan.loss_debit * TWO_HUNDRED).to_integral_value(ROUND_CEILING))
    delta_min = int((Decimal(str(plan.delta_stop)) * 10_000).to_integral_value(ROUND_CEILING))
    stop_ord = (p.expiry - timedelta(days=plan.time_stop_dte)).toordinal()
    lists = [flat.order[flat.starts[ci] : flat.starts[ci + 1]] for ci in m.contracts_idx]
    ev = np.sort(np.concatenate(lists))
    gaps = stale_stretches(flat, ev, n_days, plan.stale_after / timedelta(milliseconds=1))
    debit2, short_delta, ok = marks(flat, lists, m.signs, ev, p)
    ev, debit2, short_delta = ev[ok], debit2[ok], short_delta[ok]
    loss, delta_hit = debit2 >= loss2, short_delta >= delta_min
    time_hit = flat.day_ord[flat.day[ev]] >= stop_ord
    hits = [debit2 <= x for x in target2]
    for name, cond in (("loss_stop", loss), ("delta_stop", delta_hit)):
        can[name] += bool(cond.any())
    can["time_stop"] += bool(flat.day_ord[0] <= stop_ord <= flat.day_ord[-1])
    for target in book.targets:  # every target of the book, whatever the contracts
        reach = p.entry_credit * (1 - target) * TWO_HUNDRED
        can[f"{p.book} {float(target):.0%}"] += bool(
            np.any(debit2 <= int(reach.to_integral_value(ROUND_FLOOR)))
        )
    count_exits(did, p.book, plan.targets, (loss, delta_hit, time_hit), hits)
    return gaps


def stale_stretches(flat: Flat, ev: Ints, n_days: int, limit: float) -> int:
    """RTH stretches of stale_after (``limit`` ms, 120 s) without a row for any leg."""
    gaps = 0
    for k in range(n_days):
        tk = flat.t[ev[flat.day[ev] == k]] - k * DAY_MS
        gaps += int(np.count_nonzero(np.diff(np.concatenate([[0], tk, [SESSION_MS]])) >= limit))
    return gaps


def marks(
    flat: Flat, lists: list[Ints], signs: list[int], ev: Ints, p: Position
) -> tuple[Ints, Ints, NDArray[np.bool_]]:
    """At each of the position's rows (``ev``): the mid debit x 2 in cents, the highest short
    |delta| x 10_000, and whether rules.machine evaluates there at all.

    It holds while a leg has no quote from today, or while the legs' mids are
    inconsistent (debit outside [0, width]).
    """
    ok = np.ones(len(ev), dtype=bool)
    debit2 = np.zeros(len(ev), dtype=np.int64)
    short_delta = np.zeros(len(ev), dtype=np.int64)
    for rows_j, sign in zip(lists, signs, strict=True):
        at = np.searchsorted(rows_j, ev, side="right") - 1
        latest = rows_j[np.maximum(at, 0)]
        ok &= (at >= 0) & (flat.day[latest] == flat.day[ev])  # no quote from before today
        debit2 += sign * flat.mid2[latest]
        if sign > 0:
            short_delta = np.maximum(short_delta, flat.delta4[latest])
    width = max(abs(a.strike - b.strike) for a, b in zip(p.legs[::2], p.legs[1::2], strict=True))
    ok &= (debit2 >= 0) & (debit2 <= int(width * TWO_HUNDRED))
    return debit2, short_delta, ok


def count_exits(
    did: Counter[str],
    book_name: str,
    targets: tuple[Decimal, ...],
    stops: tuple[NDArray[np.bool_], NDArray[np.bool_], NDArray[np.bool_]],
    hits: list[NDArray[np.bool_]],
) -> None:
    """The first match (stops before targets at one evaluation) and the tranches before it."""
    loss, delta_hit, time_hit = stops
    never = len(loss)
    stop = min(first(loss), first(delta_hit), first(time_hit))
    done = first(hits[-1])  # the last (or only) profit target closes what is left
    end = min(stop, done)
    if end == never:
        did["open at the end"] += 1
    elif stop <= done:  # at one evaluation the stops come before the targets
        did[
            "close "
            + ("loss_stop" if loss[end] else "delta_stop" if delta_hit[end] else "time_stop")
        ] += 1
    else:
        did["close profit_target"] += 1
    at_row: dict[int, int] = {}  # tranches before the end; a gap reports the highest
    for i, cond in enumerate(hits):
        r = first(cond)
        if r < stop and r <= done:
            at_row[r] = i
    for i in at_row.values():
        did[f"{book_name} target {float(targets[i]):.0%}"] += 1


def by_target(counter: Counter[str], fmt: str) -> str:
    """Each book's counts per profit target, ``fmt`` giving the key from (book, target)."""
    return "; ".join(
        f"{name} "
        + " / ".join(f"{float(t):.0%} {counter[fmt.format(name, float(t))]}" for t in b.targets)
        for name, b in DEFAULT_BOOKS.items()
    )


def summary(
    can: Counter[str], did: Counter[str], stale_positions: int, stale_gaps: int
) -> tuple[list[str], bool]:
    """The report's lines, and whether every stop type and PRIMARY target happens."""
    lines = [
        f"can hit (ever, on the rows): loss_stop {can['loss_stop']}, "
        f"delta_stop {can['delta_stop']}, time_stop (its date in the stream) {can['time_stop']}",
        f"can hit profit targets: {by_target(can, '{} {:.0%}')}",
        f"first match, per position: loss_stop {did['close loss_stop']}, "
        f"delta_stop {did['close delta_stop']}, time_stop {did['close time_stop']}, "
        f"profit_target (the last tranche) {did['close profit_target']}, "
        f"still open at the end {did['open at the end']}",
        f"profit exits (a gap counts once, at its highest target): "
        f"{by_target(did, '{} target {:.0%}')}",
        f"staleness: {stale_positions} positions with {stale_gaps} RTH stretches of "
        f">= stale_after without a row",
    ]
    need = [can["loss_stop"], can["delta_stop"], can["time_stop"]]
    need += [did[f"close {r}"] for r in ("loss_stop", "delta_stop", "time_stop")]
    need += [did[f"PRIMARY target {float(t):.0%}"] for t in DEFAULT_BOOKS["PRIMARY"].targets]
    return lines, all(n > 0 for n in need)
