"""The status API's JSON: each open position's figures and distances (docs/status.md).

Money, prices, deltas and shares are strings of exact decimals ("0.55", not 0.55000001);
ages are seconds (numbers); times ISO-8601 UTC; a figure not known is null. The same
form serves ``/api/positions``, ``spreadwatch status --json`` and the page: one schema,
written once here (``SCHEMA_VERSION`` rises when a field changes meaning or goes).
"""

from __future__ import annotations

import asyncio
import enum
import json
from collections.abc import Awaitable, Callable
from dataclasses import fields, is_dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from aiohttp import web

from service.app.distances import FillView, PositionView, TriggerView
from service.app.readmodel import ReadModel
from service.errors import SpreadwatchError
from service.ports import PositionDetail

SCHEMA_VERSION = 1
AUDIT_SHOWN = 100  # the newest audit events a position's detail carries


def plain(value: Any) -> Any:
    """``value`` in JSON's types: dataclasses by field, Decimals as exact strings."""
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Decimal):
        return f"{value:f}"
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, TriggerView):
        return {**_fields(value), "reached": value.reached}
    if is_dataclass(value) and not isinstance(value, type):
        return _fields(value)
    if isinstance(value, (tuple, list)):
        return [plain(v) for v in value]
    return value


def _fields(value: Any) -> dict[str, Any]:
    return {f.name: plain(getattr(value, f.name)) for f in fields(value)}


def position_json(view: PositionView) -> dict[str, Any]:
    out: dict[str, Any] = plain(view)
    return out


def positions_json(
    views: list[PositionView], fills: list[FillView], at: datetime, source: str
) -> dict[str, Any]:
    """The body of ``/api/positions`` (``source``: "daemon", or "database" with no marks):
    the open positions, and today's fills (of closed positions too)."""
    return {
        "schema": SCHEMA_VERSION,
        "at": at.isoformat(),
        "source": source,
        "positions": [position_json(v) for v in views],
        "fills_today": plain(fills),
        "realised_today": f"{sum((f.realised for f in fills), Decimal(0)):f}",
    }


class Api:
    """``/api/positions``, ``/api/positions/{id}`` and ``/api/events`` on the read model.

    ``/api/events`` is server-sent events: an ``positions`` event with the body of
    ``/api/positions`` at once, then whenever it has changed, looked at every ``period``
    seconds in this process's memory (never the database; nothing on the tick path),
    and a comment line every ``keepalive`` seconds so proxies keep the stream open.
    """

    def __init__(
        self,
        views: ReadModel,
        now: Callable[[], datetime],
        detail: Callable[[str], Awaitable[PositionDetail]] | None = None,
        *,
        period: float = 1.0,
        keepalive: float = 15.0,
    ) -> None:
        self.views, self.now, self.detail = views, now, detail
        self.period, self.keepalive = period, keepalive

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/api/positions", self.positions)
        app.router.add_get("/api/positions/{id}", self.position)
        app.router.add_get("/api/events", self.events)

    def body(self) -> dict[str, Any]:
        now = self.now()
        views = self.views
        return positions_json(views.positions(now), views.fills_today(now), now, "daemon")

    async def positions(self, request: web.Request) -> web.Response:
        return web.json_response(self.body())

    async def position(self, request: web.Request) -> web.Response:
        pid = request.match_info["id"]
        view = next((v for v in self.views.positions(self.now()) if v.id == pid), None)
        events: list[Any] = []
        if self.detail is not None:
            try:
                events = plain((await self.detail(pid)).events[-AUDIT_SHOWN:])
            except SpreadwatchError:  # not in the store
                events = []
        if view is None and not events:
            return web.json_response({"error": f"no position {pid}"}, status=404)
        body = {"schema": SCHEMA_VERSION, "position": None if view is None else plain(view)}
        return web.json_response({**body, "events": events})

    async def events(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        await response.prepare(request)
        sent, quiet = None, 0.0
        while True:
            body = self.body()
            text = json.dumps({k: v for k, v in body.items() if k != "at"})
            if text != sent:
                await response.write(f"event: positions\ndata: {json.dumps(body)}\n\n".encode())
                sent, quiet = text, 0.0
            elif quiet >= self.keepalive:
                await response.write(b": keepalive\n\n")
                quiet = 0.0
            await asyncio.sleep(self.period)
            quiet += self.period
