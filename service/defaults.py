"""The settings replay reads, without the settings model when nothing could change them.

Replay reads three settings: the rate and dividend of local Greeks and the books
file. The settings model (:mod:`service.settings`, pydantic-settings) costs about
60 ms of start-up to import and build, a quarter of replay's. When nothing could
set those three otherwise than by their defaults, they are the defaults, and the
model is not loaded: no settings file (``--config``), no ``--rate`` or
``--dividend``, and no variable of the environment the model reads
(``SPREADWATCH_*`` but those that are no setting, ``DATABASE_URL``; in any case,
as pydantic-settings reads names). Anything else goes through the model, with its
checks and its messages (an unknown ``SPREADWATCH_*`` variable still refuses the
run). The model takes these defaults from here.
"""

from __future__ import annotations

from collections.abc import Mapping

RATE = 0.04  # risk-free rate, annual
DIVIDEND = 0.0  # dividend yield, annual
PREFIX = "SPREADWATCH_"  # the environment variables of the settings model
ALIASES = frozenset({"DATABASE_URL"})  # and those it reads without the prefix
# The variables named SPREADWATCH_* that are not settings (the model never reads them);
# any other SPREADWATCH_* variable that names no setting is an error, not ignored.
NOT_SETTINGS = frozenset(
    {
        "SPREADWATCH_PURE",  # service.native, setup.py: the .py sources, not compiled modules
        "SPREADWATCH_EXPECT_NATIVE",  # the tests: fail unless the hot modules ran compiled
        "SPREADWATCH_EXPECT_IBAPI",  # the tests: fail unless IB's official client installs
        "SPREADWATCH_EXPECT_CHROMIUM",  # the tests: fail unless the system's Chromium is there
        "SPREADWATCH_HTTP_PUBLISH",  # docker compose (.env): the host port of the HTTP server
        "SPREADWATCH_STANDBY_HTTP_PUBLISH",  # docker compose (.env): the standby's
    }
)


def untouched(environ: Mapping[str, str], *given: object) -> bool:
    """True when no setting can differ from its default: none of ``given`` (a settings file,
    --rate, --dividend) is set and ``environ`` holds no variable the model reads."""
    if any(value is not None for value in given):
        return False
    names = {name.upper() for name in environ} - NOT_SETTINGS
    return not any(name.startswith(PREFIX) or name in ALIASES for name in names)
