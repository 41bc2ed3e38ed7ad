"""Structured logs: JSON lines off a terminal, readable text on one."""

from __future__ import annotations

import ast
import asyncio
import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import structlog

from brokers.ib.codes import CODES
from service import logs
from service.orders.desk import OrderDesk
from service.orders.working import WorkingOrders
from service.ports import OrderEvent, OrderStatus
from service.store.memory import InMemoryStore


@pytest.fixture(autouse=True)
def reset() -> Iterator[None]:
    yield
    structlog.reset_defaults()


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_off_a_terminal_each_event_is_one_json_line() -> None:
    stream = io.StringIO()
    logs.configure(stream)
    logs.get_logger("t").info("order.filled", order_ref="P1:0:1", quantity=4)
    (line,) = stream.getvalue().splitlines()
    record = json.loads(line)
    assert (record["event"], record["order_ref"], record["quantity"]) == (
        "order.filled",
        "P1:0:1",
        4,
    )
    assert record["level"] == "info"
    assert record["timestamp"].endswith("Z")


def test_on_a_terminal_events_are_readable_text() -> None:
    stream = Terminal()
    logs.configure(stream)
    logs.get_logger("t").warning("order.rejected", order_ref="P1:0:1", reason="201")
    text = stream.getvalue()
    assert "order.rejected" in text
    assert "order_ref=P1:0:1" in text
    with pytest.raises(json.JSONDecodeError):
        json.loads(text)


LEVELS = {"debug", "info", "warning", "error", "critical", "exception"}
ROOT = Path(__file__).resolve().parents[2]


def _names(arg: ast.expr) -> list[str]:
    """The event names an event argument can be: literals, ``service.logs`` constants
    (either branch of a conditional); IB's codes (``known.event``) are checked apart."""
    if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
        return [arg.value]
    if isinstance(arg, ast.Name):
        value = getattr(logs, arg.id)
        assert isinstance(value, str), arg.id
        return [value]
    if isinstance(arg, ast.IfExp):
        return _names(arg.body) + _names(arg.orelse)
    assert isinstance(arg, ast.Attribute), ast.unparse(arg)
    assert arg.attr == "event", ast.unparse(arg)
    return []


def _emitted() -> list[tuple[str, str]]:
    """Every event name passed to a logger in service/ and brokers/, with where."""
    found = []
    for path in sorted([*ROOT.glob("service/**/*.py"), *ROOT.glob("brokers/**/*.py")]):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call) or not node.args:
                continue
            f = node.func
            logger = (
                isinstance(f, ast.Attribute)
                and f.attr in LEVELS
                and isinstance(f.value, ast.Name)
                and f.value.id.endswith("log")
            ) or (isinstance(f, ast.Name) and f.id == "log")
            if logger:
                where = f"{path.relative_to(ROOT)}:{node.lineno}"
                found += [(name, where) for name in _names(node.args[0])]
    return found


def test_every_event_name_is_dotted_area_event() -> None:
    emitted = _emitted() + [(c.event, "brokers/ib/codes.py") for c in CODES.values()]
    assert len(emitted) > 30  # the scan finds the calls
    bad = [(name, where) for name, where in emitted if not logs.EVENT_NAME.fullmatch(name)]
    assert bad == []
    assert {"order.submitted", "data.stale", "ib.message", "daemon.started"} <= {
        name for name, _ in emitted
    }


def test_an_order_events_lines_carry_its_bound_position_and_order_ref() -> None:
    stream = io.StringIO()
    logs.configure(stream, json=True)
    nothing: Any = None  # (no order is placed or repriced here)
    desk = OrderDesk(InMemoryStore(), WorkingOrders(nothing, nothing), nothing)
    event = OrderEvent(
        "P9:stop:1", OrderStatus.CANCELLED, 0, 1, datetime(2026, 12, 7, 15, tzinfo=UTC)
    )
    asyncio.run(desk.on_event(event))  # an order the store does not know: refused, said
    (record,) = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert (record["event"], record["position_id"], record["order_ref"]) == (
        "order.event_failed",
        "P9",
        "P9:stop:1",
    )
    assert structlog.contextvars.get_contextvars() == {}  # unbound after
