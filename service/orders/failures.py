"""What the order path can meet, by kind: the failures it says and survives.

Each is caught by name where it can happen; anything else is a bug and is let
through. The adapters translate their libraries' errors into the tree of
:mod:`service.errors` at their edge (the store does for SQLAlchemy's and
asyncpg's); the few plain ones a broker library still raises are named here
beside it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from service.errors import (
    BrokerRefused,
    BrokerUnavailable,
    StoreRefused,
    StoreUnavailable,
)
from service.logs import get_logger

_log = get_logger("spreadwatch.orders")

# a broker call: refused (a contract it cannot qualify, an order done: BrokerRefused; a
# malformed or unknown order: ValueError, LookupError) or not there (a socket's OSError,
# a timeout)
BROKER_FAILURES: tuple[type[Exception], ...] = (
    BrokerRefused,
    BrokerUnavailable,
    OSError,
    TimeoutError,
    ValueError,
    LookupError,
)
# a store call: refused (a row it will not take, an unknown order: ValueError) or not
# there (the database or its connection lost)
STORE_FAILURES: tuple[type[Exception], ...] = (
    StoreRefused,
    StoreUnavailable,
    OSError,
    TimeoutError,
    ValueError,
)
ORDER_FAILURES = BROKER_FAILURES + STORE_FAILURES


def transient(exc: BaseException) -> bool:
    """A lost or refused database connection (worth another try), not a refusal."""
    return isinstance(exc, StoreUnavailable | OSError | asyncio.TimeoutError)


def said(exc: BaseException) -> str:
    """``exc`` on one line, its kind first."""
    return f"{type(exc).__name__}: {exc}"


class StoreOutage:
    """The database away, said once per outage (``store.unavailable``, an error) and its
    end once (``store.available``), however many writes fail meanwhile: an outage of a
    few seconds printed thousands of "close failed" lines."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._since: float | None = None

    @property
    def down(self) -> bool:
        return self._since is not None

    def failed(self, exc: BaseException) -> None:
        if self._since is None:
            self._since = self._clock()
            _log.error("store.unavailable", detail=said(exc))

    def answered(self) -> None:
        if self._since is not None:
            _log.info("store.available", after_s=round(self._clock() - self._since, 1))
            self._since = None
