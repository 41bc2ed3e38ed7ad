"""Book policies: the numbers of the exit rules, per book.

The spec (docs/exit-rules.md) fixes the behaviour; a book only sets the numbers. A policy is a
frozen, validated pydantic model (pydantic is pure validation, no I/O); the
TOML file that holds books is read by the service.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from rules.pricing import RepriceSchedule

Fraction01 = Annotated[Decimal, Field(gt=0, le=1)]


class Repricing(BaseModel):
    """How a close order's limit walks from the decision's mark toward the natural: in
    ``steps`` reprices ``interval`` seconds apart, never more than ``max_slippage`` per
    spread above the decision's mark (None: no cap but the natural)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    steps: int = Field(default=4, ge=1, le=100)
    interval: float = Field(default=15.0, gt=0, le=3600)
    max_slippage: Decimal | None = Field(default=None, ge=0, le=100)


class BookPolicy(BaseModel):
    """The exit rules' numbers for one book. Defaults are the spec's PRIMARY."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    targets: tuple[Fraction01, ...] = (Decimal("0.50"), Decimal("0.75"), Decimal("0.90"))
    fractions: tuple[Fraction01, ...] = (Decimal("0.4"), Decimal("0.4"), Decimal("0.2"))
    scale_basis: Literal["original", "remaining"] = "original"
    scale_min_contracts: int = Field(default=3, ge=1, le=10_000)
    mark: Literal["mid", "natural"] = "mid"
    time_stop_dte: int = Field(default=21, ge=0, le=3650)
    time_stop_fraction: Decimal = Field(default=Decimal("0.5"), ge=0, le=1)
    loss_stop_multiple: Decimal = Field(default=Decimal("1.5"), gt=1, le=100)
    delta_stop: Decimal = Field(default=Decimal("0.30"), gt=0, lt=1)
    stale_after: float = Field(default=120.0, gt=0, le=86_400)
    allow_delayed: bool = False
    reprice: Repricing = Repricing()  # a profit close's walk
    stop_reprice: Repricing = Repricing(interval=5.0)  # a stop's (and a manual close's)

    @model_validator(mode="after")
    def _tranches_are_coherent(self) -> Self:
        if not self.targets:
            raise ValueError("targets: at least one profit target is needed")
        if any(b <= a for a, b in zip(self.targets, self.targets[1:], strict=False)):
            raise ValueError("targets: must be strictly increasing")
        if len(self.fractions) != len(self.targets):
            raise ValueError(
                f"fractions: {len(self.fractions)} fractions for {len(self.targets)} targets"
            )
        if sum(self.fractions) != 1:
            raise ValueError(f"fractions: must sum to 1, they sum to {sum(self.fractions)}")
        if self.scale_min_contracts < len(self.targets):
            raise ValueError(
                f"scale_min_contracts: {self.scale_min_contracts} is fewer than the "
                f"{len(self.targets)} tranches, so a tranche could get no contract"
            )
        return self

    @property
    def stale_after_delta(self) -> timedelta:
        return timedelta(seconds=self.stale_after)

    def schedule(self) -> RepriceSchedule:
        """The book's two walks as the order desk works them."""
        profit, stop = self.reprice, self.stop_reprice
        return RepriceSchedule(
            steps=profit.steps,
            interval=timedelta(seconds=profit.interval),
            stop_interval=timedelta(seconds=stop.interval),
            stop_steps=stop.steps,
            max_slippage=profit.max_slippage,
            stop_max_slippage=stop.max_slippage,
        )


PRIMARY = BookPolicy()
INCOME_POP = BookPolicy(
    targets=(Decimal("0.35"), Decimal("0.60"), Decimal("0.80")),
    time_stop_dte=14,
)
DEFAULT_BOOKS: dict[str, BookPolicy] = {"PRIMARY": PRIMARY, "INCOME_POP": INCOME_POP}
