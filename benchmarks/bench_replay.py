"""Time ``spreadwatch replay`` end to end on the seeded benchmark streams.

    .venv/bin/python benchmarks/bench_replay.py [--updates 1000000] [--local-updates 100000]

Generates the streams into benchmarks/data/ when they are missing (seeded, so
the same bytes every time), then runs the real command in a subprocess, as a
user would: CSV parsing, Decimal money, JSON output. Prints rows per second and
peak resident memory for:

- broker deltas in the file (the 1,000,000-row stream),
- local Greeks (empty delta column: BSM IV and delta with vollib per short leg
  per evaluation; a shorter stream, as it is ~10x slower),
- the naive single-file evaluator (benchmarks/naive.py) on the first stream,
  the yardstick replay must at least match.

The hot modules run as the install built them: compiled by mypyc where a C
compiler was found (setup.py), else pure Python; the first line says which.
Each figure is the best of --repeat runs (this machine's timings wander by
~10%); wall time includes the interpreter's start-up and imports.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DATA = HERE / "data"


def ensure(name: str, updates: int, no_delta: bool) -> Path:
    out = DATA / name
    if not (out / "ticks.csv").exists():
        args = [sys.executable, str(HERE / "generate.py"), "--out", str(out)]
        args += ["--updates", str(updates)] + (["--no-delta"] if no_delta else [])
        subprocess.run(args, check=True, stdout=subprocess.DEVNULL)
    return out


def timed(args: list[str]) -> tuple[float, int, str]:
    """Wall seconds, peak RSS in MB of this one child (wait4), and its output."""
    with tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=err, cwd=ROOT)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        text = err.read()
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed:\n{text}")
    return seconds, usage.ru_maxrss // 1024, text


def best(args: list[str], repeat: int) -> tuple[float, int, str]:
    runs = [timed(args) for _ in range(repeat)]
    return min(runs, key=lambda r: r[0])


def replay_cmd(data: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "service.cli",
        "replay",
        "--positions",
        str(data / "positions.toml"),
        "--ticks",
        str(data / "ticks.csv"),
    ]


def report(label: str, rows: int, seconds: float, peak: int, err: str) -> None:
    summary = [line for line in err.splitlines() if line.startswith("replay: exits")]
    print(f"{label:<34} {rows / seconds:>10,.0f} rows/s  {seconds:6.2f} s  peak {peak:>4} MB")
    if summary:
        print(f"{'':<34} {summary[0].removeprefix('replay: ')}")


def build_kind() -> str:
    """ "compiled" or "pure": what the install built (setup.py, service.native)."""
    code = "from service import native; print(native.kind())"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False
    )
    return out.stdout.strip() or "unknown"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--updates", type=int, default=1_000_000)
    ap.add_argument("--local-updates", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    deltas = ensure(f"deltas-{args.updates}", args.updates, no_delta=False)
    local = ensure(f"local-{args.local_updates}", args.local_updates, no_delta=True)

    print(f"replay's hot modules: {build_kind()} (SPREADWATCH_PURE=1 runs the .py sources)")
    seconds_deltas, peak, err = best(replay_cmd(deltas), args.repeat)
    report(f"replay, broker deltas ({args.updates:,})", args.updates, seconds_deltas, peak, err)
    inner = re.search(r"in ([\d.]+)s \(([\d,]+) rows/s\)", err)
    if inner:
        print(f"{'':<34} loop alone: {inner.group(2)} rows/s ({inner.group(1)} s)")

    seconds, peak, err = best(replay_cmd(local), 1)
    report(f"replay, local Greeks ({args.local_updates:,})", args.local_updates, seconds, peak, err)

    naive = [sys.executable, str(HERE / "naive.py")]
    naive += [str(deltas / "positions.toml"), str(deltas / "ticks.csv")]
    seconds, peak, _ = best(naive, args.repeat)
    report(f"naive evaluator ({args.updates:,})", args.updates, seconds, peak, "")
    print(f"replay's speed / the naive evaluator's, end to end: {seconds / seconds_deltas:.2f}")


if __name__ == "__main__":
    main()
