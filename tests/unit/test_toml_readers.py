"""The TOML reader (service.tomlfile) answers as tomli, the reference, on any text.

toml_rs reads the users' files (3x faster); tomli decides every text toml_rs
refuses. So on any text, ``toml_of`` must give what tomli gives, to the values
and their types, or refuse where tomli refuses, with tomli's words. Held here
on texts of three kinds: documents toml_rs writes from drawn values, documents
assembled from TOML's pieces (good and bad), and the shipped examples with a
character changed, inserted or removed anywhere.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest
import toml_rs
import tomli
from hypothesis import given, settings
from hypothesis import strategies as st

from service.errors import InputError
from service.tomlfile import read_toml, toml_of

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = [(ROOT / "examples" / name).read_text() for name in ("positions.toml", "books.toml")]


def typed(value: object) -> object:
    """A parsed document as comparable text: every value with its type (Decimal's own
    digits, a datetime's offset and tzinfo class)."""
    if isinstance(value, dict):
        return {k: typed(v) for k, v in value.items()}
    if isinstance(value, list):
        return [typed(v) for v in value]
    zone = getattr(value, "tzinfo", None)
    return (type(value).__name__, repr(value), type(zone).__name__, str(zone))


def same_as_tomli(text: str) -> None:
    try:
        expected: object = typed(tomli.loads(text, parse_float=Decimal))
    except tomli.TOMLDecodeError as exc:
        expected = f"f.toml: not valid TOML: {exc}"
    try:
        got: object = typed(toml_of(text, Decimal, "f.toml"))
    except InputError as exc:
        got = str(exc)
    assert got == expected


# values toml_rs can write: keys and strings of any text, numbers, dates and times
_KEYS = st.text(min_size=1, max_size=8)
_SCALARS = st.one_of(
    st.text(max_size=12),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False),
    st.booleans(),
    st.dates(),
    st.datetimes(),
    st.datetimes(timezones=st.timezones()).map(lambda t: t.astimezone(dt.UTC)),
    st.times(),
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_KEYS, inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(_KEYS, _VALUES, max_size=6))
def test_documents_toml_rs_writes_read_as_tomli_reads_them(doc: dict[str, object]) -> None:
    same_as_tomli(toml_rs.dumps(doc))


# TOML's pieces, good and bad: drawn in any order, they make texts of every kind
_PIECES = [
    "a", "b.c", '"q k"', "'lit'", " = ", "=", "1", "-0", "+7", "0x_1", "0xFF", "0o17", "0b1",
    "1_000", "1__0", "01", "3.14", "1.", ".5", "1e3", "6.02E+2_3", "inf", "-nan", "true",
    "false", '"s"', '"\\u00e9"', '"\\e"', '"\\x41"', '"\\q"', "'x'", '"""m\nl"""', "'''r'''",
    '"""a""""', "1979-05-27", "1979-05-27T07:32:00Z", "1979-05-27 07:32:00-07:00",
    "1979-05-27T07:32:00.999999999+01:30", "1979-05-27T07:32", "07:32:00", "07:32", "24:00:00",
    "2026-02-29", "[t]", "[t.u]", "[[arr]]", "[ t ]", "[", "]", "{", "}", "{x = 1}", "{x = 1,}",
    ",", "[1, 2,]", "[\n1,\n]", "# c", "\n", "\r\n", "\r", "\t", " ", "\\", "\ufeff", "\x00",
    "\x7f", "é",
]  # fmt: skip


@settings(max_examples=1500, deadline=None)
@given(st.lists(st.sampled_from(_PIECES), max_size=14))
def test_texts_of_toml_pieces_read_as_tomli_reads_them(pieces: list[str]) -> None:
    same_as_tomli("".join(pieces))


@settings(max_examples=500, deadline=None)
@given(
    st.sampled_from(EXAMPLES),
    st.floats(min_value=0, max_value=1, exclude_max=True),
    st.sampled_from(["", *_PIECES]),
    st.integers(min_value=0, max_value=2),
)
def test_the_examples_edited_anywhere_read_as_tomli_reads_them(
    text: str, where: float, piece: str, removed: int
) -> None:
    at = int(where * len(text))
    same_as_tomli(text[:at] + piece + text[at + removed :])


def test_a_byte_order_mark_is_refused_as_tomli_refuses_it() -> None:
    """The one difference found between them: toml_rs skips a leading BOM."""
    with pytest.raises(InputError, match="not valid TOML"):
        toml_of("\ufeffa = 1", Decimal, "f.toml")


def test_a_file_that_is_not_utf8_is_one_line_naming_the_byte_and_line(tmp_path: Path) -> None:
    path = tmp_path / "positions.toml"
    path.write_bytes(b'a = 1\nb = "caf\xe9"\n')
    with pytest.raises(InputError) as refused:
        read_toml(path, Decimal)
    assert str(refused.value) == f"{path}: not valid TOML: not UTF-8 text (byte 0xe9, line 2)"


def test_floats_reach_parse_float_as_their_text(tmp_path: Path) -> None:
    path = tmp_path / "f.toml"
    path.write_text("credit = 0.440\nbig = 1_000.5\n")
    assert typed(read_toml(path, Decimal)) == typed(
        {"credit": Decimal("0.440"), "big": Decimal("1000.5")}
    )
