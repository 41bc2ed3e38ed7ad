"""The ``spreadwatch`` command line.

Each subcommand wires its parts here and nowhere else. Bad input ends with one
line on stderr and exit code 2; nothing is written to stdout before the input
has been validated.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from service.errors import InputError


def _replay(args: argparse.Namespace) -> int:
    from rules.greeks import Rates  # noqa: PLC0415
    from service.inputs import load_books, load_positions  # noqa: PLC0415
    from service.replay import Replay, read_ticks, write_summary  # noqa: PLC0415
    from service.settings import load_settings  # noqa: PLC0415

    settings = load_settings(
        args.config, rate=args.rate, dividend=args.dividend, books_file=args.books
    )
    books = load_books(settings.books_file)
    positions = load_positions(args.positions, books)
    replay = Replay(positions, books, Rates(settings.rate, settings.dividend))
    with read_ticks(args.ticks) as ticks:
        summary = replay.run(ticks, sys.stdout, sys.stderr)
    sys.stdout.flush()
    write_summary(summary, replay, sys.stderr)
    return 0


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="spreadwatch",
        description="Watch options credit spreads and close them by exit rules.",
    )
    top.add_argument("--config", type=Path, help="settings file (TOML)")
    sub = top.add_subparsers(dest="command", required=True)
    rp = sub.add_parser(
        "replay",
        help="run the exit rules over recorded leg quotes",
        description="Replay recorded leg quotes through the exit rules, filling every close "
        "at the mark. Exits go to stdout as JSON Lines; the human log and a summary to stderr.",
    )
    rp.add_argument("--positions", type=Path, required=True, help="POSITIONS.toml")
    rp.add_argument("--ticks", type=Path, required=True, help="TICKS.csv")
    rp.add_argument("--books", type=Path, help="BOOKS.toml (default: built-in PRIMARY, INCOME_POP)")
    rp.add_argument("--rate", type=float, help="risk-free rate for local Greeks (default 0.04)")
    rp.add_argument("--dividend", type=float, help="dividend yield for local Greeks (default 0)")
    rp.add_argument("--config", type=Path, default=argparse.SUPPRESS, help="settings file (TOML)")
    rp.set_defaults(run=_replay)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        code: int = args.run(args)
    except InputError as exc:
        sys.stderr.write(f"spreadwatch: {exc}\n")
        return exc.exit_code
    except BrokenPipeError:  # e.g. `spreadwatch replay ... | head`
        return 0
    return code


if __name__ == "__main__":
    raise SystemExit(main())
