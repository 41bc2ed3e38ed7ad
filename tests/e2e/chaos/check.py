"""The chaos round's verdict, once everything has stopped cleanly: the account as a
separate IB client sees it (ib_async on the fake gateway with a client id of its own:
``reqPositions``, ``reqExecutions``) against the store (SQL on its tables), and the
gateway's ledger for orders placed twice. Each violation is one line."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

from ib_async import IB

from tests.e2e.chaos.watch import Db, Ledger

CHECK_CLIENT = 99  # (the daemon's is 17)
Key = tuple[str, str, str, float]  # symbol, expiry (YYYYMMDD), right, strike


async def _at_the_gateway(port: int) -> tuple[dict[Key, int], list[Any]]:
    ib = IB()
    await ib.connectAsync("127.0.0.1", port, clientId=CHECK_CLIENT, timeout=15)
    try:
        held = await ib.reqPositionsAsync()
        fills = await ib.reqExecutionsAsync()
    finally:
        ib.disconnect()
    holdings: dict[Key, int] = {}
    for p in held:
        c = p.contract
        key = (c.symbol, c.lastTradeDateOrContractMonth, c.right, float(c.strike))
        holdings[key] = holdings.get(key, 0) + int(p.position)
    return holdings, fills


def _implied(db: Db) -> tuple[dict[Key, int], dict[Key, int]]:
    """What the store's contracts remaining imply the account holds, by contract; and
    what it held at the start (the contracts opened), to tell a flip."""
    implied: dict[Key, int] = {}
    opened: dict[Key, int] = {}
    for r in db.rows(
        "SELECT p.underlying, p.contracts, p.remaining, l.right, l.strike, l.expiry, l.side "
        "FROM positions p JOIN legs l ON l.position_id = p.id"
    ):
        key = (r["underlying"], f"{r['expiry']:%Y%m%d}", r["right"], float(r["strike"]))
        sign = -1 if r["side"] == "short" else 1
        implied[key] = implied.get(key, 0) + sign * r["remaining"]
        opened[key] = opened.get(key, 0) + sign * r["contracts"]
    return implied, opened


def holdings_violations(db: Db, port: int) -> tuple[list[str], list[Any]]:
    """The gateway's holdings against the store's, contract by contract; nothing flipped
    (a short never long) or beyond what was opened. Also the gateway's executions."""
    holdings, fills = asyncio.run(_at_the_gateway(port))
    implied, opened = _implied(db)
    out = []
    for key in sorted(set(holdings) | set(implied)):
        name = " ".join(str(k) for k in key)
        held, want, start = holdings.get(key, 0), implied.get(key, 0), opened.get(key, 0)
        if held != want:
            out.append(f"holdings: {name}: the gateway holds {held}, the store implies {want}")
        if held * start < 0 or abs(held) > abs(start):
            out.append(f"flipped or grown: {name}: held {held}, opened {start}")
    return out, fills


def execution_violations(db: Db, fills: list[Any], ledger: Ledger) -> list[str]:
    """Every combo execution at the gateway stored once, nothing stored it did not send;
    each order's filled the sum of its fills; the ledger agrees with the gateway's
    reqExecutions; no orderRef placed twice."""
    out = []
    at_ib = {f.execution.execId: (f.execution.orderRef, int(f.execution.shares))
             for f in fills if f.contract.secType == "BAG"}  # fmt: skip
    rows = db.rows("SELECT exec_id, order_ref, quantity FROM fills")
    stored = Counter(r["exec_id"] for r in rows)
    out += [f"execution {x} stored {n} times" for x, n in stored.items() if n > 1]
    out += [f"execution {x} of {ref} at the gateway is not in the store"
            for x, (ref, _) in at_ib.items() if x not in stored]  # fmt: skip
    for r in rows:
        ib = at_ib.get(r["exec_id"])
        if ib is None:
            out.append(f"fill {r['exec_id']} of {r['order_ref']} is not at the gateway")
        elif ib != (r["order_ref"], r["quantity"]):
            out.append(f"fill {r['exec_id']}: stored {r['order_ref']} x{r['quantity']}, "
                       f"the gateway's {ib[0]} x{ib[1]}")  # fmt: skip
    for r in db.rows(
        "SELECT o.order_ref, o.filled, o.quantity, coalesce(sum(f.quantity), 0) AS fills "
        "FROM close_orders o LEFT JOIN fills f USING (order_ref) GROUP BY o.order_ref"
    ):
        if not r["filled"] == r["fills"] <= r["quantity"]:
            out.append(f"order {r['order_ref']}: filled {r['filled']} of {r['quantity']}, its "
                       f"fills {r['fills']}")  # fmt: skip
    ledger.read()
    if {e["execId"] for e in ledger.bag_executions()} != set(at_ib):
        out.append("the ledger's executions are not the gateway's (reqExecutions)")
    out += [f"order_ref {ref} placed {len(p)} times at the gateway"
            for ref, p in ledger.places().items() if len(p) > 1]  # fmt: skip
    return out


def store_violations(db: Db) -> list[str]:
    """Each position's contracts remaining: what was opened less its fills, never below 0."""
    out = []
    for r in db.rows(
        "SELECT p.id, p.contracts, p.remaining, coalesce(sum(f.quantity), 0) AS closed "
        "FROM positions p LEFT JOIN close_orders o ON o.position_id = p.id "
        "LEFT JOIN fills f ON f.order_ref = o.order_ref GROUP BY p.id"
    ):
        if r["remaining"] < 0 or r["remaining"] != r["contracts"] - r["closed"]:
            out.append(f"position {r['id']}: {r['remaining']} remaining of {r['contracts']}, "
                       f"{r['closed']} closed by its fills")  # fmt: skip
    return out
