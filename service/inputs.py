"""Reading the user's files: books (TOML) and positions (TOML).

Every problem becomes an :class:`InputError` of one line that names the file,
the record and the field. Nothing is returned unless the whole file is good.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

from rules.books import DEFAULT_BOOKS, BookPolicy
from rules.model import RIGHTS, SIDES, InvalidPosition, Leg, Position, check_position
from service.errors import InputError, converted, validated
from service.fields import plain_record
from service.tomlfile import read_toml


def read_section(path: Path, key: str, kind: type, shape: str) -> Any:
    """The one top-level ``key`` of a TOML file, a non-empty ``kind`` (``shape`` for messages)."""
    data = read_toml(path, Decimal)  # (0.35 stays 0.35)
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
        books[name] = book_of(table, f"{path}: book '{name}'")
    return books


def book_of(table: object, where: str) -> BookPolicy:
    """A ``[books.NAME]`` table as a policy (its values' types converted, the book's own
    checks run), or an InputError of one line: ``where``, the field, the problem."""
    from service.records import BOOK  # noqa: PLC0415  (pydantic: only for a books file)

    return converted(BOOK.validate_python, table, where)


def _position(r: dict[str, Any]) -> Position:
    """A record's fields (plain_record's, or the model's dump) as the rules' Position."""
    return Position(
        id=r["id"],
        book=r["book"],
        underlying=r["underlying"],
        strategy=r["strategy"],
        legs=tuple(
            Leg(RIGHTS[leg["right"]], leg["strike"].normalize(), leg["expiry"], SIDES[leg["side"]])
            for leg in r["legs"]
        ),
        contracts=r["contracts"],
        entry_credit=r["entry_credit"],
        opened_at=r["opened_at"],
        multiplier=r["multiplier"],
        trading_class=r["trading_class"].strip().upper(),
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
    record = plain_record(raw)
    if record is None:
        from service.records import PositionRecord  # noqa: PLC0415  (pydantic: see there)

        record = validated(PositionRecord, raw, where).model_dump()
    if record["book"] not in books:
        known = ", ".join(sorted(books))
        raise InputError(f"{where}: book: unknown book '{record['book']}' (known: {known})")
    position = _position(record)
    try:
        check_position(position)
    except InvalidPosition as exc:
        raise InputError(f"{where}: {exc.field}: {exc.message}") from exc
    return position
