"""A standby that takes over (issue 19): two ``spreadwatch run`` on one account and one
database (:mod:`tests.e2e.chaos.pair`: the fake gateway with partial fills and a market
that keeps close orders coming, a real PostgreSQL, all processes). ``A`` holds the
trading lease and trades; ``B`` stands by. Each test takes A away a different way and
checks that B takes over and that A, if it comes back, neither sends nor writes
anything; at the end, both stopped cleanly, the account as a separate IB client sees it
is what the store implies (holdings, every execution stored once, no order placed
twice: :mod:`tests.e2e.chaos.check`)."""

from __future__ import annotations

import os
import random
import signal
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from tests.e2e.chaos.pair import Pair, readyz, roles, said, waited, when_said
from tests.e2e.chaos.proxy import DbProxy
from tests.support import Daemon

TAKEOVER = 10.0  # seconds: the bound on a takeover
TTL = 5.0  # the lease's (settings' default)


@pytest.fixture
def pair(db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Iterator[Pair]:
    seed = int(os.environ.get("CHAOS_SEED") or random.randrange(1_000_000))
    with capsys.disabled():
        print(f"\nstandby seed {seed}", flush=True)
    made = Pair(db_url, tmp_path, seed)
    try:
        yield made
    finally:
        made.close()


def _say(capsys: pytest.CaptureFixture[str], text: str) -> None:
    with capsys.disabled():
        print(text, flush=True)


def _logged(daemon: Daemon, event: str, seconds: float) -> float:
    """The monotonic time ``event`` is first seen in ``daemon``'s log."""
    assert waited(lambda: daemon.logged(event), seconds), "".join(daemon.errors[-20:])
    return time.monotonic()


def _sent_by(pair: Pair, connection: int, since: int) -> list[str]:
    sent = pair.sends(since)
    return [f"{x['kind']} {x['orderRef']}" for x in sent if x["connection"] == connection]


@pytest.mark.slow
def test_kill_9_of_the_holder_the_standby_takes_over_within_10_s(
    pair: Pair, capsys: pytest.CaptureFixture[str]
) -> None:
    a, b = pair.start()
    assert (readyz(a)["role"], readyz(a)["epoch"]) == ("holder", 1)
    body = readyz(b)
    assert (body["status"], body["role"], body["lease_holder"]) == ("standby", "standby", "A")
    assert (roles(a), roles(b)) == ({"holder": 1, "standby": 0}, {"holder": 0, "standby": 1})
    assert waited(lambda: len(pair.sends()) >= 2, 40), "A sent no orders"
    a.proc.kill()
    killed = time.monotonic()
    took = when_said(b, "monitoring ", 30) - killed
    _say(capsys, f"standby: kill -9 of the holder: B trading {took:.2f} s later")
    assert took < TAKEOVER
    assert (readyz(b)["role"], readyz(b)["epoch"]) == ("holder", 2)
    assert roles(b) == {"holder": 1, "standby": 0}
    mark = len(pair.ledger.lines)
    b_conn = pair.connections()[-1]
    assert waited(lambda: bool(_sent_by(pair, b_conn, mark)), 60), "B never sent an order"
    assert pair.finish(b) == []


@pytest.mark.slow
def test_a_holder_paused_15_s_wakes_as_the_standby_and_sends_and_writes_nothing(
    pair: Pair, capsys: pytest.CaptureFixture[str]
) -> None:
    a, b = pair.start()
    a_conn = pair.connections()[0]
    assert waited(lambda: len(pair.sends()) >= 1, 40), "A sent no orders"
    os.kill(a.proc.pid, signal.SIGSTOP)
    stopped = time.monotonic()
    took = when_said(b, "trading lease held", 20) - stopped
    assert took < TAKEOVER
    time.sleep(max(0.0, stopped + 15 - time.monotonic()))
    pair.ledger.read()
    mark, woke_at = len(pair.ledger.lines), pair.now()
    assert pair.writes("A", woke_at - timedelta(seconds=60)) != []  # (A's writes are seen)
    os.kill(a.proc.pid, signal.SIGCONT)
    woke = time.monotonic()
    assert waited(lambda: said(a, "LEASE LOST"), 10), "".join(a.out[-10:] + a.errors[-10:])
    assert waited(lambda: readyz(a)["role"] == "standby", 10)
    trading = when_said(b, "monitoring ", 30) - woke  # (once A's connection to IB is gone)
    _say(capsys, f"standby: SIGSTOP of the holder: B held the lease {took:.2f} s later, "
                 f"traded {trading:.2f} s after A woke")  # fmt: skip
    assert _sent_by(pair, a_conn, mark) == []  # nothing sent by A after it woke
    assert pair.writes("A", woke_at) == []  # nothing written by A after it woke
    assert pair.writes("B", woke_at) != []  # (B's are seen)
    assert readyz(b)["role"] == "holder"
    assert pair.finish(b, a) == []


@pytest.mark.slow
def test_a_holder_cut_off_from_the_database_stops_trading_within_one_lease_period(
    db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = make_url(db_url)
    proxy = DbProxy(url.host or "127.0.0.1", url.port or 5432)
    a_url = url.set(port=proxy.port).render_as_string(hide_password=False)
    pair = Pair(db_url, tmp_path, random.randrange(1_000_000), a_db_url=a_url)
    try:
        a, b = pair.start()
        a_conn = pair.connections()[0]
        assert waited(lambda: len(pair.sends()) >= 1, 40), "A sent no orders"
        proxy.cut()
        cut, cut_at = time.monotonic(), pair.now()
        lost = _logged(a, "lease.lost", TTL + 5) - cut
        time.sleep(max(0.0, cut + TTL + 0.2 - time.monotonic()))
        pair.ledger.read()
        mark = len(pair.ledger.lines)
        trading = when_said(b, "monitoring ", 30) - cut
        _say(capsys, f"standby: the holder's database cut: A stopped {lost:.2f} s later, "
                     f"B trading {trading:.2f} s after the cut")  # fmt: skip
        assert lost <= TTL + 0.5
        assert trading < TAKEOVER + 5  # (B waits out A's lease, then A's IB connection)
        assert _sent_by(pair, a_conn, mark) == []
        assert readyz(a)["role"] == "standby"
        proxy.heal()
        assert waited(lambda: said(a, "standby: B holds the trading lease"), 15)
        assert pair.finish(b, a) == []
        assert pair.writes("A", cut_at) == []  # (none reached the database after the cut)
    finally:
        pair.close()
        proxy.close()
