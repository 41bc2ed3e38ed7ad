"""Errors that reach the user as one line and exit code 2."""

from __future__ import annotations

from pydantic import ValidationError


class InputError(Exception):
    """Bad input: the message names the file, the record and the field, on one line."""

    exit_code = 2


def first_error(exc: ValidationError, prefix: tuple[str | int, ...] = ()) -> tuple[str, str]:
    """(dotted field, message) of a pydantic error's first problem, on one line.

    Model-level validators put the field in front of their message as
    ``"field: message"``; that field is lifted out so every error names one.
    """
    err = exc.errors(include_url=False)[0]
    loc = [*prefix, *err["loc"]]
    msg = str(err["msg"]).removeprefix("Value error, ")
    head, sep, rest = msg.partition(": ")
    if sep and head.isidentifier():
        loc.append(head)
        msg = rest
    field = ".".join(str(p) for p in loc) or "(record)"
    return field, " ".join(msg.split())
