"""The status API's JSON: each open position's figures and distances (docs/status.md).

Money, prices, deltas and shares are strings of exact decimals ("0.55", not 0.55000001);
ages are seconds (numbers); times ISO-8601 UTC; a figure not known is null. The same
form serves ``/api/positions``, ``spreadwatch status --json`` and the page: one schema,
written once here (``SCHEMA_VERSION`` rises when a field changes meaning or goes).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import json
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import fields, is_dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from aiohttp import web

from service.app.distances import NEAR, FillView, PositionView, TriggerView
from service.app.readmodel import ReadModel
from service.errors import SpreadwatchError
from service.ports import PositionDetail

SCHEMA_VERSION = 1
AUDIT_SHOWN = 100  # the newest audit events a position's detail carries


_SCALARS = frozenset({str, int, float, bool, type(None)})
_NAMES: dict[type, tuple[str, ...]] = {}  # a dataclass's field names, looked up once


def plain(value: Any) -> Any:
    """``value`` in JSON's types: dataclasses by field, Decimals as exact strings."""
    kind = type(value)
    if kind in _SCALARS:  # (most values: first, and by exact type, so an enum is not one)
        return value
    if kind is Decimal:
        return f"{value:f}"
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, (tuple, list)):
        return [plain(v) for v in value]
    if is_dataclass(value) and not isinstance(value, type):
        names = _NAMES.get(kind)
        if names is None:
            names = _NAMES[kind] = tuple(f.name for f in fields(value))
        out = {name: plain(getattr(value, name)) for name in names}
        if isinstance(value, TriggerView):
            out["reached"] = value.reached
        return out
    return value


def position_json(view: PositionView) -> dict[str, Any]:
    out: dict[str, Any] = plain(view)
    return out


def positions_json(
    views: list[PositionView],
    fills: list[FillView],
    at: datetime,
    source: str,
    attention: Mapping[str, str],
) -> dict[str, Any]:
    """The body of ``/api/positions`` (``source``: "daemon", or "database" with no marks):
    the open positions, today's fills (of closed positions too), and every position that
    needs a human (``attention``: those not watched too, such as one of an unknown book)."""
    return {
        "attention": [{"position": pid, "reason": why} for pid, why in sorted(attention.items())],
        "schema": SCHEMA_VERSION,
        "at": at.isoformat(),
        "source": source,
        "positions": [position_json(v) for v in views],
        "fills_today": plain(fills),
        "near": plain(NEAR),
        "realised_today": f"{sum((f.realised for f in fills), Decimal(0)):f}",
    }


class Api:
    """``/api/positions``, ``/api/positions/{id}`` and ``/api/events`` on the read model.

    ``/api/events`` is server-sent events: a ``positions`` event with the body of
    ``/api/positions`` at once, then whenever it has changed, looked at every ``period``
    seconds in this process's memory (never the database; nothing on the tick path),
    and a comment line every ``keepalive`` seconds so proxies keep the stream open. The
    body is made at most once a ``period``, whoever asks: a second client costs nothing
    more, and ``/api/positions`` is at most that old.
    """

    def __init__(
        self,
        views: ReadModel | None,
        now: Callable[[], datetime],
        detail: Callable[[str], Awaitable[PositionDetail]] | None = None,
        *,
        period: float = 1.0,
        keepalive: float = 15.0,
    ) -> None:
        self.views, self.now, self.detail = views, now, detail
        self.period, self.keepalive = period, keepalive
        self._made: tuple[float, str, str] | None = None  # (when, body, body without "at")
        self.closing = asyncio.Event()  # set as the server stops: every stream ends

    def _views(self) -> ReadModel:
        """The read model; a standby (none: it has no positions loaded) answers 503."""
        if self.views is None:
            why = "standby: this process does not trade now; the trading lease's holder does"
            raise web.HTTPServiceUnavailable(
                text=json.dumps({"error": why, "role": "standby"}), content_type="application/json"
            )
        return self.views

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/api/positions", self.positions)
        app.router.add_get("/api/positions/{id}", self.position)
        app.router.add_get("/api/events", self.events)

    def body(self) -> tuple[str, str]:
        """The body of ``/api/positions`` as JSON, and the same without its time (what a
        change is judged on); made at most once a ``period`` (every client shares it)."""
        clock = time.monotonic()
        if self._made is None or clock - self._made[0] >= self.period:
            now = self.now()
            views = self._views()
            body = positions_json(
                views.positions(now), views.fills_today(now), now, "daemon", views.attention
            )
            at = json.dumps(body.pop("at"))
            rest = json.dumps(body)
            self._made = (clock, f'{{"at": {at}, {rest[1:]}', rest)
        return self._made[1], self._made[2]

    async def positions(self, request: web.Request) -> web.Response:
        return web.Response(text=self.body()[0], content_type="application/json")

    async def position(self, request: web.Request) -> web.Response:
        views = self._views()
        pid = request.match_info["id"]
        view = next((v for v in views.positions(self.now()) if v.id == pid), None)
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
        self._views()
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        await response.prepare(request)
        sent, quiet = None, 0.0
        while not self.closing.is_set() and self.views is not None:  # (None: stepped down)
            body, text = self.body()
            if text != sent:
                await response.write(f"event: positions\ndata: {body}\n\n".encode())
                sent, quiet = text, 0.0
            elif quiet >= self.keepalive:
                await response.write(b": keepalive\n\n")
                quiet = 0.0
            with contextlib.suppress(TimeoutError):  # (the period, or the server stopping)
                await asyncio.wait_for(self.closing.wait(), self.period)
            quiet += self.period
        return response
