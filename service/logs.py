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
by the composition root (``service.cli.main``), and again with the level and
the secrets once the settings are read; nothing happens at import.

- **Libraries' logging** (the standard ``logging`` of ib_async, asyncpg,
  SQLAlchemy, Alembic, aiohttp, and Python's warnings) goes through the same
  pipeline: ``ib.library`` for ib_async, ``lib.log`` for the others, with the
  library's logger, level and text. A library's info is our debug (ib_async
  logs every order status and execution at info: ours say it once, better), and
  ib_async's echo of an IB error that :mod:`brokers.ib.notices` logs as an event
  of its own is debug too.
- **Secrets are masked in every line** (:class:`Masker`): a URL's password
  (``postgresql://user:***@host/db``), a web URL's path and query (a webhook's
  secret is there: ``https://hooks.slack.com/***``), a field named like a secret,
  and every secret of the settings (:meth:`service.settings.Settings.secrets`)
  wherever it appears.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable, MutableMapping
from typing import Any, Literal, TextIO

import structlog

# Events emitted from more than one module
DATA_STALE = "data.stale"  # a position's quotes (the monitor), or the feed's (IB)
ORDER_REJECTED = "order.rejected"  # not placed (the executor), or the broker's word (events)
EVENT_NAME = re.compile(r"[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*")  # area.event

Level = Literal["debug", "info", "warning", "error"]
LEVELS: dict[str, int] = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}
MASK = "***"
# scheme://user:password@ → the password masked (any scheme: postgresql, amqp, http...)
_USERINFO = re.compile(r"(?P<head>\b[a-z][a-z0-9+.-]*://[^\s:/@]*:)[^\s@/]*@", re.IGNORECASE)
# a web URL's path and query (a webhook's token lives there) → scheme://host/***
_WEB_PATH = re.compile(r"(?P<head>\bhttps?://[^\s/?#]+)[/?#][^\s\"',)\]}]+", re.IGNORECASE)
_SECRET_KEY = re.compile(r"pass(word|wd)?|secret|token|api_?key|authorization", re.IGNORECASE)
# ib_async's lines that repeat what the adapter logs as an event of its own (notices.py:
# IB's errors and warnings; the order events): kept, at debug
_ECHOES = ("Error ", "Warning ", "IBKR API validation warning", "Canceled order")


class Masker:
    """A structlog processor: secrets out of every value of every line."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        words = sorted({s for s in secrets if s}, key=len, reverse=True)
        # a secret is masked where it stands as a whole (a weak password such as "x" must
        # not mask every x of a line)
        self._secrets = (
            re.compile("|".join(rf"(?<![\w]){re.escape(w)}(?![\w])" for w in words))
            if words
            else None
        )

    def mask(self, text: str) -> str:
        if "://" in text:  # (first: a webhook's URL keeps its host)
            text = _USERINFO.sub(rf"\g<head>{MASK}@", text)
            text = _WEB_PATH.sub(rf"\g<head>/{MASK}", text)
        if self._secrets is not None:
            text = self._secrets.sub(MASK, text)
        return text

    def _value(self, key: str, value: Any) -> Any:
        if isinstance(value, str):
            return MASK if value and _SECRET_KEY.search(key) else self.mask(value)
        if isinstance(value, dict):
            return {k: self._value(str(k), v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self._value(key, v) for v in value]
        return value

    def __call__(self, _logger: Any, _method: str, event: MutableMapping[str, Any]) -> Any:
        for key, value in event.items():
            if key not in ("timestamp", "level"):
                event[key] = self._value(key, value)
        return event


class _Writer:
    """Writes each log line to ``stream``, or to whatever ``sys.stderr`` is at the time."""

    def __init__(self, stream: TextIO | None) -> None:
        self._stream = stream

    def msg(self, message: str) -> None:
        stream = sys.stderr if self._stream is None else self._stream
        stream.write(message + "\n")
        stream.flush()

    debug = info = warning = warn = error = critical = exception = fatal = log = msg


def configure(
    stream: TextIO | None = None,
    *,
    json: bool | None = None,
    level: Level = "info",
    secrets: Iterable[str] = (),
) -> None:
    """Log to ``stream`` (stderr), as JSON unless it is a terminal (or as ``json`` says),
    lines below ``level`` left out, ``secrets`` masked; libraries' logging through it."""
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
            structlog.processors.format_exc_info,
            Masker(secrets),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(LEVELS[level]),
        logger_factory=lambda *_: _Writer(stream),
        cache_logger_on_first_use=False,
    )
    _route_libraries(LEVELS[level])


class _Library(logging.Handler):
    """A library's log record as one of our lines (see the module's docstring)."""

    def __init__(self, tracebacks: bool) -> None:
        super().__init__()
        self.tracebacks = tracebacks

    def emit(self, record: logging.LogRecord) -> None:
        try:
            detail = record.getMessage()
            ib = record.name.startswith("ib_async")
            if record.levelno <= logging.INFO or (ib and detail.startswith(_ECHOES)):
                method = "debug"
            else:
                method = "error" if record.levelno >= logging.ERROR else "warning"
            exc = record.exc_info[1] if record.exc_info else None
            extra: dict[str, Any] = {}
            if exc is not None:  # its exception in one line; the traceback at debug only
                extra["error"] = f"{type(exc).__name__}: {exc}"  # (a library's words on
                if self.tracebacks:  # an interrupted connection are no traceback for a human)
                    extra["exc_info"] = record.exc_info
            getattr(get_logger(record.name), method)(
                "ib.library" if ib else "lib.log",
                logger=record.name,
                library_level=record.levelname.lower(),
                detail=detail,
                **extra,
            )
        except Exception:  # a log line must never take the service down
            self.handleError(record)


def _route_libraries(level: int) -> None:
    """Every library's logging (and Python's warnings) through ours: a handler on the root
    logger, records below info dropped (below warning unless our level is debug: a
    library's info is our debug)."""
    root = logging.getLogger()
    root.handlers = [h for h in root.handlers if not isinstance(h, _Library)]
    root.addHandler(_Library(tracebacks=level <= logging.DEBUG))
    root.setLevel(logging.INFO if level <= logging.DEBUG else logging.WARNING)
    for name in ("ib_async", "asyncpg", "sqlalchemy", "alembic", "aiohttp"):
        library = logging.getLogger(name)  # (their own handlers, if any: ours instead)
        library.handlers = []
        library.propagate = True
        library.setLevel(logging.NOTSET)
    # (SQLAlchemy logs each statement at info when info is on: never wanted here)
    logging.getLogger("sqlalchemy").setLevel(logging.WARNING)
    logging.captureWarnings(True)


def get_logger(name: str) -> Any:
    return structlog.get_logger(name)
