"""kill -9 at scale: the chaos harness of tests/e2e/test_kill9.py, round after round, to
``--kills`` SIGKILLs in all (200 by default).

    DATABASE_URL=postgresql://... .venv/bin/python benchmarks/chaos.py [--kills 200] [--seed S]

Each round (``--per-round`` kills, 20 by default as in the test: a round's script runs
out of triggers after about 25) runs ``spreadwatch fake-gateway`` and ``spreadwatch
run`` as processes on a database of its own (created on DATABASE_URL's server and
migrated, dropped after unless ``--keep``; without DATABASE_URL a throwaway embedded
PostgreSQL), kills the daemon at aimed phases of an order's life, stops it cleanly and
checks the account (a separate IB client) against the store (see
tests/e2e/chaos/harness.py). Round ``k``'s seed is ``S + k``. It prints each kill, each
round's summary, and the totals: kills, phases hit, refusals, violations; the last line
says ``OK`` or ``FAILED`` (exit code 1).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from service.store import database
from tests.e2e.chaos.harness import Result, Round
from tests.e2e.chaos.watch import PHASES
from tests.support import admin, new_database


def one_round(server: str, seed: int, kills: int, keep: bool) -> Result:
    url = new_database(server)
    asyncio.run(database.upgrade(url))
    try:
        with tempfile.TemporaryDirectory(prefix="chaos-") as work:
            result = Round(url, Path(work), seed, kills, say=print).run()
    finally:
        if not keep:
            name = url.rsplit("/", 1)[1]
            asyncio.run(admin(server, f"DROP DATABASE {name} WITH (FORCE)"))
        else:
            print(f"kept the round's database: {url}")
    print(result.summary(), flush=True)
    return result


def totals(results: list[Result], seed: int, wall: float) -> bool:
    kills = sum(len(r.kills) for r in results)
    phases: Counter[str] = Counter()
    for r in results:
        phases.update(r.phases)
    violations = [v for r in results for v in r.violations]
    print(f"\n== chaos: seed {seed}, {len(results)} rounds, {kills} kills in {wall:.0f} s")
    print("phases hit: " + ", ".join(f"{p} {phases[p]}" for p in PHASES))
    print(f"orders {sum(r.orders for r in results)}, combo executions "
          f"{sum(r.executions for r in results)} at the gateway")  # fmt: skip
    print(f"refusals: {sum(r.refusals for r in results)} closes refused before sending, "
          f"{sum(r.blocked for r in results)} positions left alone (issue 19 item 3); "
          f"{sum(r.attention for r in results)} needing attention at the ends")  # fmt: skip
    for v in violations:
        print(f"VIOLATION: {v}")
    ok = not violations and all(phases[p] for p in PHASES)
    verdict = "OK" if ok else "FAILED"
    missed = [p for p in PHASES if not phases[p]]
    print(f"{verdict}: {kills} kills, {sum(1 for p in PHASES if phases[p])} of {len(PHASES)} "
          f"phases hit{' (missed: ' + ', '.join(missed) + ')' if missed else ''}, "
          f"{len(violations)} violations")  # fmt: skip
    return ok


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kills", type=int, default=200, help="SIGKILLs in all (default 200)")
    ap.add_argument("--per-round", type=int, default=20, help="kills a round (default 20)")
    ap.add_argument("--seed", type=int, help="the first round's seed (default: random)")
    ap.add_argument("--keep", action="store_true", help="keep each round's database")
    args = ap.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(1_000_000)
    print(f"chaos seed {seed} (--seed {seed} runs it again)", flush=True)
    started = time.monotonic()

    def rounds(server: str) -> list[Result]:
        results: list[Result] = []
        while (done := sum(len(r.kills) for r in results)) < args.kills:
            kills = min(args.per_round, args.kills - done)
            print(f"\n-- round {len(results) + 1}: seed {seed + len(results)}, {kills} kills")
            results.append(one_round(server, seed + len(results), kills, args.keep))
        return results

    url = os.environ.get("DATABASE_URL")
    if url:
        results = rounds(database.async_url(url))
    else:
        with tempfile.TemporaryDirectory() as tmp, database.EmbeddedPostgres(Path(tmp)) as db:
            results = rounds(db.url)
    sys.exit(0 if totals(results, seed, time.monotonic() - started) else 1)


if __name__ == "__main__":
    main()
