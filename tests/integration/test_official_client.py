"""The fake gateway against IB's official Python client, ``ibapi`` 9.81.1.post1 (its
highest version is 157), as a second client beside ib_async: every kind of message the
fake serves must decode in it without a problem, with the values the fake meant, and the
handshake must give each client the version it can read (IB's, not one for all).

ibapi is installed from PyPI into its own virtualenv, under ``.cache/`` (ignored by git;
built once, then reused): it cannot share spreadwatch's, whose ib_async brings an
``ibapi``-free eventkit world. ``tests/integration/ibapi_probe.py`` runs in it against a
fake gateway started here. Where PyPI cannot be reached the tests that need ibapi are
skipped, saying so; CI (``.ci/run``) sets ``SPREADWATCH_EXPECT_IBAPI=1``, which makes
that a failure.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from ib_async import IB

from brokers.ib.fake import FakeGateway
from brokers.ib.fake.versions import SERVER_VERSION
from brokers.ib.wire import API_PREFIX, Reader, frame
from brokers.sim.broker import COMMISSION_PER_CONTRACT
from brokers.sim.market import SimMarket, Underlying
from rules.model import Right
from service.clock import SpeedClock
from tests.factories import LOOP_POSITION
from tests.factories import LOOP_T0 as T0
from tests.factories import STORE_EXPIRY as EXPIRY
from tests.support import ROOT

IBAPI = "ibapi==9.81.1.post1"
IBAPI_VERSION = 157  # its MAX_CLIENT_VER (ibapi/server_versions.py)
VENV = ROOT / ".cache" / "ibapi-9.81.1.post1"
PROBE = Path(__file__).with_name("ibapi_probe.py")
SPREADS = 10  # the account holds LOOP_POSITION's legs, -10 and +10
PLAN = {"symbol": "SPY", "expiry": f"{EXPIRY:%Y%m%d}", "right": "P", "short": 450.0,
        "long": 445.0, "missing": "NOSUCH"}  # fmt: skip
NOTICES = range(2100, 2200)  # IB's farm and data notices (2104, 2106, 2158...): not errors


def _usable(python: Path) -> bool:
    check = "import ibapi.server_versions as v; assert v.MAX_CLIENT_VER == 157"
    return python.exists() and subprocess.run([python, "-c", check], check=False,
                                              capture_output=True).returncode == 0  # fmt: skip


def official_client() -> Path:
    """The python of a virtualenv with ibapi 9.81.1.post1: the cached one, or built now
    (into a scratch directory, moved into place when whole)."""
    python = VENV / "bin" / "python"
    if _usable(python):
        return python
    scratch = VENV.with_name(f"{VENV.name}.building-{os.getpid()}")
    shutil.rmtree(scratch, ignore_errors=True)
    try:
        subprocess.run([sys.executable, "-m", "venv", scratch], check=True, capture_output=True,
                       timeout=120)  # fmt: skip
        subprocess.run(
            [scratch / "bin" / "python", "-m", "pip", "install", "-q",
             "--disable-pip-version-check", IBAPI],
            check=True, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        shutil.rmtree(scratch, ignore_errors=True)
        said = (getattr(exc, "stderr", None) or "").strip().splitlines()[-1:] or [str(exc)]
        reason = f"IB's official client ({IBAPI}) could not be installed from PyPI: {said[0]}"
        if os.environ.get("SPREADWATCH_EXPECT_IBAPI"):
            pytest.fail(reason)
        pytest.skip(reason)
    if _usable(python):  # another run built it meanwhile
        shutil.rmtree(scratch, ignore_errors=True)
        return python
    shutil.rmtree(VENV, ignore_errors=True)
    scratch.rename(VENV)
    return python


@dataclass(frozen=True)
class Run:
    """What the ibapi probe reported, what ib_async was answered, and the gateway's facts
    the report is checked against."""

    report: dict[str, Any]
    ib_async_version: int
    con_ids: dict[str, int]  # short, long, stock
    account: str

    def received(self, name: str) -> list[Any]:
        return list(self.report["received"].get(name, []))


async def _probe(python: Path) -> Run:
    clock = SpeedClock(T0, speed=10)  # a Tuesday, 10:00 in New York: the market is open
    market = SimMarket([Underlying("SPY", 470.0, vol=0.15)], T0, seed=3)
    gateway = FakeGateway(market, clock)
    gateway.hold_spreads(LOOP_POSITION, SPREADS)
    port = await gateway.start("127.0.0.1", 0)
    ticking = asyncio.create_task(gateway.run())
    try:
        proc = await asyncio.create_subprocess_exec(
            python, PROBE, str(port), json.dumps(PLAN),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await asyncio.wait_for(proc.communicate(), timeout=120)
        assert proc.returncode == 0, err.decode()[-3000:]
        ib = IB()
        await ib.connectAsync("127.0.0.1", port, clientId=24, timeout=5)
        ib_async_version = ib.client.serverVersion()
        ib.disconnect()
        ids = {
            name: gateway.instrument("SPY", "OPT", EXPIRY, Right.PUT, Decimal(strike)).con_id  # type: ignore[union-attr]
            for name, strike in (("short", 450), ("long", 445))
        }
        ids["stock"] = gateway.instrument("SPY", "STK").con_id  # type: ignore[union-attr]
        return Run(json.loads(out), ib_async_version, ids, gateway.account)
    finally:
        ticking.cancel()
        await gateway.close()


@pytest.fixture(scope="module")
def run() -> Run:
    """One session of the ibapi probe against a fresh fake gateway (it takes a few
    seconds), then ib_async against the same gateway."""
    return asyncio.run(_probe(official_client()))


EVERY_MESSAGE = {
    "nextValidId", "managedAccounts", "currentTime", "position", "positionEnd",
    "contractDetails", "contractDetailsEnd", "marketDataType", "tickPrice", "tickSize",
    "tickOptionComputation", "accountDownloadEnd", "openOrder", "orderStatus", "execDetails",
    "commissionReport", "execDetailsEnd", "openOrderEnd", "completedOrder", "completedOrdersEnd",
}  # fmt: skip


def test_ibapi_decodes_every_message_the_fake_sends_without_a_problem(run: Run) -> None:
    """No exception in ibapi's decoder, nothing it logs as a warning or an error (a message
    whose fields do not match is dropped with an error log line), no step left unanswered,
    and every kind of message the fake serves was received."""
    report = run.report
    assert report.get("exception") is None, report.get("exception")
    assert report["decoder_exceptions"] == []
    assert report["logged_problems"] == []
    assert run.received("timeouts") == []
    assert set(report["received"]) >= EVERY_MESSAGE


def test_ibapi_gets_only_the_errors_ib_sends_for_what_it_asked(run: Run) -> None:
    """Error 200 for the contract that does not exist, 202 for the cancelled order, with
    their request ids (error messages decode whole at 157: no advancedOrderRejectJson)."""
    errors = [e for e in run.report["errors"] if e["code"] not in NOTICES]
    assert {(e["req_id"], e["code"]) for e in errors} == {
        (4, 200),
        (run.report["working_id"], 202),
    }
    assert all(e["message"] for e in errors)


def test_the_handshake_gives_ibapi_981_its_157_and_ib_async_176(run: Run) -> None:
    """IB answers min(client's max, its own): ibapi 9.81 asks v100..157, ib_async v157..178."""
    assert (run.report["server_version"], run.ib_async_version) == (IBAPI_VERSION, SERVER_VERSION)


def test_current_time_is_the_gateways_clock_in_whole_seconds(run: Run) -> None:
    """The fake's clock starts at T0 and runs 10 times as fast: a few seconds of the probe
    are under two minutes of it."""
    (when,) = run.received("currentTime")
    assert isinstance(when, int)
    assert T0.timestamp() <= when < T0.timestamp() + 120


def test_contract_details_decode_whole_at_157(run: Run) -> None:
    """At 157 contractDetails carries its version and mdSizeMultiplier (dropped at 164):
    each field lands where ibapi reads it."""
    details = {d["req_id"]: d for d in run.received("contractDetails")}
    short = details[1]
    assert short["con_id"] == run.con_ids["short"]
    assert details[2]["con_id"] == run.con_ids["long"]
    assert details[3]["con_id"] == run.con_ids["stock"]
    assert (short["symbol"], short["sec_type"], short["expiry"], short["strike"]) == (
        "SPY", "OPT", f"{EXPIRY:%Y%m%d}", 450.0,
    )  # fmt: skip
    assert (short["right"], short["multiplier"], short["min_tick"]) == ("P", "100", 0.01)
    assert short["local_symbol"] == f"SPY   {EXPIRY:%y%m%d}P00450000"
    assert (short["under_con_id"], short["long_name"]) == (run.con_ids["stock"], "SPY")
    assert short["time_zone"] == "US/Eastern"
    assert sorted(run.received("contractDetailsEnd")) == [1, 2, 3]  # none for 4 (error 200)


def test_market_data_ticks_decode_in_ibapi(run: Run) -> None:
    """Bid and ask with their sizes, the model Greeks (a put's delta, the underlying's
    price), and the stock's bid, ask and last."""
    prices = {(r, t): p for r, t, p in run.received("tickPrice")}
    sizes = {(r, t): s for r, t, s in run.received("tickSize")}
    assert 0 < prices[10, 1] < prices[10, 2]
    assert sizes[10, 0] == sizes[10, 3] == 10
    assert prices[11, 1] < prices[11, 2]
    assert 400 < prices[11, 4] < 550
    model = [t for t in run.received("tickOptionComputation") if t["tick_type"] == 13][-1]
    assert -1 < model["delta"] < 0
    assert 400 < model["und_price"] < 550
    assert model["implied_vol"] > 0
    assert [10, 1] in run.received("marketDataType")


def test_positions_and_account_updates_decode_in_ibapi(run: Run) -> None:
    """reqPositions: each leg held, then (a subscription) each leg again as the fill of
    4 spreads moves it; reqAccountUpdates ends with accountDownloadEnd."""
    first: dict[int, tuple[float, float]] = {}
    last: dict[int, tuple[float, float]] = {}
    for p in run.received("position"):
        first.setdefault(p["con_id"], (p["strike"], p["position"]))
        last[p["con_id"]] = (p["strike"], p["position"])
    short, long_ = run.con_ids["short"], run.con_ids["long"]
    assert (first[short], first[long_]) == ((450.0, -SPREADS), (445.0, SPREADS))
    assert (last[short], last[long_]) == ((450.0, 4 - SPREADS), (445.0, SPREADS - 4))
    assert {p["account"] for p in run.received("position")} == {run.account}
    assert run.received("accountDownloadEnd") == [run.account]
    assert run.received("managedAccounts") == [run.account]


def test_account_summary_and_the_option_chain_decode_in_ibapi(run: Run) -> None:
    """reqAccountSummary and reqSecDefOptParams are answered, as IB answers them (before,
    the fake sent nothing and a program waited for good): the account's rows for the tags
    asked, then the end; the chain's expirations and strikes (the held legs' among them),
    then the end."""
    assert run.received("unanswered") == []
    rows = run.received("accountSummary")
    assert {(row[1], row[2]) for row in rows} == {
        (run.account, "NetLiquidation"), (run.account, "BuyingPower"),
    }  # fmt: skip
    (chain,) = run.received("securityDefinitionOptionParameter")
    assert chain["under_con_id"] == run.con_ids["stock"]
    assert f"{EXPIRY:%Y%m%d}" in chain["expirations"]
    assert 450.0 in chain["strikes"]
    assert 451.37 not in chain["strikes"]


def test_a_combo_order_fills_as_ibapi_reads_it(run: Run) -> None:
    """The closing BAG's openOrder (its legs by conId), orderStatus Filled 4 of 4 at the
    BAG's price, the BAG's execution and its legs' (BAG price = bought leg - sold leg),
    and a commission report for each leg's execution."""
    order_id = run.report["filled_id"]
    opened = [o for o in run.received("openOrder") if o["order_id"] == order_id]
    assert opened
    assert opened[0]["sec_type"] == "BAG"
    assert opened[0]["order_ref"] == "OC:1"
    assert opened[0]["legs"] == [[run.con_ids["short"], 1, "BUY"], [run.con_ids["long"], 1, "SELL"]]
    live = [e for e in run.received("execDetails") if e["req_id"] == -1]
    assert {e["order_id"] for e in live} == {order_id}
    bag = next(e for e in live if e["sec_type"] == "BAG")
    legs = {e["side"]: e for e in live if e["sec_type"] == "OPT"}
    assert (bag["side"], bag["shares"]) == ("BOT", 4.0)
    assert {legs["BOT"]["con_id"], legs["SLD"]["con_id"]} == {
        run.con_ids["short"], run.con_ids["long"],
    }  # fmt: skip
    assert bag["price"] == pytest.approx(legs["BOT"]["price"] - legs["SLD"]["price"])
    assert {e["order_ref"] for e in live} == {"OC:1"}
    final = [s for s in run.received("orderStatus") if s["order_id"] == order_id][-1]
    assert (final["status"], final["filled"], final["remaining"]) == ("Filled", 4.0, 0.0)
    assert final["avg_fill_price"] == pytest.approx(bag["price"])
    reports = {r["exec_id"]: r for r in run.received("commissionReport")}
    for leg in legs.values():
        assert reports[leg["exec_id"]]["commission"] == pytest.approx(
            float(COMMISSION_PER_CONTRACT) * 4
        )
        assert reports[leg["exec_id"]]["currency"] == "USD"


def test_req_executions_tells_the_same_executions_to_ibapi(run: Run) -> None:
    live = {e["exec_id"] for e in run.received("execDetails") if e["req_id"] == -1}
    asked = {e["exec_id"] for e in run.received("execDetails") if e["req_id"] == 20}
    assert asked == live
    assert run.received("execDetailsEnd") == [20]


def test_a_working_order_is_listed_and_cancelled_as_ibapi_reads_it(run: Run) -> None:
    working = run.report["working_id"]
    (listed,) = run.report["open_orders_listed"]
    assert (listed["order_id"], listed["order_ref"], listed["status"]) == (
        working, "OC:2", "Submitted",
    )  # fmt: skip
    assert (listed["quantity"], listed["limit"]) == (2.0, 0.01)
    statuses = [s["status"] for s in run.received("orderStatus") if s["order_id"] == working]
    assert statuses[-1] == "Cancelled"


def test_completed_orders_list_the_filled_and_the_cancelled_as_ibapi_reads_them(run: Run) -> None:
    """reqCompletedOrders: the day's done orders, each decoded whole at 157 (the fake sent
    the end alone)."""
    done = [(o["order_ref"], o["status"], o["filled"], o["quantity"], o["sec_type"], o["legs"])
            for o in run.received("completedOrder")]  # fmt: skip
    short, long = run.report["con_ids"]
    legs = [[short, 1, "BUY"], [long, 1, "SELL"]]
    assert done == [("OC:1", "Filled", 4.0, 4.0, "BAG", legs),
                    ("OC:2", "Cancelled", 0.0, 2.0, "BAG", legs)]  # fmt: skip


# The handshake itself, over a raw socket (no ibapi needed) -----------------------------


async def _answer(versions: str) -> list[list[str]]:
    """The messages a fresh fake gateway answers a handshake of ``versions`` with, until it
    closes the socket or is quiet for a while."""
    clock = SpeedClock(T0, speed=1)
    gateway = FakeGateway(SimMarket([Underlying("SPY", 470.0, vol=0.15)], T0, seed=3), clock)
    port = await gateway.start("127.0.0.1", 0)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(API_PREFIX + frame(versions.encode()))
        messages = Reader()
        got: list[list[str]] = []
        while True:
            try:
                data = await asyncio.wait_for(reader.read(4096), timeout=0.5)
            except TimeoutError:
                break
            if not data:
                break
            got += messages.feed(data)
        writer.close()
        return got
    finally:
        await gateway.close()


@pytest.mark.parametrize(
    ("versions", "answered"),
    [("v100..157", 157), ("v157..178", 176), ("v160..170 +PACEAPI", 170), ("v157", 157)],
)
def test_the_handshake_answers_the_highest_version_both_speak(versions: str, answered: int) -> None:
    ((version, when),) = asyncio.run(_answer(versions))
    assert int(version) == answered
    assert when.endswith(" UTC")


def test_a_client_newer_than_the_gateway_gets_its_highest_and_decides() -> None:
    """IB answers its own highest version to a client that asks for newer ones only; the
    client refuses it (ib_async: "TWS/gateway version must be >= 972")."""
    ((version, _),) = asyncio.run(_answer("v177..190"))
    assert int(version) == SERVER_VERSION


def test_a_client_older_than_the_gateway_speaks_is_closed_unanswered() -> None:
    """A range all older than the oldest version the fake writes (157): the socket is
    closed with no answer (the fake's limit: TWS serves clients from 100), so the client
    sees a failed connection, not messages it would misread."""
    assert asyncio.run(_answer("v100..150")) == []
