"""Structured logs (structlog): JSON lines when not on a terminal, readable on one.

Event names are stable (``close submitted``, ``repriced``, ``filled``,
``cancelled``, ``rejected``, ``reconciled``, ``market closed``, ``started``,
``stopped``); the position id and the order_ref are fields of every order
event. Configured once, by the composition root; nothing happens at import.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, TextIO

import structlog


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


def get_logger(name: str) -> Any:
    return structlog.get_logger(name)
