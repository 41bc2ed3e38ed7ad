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


def _lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


HOOK = "https://hooks.slack.com/services/T0001/B0002/XyZsecretToken42"
DB = "postgresql+asyncpg://trader:s3cr3t-Pw@db.internal:5432/spreadwatch"


def test_secrets_are_masked_in_every_field_of_every_line() -> None:
    stream = io.StringIO()
    logs.configure(stream, json=True, secrets=["s3cr3t-Pw", HOOK, "x"])
    log = logs.get_logger("t")
    log.warning("alert.failed", webhook=HOOK, detail=f"400, message='Bad', url='{HOOK}?a=1'")
    log.error("store.retry", detail=f"cannot connect to {DB}", nested={"url": DB, "n": 1})
    log.info("t.secretive", password="hunter2", api_key="k-123", words=["x marks", "box"])
    log.info("t.anywhere", detail="the password is s3cr3t-Pw.")
    hook, db, keyed, anywhere = _lines(stream)
    text = stream.getvalue()
    for secret in ("XyZsecretToken42", "T0001", "s3cr3t-Pw", "hunter2", "k-123"):
        assert secret not in text
    assert hook["webhook"] == "https://hooks.slack.com/***"  # the host kept: which hook
    assert hook["detail"] == "400, message='Bad', url='https://hooks.slack.com/***'"
    assert (
        db["detail"]
        == "cannot connect to postgresql+asyncpg://trader:***@db.internal:5432/spreadwatch"
    )
    assert db["nested"] == {
        "url": "postgresql+asyncpg://trader:***@db.internal:5432/spreadwatch",
        "n": 1,
    }
    assert (keyed["password"], keyed["api_key"]) == ("***", "***")
    assert keyed["words"] == ["*** marks", "box"]  # a weak secret: only the whole word
    assert anywhere["detail"] == "the password is ***."
    assert (hook["level"], hook["event"]) == ("warning", "alert.failed")


def test_the_settings_name_their_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    from service.settings import load_settings  # noqa: PLC0415

    monkeypatch.setenv("DATABASE_URL", "postgresql://u:p%40ss@h/d")
    monkeypatch.setenv("SPREADWATCH_WEBHOOKS", json.dumps([{"url": HOOK}]))
    assert load_settings().secrets() == ["p%40ss", "p@ss", HOOK]
    monkeypatch.setenv("DATABASE_URL", "postgresql://u@h/d")
    monkeypatch.delenv("SPREADWATCH_WEBHOOKS")
    assert load_settings().secrets() == []


def test_log_level_leaves_out_what_is_below_it() -> None:
    stream = io.StringIO()
    logs.configure(stream, json=True, level="warning")
    log = logs.get_logger("t")
    log.debug("t.debug")
    log.info("t.info")
    log.warning("t.warning")
    log.error("t.error")
    assert [r["event"] for r in _lines(stream)] == ["t.warning", "t.error"]


def test_libraries_logging_goes_through_ours_as_json_lines() -> None:
    import logging  # noqa: PLC0415
    import warnings  # noqa: PLC0415

    stream = io.StringIO()
    logs.configure(stream, json=True)
    logging.getLogger("ib_async.client").error("Peer closed connection.")
    logging.getLogger("ib_async.wrapper").error("Error 201, reqId 7: Order rejected")
    logging.getLogger("ib_async.ib").info("placeOrder: New order Trade(...)")
    logging.getLogger("asyncpg.pool").warning("connection to %s lost", DB)
    logging.getLogger("sqlalchemy.engine.Engine").info("SELECT 1")
    try:
        raise ConnectionResetError("reset by peer")
    except ConnectionResetError:
        logging.getLogger("aiohttp.server").exception("Error handling request")
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        # (pytest swaps showwarning around each test: hand it to logging's again)
        logging.captureWarnings(False)
        logging.captureWarnings(True)
        warnings.warn("something old", DeprecationWarning, stacklevel=1)
    peer, pool, server, warned = _lines(stream)
    assert "error" not in peer  # (no exception: no field for one)
    assert (peer["event"], peer["level"], peer["logger"], peer["detail"]) == (
        "ib.library",
        "error",
        "ib_async.client",
        "Peer closed connection.",
    )
    # asyncpg's line: ours, masked
    assert (pool["event"], pool["level"], pool["library_level"]) == (
        "lib.log",
        "warning",
        "warning",
    )
    assert (
        pool["detail"]
        == "connection to postgresql+asyncpg://trader:***@db.internal:5432/spreadwatch lost"
    )
    assert server["event"] == "lib.log"
    assert server["error"] == "ConnectionResetError: reset by peer"
    assert "exception" not in server  # (its traceback at debug only)
    assert (warned["logger"], warned["level"]) == ("py.warnings", "warning")
    assert "something old" in warned["detail"]


def test_at_debug_a_library_s_info_and_echoes_are_kept_as_debug() -> None:
    import logging  # noqa: PLC0415

    stream = io.StringIO()
    logs.configure(stream, json=True, level="debug")
    logging.getLogger("ib_async.wrapper").error("Error 201, reqId 7: Order rejected")
    logging.getLogger("ib_async.ib").info("placeOrder: New order Trade(...)")
    logging.getLogger("ib_async.client").debug("<<< 1,2,3")  # below a library's info
    try:
        raise ConnectionResetError("reset by peer")
    except ConnectionResetError:
        logging.getLogger("asyncpg.pool").exception("connection lost")
    echo, info, lost = _lines(stream)
    assert (echo["event"], echo["level"], echo["library_level"]) == ("ib.library", "debug", "error")
    assert (info["level"], info["library_level"]) == ("debug", "info")
    assert lost["error"] == "ConnectionResetError: reset by peer"
    assert "Traceback" in lost["exception"]  # (at debug: the whole of it)
    logs.configure(stream, json=True)  # and back at info: the libraries' info not asked
    assert logging.getLogger("ib_async.ib").getEffectiveLevel() == logging.WARNING
