"""The pydantic reading of the user's files' records: what converts a value a record
gives in another form, and says, on one line, what is wrong with one.

:func:`service.fields.plain_record` reads a record that is plainly right without these (a replay
on the built-in books imports no pydantic), and gives every other record to them;
``tests/unit/test_plain_records.py`` holds the two readings to the same positions.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, TypeAdapter

from rules.books import BookPolicy
from rules.model import Strategy
from service.fields import MULTIPLIER, TRADING_CLASS, expiry_of, opened_at_of

BOOK: TypeAdapter[BookPolicy] = TypeAdapter(BookPolicy)  # a [books.NAME] table


class LegRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")
    right: Literal["P", "C"]
    strike: Decimal
    expiry: Annotated[date, BeforeValidator(expiry_of)]
    side: Literal["short", "long"]


class PositionRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(min_length=1)
    book: str
    underlying: str = Field(min_length=1)
    strategy: Strategy
    contracts: int
    entry_credit: Decimal
    opened_at: Annotated[AwareDatetime, BeforeValidator(opened_at_of)]
    multiplier: int = MULTIPLIER
    trading_class: str = TRADING_CLASS
    legs: list[LegRecord]
