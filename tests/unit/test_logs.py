"""Structured logs: JSON lines off a terminal, readable text on one."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator

import pytest
import structlog

from service import logs


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
    logs.get_logger("t").info("filled", order_ref="P1:0:1", quantity=4)
    (line,) = stream.getvalue().splitlines()
    record = json.loads(line)
    assert (record["event"], record["order_ref"], record["quantity"]) == ("filled", "P1:0:1", 4)
    assert record["level"] == "info"
    assert record["timestamp"].endswith("Z")


def test_on_a_terminal_events_are_readable_text() -> None:
    stream = Terminal()
    logs.configure(stream)
    logs.get_logger("t").warning("rejected", order_ref="P1:0:1", reason="201")
    text = stream.getvalue()
    assert "rejected" in text
    assert "order_ref=P1:0:1" in text
    with pytest.raises(json.JSONDecodeError):
        json.loads(text)
