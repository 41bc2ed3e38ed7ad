"""``spreadwatch replay``: the files read, the rows replayed, the summary written.

Its start-up is part of every replay's time (a 100,000-row file replays in about a
tenth of a second), so it imports only what a replay uses: the settings model only
when something could set one of its three settings (:mod:`service.defaults`).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from rules.greeks import Rates
from service import defaults
from service.inputs import load_books, load_positions
from service.replay import Replay, read_ticks, write_summary
from service.replay.rows import batches_of


def _rates_and_books(args: argparse.Namespace) -> tuple[Rates, Path | None]:
    """The rates of local Greeks and the books file: the defaults unless something could
    set them (a settings file, a flag, the environment: then the settings model's)."""
    if defaults.untouched(os.environ, args.config, args.rate, args.dividend):
        return Rates(defaults.RATE, defaults.DIVIDEND), args.books
    from service.settings import load_settings  # noqa: PLC0415

    settings = load_settings(
        args.config, rate=args.rate, dividend=args.dividend, books_file=args.books
    )
    return Rates(settings.rate, settings.dividend), settings.books_file


def replay(args: argparse.Namespace) -> int:
    """The replay (its caller keeps the cyclic collector off: service.cli.main)."""
    rates, books_file = _rates_and_books(args)
    books = load_books(books_file)
    positions = load_positions(args.positions, books)
    replay = Replay(positions, books, rates)
    with read_ticks(args.ticks) as ticks:
        summary = replay.run(batches_of(ticks), sys.stdout, sys.stderr)
    sys.stdout.flush()
    write_summary(summary, replay, sys.stderr)
    return 0
