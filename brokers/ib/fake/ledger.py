"""The fake gateway's ledger (``fake-gateway --ledger FILE``): what IB saw, one JSON line
per order received and per execution sent, appended and flushed as they happen, so a test
or a human can check it against what a client recorded.

Each line is an object with a ``kind``:

- ``connect``, ``disconnect``: an API connection began (its client id accepted) or
  ended: ``connection`` (the gateway's count of its connections, from 1), ``clientId``,
  ``time``;
- ``place``: a new order (a placeOrder of an order id not working): ``orderId``,
  ``clientId``, ``permId``, ``orderRef``, ``action``, ``quantity``, ``limit``,
  ``secType`` and ``legs`` (each ``conId``, ``ratio``, ``action``), ``connection``
  (which sent it), ``time``;
- ``modify``: a placeOrder of an order id already working (a new limit): ``orderId``,
  ``clientId``, ``permId``, ``orderRef``, ``limit``, ``connection``, ``time``;
- ``cancel``: a cancelOrder of a working order: ``orderId``, ``clientId``, ``permId``,
  ``orderRef``, ``connection``, ``time``;
- ``execution``: an execution (the BAG's, each leg's, or a single option's), written when
  it happens, whether a client is connected or not: ``execId``, ``orderId``,
  ``clientId``, ``permId``, ``orderRef``, ``conId``, ``secType``, ``side`` (BOT | SLD),
  ``shares``, ``price``, ``time``.

Prices are strings (exact decimals), times ISO-8601 in UTC."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from brokers.ib.fake.fills import Row


class Ledger:
    """An append-only JSON-lines file of the gateway's orders and executions."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: IO[str] = path.open("a", encoding="utf-8")

    def connection(self, kind: str, serial: int, client_id: int | None, when: datetime) -> None:
        """An API connection's ``connect`` or ``disconnect``."""
        self._write(kind, connection=serial, clientId=client_id, time=when)

    def place(self, order: Any, when: datetime, connection: int) -> None:
        """A new order (the gateway's ``_Order``), from connection number ``connection``."""
        legs = [{"conId": ins.con_id, "ratio": ratio, "action": action}
                for ins, ratio, action in order.legs]  # fmt: skip
        self._write("place", orderId=order.order_id, clientId=order.client_id,
                    permId=order.perm_id, orderRef=order.ref, action=order.action,
                    quantity=order.quantity, limit=order.limit,
                    secType="BAG" if order.bag else "OPT", legs=legs, connection=connection,
                    time=when)  # fmt: skip

    def modify(self, order: Any, when: datetime, connection: int, kind: str = "modify") -> None:
        """A working order's new limit (``kind`` "cancel": its cancel)."""
        extra = {"limit": order.limit} if kind == "modify" else {}
        self._write(kind, orderId=order.order_id, clientId=order.client_id,
                    permId=order.perm_id, orderRef=order.ref, **extra, connection=connection,
                    time=when)  # fmt: skip

    def executions(self, order: Any, rows: list[Row]) -> None:
        """A fill's executions, as :func:`brokers.ib.fake.fills.execution_rows` made them."""
        for r in rows:
            self._write("execution", execId=r.exec_id, orderId=order.order_id,
                        clientId=order.client_id, permId=order.perm_id, orderRef=order.ref,
                        conId=r.contract[0], secType="BAG" if r.bag else "OPT", side=r.side,
                        shares=r.shares, price=r.price, time=r.time)  # fmt: skip

    def close(self) -> None:
        self._file.close()

    def _write(self, kind: str, **fields: Any) -> None:
        record = {"kind": kind, **fields}
        self._file.write(json.dumps(record, default=_plain) + "\n")
        self._file.flush()


def _plain(value: object) -> str:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    return str(value)  # (Decimal: its exact digits)
