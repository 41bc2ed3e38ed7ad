"""Time ``spreadwatch replay`` end to end on the seeded benchmark streams.

    .venv/bin/python benchmarks/bench_replay.py [--updates 1000000] [--small 100000]
        [--local-updates 100000] [--repeat 3]

Generates the streams into benchmarks/data/ when they are missing (seeded, so
the same bytes every time), then runs the real command in a subprocess, as a
user would: CSV parsing, Decimal money, JSON output. For each stream it prints
rows per second and peak resident memory, beside the naive single-file evaluator
(benchmarks/naive.py) on the same stream in the same run, with Decimal money as
replay has it (the targets' yardstick, as issue 21 sets them) and with float money
(shown too: "fast and wrong"), the ratios, and whether the targets are met:

- broker deltas, millisecond timestamps (--updates rows): >= 2.0x the naive
  Decimal evaluator, peak < 60 MB;
- the same with microsecond timestamps (--ts-precision us): the same targets;
- microsecond timestamps, --small rows (start-up weighs more): >= 1.5x;
- local Greeks (empty delta column, --local-updates rows): >= 80,000 rows/s,
  peak < 80 MB;
- start-up: replay of the sample positions over a ticks file with no rows, as a
  whole process (the interpreter, the imports, the files read): < 0.15 s.

The hot modules run as the install built them: compiled by mypyc where a C
compiler was found (setup.py), else pure Python; the first line says which.
Each figure is the best of --repeat runs, after one run not counted; replay and the
naive evaluators run in turn (replay, naive Decimal, naive float, replay, ...), so that
a drift in the machine's speed (this one's wanders by tens of percent over a minute)
falls on both sides of a ratio alike; wall time includes the interpreter's start-up
and imports. Every command runs as Python runs it by default, caching the bytecode
of the modules it imports (an install's are compiled when it is made): the
environment's PYTHONDONTWRITEBYTECODE is dropped for them, since some machines set
it for every process (this one does; it makes each run compile the uncompiled
modules from source again, ~50 M instructions of replay's start-up).

--instructions also counts, with valgrind's cachegrind where it is installed, the
instructions each process executes on the short stream (replay, and the naive
evaluator both ways) and prints their ratios: a count that does not wander with
the machine's load, though not a time (a process that waits on memory more
executes fewer instructions a second).
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
# the commands' environment: Python's default bytecode caching (the docstring says why)
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def ensure(name: str, updates: int, no_delta: bool, ts_precision: str = "ms") -> Path:
    out = DATA / name
    if not (out / "ticks.csv").exists():
        args = [sys.executable, str(HERE / "generate.py"), "--out", str(out)]
        args += ["--updates", str(updates), "--ts-precision", ts_precision]
        args += ["--no-delta"] if no_delta else []
        subprocess.run(args, check=True, stdout=subprocess.DEVNULL)
    return out


def timed(args: list[str]) -> tuple[float, int, str]:
    """Wall seconds, peak RSS in MB of this one child (wait4), and its output."""
    with tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=err, cwd=ROOT, env=ENV)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        text = err.read()
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed:\n{text}")
    return seconds, usage.ru_maxrss // 1024, text


def best(args: list[str], repeat: int) -> tuple[float, int, str]:
    return side_by_side([args], repeat)[0]


def side_by_side(commands: list[list[str]], repeat: int) -> list[tuple[float, int, str]]:
    """Each command's best of ``repeat`` runs, the commands run in turn (A B C A B C ...),
    so that a drift in the machine's speed (this one's wanders by tens of percent over a
    minute) falls on all of them alike; each run once first, not counted (the bytecode
    cache written, the files in the page cache)."""
    for args in commands:
        timed(args)
    runs: list[list[tuple[float, int, str]]] = [[] for _ in commands]
    for _ in range(repeat):
        for args, kept in zip(commands, runs, strict=True):
            kept.append(timed(args))
    return [min(kept, key=lambda r: r[0]) for kept in runs]


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


def met(ok: bool) -> str:
    return "met" if ok else "NOT MET"


def against_naive(label: str, data: Path, rows: int, ratio: float, repeat: int) -> None:
    """Replay and the naive evaluator on ``data``, side by side: the figures, the ratio and
    whether it is at least ``ratio``, and whether replay's peak stays under 60 MB."""
    files = [str(data / "positions.toml"), str(data / "ticks.csv")]
    naive = [sys.executable, str(HERE / "naive.py"), *files]
    mine, *naives = side_by_side([replay_cmd(data), [*naive, "--decimal"], naive], repeat)
    seconds, peak, err = mine
    report(f"replay, {label}", rows, seconds, peak, err)
    inner = re.search(r"in ([\d.]+)s \(([\d,]+) rows/s\)", err)
    if inner:
        print(f"{'':<34} loop alone: {inner.group(2)} rows/s ({inner.group(1)} s)")
    ratios = {}
    for money, (naive_seconds, naive_peak, _) in zip(("Decimal", "float"), naives, strict=True):
        report(f"naive evaluator ({money}), {label}", rows, naive_seconds, naive_peak, "")
        ratios[money] = naive_seconds / seconds
    times = ratios["Decimal"]
    print(f"{'':<34} replay / naive Decimal: {times:.2f}x (target >= {ratio:g}x: "
          f"{met(times >= ratio)}); replay / naive float: {ratios['float']:.2f}x;"
          f" peak {peak} MB (target < 60 MB: {met(peak < 60)})")  # fmt: skip


