"""Reading the user's files: books (TOML) and positions (TOML).

Every problem becomes an :class:`InputError` of one line that names the file,
the record and the field. Nothing is returned unless the whole file is good.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal

import tomli
from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field

from rules.books import DEFAULT_BOOKS, BookPolicy
from rules.clock import new_york
from rules.model import InvalidPosition, Leg, Position, Right, Side, Strategy, check_position
from service.errors import InputError, validated


def read_toml(path: Path) -> dict[str, Any]:
    """TOML with floats as Decimal (0.35 stays 0.35)."""
    try:
        with path.open("rb") as f:
            return tomli.load(f, parse_float=Decimal)
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror}") from exc
    except tomli.TOMLDecodeError as exc:
        raise InputError(f"{path}: not valid TOML: {exc}") from exc


def read_section(path: Path, key: str, kind: type, shape: str) -> Any:
    """The one top-level ``key`` of a TOML file, a non-empty ``kind`` (``shape`` for messages)."""
    data = read_toml(path)
    unknown = sorted(set(data) - {key})
    if unknown:
        raise InputError(f"{path}: {unknown[0]}: unknown top-level key (expected {shape})")
    section = data.get(key)
    if not isinstance(section, kind) or not section:
        raise InputError(f"{path}: {key}: no {shape} {'table' if kind is dict else 'record'}")
    return section


def load_books(path: Path | None) -> dict[str, BookPolicy]:
    """The books of ``path`` (``[books.NAME]`` tables), or the built-in ones.

    The file is the whole set: a book it does not name does not exist. Keys a
    book leaves out take the spec's defaults.
    """
    if path is None:
        return dict(DEFAULT_BOOKS)
    tables = read_section(path, "books", dict, "[books.NAME]")
    books: dict[str, BookPolicy] = {}
    for name, table in tables.items():
        books[name] = validated(BookPolicy, table, f"{path}: book '{name}'")
    return books


_OPENED_AT = (
    "a date (2026-12-04: midnight in New York) or a time with its UTC offset "
    "(2026-12-04T10:00:00-05:00)"
)


def expiry_of(value: Any) -> date:
    """An expiry as ``YYYY-MM-DD`` or as IB writes it, ``YYYYMMDD`` (a TOML date too)."""
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    text = str(value).strip() if isinstance(value, (str, int)) else ""
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            return date.fromisoformat(text)
        if re.fullmatch(r"\d{8}", text):
            return date(int(text[:4]), int(text[4:6]), int(text[6:]))
    except ValueError:
        pass  # (the digits of no date: 2027-02-30)
    raise ValueError(f"{value!r}: not an expiry: give it as YYYY-MM-DD or YYYYMMDD (IB's form)")


def opened_at_of(value: Any) -> datetime:
    """When a spread was opened: a time with its UTC offset, or a date (that day's midnight
    at the exchange, New York)."""
    if isinstance(value, datetime):
        when = value
    elif isinstance(value, date):
        return datetime.combine(value, time(0), new_york())
    elif isinstance(value, str) and re.fullmatch(r"\s*\d{4}-\d{2}-\d{2}\s*", value):
        try:
            return datetime.combine(date.fromisoformat(value.strip()), time(0), new_york())
        except ValueError:
            raise ValueError(f"{value!r}: not a date; give {_OPENED_AT}") from None
    else:
        try:
            when = datetime.fromisoformat(str(value).strip())
        except ValueError:
            raise ValueError(f"{value!r}: not a time; give {_OPENED_AT}") from None
    if when.tzinfo is None:
        raise ValueError(f"{value!s}: no timezone; give {_OPENED_AT}")
    return when


class _LegRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")
    right: Literal["P", "C"]
    strike: Decimal
    expiry: Annotated[date, BeforeValidator(expiry_of)]
    side: Literal["short", "long"]


class _PositionRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(min_length=1)
    book: str
    underlying: str = Field(min_length=1)
    strategy: Strategy
    contracts: int
    entry_credit: Decimal
    opened_at: Annotated[AwareDatetime, BeforeValidator(opened_at_of)]
    multiplier: int = 100
    trading_class: str = ""
    legs: list[_LegRecord]


def _position(r: _PositionRecord) -> Position:
    return Position(
        id=r.id,
        book=r.book,
        underlying=r.underlying,
        strategy=r.strategy,
        legs=tuple(
            Leg(Right(leg.right), leg.strike.normalize(), leg.expiry, Side(leg.side))
            for leg in r.legs
        ),
        contracts=r.contracts,
        entry_credit=r.entry_credit,
        opened_at=r.opened_at,
        multiplier=r.multiplier,
        trading_class=r.trading_class.strip().upper(),
    )


def load_positions(path: Path, books: dict[str, BookPolicy]) -> list[Position]:
    """Every ``[[positions]]`` record of ``path``, validated, or an InputError."""
    records = read_section(path, "positions", list, "[[positions]]")
    positions: list[Position] = []
    seen: set[str] = set()
    for n, raw in enumerate(records, start=1):
        rid = raw.get("id") if isinstance(raw, dict) else None
        where = f"{path}: position '{rid}' (record {n})" if rid else f"{path}: record {n}"
        position = position_of(raw, books, where)
        if position.id in seen:
            raise InputError(f"{where}: id: duplicate id '{position.id}'")
        seen.add(position.id)
        positions.append(position)
    return positions


def position_of(raw: Any, books: dict[str, BookPolicy], where: str) -> Position:
    """One position record (a TOML table's shape), validated; errors start with ``where``."""
    record = validated(_PositionRecord, raw, where)
    if record.book not in books:
        known = ", ".join(sorted(books))
        raise InputError(f"{where}: book: unknown book '{record.book}' (known: {known})")
    position = _position(record)
    try:
        check_position(position)
    except InvalidPosition as exc:
        raise InputError(f"{where}: {exc.field}: {exc.message}") from exc
    return position
