"""Execution times as IB writes them, read right on a host in any time zone: the adapter
against the fake gateway over TCP on 127.0.0.1."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from brokers.ib.broker import IbBroker
from brokers.ib.fake import FakeGateway
from service.orders.closing import closing_order
from tests.integration.test_ib_adapter import POSITION, Seen, session


@pytest.fixture
def host_in_chicago(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """This process's local time zone is Chicago's (6 hours behind UTC in December)."""
    monkeypatch.setenv("TZ", "America/Chicago")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.parametrize("utc_form", [True, False], ids=["yyyymmdd-hh:mm:ss", "with zone"])
def test_an_execution_s_time_is_its_instant_whatever_the_host_s_zone(
    host_in_chicago: None, utc_form: bool
) -> None:
    """IB writes an execution's time zone-less as "yyyymmdd-hh:mm:ss", which is UTC (live
    accounts), or with its zone's name. Before, ib_async read the zone-less form in the
    host's zone: six hours off here."""

    async def work(broker: IbBroker, gateway: FakeGateway, seen: Seen) -> Any:
        gateway.utc_exec_times = utc_form
        gateway.hold_spreads(POSITION, 10)
        await broker.place(closing_order(POSITION, "P1:stop:1", 4, Decimal("9.99")))
        await seen.until(lambda: any(e.execution is not None for e in seen.events))
        (fill,) = [e for e in seen.events if e.execution is not None]
        return fill.execution, gateway.clock.now()

    execution, now = session(work)
    assert execution.time.utcoffset() is not None
    assert timedelta(0) <= now - execution.time < timedelta(minutes=1), (execution.time, now)
