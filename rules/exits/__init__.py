"""The exit rules, one module each, and the one statement of their evaluation order.

:data:`RULES` is the spec's evaluation order: on a tick where several rules
fire, every one is listed in the close's ``triggers`` and the first acts (the
stops close everything; profit targets, last, only when no stop holds). Each
rule's module states its trigger, label, the book fields it reads and its
quiet band (see :mod:`rules.exits.base`); the plan arms every registered rule,
the evaluation asks each in turn, and the quiet path and the screens admit
only ticks inside every rule's band.

Adding a rule is its module, a member of ``ExitReason`` and one line below;
:func:`check` (run by the unit tests, after Django's system checks) names a
registered rule that fails to state what the evaluation and the screens need.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Final

from rules.books import BookPolicy
from rules.exits.base import (
    MANUAL_LABEL,
    REQUESTED,
    Band,
    ExitReason,
    ExitRule,
    Hit,
    RuleClass,
    compose,
    fired,
)
from rules.exits.delta_stop import DeltaStop
from rules.exits.loss_stop import LossStop
from rules.exits.profit_target import ProfitTarget
from rules.exits.time_stop import TimeStop

__all__ = [
    "MANUAL_LABEL",
    "REQUESTED",
    "RULES",
    "Band",
    "ExitReason",
    "ExitRule",
    "Hit",
    "RuleClass",
    "check",
    "compose",
    "fired",
]

RULES: tuple[RuleClass, ...] = (
    LossStop,
    DeltaStop,
    TimeStop,
    ProfitTarget,
)

# reasons whose closes are tranches (not stops): they count towards profit_closed, and
# a stop that holds while one works replaces it
TRANCHES: Final[frozenset[ExitReason]] = frozenset(rule.REASON for rule in RULES if not rule.STOP)


def check(rules: Sequence[object] = RULES) -> list[str]:
    """What is wrong with the registered rules, one message each (empty: nothing)."""
    errors: list[str] = []
    reasons: list[object] = []
    fields = {f.name for f in dataclasses.fields(BookPolicy)}
    for rule in rules:
        name = getattr(rule, "__name__", repr(rule))
        reason = getattr(rule, "REASON", None)
        if not isinstance(reason, ExitReason):
            errors.append(f"{name}: no REASON (an ExitReason)")
        reasons.append(reason)
        if not isinstance(getattr(rule, "STOP", None), bool):
            errors.append(f"{name}: no STOP (whether it closes everything)")
        read = getattr(rule, "BOOK_FIELDS", None)
        if not isinstance(read, tuple) or not read:
            errors.append(f"{name}: no BOOK_FIELDS (the book fields it reads)")
        elif unknown := sorted(set(read) - fields):
            errors.append(f"{name}: BOOK_FIELDS not in BookPolicy: {', '.join(unknown)}")
        for method, what in (("fires", "trigger"), ("band", "quiet band")):
            if not callable(getattr(rule, method, None)):
                errors.append(f"{name}: no {method}() (its {what})")
    for reason in ExitReason:
        if reason in REQUESTED:  # a human's, never a rule's
            if reason in reasons:
                errors.append(f"{reason.value}: a human's reason, registered as a rule's")
            continue
        if reasons.count(reason) != 1:
            errors.append(f"{reason.value}: {reasons.count(reason)} rules registered, not 1")
    return errors
