"""Scripted moves of the fake gateway's market (``fake-gateway --script FILE``): prices
driven through a test's triggers at known times, over the random walk.

The file is TOML, one ``[[moves]]`` table a move::

    [[moves]]
    at = 2026-12-07T10:30:00-05:00   # market time, with its UTC offset
    underlying = "SPY"
    price = 431.50                   # the price set then

    [[moves]]
    after = 45                       # or: minutes after the gateway's --start
    underlying = "QQQ"
    percent = -2.5                   # or: moved by this percentage

Each move needs ``underlying`` (one of the market's), a time (``at`` or ``after``, not
both) and what happens (``price`` or ``percent``, not both). At that market time (its
first step at or after it) the underlying jumps there, and its random walk goes on from
the new price; the options' quotes follow. A bad file is refused in one line that names
the file, the move and the field."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Self

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from brokers.sim.market import SimMarket
from service.errors import InputError, validated
from service.inputs import read_section
from service.logs import get_logger

_log = get_logger("spreadwatch.fake_gateway")


@dataclass(frozen=True)
class ScriptedMove:
    """At ``at``, ``underlying``'s price set to ``price``, or moved by ``percent``."""

    at: datetime
    underlying: str
    price: Decimal | None = None
    percent: Decimal | None = None


class _MoveRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")
    underlying: str = Field(min_length=1)
    at: AwareDatetime | None = None
    after: Decimal | None = Field(default=None, ge=0)
    price: Decimal | None = Field(default=None, gt=0)
    percent: Decimal | None = Field(default=None, gt=-100)

    @model_validator(mode="after")
    def _one_time_one_change(self) -> Self:
        if (self.at is None) == (self.after is None):
            raise ValueError("at: give a time (at) or minutes after the start (after), one")
        if (self.price is None) == (self.percent is None):
            raise ValueError("price: give a price or a percent move, one")
        return self


def load_script(path: Path, start: datetime, underlyings: list[str]) -> list[ScriptedMove]:
    """The moves of ``path`` in time order (``after``: from ``start``), or an InputError."""
    moves: list[ScriptedMove] = []
    for n, raw in enumerate(read_section(path, "moves", list, "[[moves]]"), start=1):
        where = f"{path}: move {n}"
        r = validated(_MoveRecord, raw, where)
        if r.underlying not in underlyings:
            known = ", ".join(sorted(underlyings))
            raise InputError(f"{where}: underlying: '{r.underlying}' is not in the fake "
                             f"gateway's market ({known})")  # fmt: skip
        at = r.at if r.at is not None else start + timedelta(minutes=float(r.after or 0))
        moves.append(ScriptedMove(at, r.underlying, r.price, r.percent))
    return sorted(moves, key=lambda m: m.at)


class Script:
    """The moves still to play, played on the market as its clock passes them."""

    def __init__(self, moves: list[ScriptedMove]) -> None:
        self.moves = sorted(moves, key=lambda m: m.at)
        self.played = 0

    def play(self, market: SimMarket, now: datetime) -> None:
        """Every move due by ``now`` (before the market steps to it)."""
        while self.played < len(self.moves) and self.moves[self.played].at <= now:
            m = self.moves[self.played]
            self.played += 1
            if m.price is not None:
                market.shift(m.underlying, to=float(m.price))
            else:
                market.shift(m.underlying, by=float(m.percent or 0) / 100)
            _log.info("fake_gateway.scripted", underlying=m.underlying, at=m.at.isoformat(),
                      price=None if m.price is None else str(m.price),
                      percent=None if m.percent is None else str(m.percent),
                      spot=round(market.spot(m.underlying), 2))  # fmt: skip