def instructions(args: list[str]) -> int | None:
    """The instructions ``args`` executes (cachegrind's "I refs"), or None without
    valgrind. Hash randomisation off, so that two counts of one command agree."""
    tool = ["valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null"]
    env = {**ENV, "PYTHONHASHSEED": "0"}
    try:
        out = subprocess.run(
            [*tool, *args], cwd=ROOT, env=env, capture_output=True, text=True, check=True
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    found = re.search(r"I\s+refs:\s+([\d,]+)", out.stderr)
    return int(found.group(1).replace(",", "")) if found else None


def count_instructions(label: str, data: Path) -> None:
    """Replay's instructions and the naive evaluator's (both ways) on ``data``, and ratios."""
    files = [str(data / "positions.toml"), str(data / "ticks.csv")]
    naive = [sys.executable, str(HERE / "naive.py"), *files]
    mine, decimal, floats = (
        instructions(args) for args in (replay_cmd(data), [*naive, "--decimal"], naive)
    )
    if mine is None or decimal is None or floats is None:
        print(f"instructions, {label}: not counted (valgrind missing, or it failed)")
        return
    print(f"instructions, {label}: replay {mine / 1e9:.3f} G, naive Decimal "
          f"{decimal / 1e9:.3f} G, naive float {floats / 1e9:.3f} G")  # fmt: skip
    print(f"{'':<34} naive Decimal / replay: {decimal / mine:.2f}x; "
          f"naive float / replay: {floats / mine:.2f}x")  # fmt: skip


def start_up(repeat: int) -> None:
    """Replay of the sample positions over a header alone: the whole process's start-up."""
    with tempfile.TemporaryDirectory() as tmp:
        ticks = Path(tmp) / "ticks.csv"
        ticks.write_text((ROOT / "examples" / "ticks.csv").read_text().splitlines()[0] + "\n")
        args = replay_cmd(ROOT / "examples")
        args[-1] = str(ticks)
        seconds, peak, _ = best(args, max(repeat, 5))
    print(f"{'replay start-up (no rows)':<34} {seconds:6.3f} s  peak {peak:>4} MB "
          f"(target < 0.15 s: {met(seconds < 0.15)})")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--updates", type=int, default=1_000_000)
    ap.add_argument("--small", type=int, default=100_000, help="rows of the short stream")
    ap.add_argument("--local-updates", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--instructions", action="store_true", help="count them (valgrind)")
    args = ap.parse_args()
    n, small = args.updates, args.small
    print(f"replay's hot modules: {build_kind()} (SPREADWATCH_PURE=1 runs the .py sources)")
    start_up(args.repeat)
    for label, data, rows, ratio in (
        (f"deltas, ms stamps ({n:,})", ensure(f"deltas-{n}", n, False), n, 2.0),
        (f"deltas, us stamps ({n:,})", ensure(f"deltas-us-{n}", n, False, "us"), n, 2.0),
        (f"deltas, us stamps ({small:,})", ensure(f"deltas-us-{small}", small, False, "us"),
         small, 1.5),
    ):  # fmt: skip
        against_naive(label, data, rows, ratio, args.repeat)
    if args.instructions:
        count_instructions(f"deltas, us stamps ({small:,})", DATA / f"deltas-us-{small}")
    local = ensure(f"local-{args.local_updates}", args.local_updates, no_delta=True)
    seconds, peak, err = best(replay_cmd(local), args.repeat)
    report(f"replay, local Greeks ({args.local_updates:,})", args.local_updates, seconds, peak, err)
    rate = args.local_updates / seconds
    print(f"{'':<34} {rate:,.0f} rows/s (target >= 80,000: {met(rate >= 80_000)}); peak "
          f"{peak} MB (target < 80 MB: {met(peak < 80)})")  # fmt: skip


if __name__ == "__main__":
    main()
