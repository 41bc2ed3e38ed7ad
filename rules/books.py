"""Book policies: the numbers of the exit rules, per book.

The spec (docs/exit-rules.md) fixes the behaviour; a book only sets the numbers. A
policy is a frozen dataclass that checks itself when built: each field's range (its
``bounds``, stated once beside its default) and the tranches' coherence, each
problem a ``ValueError`` that starts with the field's name. The TOML file that holds
books is read, and its values' types converted, by the service
(:func:`service.inputs.book_of`); nothing here imports a validation library, so a
replay on the built-in books starts without one.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from datetime import timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, ClassVar, Literal

if TYPE_CHECKING:  # (imported where used: a replay never walks an order's limit)
    from rules.pricing import RepriceSchedule

# how a bound reads in a message (pydantic's words, as the rest of a file's errors),
# and its test
_BOUNDS: dict[str, tuple[str, Callable[[Any, Any], bool]]] = {
    "gt": ("greater than", operator.gt),
    "ge": ("greater than or equal to", operator.ge),
    "lt": ("less than", operator.lt),
    "le": ("less than or equal to", operator.le),
}
# a file's table may hold the fields and nothing else (for service.inputs.book_of)
_FILE_TABLE: dict[str, object] = {"extra": "forbid"}


def bounds(**limits: int | float | Decimal) -> dict[str, object]:
    """A field's range (``gt``, ``ge``, ``lt``, ``le``; for a tuple: each of its items'),
    as the field's metadata."""
    return {"bounds": limits}


def check_bounds(obj: object) -> None:
    """ValueError naming the first field of dataclass ``obj`` out of its range."""
    for f in fields(obj):  # type: ignore[arg-type]
        limits = f.metadata.get("bounds")
        if not limits:
            continue
        value = getattr(obj, f.name)
        items = enumerate(value) if isinstance(value, tuple) else ((None, value),)
        for i, item in items:
            if item is None:
                continue  # (an optional field left unset)
            for name, limit in limits.items():
                says, holds = _BOUNDS[name]
                if not holds(item, limit):
                    where = f.name if i is None else f"{f.name}.{i}"
                    raise ValueError(f"{where}: Input should be {says} {limit}")


@dataclass(frozen=True, slots=True)
class Repricing:
    """How a close order's limit walks from the decision's mark toward the natural: in
    ``steps`` reprices ``interval`` seconds apart, never more than ``max_slippage`` per
    spread above the decision's mark (None: no cap but the natural)."""

    __pydantic_config__: ClassVar[dict[str, object]] = _FILE_TABLE

    steps: int = field(default=4, metadata=bounds(ge=1, le=100))
    interval: float = field(default=15.0, metadata=bounds(gt=0, le=3600))
    max_slippage: Decimal | None = field(default=None, metadata=bounds(ge=0, le=100))

    def __post_init__(self) -> None:
        check_bounds(self)


@dataclass(frozen=True, slots=True)
class BookPolicy:
    """The exit rules' numbers for one book. Defaults are the spec's PRIMARY."""

    __pydantic_config__: ClassVar[dict[str, object]] = _FILE_TABLE

    targets: tuple[Decimal, ...] = field(
        default=(Decimal("0.50"), Decimal("0.75"), Decimal("0.90")), metadata=bounds(gt=0, le=1)
    )
    fractions: tuple[Decimal, ...] = field(
        default=(Decimal("0.4"), Decimal("0.4"), Decimal("0.2")), metadata=bounds(gt=0, le=1)
    )
    scale_basis: Literal["original", "remaining"] = "original"
    scale_min_contracts: int = field(default=3, metadata=bounds(ge=1, le=10_000))
    mark: Literal["mid", "natural"] = "mid"
    time_stop_dte: int = field(default=21, metadata=bounds(ge=0, le=3650))
    time_stop_fraction: Decimal = field(default=Decimal("0.5"), metadata=bounds(ge=0, le=1))
    loss_stop_multiple: Decimal = field(default=Decimal("1.5"), metadata=bounds(gt=1, le=100))
    delta_stop: Decimal = field(default=Decimal("0.30"), metadata=bounds(gt=0, lt=1))
    stale_after: float = field(default=120.0, metadata=bounds(gt=0, le=86_400))
    allow_delayed: bool = False
    reprice: Repricing = Repricing()  # a profit close's walk
    stop_reprice: Repricing = Repricing(interval=5.0)  # a stop's (and a manual close's)

    def __post_init__(self) -> None:
        check_bounds(self)
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

    @property
    def stale_after_delta(self) -> timedelta:
        return timedelta(seconds=self.stale_after)

    def schedule(self) -> RepriceSchedule:
        """The book's two walks as the order desk works them."""
        from rules.pricing import RepriceSchedule  # noqa: PLC0415  (its dataclasses: ~2 ms)

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
