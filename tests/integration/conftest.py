"""The IB adapter's tests (``test_ib_*``): ib_async logs no error a test does not expect."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def no_ib_async_error(
    request: pytest.FixtureRequest, caplog: pytest.LogCaptureFixture
) -> Iterator[None]:
    """In the IB adapter's tests, ib_async logged no error: whatever the fake gateway sent,
    it decoded, and the adapter asked nothing IB refused, but what the test expects, named
    by its ``ib_errors`` mark (regular expressions: the errors a test provokes to hold the
    adapter's handling of them)."""
    if not request.module.__name__.rpartition(".")[2].startswith("test_ib_"):
        yield
        return
    with caplog.at_level(logging.INFO, logger="ib_async"):
        yield
    mark = request.node.get_closest_marker("ib_errors")
    expected = [re.compile(p) for p in (mark.args if mark is not None else ())]
    records = caplog.get_records("setup") + caplog.get_records("call")  # (not teardown's)
    errors = [
        r.getMessage()
        for r in records
        if r.name.startswith("ib_async") and r.levelno >= logging.ERROR
    ]
    assert [e for e in errors if not any(p.search(e) for p in expected)] == []
