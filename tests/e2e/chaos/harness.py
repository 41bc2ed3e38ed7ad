"""A chaos round: ``spreadwatch fake-gateway`` (partial fills, a script that keeps close
orders coming: :mod:`.scenario`) and ``spreadwatch run`` on it with ``broker = ib``, both
real processes, on a real PostgreSQL. The daemon is SIGKILLed again and again, each kill
aimed at a phase of an order's life by watching its log, the gateway's ledger and the
database (:mod:`.watch`), then started again; at the end it is stopped cleanly and the
account, seen by a separate IB client, is checked against the store (:mod:`.check`).

Shared by ``tests/e2e/test_kill9.py`` (one round) and ``benchmarks/chaos.py`` (rounds to
200+ kills)."""

from __future__ import annotations

import random
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.e2e.chaos import check
from tests.e2e.chaos.scenario import START, scenario
from tests.e2e.chaos.watch import PHASES, Db, Ledger, phases_hit
from tests.e2e.test_run import fake_gateway
from tests.support import Daemon, spreadwatch

AIMS = (*PHASES, "random")
AIM_WAIT = 6.0  # wall seconds an aim waits for its moment (closes come every ~2.5) before
# the kill goes anyway
START_WAIT = 40.0  # wall seconds a daemon may take to start monitoring
# wall seconds an aim (but start-up's and intent's) waits for the daemon to be quoted on
# every position and for its live orders to be at the gateway: ib_async holds the orders
# of a start behind its market data requests, up to ~3 s (issue 19 item 4), and a kill
# then leaves a position needing attention; orders keep flowing between kills so
SETTLE_WAIT = 10.0
REFUSED = ("order.refused_for_now", "order.refused")
QUOTE_AGE = "spreadwatch_quote_age_seconds{"
GIVE_UP = 10  # violations during the kills (a daemon that cannot start): the round ends


@dataclass(frozen=True)
class Kill:
    n: int
    at: float  # wall seconds into the round
    aim: str
    hit: tuple[str, ...]
    timed_out: bool  # the aim's moment did not come: killed anyway

    def line(self) -> str:
        missed = " (its moment did not come)" if self.timed_out else ""
        hit = ", ".join(self.hit) or "no phase"
        return f"kill {self.n:3d} at {self.at:6.1f} s: aimed at {self.aim}{missed}, hit {hit}"


@dataclass
class Result:
    seed: int
    kills: list[Kill] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    refusals: int = 0  # closes refused before they went out (issue 19, item 3: not a violation)
    blocked: int = 0  # of them, positions left alone for good
    attention: int = 0  # positions needing attention at the end (a human to look)
    orders: int = 0  # placed at the gateway
    executions: int = 0  # combo executions at the gateway
    wall: float = 0.0

    @property
    def phases(self) -> Counter[str]:
        return Counter(p for k in self.kills for p in k.hit)

    def summary(self) -> str:
        phases = self.phases
        counts = ", ".join(f"{p} {phases[p]}" for p in PHASES)
        hit = sum(1 for p in PHASES if phases[p])
        missed = sum(k.timed_out for k in self.kills)
        return "\n".join([
            f"chaos: seed {self.seed}: {len(self.kills)} kills in {self.wall:.1f} s; "
            f"{self.orders} orders and {self.executions} combo executions at the gateway",
            f"phases hit: {counts} ({hit} of {len(PHASES)} phases; {missed} aims timed out)",
            f"refusals: {self.refusals} closes refused before sending, {self.blocked} "
            "positions left alone (issue 19 item 3: counted, not violations); "
            f"{self.attention} positions needing attention at the end",
            f"violations: {len(self.violations)}",
            *(f"  VIOLATION: {v}" for v in self.violations),
        ])  # fmt: skip


