"""``spreadwatch fake-gateway``: a fake IB Gateway on the simulated market.

It lets users try the Interactive Brokers path (``spreadwatch run`` with
``broker = "ib"``, or the Docker stack) with no IB account. The market has
an underlying per underlying of the positions file (the shipped examples by
default), each starting 5% out of the money of its first spread's short
strike, as ``spreadwatch run`` places them; the paper account holds every
position's legs. It speaks the TWS API (see :mod:`brokers.ib.fake`) until
SIGINT or SIGTERM. SIGUSR1 drops every client connection; SIGUSR2 sends IB's
1100 (connectivity lost), and the next SIGUSR2 1102 (restored, data kept)
or, with ``--restore 1101``, 1101 (restored, data lost: lines to request
again). Flags start it with faults: delayed data only, bad quotes,
rejections, a line limit, partial fills. ``--script FILE`` moves its market at given
times (:mod:`brokers.ib.fake.script`); ``--ledger FILE`` writes what it sees, one JSON
line per order received and execution sent (:mod:`brokers.ib.fake.ledger`).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

from service import bootstrap
from service.bootstrap import Faults
from service.cli.term import EXAMPLES
from service.clock import SpeedClock
from service.errors import InputError
from service.inputs import load_books, load_positions
from service.settings import Settings


async def run_fake_gateway(
    settings: Settings,
    out: TextIO,
    *,
    host: str = "127.0.0.1",
    port: int = 4002,
    positions_file: Path | None = None,
    account: str = "DU1234567",
    speed: float = 1.0,
    start: datetime | None = None,
    duration: timedelta | None = None,
    stop: asyncio.Event | None = None,
    faults: Faults | None = None,
    restore: int = 1102,
    farm_flap: float | None = None,
    script: Path | None = None,
    ledger: Path | None = None,
) -> int:
    source = positions_file or EXAMPLES
    positions = load_positions(source, load_books(settings.books_file))
    clock = SpeedClock(start, speed)
    gateway = bootstrap.fake_gateway(positions, clock, clock.start, account, faults or Faults(),
                                     script=script, ledger=ledger)  # fmt: skip
    try:
        bound = await gateway.start(host, port)
    except OSError as exc:
        raise InputError(f"--port: cannot listen on {host}:{port}: {exc.strerror}") from exc
    out.write(
        f"fake IB gateway on {host}:{bound}: account {account}, "
        f"{len(positions)} positions' legs held ({source}), "
        f"underlyings {', '.join(sorted({p.underlying for p in positions}))}\n"
    )
    out.flush()
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    _on_signals(loop, gateway, stop, restore)
    clock.restart()
    ticking = asyncio.create_task(gateway.run())
    flapping = None if farm_flap is None else asyncio.create_task(gateway.flap_farms(farm_flap))
    try:
        timeout = None if duration is None else duration.total_seconds() / speed
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1, signal.SIGUSR2):
            loop.remove_signal_handler(sig)
        ticking.cancel()
        if flapping is not None:
            flapping.cancel()
        await gateway.close()
    out.write("fake IB gateway stopped\n")
    return 0


def _on_signals(
    loop: asyncio.AbstractEventLoop, gateway: Any, stop: asyncio.Event, restore: int
) -> None:
    """SIGINT, SIGTERM: stop; SIGUSR1: every connection dropped; SIGUSR2: IB's 1100, then
    ``restore`` at the next one."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    lost = [False]

    def connectivity() -> None:
        lost[0] = not lost[0]
        if lost[0]:
            gateway.say(1100, "Connectivity between IB and Trader Workstation has been lost.")
        else:
            kept = "maintained" if restore == 1102 else "lost"
            gateway.say(restore, "Connectivity between IB and Trader Workstation has been "
                        f"restored - data {kept}.")  # fmt: skip

    loop.add_signal_handler(signal.SIGUSR1, gateway.drop)
    loop.add_signal_handler(signal.SIGUSR2, connectivity)
