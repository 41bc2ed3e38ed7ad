"""The adapter's resume (the lines again, the executions missed) when the connection drops
in the middle of it: against the fake gateway over TCP on 127.0.0.1."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.integration.test_ib_adapter import SHORT, Seen, on_fake

REQ_EXECUTIONS = 7  # the TWS API's message id of reqExecutions


@pytest.mark.ib_errors("^Peer closed connection")
def test_a_drop_in_the_first_resume_reconnects_rather_than_stopping_the_stream() -> None:
    """The connection drops while the first resume asks for the executions (ib_async fails
    that request with ConnectionError): before, it escaped the stream and stopped the
    daemon (exit 1); now the stream connects again, with backoff, resumes afresh, and the
    quotes flow."""

    async def main() -> tuple[bool, int, list[Any], list[str]]:
        seen = Seen()
        async with on_fake() as (broker, gateway):
            await broker.qualify([SHORT])
            broker.subscribe(SHORT)
            gateway.drop_on = {REQ_EXECUTIONS}  # in the middle of the first resume
            streaming = asyncio.create_task(broker.run(seen.quotes.extend, seen.events.extend))
            await seen.until(lambda: broker.reconnects == 1 or streaming.done(), 10)
            after = len(seen.quotes)
            await seen.until(
                lambda: (
                    streaming.done() or any(u.quote.bid is not None for u in seen.quotes[after:])
                ),
                10,
            )
            running = not streaming.done()
            if not running:
                streaming.result()  # (what stopped it, raised)
            streaming.cancel()
            fresh = [u for u in seen.quotes[after:] if u.quote.bid is not None]
            return running, broker.reconnects, fresh, sorted(gateway.drop_on)

    running, reconnects, fresh, left = asyncio.run(main())
    assert running
    assert reconnects == 1
    assert fresh
    assert {u.leg for u in fresh} == {SHORT}
    assert left == []  # the drop happened (the fault is spent)


def test_the_options_farm_broken_is_a_gap_until_it_is_ok_again() -> None:
    """IB's 2103 for the options' market data farm: the quotes stop, so none is fresh (the
    legs are sent as having no quote, the feed is not connected) until its 2104; a farm
    US options do not stream from (eufarm) changes nothing. Before, 2103 was a log line
    and the last quotes stood as if current."""

    async def main() -> tuple[list[bool], list[Any]]:
        seen = Seen()
        connected: list[bool] = []
        async with on_fake() as (broker, gateway):
            await broker.qualify([SHORT])
            broker.subscribe(SHORT)
            streaming = asyncio.create_task(broker.run(seen.quotes.extend, seen.events.extend))
            await seen.until(lambda: any(u.quote.bid is not None for u in seen.quotes))
            gateway.say(2103, "Market data farm connection is broken:eufarm")
            await asyncio.sleep(0.3)
            connected.append(broker.connected())
            gateway.say(2103, "Market data farm connection is broken:usopt")
            await seen.until(lambda: not broker.connected())
            down = len(seen.quotes)
            await asyncio.sleep(0.5)
            connected.append(broker.connected())
            during = seen.quotes[down:]
            gateway.say(2104, "Market data farm connection is OK:usopt")
            await seen.until(lambda: any(u.quote.bid is not None for u in seen.quotes[down:]))
            connected.append(broker.connected())
            streaming.cancel()
            return connected, [seen.quotes[down - 1], *during]

    connected, around = asyncio.run(main())
    assert connected == [True, False, True]
    blank, *during = around
    assert (blank.leg, blank.quote.bid, blank.quote.ask) == (SHORT, None, None)
    assert all(u.quote.bid is None for u in during)


@pytest.mark.ib_errors(r"^Error 1101, ")
def test_two_1101_back_to_back_resume_one_after_the_other() -> None:
    """IB may say 1101 (restored, data lost) twice in a row (a flapping link): each starts
    a resume, and they run one after the other, never interleaved (lines closed by one
    while the other opens them, executions asked twice at once). Before, nothing kept
    them apart: the second began while the first waited on IB."""

    async def main() -> tuple[list[str], int]:
        seen, steps = Seen(), []
        async with on_fake() as (broker, gateway):
            await broker.qualify([SHORT])
            broker.subscribe(SHORT)
            streaming = asyncio.create_task(broker.run(seen.quotes.extend, seen.events.extend))
            await seen.until(lambda: any(u.quote.bid is not None for u in seen.quotes))
            resume_now = broker._resume_now

            async def traced(recheck: bool) -> None:
                steps.append("in")
                try:
                    await resume_now(recheck)
                finally:
                    steps.append("out")

            broker._resume_now = traced  # type: ignore[method-assign]
            for _ in range(2):
                gateway.say(1101, "Connectivity restored - data lost.")
            await seen.until(lambda: steps.count("out") == 2, 10)
            await asyncio.sleep(0.2)
            streaming.cancel()
            return steps, sum(gateway._leg_lines.values())

    steps, lines = asyncio.run(main())
    assert steps == ["in", "out", "in", "out"]
    assert lines == 1  # one line for the leg: not one per resume
