"""Around the loop, from the composition root: the HTTP server's socket and server, and
the webhooks' sender. Named from :mod:`service.bootstrap`."""

from __future__ import annotations

import socket
from datetime import UTC, datetime
from typing import TYPE_CHECKING, TextIO

from service.errors import InputError
from service.logs import get_logger

if TYPE_CHECKING:
    from service.alerts.alerter import Alerter
    from service.app.lease import Seat
    from service.bootstrap import App
    from service.http.server import Ops
    from service.ports import Store
    from service.settings import Settings

_log = get_logger("spreadwatch.daemon")


def bind_http(settings: Settings) -> socket.socket | None:
    """The health and metrics server's socket, bound before anything else starts (a port
    in use is said at once, not after the database and the broker): None when off."""
    if not settings.http:
        return None
    host, port = settings.http_host, settings.http_port
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        return socket.create_server((host, port), family=family)
    except OSError as exc:
        why = exc.strerror or str(exc)
        raise InputError(
            f"http_port: cannot listen on {host}:{port}: {why}: stop what uses it, or set "
            "http_port (SPREADWATCH_HTTP_PORT; 0: any free port)"
        ) from exc


async def serve_http(
    settings: Settings,
    store: Store,
    out: TextIO,
    sock: socket.socket | None = None,
    seat: Seat | None = None,
) -> Ops | None:
    """The health and metrics server, when the settings turn it on (on ``sock`` if bound),
    serving no loop yet (a standby's role, ``seat``): :func:`serve_loop` gives it one."""
    if not settings.http:
        return None
    from service.http.server import Ops  # noqa: PLC0415  (aiohttp, prometheus)

    ops = Ops(
        None,
        lambda: datetime.now(UTC),
        broker_connected=lambda: False,
        database_ok=store.ping,
        token=None if settings.http_token is None else settings.http_token.get_secret_value(),
        seat=seat,
    )
    host = settings.http_host
    try:
        port = await ops.start(host, settings.http_port, sock)
    except OSError as exc:
        raise InputError(
            f"http_port: cannot listen on {host}:{settings.http_port}: {exc.strerror}"
        ) from exc
    out.write(f"health and metrics on http://{host}:{port}/ (healthz, readyz, metrics, status)\n")
    _log.info("daemon.http", host=host, port=port)
    return ops


def serve_loop(ops: Ops | None, app: App | None) -> None:
    """The server's figures from ``app``'s loop (this process trades); None: none (it
    stands by again)."""
    if ops is None:
        return
    if app is None:
        ops.attach(None)
        return
    ops.attach(
        app.loop.views,
        app.venue.connected,
        lambda: int(getattr(app.venue, "reconnects", 0)),
        app.store.detail,
        app.clock.now,
    )


def alerter(app: App) -> Alerter | None:
    """The webhooks' sender, when the settings name any."""
    settings = app.settings
    if settings is None or not settings.webhooks:
        return None
    from service.alerts.alerter import Alerter  # noqa: PLC0415  (aiohttp's client)

    return Alerter(
        settings.webhooks,
        app.loop.views,
        connected=app.venue.connected,
        disconnect_after=settings.disconnect_alert_after,
    )
