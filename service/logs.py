"""Structured logs (structlog): JSON lines when not on a terminal, readable on one.

Event names are stable and dotted, ``area.event`` (lower case, words joined by
``_``): ``order.submitted``, ``order.filled``, ``exit.decided``, ``data.stale``,
``daemon.started``, ``ib.connectivity_lost``... The full list, with levels and
fields, is in docs/operations.md (``## Logs``). A name is a literal at its one
call site; a name emitted from several modules is a constant here (IB's codes
have theirs in :data:`brokers.ib.codes.CODES`).

Context is bound with contextvars (``structlog.contextvars.bound_contextvars``)
where the work on one decision or one order begins, so every line logged inside
carries its ``position_id`` and ``order_ref``; never per quote. Configured once,
by the composition root (``service.cli.main``); nothing happens at import.
"""

from __future__ import annotations

import logging
import re
import sys
from typing import Any, TextIO

import structlog

# Events emitted from more than one module
DATA_STALE = "data.stale"  # a position's quotes (the monitor), or the feed's (IB)
ORDER_REJECTED = "order.rejected"  # not placed (the executor), or the broker's word (events)
EVENT_NAME = re.compile(r"[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*")  # area.event


class _Writer:
    """Writes each log line to ``stream``, or to whatever ``sys.stderr`` is at the time."""

    def __init__(self, stream: TextIO | None) -> None:
        self._stream = stream

    def msg(self, message: str) -> None:
        stream = sys.stderr if self._stream is None else self._stream
        stream.write(message + "\n")
        stream.flush()

    debug = info = warning = warn = error = critical = exception = fatal = log = msg


def configure(stream: TextIO | None = None, *, json: bool | None = None) -> None:
    """Log to ``stream`` (stderr), as JSON unless it is a terminal (or as ``json`` says)."""
    target = sys.stderr if stream is None else stream
    as_json = not target.isatty() if json is None else json
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if as_json
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
        logger_factory=lambda *_: _Writer(stream),
        cache_logger_on_first_use=False,
    )
    _bridge("ib_async")


class _Library(logging.Handler):
    """ib_async's own warnings and errors (std logging) as our log lines: without it they
    reach stderr as bare text, beside the one line an error ends with."""

    def emit(self, record: logging.LogRecord) -> None:
        get_logger(record.name).warning(
            "ib.library", logger=record.name, detail=record.getMessage()
        )


def _bridge(name: str) -> None:
    library = logging.getLogger(name)
    library.handlers = [_Library(logging.WARNING)]
    library.propagate = False


def get_logger(name: str) -> Any:
    return structlog.get_logger(name)
