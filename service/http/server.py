"""The daemon's small HTTP server: ``/healthz``, ``/readyz``, ``/metrics``, and the status
API (:mod:`service.http.api`: ``/api/positions``, ``/api/positions/{id}``, ``/api/events``).

- ``/healthz``: the loop is alive (its housekeeping ran in the last
  ``heartbeat_max`` seconds). 200 or 503.
- ``/readyz``: ready to trade: the broker is connected, the database answers,
  and no open position's market data is stale. 200 or 503, with each check, and
  each position that needs attention with why (listed, not a failure: the
  others are traded; a restart would not help it). With its role in the trading
  lease (``role``: holder or standby, ``lease_holder``, ``epoch``). A standby
  answers 200 with ``"status": "standby"`` while the database answers (ready to
  take over: nothing to page about), 503 when it does not.
- ``/metrics``: Prometheus text, read from the read model
  (:class:`service.app.readmodel.ReadModel`) at scrape time (nothing is counted
  twice, and the tick path only bumps plain counters):
  updates processed, evaluations, decisions by reason, order events by
  status, fill latency, quote age per position, open positions, contracts
  remaining, reconnects, asyncio tasks alive; ``spreadwatch_role`` and
  ``spreadwatch_lease_epoch`` in either role (a standby serves only those).

It binds to 127.0.0.1 unless configured (``http_host``; the container image
sets its own interface).
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from datetime import datetime

from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    Metric,
    SummaryMetricFamily,
)
from prometheus_client.registry import Collector

from rules.exits import ExitReason
from service.app.distances import PositionView
from service.app.lease import Seat
from service.app.readmodel import ReadModel
from service.http.api import Api
from service.http.page import add_page
from service.ports import PositionDetail

HEARTBEAT_MAX = 5.0  # seconds without a housekeeping round before /healthz fails


class _ViewsCollector(Collector):
    def __init__(self, ops: Ops) -> None:
        self.ops = ops

    def collect(self) -> Iterator[Metric]:
        yield from self.ops.role_metrics()
        m = self.ops.views
        if m is None:  # (a standby: no positions loaded, nothing counted)
            return
        yield CounterMetricFamily(
            "spreadwatch_updates", "leg quote updates evaluated", value=m.updates
        )
        yield CounterMetricFamily(
            "spreadwatch_screened",
            "leg quote updates every holder's screen admitted (kept, not evaluated)",
            value=m.screened,
        )
        yield CounterMetricFamily(
            "spreadwatch_evaluations", "position evaluations", value=m.evaluations
        )
        decisions = CounterMetricFamily(
            "spreadwatch_decisions", "close decisions, by reason", labels=["reason"]
        )
        for reason, n in sorted(m.decided.items()):
            decisions.add_metric([reason], n)
        yield decisions
        orders = CounterMetricFamily(
            "spreadwatch_order_events", "order events from the broker, by status", labels=["status"]
        )
        for status, n in sorted(m.order_statuses.items()):
            orders.add_metric([status], n)
        yield orders
        yield SummaryMetricFamily(
            "spreadwatch_fill_latency_seconds",
            "from an order sent to each of its fills",
            count_value=m.fill_latency_count,
            sum_value=m.fill_latency_sum,
        )
        age = GaugeMetricFamily(
            "spreadwatch_quote_age_seconds",
            "age of each open position's newest leg quote",
            labels=["position"],
        )
        for pid, seconds in sorted(m.staleness(self.ops.now()).items()):
            age.add_metric([pid], seconds)
        yield age
        remaining = m.remaining()
        yield GaugeMetricFamily(
            "spreadwatch_open_positions",
            "positions with contracts remaining",
            value=sum(1 for n in remaining.values() if n),
        )
        yield GaugeMetricFamily(
            "spreadwatch_contracts_remaining",
            "contracts remaining over the open positions",
            value=sum(remaining.values()),
        )
        yield CounterMetricFamily(
            "spreadwatch_reconnects", "broker reconnects", value=self.ops.reconnects()
        )
        yield from self._standing(m)

    def _standing(self, m: ReadModel) -> Iterator[Metric]:
        """What stands now: the positions needing a human, the loop's tasks alive, and each
        open position's gauges (what the status page draws)."""
        yield GaugeMetricFamily(
            "spreadwatch_positions_needing_attention",
            "positions no order goes for until a human looks (quarantined)",
            value=len(m.attention),
        )
        yield GaugeMetricFamily(  # (scraped in the loop's thread: its tasks, each a coroutine)
            "spreadwatch_asyncio_tasks",
            "asyncio tasks alive in the daemon (flat over a long run)",
            value=len(asyncio.all_tasks()),
        )
        yield from position_gauges(m.positions(self.ops.now()))


def position_gauges(views: Sequence[PositionView]) -> Iterator[Metric]:
    """What the status page draws, per open position (label: its id only, a bounded set):
    P&L % of max, the nearest trigger's share of its way left, the largest short |delta|."""
    families = (
        ("spreadwatch_position_pnl_pct_of_max", "P&L at the mark, as a share of max profit"),
        (
            "spreadwatch_position_nearest_trigger_left",
            "the nearest exit trigger's share of its way from entry still to go (<= 0: reached)",
        ),
        ("spreadwatch_position_short_delta", "the largest |delta| of the short legs"),
    )
    gauges = [GaugeMetricFamily(name, text, labels=["position"]) for name, text in families]
    for view in views:
        near = next((t for t in view.triggers if t.reason is view.nearest), None)
        delta = next((t for t in view.triggers if t.reason is ExitReason.DELTA_STOP), None)
        figures = (
            view.pnl_pct,
            None if near is None else near.left,
            None if delta is None else delta.value,
        )
        for gauge, figure in zip(gauges, figures, strict=True):
            if figure is not None:  # (not known: no sample, rather than a made-up 0)
                gauge.add_metric([view.id], float(figure))
    yield from gauges


