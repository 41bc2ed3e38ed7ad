"""Alerts to webhooks: every close, every stop, every fill, rejections, long disconnects,
stale data.

Off the tick loop by construction: a watcher reads the read model
(:class:`service.app.readmodel.ReadModel`) once a second (closes sent,
rejections, positions gone stale) and the broker's
connection, and puts alerts on a bounded queue; a sender posts them to each
webhook with retries and backoff. The queue never blocks: when it is full the
alert is dropped and counted. A webhook that hangs or fails costs its sender
time, never the loop's, and never stops the service.

Payloads: ``json`` (``{"kind", "text", "fields", "at"}``), ``slack``
(``{"text"}``) and ``discord`` (``{"content"}``).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from rules.exits import TRANCHES
from service.app.readmodel import ReadModel
from service.logs import get_logger
from service.ports import position_of
from service.settings import Webhook

_log = get_logger("spreadwatch.alerts")
QUEUE = 1000  # alerts waiting at most; more are dropped (and counted)
TIMEOUT = 5.0  # seconds per webhook request
ATTEMPTS = 3  # tries per alert per webhook


@dataclass(frozen=True)
class Alert:
    kind: str  # close, stop, fill, rejected, attention, resolved, disconnected, reconnected,
    # stale
    text: str
    fields: dict[str, Any] = field(default_factory=dict)
    at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())


def payload(alert: Alert, fmt: str) -> dict[str, Any]:
    if fmt == "slack":
        return {"text": alert.text}
    if fmt == "discord":
        return {"content": alert.text}
    return {"kind": alert.kind, "text": alert.text, "fields": alert.fields, "at": alert.at}


class Alerter:
    def __init__(
        self,
        webhooks: Sequence[Webhook],
        views: ReadModel,
        *,
        connected: Callable[[], bool] = lambda: True,
        disconnect_after: float = 30.0,
        every: float = 1.0,
    ) -> None:
        self.webhooks = list(webhooks)
        self.views = views
        self.connected = connected
        self.disconnect_after = disconnect_after
        self.every = every
        # one queue and one sender per webhook: a slow webhook delays only itself
        self.queues: list[asyncio.Queue[Alert]] = [asyncio.Queue(QUEUE) for _ in self.webhooks]
        self.dropped = 0
        self.sent = 0
        self.failed = 0
        self._closes = 0
        self._fills = 0
        self._rejections = 0
        self._attention = 0
        self._resolved = 0
        self._stale: set[str] = set()
        self._down_since: float | None = None
        self._down_said = False

    def notify(self, alert: Alert) -> None:
        """Queue ``alert`` for each webhook; never waits (a full queue drops it there)."""
        for queue in self.queues:
            try:
                queue.put_nowait(alert)
            except asyncio.QueueFull:
                self.dropped += 1

    def check(self) -> None:
        """What happened since the last check, as alerts (reads the read model; no I/O)."""
        m = self.views
        new = m.decisions_since(self._closes)
        lines = m.close_lines(self._closes)
        self._closes = m.closes
        for (_, ref, close), line in zip(new, lines, strict=True):
            stop = close.reason not in TRANCHES
            self.notify(
                Alert(
                    "stop" if stop else "close",
                    line,
                    {"position": position_of(ref), "order_ref": ref, "reason": close.reason.value,
                     "contracts": close.contracts, "debit": str(close.debit)},
                )
            )  # fmt: skip
        self._check_fills()
        rejections = m.rejections_since(self._rejections)
        self._rejections = m.rejected
        for ref, reason in rejections:
            self.notify(
                Alert(
                    "rejected", f"REJECTED: {ref}: {reason}", {"order_ref": ref, "reason": reason}
                )
            )
        self._check_attention()
        for pid in sorted(m.stale - self._stale):
            self.notify(Alert("stale", f"STALE DATA: {pid}", {"position": pid}))
        self._stale = set(m.stale)
        now = time.monotonic()
        if self.connected():
            if self._down_said:
                self.notify(Alert("reconnected", "RECONNECTED to the broker"))
            self._down_since, self._down_said = None, False
        elif self._down_since is None:
            self._down_since = now
        elif not self._down_said and now - self._down_since >= self.disconnect_after:
            self._down_said = True
            seconds = round(now - self._down_since)
            self.notify(
                Alert("disconnected", f"DISCONNECTED from the broker for {seconds} s",
                      {"seconds": seconds})
            )  # fmt: skip

    def _check_attention(self) -> None:
        """An ``attention`` alert when an episode begins, a ``resolved`` one when it ends."""
        m = self.views
        attention = m.attention_since(self._attention)
        self._attention = m.attentions
        for pid, why in attention:
            self.notify(
                Alert(
                    "attention",
                    f"NEEDS ATTENTION: {pid}: {why}",
                    {"position": pid, "reason": why},
                )
            )
        resolved = m.resolved_since(self._resolved)
        self._resolved = m.resolutions
        for pid, was, how in resolved:
            self.notify(
                Alert(
                    "resolved",
                    f"RESOLVED: {pid}: {how} (it needed attention: {was})",
                    {"position": pid, "reason": was, "resolution": how},
                )
            )

    def _check_fills(self) -> None:
        """A ``fill`` alert for each fill applied, with the daemon's FILLED line."""
        m = self.views
        fills, lines = m.fills_since(self._fills), m.fill_lines(self._fills)
        self._fills = m.fills
        for fill, line in zip(fills, lines, strict=True):
            self.notify(
                Alert("fill", line,
                      {"position": fill.position.id, "contracts": fill.contracts,
                       "price": str(fill.price),
                       "commission": None if fill.pending else str(fill.commission),
                       "commission_pending": fill.pending,
                       "realised": str(fill.realised), "position_realised": str(fill.total)})
            )  # fmt: skip

    async def run(self, stop: asyncio.Event) -> None:
        """Watch and send until ``stop``; then send what is queued (at most 2 s more)."""
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=TIMEOUT)) as http:
            senders = [
                asyncio.create_task(self._send_all(http, hook, queue))
                for hook, queue in zip(self.webhooks, self.queues, strict=True)
            ]
            try:
                while not stop.is_set():
                    self.check()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), self.every)
                self.check()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.gather(*(q.join() for q in self.queues)), 2.0)
            finally:
                for sender in senders:
                    sender.cancel()
                await asyncio.gather(*senders, return_exceptions=True)

    async def _send_all(
        self, http: aiohttp.ClientSession, hook: Webhook, queue: asyncio.Queue[Alert]
    ) -> None:
        while True:
            alert = await queue.get()
            try:
                await self._send(http, hook, alert)
            finally:
                queue.task_done()

    async def _send(self, http: aiohttp.ClientSession, hook: Webhook, alert: Alert) -> None:
        try:
            async for attempt in AsyncRetrying(
                retry=retry_if_exception_type((aiohttp.ClientError, TimeoutError)),
                stop=stop_after_attempt(ATTEMPTS),
                wait=wait_exponential(multiplier=0.2, max=2.0),
                reraise=True,
            ):
                with attempt:
                    async with http.post(str(hook.url), json=payload(alert, hook.format)) as r:
                        r.raise_for_status()
            self.sent += 1
        except Exception as exc:  # (a webhook never stops the service: said, counted)
            self.failed += 1
            _log.warning("alert.failed", kind=alert.kind, webhook=str(hook.url), detail=f"{exc}")
