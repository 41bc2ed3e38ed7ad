"""A position record's fields as the user may write them, read without pydantic.

:func:`expiry_of` and :func:`opened_at_of` read the two fields with more than one
form; :func:`plain_record` reads a whole record when each field is plainly what it
should be (the common case, and a start-up's cost: a replay on the built-in books
imports no pydantic). Every other record goes to the pydantic model
(:mod:`service.records`), which converts it or says what is wrong.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any, Final

from rules.clock import new_york
from rules.model import RIGHTS, SIDES, STRATEGIES

MULTIPLIER, TRADING_CLASS = 100, ""  # what a position record that leaves them out has

_OPENED_AT = (
    "a date (2026-12-04: midnight in New York) or a time with its UTC offset "
    "(2026-12-04T10:00:00-05:00)"
)
_ISO_DATE, _IB_DATE = re.compile(r"\d{4}-\d{2}-\d{2}"), re.compile(r"\d{8}")
_DATE_ONLY = re.compile(r"\s*\d{4}-\d{2}-\d{2}\s*")
_EXPIRIES: Final[dict[str, date]] = {}  # an expiry's text -> its date, as read
_EXPIRIES_KEPT: Final = 4096


def expiry_of(value: Any) -> date:
    """An expiry as ``YYYY-MM-DD`` or as IB writes it, ``YYYYMMDD`` (a TOML date too)."""
    if type(value) is str:  # (a file names a few expiries many times: each read once)
        known = _EXPIRIES.get(value)
        if known is None:
            known = _expiry(value)
            if len(_EXPIRIES) < _EXPIRIES_KEPT:
                _EXPIRIES[value] = known
        return known
    return _expiry(value)


def _expiry(value: Any) -> date:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    text = str(value).strip() if isinstance(value, (str, int)) else ""
    try:
        if _ISO_DATE.fullmatch(text):
            return date.fromisoformat(text)
        if _IB_DATE.fullmatch(text):
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
    elif isinstance(value, str) and _DATE_ONLY.fullmatch(value):
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


_POSITION_KEYS = frozenset(
    ("id", "book", "underlying", "strategy", "contracts", "entry_credit", "opened_at", "legs")
)
_OPTIONAL_KEYS = _POSITION_KEYS | {"multiplier", "trading_class"}
_LEG_KEYS = frozenset(("right", "strike", "expiry", "side"))


def _number(value: object) -> bool:
    """A TOML number as a record's Decimal field takes it as it is: a finite Decimal (what
    a float is read as) or an integer."""
    return type(value) is int or (type(value) is Decimal and value.is_finite())


def _plain_leg(leg: object) -> dict[str, Any] | None:
    if type(leg) is not dict or leg.keys() != _LEG_KEYS or not _number(leg["strike"]):
        return None
    right, side = leg["right"], leg["side"]
    if type(right) is not str or type(side) is not str:
        return None
    if right not in RIGHTS or side not in SIDES:
        return None
    try:
        expiry = expiry_of(leg["expiry"])
    except ValueError:
        return None
    return {"right": right, "strike": Decimal(leg["strike"]), "expiry": expiry, "side": side}


def plain_record(raw: object) -> dict[str, Any] | None:
    """A position record's fields when each is plainly what it should be, read without
    pydantic (a start-up's cost); None when it needs the pydantic model (service.records)
    to convert a value or to say what is wrong. Where this reads a record, it reads it as
    the model does (a property test holds them to it)."""
    if type(raw) is not dict or not _POSITION_KEYS <= raw.keys() <= _OPTIONAL_KEYS:
        return None
    trading_class, multiplier = (
        raw.get("trading_class", TRADING_CLASS),
        raw.get("multiplier", MULTIPLIER),
    )
    texts = (raw["id"], raw["book"], raw["underlying"], raw["strategy"], trading_class)
    if any(type(t) is not str for t in texts) or not raw["id"] or not raw["underlying"]:
        return None
    legs = raw["legs"]
    if type(raw["contracts"]) is not int or type(multiplier) is not int:
        return None
    if not _number(raw["entry_credit"]) or raw["strategy"] not in STRATEGIES:
        return None
    if type(legs) is not list:
        return None
    plain_legs = [_plain_leg(leg) for leg in legs]
    try:
        opened_at = opened_at_of(raw["opened_at"])
    except ValueError:
        return None
    if None in plain_legs or opened_at.utcoffset() is None:
        return None
    return {
        **raw,
        "strategy": STRATEGIES[raw["strategy"]],
        "entry_credit": Decimal(raw["entry_credit"]),
        "opened_at": opened_at,
        "multiplier": multiplier,
        "trading_class": trading_class,
        "legs": plain_legs,
    }