class Ops:
    """The server. Its figures are the loop's (``views``) while this process trades; a
    standby (``views`` None: see :meth:`attach`) says its role (``seat``) and no more."""

    def __init__(
        self,
        views: ReadModel | None,
        now: Callable[[], datetime],
        *,
        broker_connected: Callable[[], bool],
        database_ok: Callable[[], Awaitable[bool]],
        reconnects: Callable[[], int] = lambda: 0,
        heartbeat_max: float = HEARTBEAT_MAX,
        detail: Callable[[str], Awaitable[PositionDetail]] | None = None,
        token: str | None = None,
        seat: Seat | None = None,
    ) -> None:
        self.now = now
        self.database_ok = database_ok
        self.heartbeat_max = heartbeat_max
        self.seat = seat  # the trading lease's role (None: no lease, this process trades)
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_ViewsCollector(self))
        self._runner: web.AppRunner | None = None
        self.api = Api(views, now, detail)
        self.token = token  # asked of every request but /healthz (None: none asked)
        self.attach(views, broker_connected, reconnects, detail)

    def attach(
        self,
        views: ReadModel | None,
        broker_connected: Callable[[], bool] = lambda: False,
        reconnects: Callable[[], int] = lambda: 0,
        detail: Callable[[str], Awaitable[PositionDetail]] | None = None,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        """Serve the loop of ``views`` (this process trades now; ``now``: its clock, if
        another); None: stand by."""
        self.views = self.api.views = views
        self.api.detail = detail
        if now is not None:
            self.now = self.api.now = now
        self.broker_connected = broker_connected
        self.reconnects = reconnects

    def role_metrics(self) -> Iterator[Metric]:
        """``spreadwatch_role`` (1 for this process's role) and the lease's epoch held."""
        seat = self.seat
        role = "holder" if seat is None else seat.role
        gauge = GaugeMetricFamily(
            "spreadwatch_role", "this process's role: holder (trades) or standby", labels=["role"]
        )
        for name in ("holder", "standby"):
            gauge.add_metric([name], 1.0 if name == role else 0.0)
        yield gauge
        if seat is not None and seat.epoch is not None:
            yield GaugeMetricFamily(
                "spreadwatch_lease_epoch", "the trading lease's epoch held", value=seat.epoch
            )

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        app.router.add_get("/metrics", self._metrics)
        self.api.add_routes(app)
        add_page(app, self.token)
        return app

    async def start(self, host: str, port: int, sock: socket.socket | None = None) -> int:
        """Serve on ``host:port``, or on ``sock`` (bound already); returns the port."""
        self._runner = web.AppRunner(self.app(), access_log=None)
        await self._runner.setup()
        site: web.BaseSite = (
            web.TCPSite(self._runner, host, port)
            if sock is None
            else web.SockSite(self._runner, sock)
        )
        await site.start()
        for address in self._runner.addresses:  # the bound (host, port, ...)
            return int(address[1])
        return port

    async def stop(self) -> None:
        self.api.closing.set()  # the page's streams end: the server stops without waiting
        if self._runner is not None:
            await self._runner.cleanup()

    async def _healthz(self, request: web.Request) -> web.Response:
        beat = self.views.heartbeat if self.views is not None else self._seat_beat()
        age = time.monotonic() - beat
        ok = age < self.heartbeat_max
        return _json({"status": "ok" if ok else "stalled", "heartbeat_age_s": round(age, 3)}, ok)

    def _seat_beat(self) -> float:
        return time.monotonic() if self.seat is None else self.seat.beat

    async def _readyz(self, request: web.Request) -> web.Response:
        database = await self.database_ok()
        seat = {} if self.seat is None else self.seat.body()
        if self.views is None:  # a standby: ready to take over while the database answers
            standing = self.seat is None or self.seat.role == "standby"  # (else: starting)
            ok = database and standing
            status = ("standby" if standing else "starting") if database else "not ready"
            return _json({"status": status, "database": database, **seat}, ok)
        broker = self.broker_connected()
        stale = sorted(self.views.stale)
        attention = sorted(self.views.attention.items())
        ok = broker and database and not stale
        body = {
            "status": "ready" if ok else "not ready",
            "broker_connected": broker,
            "database": database,
            "stale_positions": stale,
            # (said, not a failure: every other position is traded)
            "needs_attention": [{"position": pid, "reason": why} for pid, why in attention],
        }
        return _json({**body, **seat}, ok)

    async def _metrics(self, request: web.Request) -> web.Response:
        return web.Response(
            body=generate_latest(self.registry),
            headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"},
        )


def _json(body: Mapping[str, object], ok: bool) -> web.Response:
    text = json.dumps(body)
    return web.Response(text=text, status=200 if ok else 503, content_type="application/json")
