"""A user's TOML file read into Python values, or an :class:`InputError` of one line.

Two readers, one answer. ``toml_rs`` (Rust's ``toml`` crate, Cargo's own reader)
reads a text ~3x faster than ``tomli`` (a 1,000-position file: 7 ms against 24 ms,
the largest piece of a replay's start-up); ``tomli`` (the standard library's
``tomllib`` upstream) is the reference. A text toml_rs refuses goes to tomli,
which decides and, where it refuses too, says what is wrong in the words our
errors have always quoted. The two are held to each other by
tests/unit/test_toml_readers.py: on any text, what toml_rs takes, tomli takes,
to the same values and types. Where they were found to part, the text goes to
tomli alone: a leading byte-order mark (toml_rs skips it; tomli, like TOML
itself, refuses it), and what only TOML 1.1 allows, toml_rs reading as TOML 1.0
(as 1.1 it took an inline table broken between a key and its ``=``, which
tomli rightly refuses).

A file that is not UTF-8 is bad input too: one line, not a traceback.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import toml_rs

from service.errors import InputError

_BOM = "\ufeff"


def read_toml(path: Path, parse_float: Callable[[str], Any] = float) -> dict[str, Any]:
    """The document of ``path`` (``parse_float`` reads its floats' text: ``Decimal`` keeps
    0.35 as 0.35), or an InputError naming the file."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror}") from exc
    try:
        text = raw.decode()
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise InputError(
            f"{path}: not valid TOML: not UTF-8 text (byte 0x{raw[exc.start]:02x}, line {line})"
        ) from None
    return toml_of(text, parse_float, str(path))


def toml_of(text: str, parse_float: Callable[[str], Any], where: str) -> dict[str, Any]:
    """``text`` read by toml_rs where it takes it, else by tomli (the reference), whose
    refusal becomes an InputError starting with ``where``."""
    if not text.startswith(_BOM):
        try:
            return toml_rs.loads(text, parse_float=parse_float, toml_version="1.0.0")
        except toml_rs.TOMLDecodeError:
            pass  # (tomli decides, in its words)
    import tomli  # noqa: PLC0415  (only for a text toml_rs refuses: ~4 ms of a start-up)

    try:
        return tomli.loads(text, parse_float=parse_float)
    except tomli.TOMLDecodeError as exc:
        raise InputError(f"{where}: not valid TOML: {exc}") from exc
