"""The one error tree of spreadwatch, and the one-line form of a validation error.

Every error raised on purpose is a :class:`SpreadwatchError`; adapters translate
their libraries' errors into one of its branches at their edge, so the code
above them decides by kind, never by a driver's or a broker library's class:

- :class:`InputError`: bad input (a file, a record, a field, a setting);
- :class:`StoreRefused`: the store refuses a change (nothing was written);
- :class:`StoreUnavailable`: the store cannot be reached now (try again);
- :class:`BrokerRefused`: the broker refuses (an order, an account);
- :class:`BrokerUnavailable`: the broker cannot be reached now (try again).

Each reaches the user as one line; ``exit_code`` is the process's exit code.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:  # (pydantic: a second to import; the command line imports this first)
    from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound="BaseModel")
T = TypeVar("T")

INTERRUPTED = 130  # the exit code of a command ended by SIGINT (Ctrl-C): the shell's 128 + 2


class SpreadwatchError(Exception):
    """Anything spreadwatch raises on purpose: said on one line, exit code 2."""

    exit_code = 2


class InputError(SpreadwatchError):
    """Bad input: the message names the file, the record and the field, on one line."""


class StoreRefused(SpreadwatchError):
    """A change the store refuses (a duplicate id, an over-fill...): nothing was written."""


class StoreUnavailable(SpreadwatchError):
    """The store cannot be reached now (a lost connection, a server restarting)."""


class NotHolding(SpreadwatchError):
    """This process does not hold the account's trading lease (any more): it writes no
    order and sends none (the database refuses the one it tries: a fencing token)."""


class BrokerRefused(SpreadwatchError):
    """The broker refuses: an order it rejects, an account it is not allowed to trade."""


class BrokerUnavailable(SpreadwatchError):
    """The broker cannot be reached now (a dropped socket, a gateway restarting)."""


class ClientIdInUse(BrokerUnavailable):
    """The broker refuses the connection: another connection holds its client id (IB's
    326), such as a standby's predecessor whose connection is not gone yet."""


def first_error(exc: ValidationError, prefix: tuple[str | int, ...] = ()) -> tuple[str, str]:
    """(dotted field, message) of a pydantic error's first problem, on one line.

    Model-level validators (and a dataclass's own checks) put the field in front of
    their message as ``"field: message"`` or ``"field.2: message"``; that field is
    lifted out so every error names one. A key the table may not hold reads the same
    for a model and a dataclass.
    """
    err = exc.errors(include_url=False)[0]
    loc = [*prefix, *err["loc"]]
    msg = str(err["msg"]).removeprefix("Value error, ")
    if err["type"] == "unexpected_keyword_argument":  # (a dataclass's word for it)
        msg = "Extra inputs are not permitted"
    head, sep, rest = msg.partition(": ")
    parts = head.split(".")
    if sep and parts[0].isidentifier() and all(p.isidentifier() or p.isdigit() for p in parts):
        loc.extend(parts)
        msg = rest
    field = ".".join(str(p) for p in loc) or "(record)"
    return field, " ".join(msg.split())


def validated(model: type[M], raw: object, where: str) -> M:
    """``raw`` (a TOML table's shape) as ``model``, or an InputError of one line: ``where``,
    then the first problem's field and message."""
    return converted(model.model_validate, raw, where)


def converted(validate: Callable[[object], T], raw: object, where: str) -> T:
    """``validate(raw)`` (a pydantic validator), or an InputError of one line as
    :func:`validated`'s."""
    from pydantic import ValidationError  # noqa: PLC0415  (its callers have it loaded)

    try:
        return validate(raw)
    except ValidationError as exc:
        field, msg = first_error(exc)
        raise InputError(f"{where}: {field}: {msg}") from exc
