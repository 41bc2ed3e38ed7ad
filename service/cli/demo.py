"""``spreadwatch demo``: a scripted session on the simulated market, every exit type.

The script (five spreads and the moves that close them) is
:mod:`brokers.sim.demo`; the monitor, the order desk and the store are the
ones the daemon uses (:func:`service.bootstrap.build`), on a clock that runs
as fast as the machine goes. It prints each close as it happens, then a table
of each position's exits and contracts remaining.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import TextIO

from service import bootstrap
from service.cli.admin import table
from service.ports import Store
from service.settings import Settings

MINUTES = 12
STEP = timedelta(milliseconds=250)


def demo(settings: Settings, out: TextIO) -> int:
    """The scripted session, on a database of its own: an embedded PostgreSQL in the data
    directory's ``demo`` (migrated by itself), never the user's (``DATABASE_URL``'s or
    the daemon's embedded one), whose records are a real venue's."""
    own = settings.model_copy(update={"database_url": None, "data_dir": demo_dir(settings)})

    async def go() -> int:
        async with bootstrap.open_store(own) as store:
            code = await run_demo(own, store, out)
        out.write(f"\n(the demo's own database, in {own.data_dir}; yours is not touched)\n")
        return code

    return asyncio.run(go())


def demo_dir(settings: Settings) -> Path:
    """Where the demo keeps its own database."""
    return settings.data_dir / "demo"


async def _prefix(store: Store) -> str:
    """``demoN``: N the run, so a second demo on the same database adds new positions."""
    taken = {s.position.id for s in await store.all_positions()}
    return f"demo{1 + sum(1 for pid in taken if pid.startswith('demo') and pid.endswith('-SPY'))}"


async def run_demo(settings: Settings, store: Store, out: TextIO) -> int:
    """The scripted session on ``store``; prints each close, then the table."""
    scene = bootstrap.demo(await _prefix(store))
    positions, clock, venue = scene.positions, scene.clock, scene.venue
    await store.import_positions(positions, "DEMO")
    async with await bootstrap.build(
        settings, store=store, venue=venue, clock=clock, schedule=scene.schedule
    ) as app:
        loop = app.loop
        start = clock.now_
        await loop.load(start, {p.id for p in positions})
        shown = 0
        while clock.now_ < start + timedelta(minutes=MINUTES):
            clock.now_ += STEP
            now = clock.now_
            await loop.step(now, *venue.step(now))
            out.writelines(f"{line}\n" for line in loop.views.close_lines(shown))
            shown = loop.views.closes
    rows = []
    for p in positions:
        detail = await store.detail(p.id)
        exits = ", ".join(f"{o.label} x{o.filled}" for o in detail.orders if o.filled)
        rows.append(
            [p.id, p.strategy.value, exits or "-", f"{detail.stored.remaining}/{p.contracts}"]
        )
    out.write("\n" + table(["position", "strategy", "exits (filled)", "remaining"], rows))
    return 0
