"""The rules' hot types whose ``__init__`` is written out (``init=False``, so that mypyc
compiles it: rules.model): each takes exactly its fields, in order, with their defaults,
and sets each field to its own argument, by position and by name; what changes an exit
state passes every other field on."""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest

import rules
from rules.books import PRIMARY
from rules.exits.base import ExitReason, Hit
from rules.machine import CloseSent, Filled, FillOutcome, _moved
from rules.model import Leg, Position, Right, Side
from rules.plan import ExitPlan, make_plan
from rules.state import Close, ExitState, Hold, HoldReason, Phase, Working
from tests.factories import vertical

POSITION = dataclasses.replace(vertical("P7", 9, "1.25"), multiplier=10, trading_class="SPXW")
PLAN = make_plan(POSITION, PRIMARY)
CLOSE = Close(3, ExitReason.PROFIT_TARGET, "Profit Target", Decimal("0.5"), 1, Decimal("0.41"),
              Decimal("123.00"), Decimal("0.59"), (ExitReason.PROFIT_TARGET,), True)  # fmt: skip
WORKING = Working(CLOSE, 2)
STATE = ExitState(POSITION, PLAN, Phase.CLOSING, 7, 2, WORKING, True)

# one instance of each, every field a value of its own (and none its default)
SAMPLES: dict[type, Any] = {
    Leg: Leg(Right.CALL, Decimal("450"), date(2027, 4, 16), Side.LONG),
    Position: POSITION,
    Hold: Hold(HoldReason.STALE, "a leg's quote is old"),
    Close: CLOSE,
    Working: WORKING,
    ExitState: STATE,
    Hit: Hit(ExitReason.LOSS_STOP, True, 4, "Loss Stop", 2, Decimal("0.9")),
    CloseSent: CloseSent(CLOSE),
    Filled: Filled(5),
    FillOutcome: FillOutcome(Phase.OPEN, 6, 2, 1, 3, True),
    ExitPlan: ExitPlan(PLAN.exits, True, Decimal(5), timedelta(seconds=61), (0,), (1,)),
}


def written_out() -> set[type]:
    """Every dataclass of the rules whose __init__ is written out."""
    found = set()
    for info in pkgutil.walk_packages(rules.__path__, "rules."):
        module = importlib.import_module(info.name)
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and value.__module__ == module.__name__
                and dataclasses.is_dataclass(value)
                and not value.__dataclass_params__.init  # type: ignore[attr-defined]
            ):
                found.add(value)
    return found


def test_every_written_out_init_has_a_sample() -> None:
    assert written_out() == set(SAMPLES)


@pytest.mark.parametrize("cls", list(SAMPLES), ids=lambda c: c.__name__)
def test_the_init_takes_the_fields_and_gives_the_rest_their_defaults(cls: type) -> None:
    """Asked by calling it: a compiled __init__ shows no signature."""
    sample, fields = SAMPLES[cls], dataclasses.fields(cls)
    every = [getattr(sample, f.name) for f in fields]
    required = [getattr(sample, f.name) for f in fields if f.default is dataclasses.MISSING]
    built = cls(*required)
    for f in fields[len(required) :]:
        assert getattr(built, f.name) == f.default, f.name
    with pytest.raises(TypeError):
        cls(*every, every[-1])  # one argument too many
    if required:
        with pytest.raises(TypeError):
            cls(*required[:-1])  # one too few
    with pytest.raises(TypeError):
        cls(*required, no_such_field=1)


@pytest.mark.parametrize("cls", list(SAMPLES), ids=lambda c: c.__name__)
def test_each_field_is_set_to_its_own_argument(cls: type) -> None:
    sample = SAMPLES[cls]
    values = {f.name: getattr(sample, f.name) for f in dataclasses.fields(cls)}
    for f in dataclasses.fields(cls):  # (so that a field dropped for its default shows)
        assert f.default is dataclasses.MISSING or values[f.name] != f.default, f.name
    for built in (cls(**values), cls(*values.values())):
        for name, value in values.items():
            assert getattr(built, name) is value, name
        assert built == sample
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(sample, next(iter(values)), None)


def test_a_moved_state_keeps_every_other_field() -> None:
    moved = _moved(STATE, Phase.OPEN, None, 1, 0)
    expected = dataclasses.replace(STATE, phase=Phase.OPEN, working=None, remaining=1,
                                   profit_closed=0)  # fmt: skip
    assert moved == expected
    assert moved.manual is True
