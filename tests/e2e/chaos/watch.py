"""What the chaos harness watches: the database (SQL on the daemon's tables, from a
connection of its own), the fake gateway's ledger as it grows, and which phases of an
order's life a kill hit, read from both once the daemon is dead."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg

from tests.support import plain_url

FINAL = ("filled", "cancelled", "rejected")
# The phases of an order's life a kill may hit, in the order an order lives them
PHASES = (
    "startup",  # killed during start-up (connected, reconciling, before "monitoring")
    "decided",  # after a close decision, before its intent row
    "intent",  # the intent row written, the order not (yet) at the gateway
    "placed",  # the order at the gateway (placeOrder), no fill yet
    "partial",  # between partial fills: some filled at the gateway, not all
    "unstored_fill",  # a fill at the gateway not (yet) in the store
)


class Db:
    """Blocking SQL on the daemon's database, on a loop and a connection of its own."""

    def __init__(self, url: str) -> None:
        self._loop = asyncio.new_event_loop()
        self._conn = self._loop.run_until_complete(asyncpg.connect(plain_url(url)))

    def rows(self, sql: str, *args: object) -> list[asyncpg.Record]:
        return list(self._loop.run_until_complete(self._conn.fetch(sql, *args)))

    def live_orders(self) -> dict[str, asyncpg.Record]:
        live = self.rows(
            "SELECT order_ref, position_id, status, quantity, filled FROM close_orders "
            "WHERE status <> ALL($1::text[])",
            list(FINAL),
        )
        return {r["order_ref"]: r for r in live}

    def exec_ids(self) -> set[str]:
        return {r["exec_id"] for r in self.rows("SELECT exec_id FROM fills")}

    def close(self) -> None:
        self._loop.run_until_complete(self._conn.close())
        self._loop.close()


@dataclass
class Ledger:
    """The fake gateway's ledger (``--ledger``), read as it grows."""

    path: Path
    lines: list[dict[str, Any]] = field(default_factory=list)
    _offset: int = 0

    def read(self) -> list[dict[str, Any]]:
        """The lines written since the last read (whole lines only)."""
        if not self.path.exists():
            return []
        with self.path.open("rb") as f:
            f.seek(self._offset)
            data = f.read()
        end = data.rfind(b"\n") + 1
        self._offset += end
        new = [json.loads(line) for line in data[:end].splitlines() if line]
        self.lines.extend(new)
        return new

    def places(self, upto: int | None = None) -> dict[str, list[dict[str, Any]]]:
        """The orders placed, by orderRef (more than one: placed twice)."""
        out: dict[str, list[dict[str, Any]]] = {}
        for line in self.lines[:upto]:
            if line["kind"] == "place":
                out.setdefault(line["orderRef"], []).append(line)
        return out

    def bag_executions(self, upto: int | None = None) -> list[dict[str, Any]]:
        return [e for e in self.lines[:upto] if e["kind"] == "execution" and e["secType"] == "BAG"]


def filled_at_gateway(executions: Iterable[dict[str, Any]]) -> dict[str, int]:
    """Spreads filled at the gateway, by orderRef."""
    out: dict[str, int] = {}
    for e in executions:
        out[e["orderRef"]] = out.get(e["orderRef"], 0) + int(e["shares"])
    return out


def undecided(log: list[dict[str, Any]]) -> set[str]:
    """Positions whose last word in the daemon's log is a close decision (exit.decided):
    nothing done about it yet, as far as the log says."""
    last: dict[str, str] = {}
    for e in log:
        pid = e.get("position_id")
        if pid is not None:
            last[pid] = e.get("event", "")
    return {pid for pid, event in last.items() if event == "exit.decided"}


def phases_hit(
    db: Db, ledger: Ledger, seen: int, log: list[dict[str, Any]], monitoring: bool
) -> list[str]:
    """The phases a kill hit: the ledger as it was when the kill was sent (its first
    ``seen`` lines), the daemon's log then, and the database now (the daemon is dead:
    what it committed is all there is)."""
    live = db.live_orders()
    places = ledger.places(seen)
    bags = ledger.bag_executions(seen)
    filled = filled_at_gateway(bags)
    hit = [] if monitoring else ["startup"]
    if undecided(log) - {r["position_id"] for r in live.values()}:
        hit.append("decided")
    if set(live) - set(places):
        hit.append("intent")
    if any(ref in places and not filled.get(ref) for ref in live):
        hit.append("placed")
    quantity = {ref: int(p[-1]["quantity"]) for ref, p in places.items()}
    if any(0 < filled.get(ref, 0) < quantity.get(ref, 0) for ref in live):
        hit.append("partial")
    if {e["execId"] for e in bags} - db.exec_ids():
        hit.append("unstored_fill")
    return hit
