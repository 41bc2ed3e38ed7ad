"""The command line's parser class: argparse's, its help formatted as argparse formats it,
without the import argparse makes to find the terminal's width (shutil, and with it bz2,
lzma and zlib: ~3 ms of every command's start-up, a replay's included)."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any


def _columns() -> int:
    """The terminal's width as ``shutil.get_terminal_size().columns`` reads it: $COLUMNS
    when a positive number, else stdout's terminal, else 80."""
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns > 0:
        return columns
    try:
        return os.get_terminal_size(sys.__stdout__.fileno()).columns or 80  # type: ignore[union-attr]
    except (AttributeError, ValueError, OSError):  # (no stdout, or not a terminal)
        return 80


class Formatter(argparse.HelpFormatter):
    """argparse's help formatter, its width found as argparse finds it but without importing
    shutil (and shutil its compression modules): argparse makes one for every option
    added, and that import was ~3 ms of every command's start-up."""

    def __init__(
        self,
        prog: str,
        indent_increment: int = 2,
        max_help_position: int = 24,
        width: int | None = None,
    ) -> None:
        super().__init__(
            prog, indent_increment, max_help_position, _columns() - 2 if width is None else width
        )


class Parser(argparse.ArgumentParser):
    """argparse's parser with :class:`Formatter`; its subcommands' parsers are of its class
    (``add_subparsers`` makes them so)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", Formatter)
        super().__init__(*args, **kwargs)
