"""Legs IB cannot serve, told to the service (the feed's ``problems``) rather than waited on
or crashed over: the adapter against the fake gateway over TCP on 127.0.0.1."""

from __future__ import annotations

import asyncio
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from ib_async import Contract

from brokers.sim.market import Underlying
from rules.model import Leg, Position, Right, Side, Strategy
from service.errors import BrokerRefused
from service.ports import Admitted, LegKey, StoredPosition
from service.store.rows import new_stored
from tests.factories import OPENED
from tests.factories import STORE_EXPIRY as EXPIRY
from tests.integration.test_ib_adapter import LONG, SHORT, Seen, on_fake

THIRD_FRIDAY = date(2027, 3, 19)
UNKNOWN = LegKey("QQQ", EXPIRY, Right.PUT, Decimal(400))  # an underlying IB has not here


def stream(
    gateway_faults: dict[str, Any], *subscribed: LegKey, told: int = 1
) -> tuple[Seen, list[Any], bool]:
    """Subscribe ``subscribed`` before the stream starts (its first resume qualifies them),
    stream until ``told`` problems and a second more: what came, the problems told,
    whether it still ran."""

    async def main() -> tuple[Seen, list[Any], bool]:
        seen, problems = Seen(), []
        async with on_fake() as (broker, gateway):  # (as the daemon: connected, then streams)
            for name, value in gateway_faults.items():
                setattr(gateway, name, value)
            for leg in subscribed:
                broker.subscribe(leg)
            streaming = asyncio.create_task(
                broker.run(
                    seen.quotes.extend,
                    seen.events.extend,
                    lambda leg, why: problems.append((leg, why)),
                )
            )
            await seen.until(lambda: len(problems) >= told, 10)
            await asyncio.sleep(1.0)
            running = not streaming.done()
            streaming.cancel()
            return seen, problems, running

    return asyncio.run(main())


@pytest.mark.ib_errors(r"^Error 10089, ")
def test_a_leg_whose_market_data_ib_refuses_is_told_with_ib_s_words() -> None:
    """A paper account without options data: IB answers the line with 10089. The leg is
    told once, with IB's code and words and what to check; the underlying's line (an
    equity, subscribed) still streams."""
    seen, problems, running = stream({"unsubscribed": frozenset({"SPY"})}, SHORT, LONG, told=2)
    assert running
    assert sorted(leg for leg, _ in problems) == sorted([SHORT, LONG])
    why = dict(problems)[SHORT]
    assert why.startswith("no market data for SPY 2027-04-16 P 450: IB 10089: Requested market")
    assert why.endswith("check the account's market data subscriptions (and API access to them)")
    assert not [u for u in seen.quotes if u.leg in (SHORT, LONG) and u.quote.bid is not None]


@pytest.mark.ib_errors(r"^Error 200, ")
def test_a_leg_ib_knows_not_at_a_connect_is_told_and_stops_nothing() -> None:
    """One unknown contract among the subscribed legs: before, the first resume raised and
    the stream (and the daemon) stopped; now that leg is told and the others stream."""
    seen, problems, running = stream({}, UNKNOWN, SHORT)
    assert running
    assert problems == [(UNKNOWN, "contract unknown to IB: QQQ 2027-04-16 P 400")]
    assert any(u.leg == SHORT and u.quote.bid is not None for u in seen.quotes)


def test_a_leg_ib_lists_in_two_trading_classes_is_ambiguous_and_said_so() -> None:
    """SPX's options on a third Friday come as SPX (monthly) and SPXW (weekly), alike in
    all but the trading class: IB answers both. Before, ib_async's None made it "unknown
    to IB"; now the leg is said ambiguous, with the classes, and no guess is made. On
    another Friday, SPXW alone: qualified."""
    monthly = LegKey("SPX", date(2027, 3, 19), Right.PUT, Decimal(4800))
    weekly = LegKey("SPX", date(2027, 3, 12), Right.PUT, Decimal(4800))

    async def main() -> tuple[str, dict[LegKey, int]]:
        spx, spy = Underlying("SPX", 5000.0), Underlying("SPY", 470.0)
        async with on_fake(spx, spy) as (broker, gateway):
            gateway.classes = {"SPX": ("SPX", "SPXW")}
            with pytest.raises(BrokerRefused) as refused:
                await broker.qualify([monthly])
            return str(refused.value), await broker.qualify([weekly])

    why, qualified = asyncio.run(main())
    assert why == (
        "ambiguous at IB: SPX 2027-03-19 P 4800 is 2 contracts (trading classes SPX, SPXW); "
        "spreadwatch cannot tell which is held: void the position and add it again with its "
        "trading_class, or close it by hand"
    )
    assert list(qualified) == [weekly]


def spx_put_spread(pid: str, short: int, trading_class: str = "") -> StoredPosition:
    """An SPX put spread of the third Friday of March 2027 (SPX and SPXW both list it)."""
    legs = (Leg(Right.PUT, Decimal(short), THIRD_FRIDAY, Side.SHORT),
            Leg(Right.PUT, Decimal(short - 50), THIRD_FRIDAY, Side.LONG))  # fmt: skip
    position = Position(pid, "PRIMARY", "SPX", Strategy.PUT_CREDIT, legs, 2, Decimal(3),
                        OPENED, trading_class=trading_class)  # fmt: skip
    return new_stored(position, "DU1234567")


def test_a_position_naming_its_trading_class_is_admitted_in_that_class() -> None:
    """An SPX spread that names SPXW is qualified as SPXW (IB narrows a description by its
    trading class): admitted with the weekly contracts' conIds, as IB describes them
    when asked by conId. One naming no class is still refused as ambiguous, and one naming
    SPX on a leg already watched as SPXW is refused (quotes are filed by strike, expiry and
    right: one class per leg). Before, every SPX third-Friday position was refused."""

    async def main() -> tuple[Admitted, list[str]]:
        async with on_fake(Underlying("SPX", 5000.0), Underlying("SPY", 470.0)) as (
            broker,
            gateway,
        ):
            gateway.classes = {"SPX": ("SPX", "SPXW")}
            admitted = await broker.admit([
                spx_put_spread("W1", 4800, "SPXW"), spx_put_spread("U1", 4700),
                spx_put_spread("M1", 4800, "SPX"),
            ])  # fmt: skip
            described = []
            for con_id in admitted.con_ids.get("W1", {}).values():
                [details] = await broker.ib.reqContractDetailsAsync(Contract(conId=con_id))
                described.append(details.contract.tradingClass if details.contract else "")
            return admitted, described

    admitted, described = asyncio.run(main())
    assert list(admitted.con_ids) == ["W1"]
    assert described == ["SPXW", "SPXW"]
    assert admitted.refused["U1"].startswith("ambiguous at IB: SPX 2027-03-19 P 4700 is 2 ")
    assert admitted.refused["M1"] == (
        "SPX 2027-03-19 P 4800 is watched in trading class SPXW already, and this position "
        "names SPX: one leg is watched in one class only; close or void one of them by hand"
    )
