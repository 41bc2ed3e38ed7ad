"""The composition root: the one place where spreadwatch's parts are chosen and wired.

Nothing connects, opens an engine or reads the settings at import time. The
commands (``service.cli``), the tests and the benchmarks all build the live
loop here, with :func:`build`; whatever they pass in (a store, a venue, a
clock) is used as is, and whatever is left out is made from the settings.

- **Store**: :func:`open_store` opens the SQL store on ``DATABASE_URL``, or on
  the embedded PostgreSQL (migrated by itself, being spreadwatch's own) when
  it is unset.
- **Venue** (the broker's feed and order gateway): chosen by name from
  :data:`VENUES`, the registry of brokers (``settings.broker``). A new broker
  is one factory function and one line there.
- **Clock**: a simulated venue's market runs on the daemon's clock, which may
  start anywhere and run fast (:func:`daemon_clock`); a broker's market runs on
  the broker's time, so its venue factory makes the clock (IB's: asked over its
  connection) when none is given, and the simulated-clock flags are refused.
- **The loop**: the app assembled on that store and venue (service.app.assembly).
- **The account** alone (``positions sync``): :func:`account`, from :data:`ACCOUNTS`.

Only this module imports a concrete broker or the SQL store.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Protocol, TextIO

from brokers.sim import seed
from brokers.sim.broker import SimBroker
from brokers.sim.gateway import SimGateway, SimVenue
from rules import greeks
from rules.books import BookPolicy
from rules.clock import MarketTime, market_time
from rules.pricing import RepriceSchedule
from service.app.assembly import App as Loop
from service.app.assembly import assemble
from service.clock import SpeedClock
from service.errors import InputError
from service.logs import get_logger
from service.orders.fence import Fenced
from service.ports import Account, Admits, Clock, Feed, OrderGateway, Store, StoredPosition
from service.store import database as schema
from service.store.repository import SqlStore

if TYPE_CHECKING:  # (what only some commands use is imported when it is built)
    from service.app.lease import Lease
    from service.settings import Settings

_log = get_logger("spreadwatch.daemon")


__all__ = [  # (schema: the store's migrations, for the db commands)
    "ACCOUNTS",
    "VENUES",
    "App",
    "Demo",
    "Faults",
    "Venue",
    "VenueFactory",
    "Wiring",
    "account",
    "alerter",
    "bind_http",
    "bind_venue",
    "build",
    "daemon_clock",
    "database_url",
    "demo",
    "fake_gateway",
    "fence",
    "lease",
    "lease_name",
    "open_store",
    "schema",
    "serve_http",
    "serve_loop",
    "sql_store",
]


class Venue(Feed, OrderGateway, Admits, Protocol):
    """A broker as the loop uses it: the feed of quotes and order events, and orders."""


@dataclass
class Wiring:
    """What a venue factory may use: the settings, the clock (None: the factory makes the
    venue's own), the store and its open positions, where a simulated market starts (None:
    at the clock's time), where to say what it did, and what closes later."""

    settings: Settings
    clock: Clock | None
    store: Store
    stored: Sequence[StoredPosition]
    start: datetime | None
    out: TextIO
    closing: contextlib.AsyncExitStack
    identity: str = ""  # the venue the records will be of: ``sim``, ``ib:<account>``
    fence: Callable[[], bool] | None = None  # sends only while it says so (the lease held)


async def _sim(w: Wiring) -> Venue:
    """The simulated market, seeded from the open positions, and a simulated broker whose
    account holds what the daemon admits (the store is the simulated account)."""
    clock = w.clock = w.clock or SpeedClock()
    w.start = w.start or clock.now()
    market = seed.market_for((s.position for s in w.stored), w.start)
    return SimVenue(market, SimBroker(), clock, holds_admitted=True)


async def _ib(w: Wiring) -> Venue:
    """Interactive Brokers (IB Gateway, TWS or the fake gateway), connected. The loop
    admits the positions: their legs qualified (a position IB knows not is quarantined),
    their contract ids stored. With no clock given the clock is IB's time, asked over
    this connection (the drift from this machine's, if any, said on ``out``)."""
    from brokers.ib.broker import IbBroker  # noqa: PLC0415  (ib_async: only when chosen)

    if w.clock is None:
        venue, w.clock = IbBroker.on_ib_time(w.settings.ib, say=w.out.write)
    else:
        venue = IbBroker(w.settings.ib, now=w.clock.now)
    if w.fence is not None:  # (the order path is fenced too; this stops ib_async's queue)
        venue.fence_sends(w.fence)
    await venue.connect()
    w.closing.push_async_callback(venue.close)
    w.identity = f"ib:{venue.account}"
    ib = w.settings.ib
    w.out.write(f"connected to IB at {ib.host}:{ib.port}, account {venue.account}\n")
    return venue


VenueFactory = Callable[[Wiring], Awaitable[Venue]]
# The brokers, by the name ``settings.broker`` takes (its Literal lists the same names).
VENUES: dict[str, VenueFactory] = {"sim": _sim, "ib": _ib}
# Those whose market is simulated, on the daemon's clock; the others' is the broker's time.
SIMULATED = frozenset({"sim"})


def daemon_clock(
    settings: Settings, start: datetime | None, speed: float | None
) -> SpeedClock | None:
    """The daemon's clock on a simulated venue: from ``start`` (now), ``speed`` (1) times
    the wall's. None on a broker, whose market runs on its own time (:func:`build` has the
    venue make that clock); ``--start`` and ``--speed`` are refused there: a simulated
    clock would send real orders on a day that is not the market's."""
    if settings.broker in SIMULATED:
        return SpeedClock(start, 1.0 if speed is None else speed)
    given = [flag for flag, value in (("--start", start), ("--speed", speed)) if value is not None]
    if given:
        raise InputError(
            f"{', '.join(given)}: a simulated clock, refused with broker = {settings.broker}: "
            "the daemon runs on the broker's time (to try another day, give --start and "
            "--speed to `spreadwatch fake-gateway` instead)"
        )
    return None


# The broker's account alone (positions sync), without the loop ---------------------------

Stack = contextlib.AsyncExitStack


async def _sim_account(settings: Settings, store: Store, closing: Stack) -> Account:
    """The simulated broker, holding the store's open positions (so all are found stored)."""
    broker = SimBroker()
    for s in await store.open_positions():
        broker.hold_spreads(s.position, s.remaining)
    return SimGateway(broker, SpeedClock().now)


async def _ib_account(settings: Settings, store: Store, closing: Stack) -> Account:
    """IB, connected (the paper guard as for the loop), disconnected at the end."""
    from brokers.ib.broker import IbBroker  # noqa: PLC0415  (ib_async: only when chosen)

    broker = IbBroker(settings.ib)
    await broker.connect()
    closing.push_async_callback(broker.close)
    return broker


AccountFactory = Callable[["Settings", Store, Stack], Awaitable[Account]]
# The brokers' accounts, by the same names as VENUES
ACCOUNTS: dict[str, AccountFactory] = {"sim": _sim_account, "ib": _ib_account}


@contextlib.asynccontextmanager
async def account(settings: Settings, store: Store) -> AsyncIterator[Account]:
    """The account of ``settings.broker`` (what it holds, its executions), closed after."""
    async with contextlib.AsyncExitStack() as closing:
        yield await ACCOUNTS[settings.broker](settings, store, closing)


@dataclass
class App:
    """The live loop, wired on its store and venue: what the daemon, the demo, the tests
    and the benchmarks drive (``loop``: load, then run or step). ``async with app``
    closes, at its end, what :func:`build` opened for it (a store, a broker's connection)."""

    settings: Settings | None
    store: Store
    venue: Venue
    clock: Clock
    books: dict[str, BookPolicy]
    loop: Loop
    closing: contextlib.AsyncExitStack
    start: datetime  # where the market began: a simulated one's start, or the clock's time

    async def __aenter__(self) -> App:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.closing.aclose()


async def build(
    settings: Settings | None,
    *,
    store: Store | None = None,
    venue: Venue | None = None,
    clock: Clock | None = None,
    books: dict[str, BookPolicy] | None = None,
    schedule: RepriceSchedule | None = None,
    hours: Callable[[datetime], MarketTime] = market_time,
    start: datetime | None = None,
    dry_run: bool = False,
    out: TextIO | None = None,
    fence: Callable[[], bool] | None = None,
) -> App:
    """The loop on ``store`` and ``venue``; what is not given is made from ``settings``
    (and closed with the app: ``async with await build(...) as app``). With no settings
    (a benchmark, a test), the store, the venue and the books must be given.

    ``hours`` says the market's session at an instant (NYSE's calendar, live);
    ``start`` is where a simulated market begins (the clock's time by default). With no
    ``clock``, a venue made here brings its own (a broker's time), otherwise the wall's.
    ``fence``: orders are sent only while it says so (the trading lease held).
    """
    closing = contextlib.AsyncExitStack()
    if settings is None:
        if store is None or venue is None or books is None:
            raise InputError("settings: needed to make a store, a venue or the books")
    else:
        try:
            if store is None:
                store = await closing.enter_async_context(open_store(settings))
            if books is None:
                books = _books(settings)
            if venue is None:
                greeks.load()  # before the clock starts: the first quote would wait for it
                stored = await store.open_positions()
                wiring = Wiring(
                    settings, clock, store, stored, start, out or io.StringIO(), closing,
                    settings.broker, fence,
                )  # fmt: skip
                venue = await VENUES[settings.broker](wiring)
                clock, start = wiring.clock, wiring.start
                await bind_venue(store, wiring.identity)
        except BaseException:
            await closing.aclose()
            raise
    clock = clock or SpeedClock()
    gateway = venue if fence is None else Fenced(venue, fence)
    loop = assemble(
        store, gateway, books, schedule=schedule, subscribe=venue.subscribe,
        unsubscribe=venue.unsubscribe, market_time=hours, dry_run=dry_run, admits=venue,
        connected=venue.connected, poll=30.0 if settings is None else settings.poll,
        reconcile=60.0 if settings is None else settings.reconcile,
    )  # fmt: skip
    return App(settings, store, venue, clock, books, loop, closing, start or clock.now())


async def bind_venue(store: Store, identity: str) -> None:
    """The store's records are of one venue and account: refuse to mix in another's (a
    simulated fill among a real account's records, one account's among another's)."""
    bound = await store.bind(identity)
    if bound != identity:
        raise InputError(
            f"database: its records are {bound}'s, this run is {identity}'s: refusing to mix "
            f"them; give {identity} a database of its own (DATABASE_URL to a new database, "
            "then `spreadwatch db upgrade`), or run with the venue it has"
        )


def _books(settings: Settings) -> dict[str, BookPolicy]:
    from service.inputs import load_books  # noqa: PLC0415  (the TOML reader and the files' models)

    return load_books(settings.books_file)


# The store ----------------------------------------------------------------------------


def _url(settings: Settings) -> str | None:
    return None if settings.database_url is None else settings.database_url.get_secret_value()


@contextlib.contextmanager
def database_url(settings: Settings) -> Iterator[str]:
    """The database's URL: ``DATABASE_URL``, or the embedded server's (started, then
    stopped after the ``with``)."""
    with schema.database(_url(settings), settings.data_dir) as db:
        try:
            yield db.url
        except schema.Unreachable as exc:  # the embedded one: its directory, and the fix
            if not isinstance(db, schema.EmbeddedPostgres):
                raise
            raise schema.Unreachable(db.where(), f"{exc.why}; {db.fix()}") from exc


@contextlib.asynccontextmanager
async def sql_store(url: str, application: str = "spreadwatch") -> AsyncIterator[SqlStore]:
    """The SQL store on ``url`` (its schema as it is), its engine disposed after; its
    connections named ``application`` to the server."""
    engine = schema.engine(url, application)
    try:
        yield SqlStore(engine)
    finally:
        await engine.dispose()


@contextlib.asynccontextmanager
async def open_store(
    settings: Settings, *, upgrade_embedded: bool = True, application: str = "spreadwatch"
) -> AsyncIterator[Store]:
    """The SQL store of ``settings``, its schema at head. The embedded database is
    migrated first (it is spreadwatch's own); a server's must already be at head."""
    with database_url(settings) as url:
        if upgrade_embedded and settings.database_url is None:
            await schema.upgrade(url)
        await schema.require_head(url)
        async with sql_store(url, application) as store:
            yield store


# Around the loop: the HTTP server, the alerts (.around), the trading lease --------------

from service.bootstrap.around import alerter, bind_http, serve_http, serve_loop  # noqa: E402


def lease(settings: Settings, store: Store) -> Lease:
    """This process's side of the account's trading lease, on the SQL store's database
    (the memory store has none: a tool's, which never runs beside another)."""
    from service.app.lease import Lease  # noqa: PLC0415

    if not isinstance(store, SqlStore):
        raise InputError("the trading lease: needs the SQL store")
    s = settings.lease
    return Lease(store, lease_name(settings), ttl=s.ttl, renew=s.renew)


def lease_name(settings: Settings) -> str:
    """This daemon's name as the lease's holder (``lease.name``, else host:pid)."""
    from service.app.lease import default_name  # noqa: PLC0415

    return settings.lease.name or default_name()


def fence(store: Store, epoch: int | None, holding: Callable[[], bool] | None) -> None:
    """The store's writes fenced by the lease's ``epoch`` and ``holding`` (None: unfenced)."""
    if isinstance(store, SqlStore):
        store.fence(epoch, holding)


# The trial tools (the demo's market, the fake IB gateway): .trials, named from here
from service.bootstrap.trials import Demo, Faults, demo, fake_gateway  # noqa: E402