class Round:
    """One round on database ``db_url`` (migrated, empty), files in ``work``."""

    def __init__(
        self, db_url: str, work: Path, seed: int, kills: int, *, speed: float = 60.0,
        say: Callable[[str], None] = print,
    ) -> None:  # fmt: skip
        self.url, self.work, self.kills, self.speed, self.say = db_url, work, kills, speed, say
        self.rng = random.Random(seed)
        self.result = Result(seed)
        self.ledger = Ledger(work / "ledger.jsonl")
        self.daemons: list[Daemon] = []
        self.env: dict[str, str] = {}
        self._t0 = time.monotonic()

    def run(self) -> Result:
        made = scenario(self.result.seed, spreads=24, gap=2.5)
        positions, script = self.work / "positions.toml", self.work / "moves.toml"
        positions.write_text(made.positions_toml())
        script.write_text(made.script_toml())
        gateway, port = fake_gateway(
            "--start", START.isoformat(), "--speed", str(self.speed), "--fill-size", "1",
            "--positions", str(positions), "--script", str(script),
            "--ledger", str(self.ledger.path),
        )  # fmt: skip
        _drain(gateway.stdout, gateway.stderr)
        # (one lease name for every restart: a supervisor's restart of the same instance,
        # which takes its lease back at once rather than waiting out the killed one's)
        self.env = {"DATABASE_URL": self.url, "SPREADWATCH_BROKER": "ib",
                    "SPREADWATCH_IB__PORT": port, "SPREADWATCH_HTTP": "true",
                    "SPREADWATCH_HTTP_PORT": "0", "SPREADWATCH_LEASE__NAME": "chaos"}  # fmt: skip
        db = Db(self.url)
        try:
            imported = spreadwatch("positions", "import", str(positions), **self.env)
            assert imported.code == 0, imported.err
            self._finish(self._kill_all(db), db)
            self._verdict(db, int(port))
        finally:
            for d in self.daemons:
                if d.proc.poll() is None:
                    d.proc.kill()
            gateway.terminate()
            gateway.wait(timeout=20)
            db.close()
        self.result.wall = time.monotonic() - self._t0
        return self.result

    def _start(self) -> Daemon:
        daemon = Daemon(self.env)
        self.daemons.append(daemon)
        return daemon

    def _kill_all(self, db: Db) -> Daemon:
        daemon = self._start()
        while len(self.result.kills) < self.kills and len(self.result.violations) < GIVE_UP:
            aim = self.rng.choice(AIMS)
            if aim != "startup" and not self._until(daemon, lambda d=daemon: _monitoring(d)):
                if daemon.proc.poll() is None:  # (one that ended is said in _until)
                    self.result.violations.append(f"a daemon not monitoring after {START_WAIT} s")
                    daemon.proc.kill()
                daemon = self._start()
                continue
            if aim not in ("startup", "intent"):  # the start's requests and orders out first
                self._until(daemon, lambda d=daemon: _settled(d, db, self.ledger), SETTLE_WAIT)
            moment = self._moment(aim, daemon, db)
            came = self._until(daemon, moment, AIM_WAIT)
            if daemon.proc.poll() is not None:  # it died by itself: said in _until
                daemon = self._start()
                continue
            self.ledger.read()
            seen, log, monitoring = len(self.ledger.lines), list(daemon.log), _monitoring(daemon)
            daemon.proc.kill()
            daemon.proc.wait()
            hit = phases_hit(db, self.ledger, seen, log, monitoring)
            kill = Kill(len(self.result.kills) + 1, time.monotonic() - self._t0, aim,
                        tuple(hit), not came)  # fmt: skip
            self.result.kills.append(kill)
            self.say(kill.line())
            daemon = self._start()
        return daemon

    def _moment(self, aim: str, daemon: Daemon, db: Db) -> Callable[[], bool]:
        """When to kill for ``aim``: a predicate polled every millisecond."""
        rng, ledger = self.rng, self.ledger
        ledger.read()
        base, log_base, since = len(ledger.lines), len(daemon.log), time.monotonic()
        if aim == "startup":  # a random instant between connecting and monitoring
            delay = rng.uniform(0.0, 1.5)
            connected: list[float] = []

            def startup() -> bool:
                if not connected and any(x.startswith("connected to IB") for x in daemon.out):
                    connected.append(time.monotonic())
                return bool(connected) and time.monotonic() >= connected[0] + delay

            return startup
        if aim == "random":
            delay = rng.uniform(0.1, 3.0)
            return lambda: time.monotonic() >= since + delay
        if aim == "decided":
            return lambda: any(e.get("event") == "exit.decided" for e in daemon.log[log_base:])
        if aim == "intent":

            def intent() -> bool:  # (a live order the gateway has not seen)
                ledger.read()
                return bool(set(db.live_orders()) - set(ledger.places()))

            return intent
        kinds = {"placed": "place"}.get(aim, "execution")
        delay = {"partial": 0.03}.get(aim, 0.0)
        return _after(ledger, base, kinds, rng.uniform(0.0, delay), partial=aim == "partial")

    def _until(self, daemon: Daemon, what: Callable[[], bool], seconds: float = START_WAIT) -> bool:
        """Poll ``what`` until true (True) or ``seconds`` pass (False); a daemon that ends
        by itself meanwhile is a violation."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if what():
                return True
            if daemon.proc.poll() is not None:
                tail = "".join(daemon.errors[-5:]).strip().replace("\n", " | ")
                self.result.violations.append(
                    f"the daemon exited by itself (code {daemon.proc.returncode}): {tail[-600:]}"
                )
                return False
            time.sleep(0.001)
        return False

    def _finish(self, daemon: Daemon, db: Db) -> None:
        """Let the last daemon settle (no order live, every fill at the gateway stored),
        then stop it cleanly with SIGTERM; again if it left an order working (one may
        have gone out meanwhile)."""
        for _ in range(3):
            self._until(daemon, lambda d=daemon: _monitoring(d))
            self._until(daemon, lambda: _quiet(db, self.ledger) and _quiet(db, self.ledger), 60)
            code = daemon.stop()
            if code != 0:
                self.result.violations.append(f"the final stop exited {code}")
            if any(x.startswith("stopped: 0 orders") for x in daemon.out):
                return
            daemon = self._start()
        self.result.violations.append("the daemon never stopped with no order working")

    def _verdict(self, db: Db, port: int) -> None:
        held, fills = check.holdings_violations(db, port)
        self.result.violations += held
        self.result.violations += check.execution_violations(db, fills, self.ledger)
        self.result.violations += check.store_violations(db)
        self.result.orders = sum(len(p) for p in self.ledger.places().values())
        self.result.executions = len(self.ledger.bag_executions())
        events = [e.get("event") for d in self.daemons for e in d.log]
        self.result.refusals = sum(e in REFUSED for e in events)
        self.result.blocked = events.count("order.refused")
        attention = db.rows("SELECT count(*) AS n FROM positions WHERE attention IS NOT NULL")
        self.result.attention = int(attention[0]["n"])


def _monitoring(daemon: Daemon) -> bool:
    return any(x.startswith("monitoring ") for x in daemon.out)


def _settled(daemon: Daemon, db: Db, ledger: Ledger) -> bool:
    """Every position quoted (its quote age in ``/metrics`` finite) and every live order
    at the gateway (polled every 50 ms)."""
    time.sleep(0.05)
    base = next((x.split()[4] for x in daemon.out if x.startswith("health and metrics on")), "")
    try:
        with urllib.request.urlopen(base + "metrics", timeout=2) as response:
            metrics = response.read().decode()
    except (OSError, ValueError):
        return False
    ages = [x.rsplit(" ", 1)[1] for x in metrics.splitlines() if x.startswith(QUOTE_AGE)]
    ledger.read()
    return "+Inf" not in ages and not set(db.live_orders()) - set(ledger.places())


def _quiet(db: Db, ledger: Ledger) -> bool:
    """No live order, every fill at the gateway stored (as of 0.5 s from now)."""
    time.sleep(0.5)
    ledger.read()
    stored = {e["execId"] for e in ledger.bag_executions()} <= db.exec_ids()
    return stored and not db.live_orders()


def _after(
    ledger: Ledger, base: int, kind: str, delay: float, *, partial: bool
) -> Callable[[], bool]:
    """A ledger line of ``kind`` after line ``base`` (for ``partial``: an execution that
    leaves its order short), then ``delay`` seconds."""
    seen: list[float] = []

    def moment() -> bool:
        if not seen:
            ledger.read()
            quantity = {ref: p[-1]["quantity"] for ref, p in ledger.places().items()}
            for line in ledger.lines[base:]:
                if line["kind"] != kind or (kind == "execution" and line["secType"] != "BAG"):
                    continue
                done = sum(e["shares"] for e in ledger.bag_executions()
                           if e["orderRef"] == line["orderRef"])  # fmt: skip
                if not partial or done < quantity.get(line["orderRef"], 0):
                    seen.append(time.monotonic())
                    break
        return bool(seen) and time.monotonic() >= seen[0] + delay

    return moment


def _drain(*streams: Any) -> None:
    """Read a process's pipes to their end (a full pipe would stop it)."""
    for stream in streams:
        threading.Thread(target=stream.read, daemon=True).start()
