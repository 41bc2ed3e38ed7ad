"""``spreadwatch status``: each open position's distance to every trigger, nearest first.

Read from the running daemon's API (``/api/positions`` on ``http_host:http_port``) or,
when none answers, from the database: then the marks (quotes, debits, P&L, deltas) are
blank and only what the store knows is shown (DTE and the time stop, the exit state,
the working order, realised P&L, needs attention). One table, drawn by rich: each row
coloured by its nearest trigger on a terminal only; ``--json`` prints the API's body;
``--watch`` keeps it live in place (rich's Live) every ``--every`` seconds until Ctrl-C
(off a terminal: each refresh printed after the last).
"""

from __future__ import annotations

import io
import json
import urllib.error
import urllib.request
from collections.abc import Mapping
from datetime import UTC, datetime, time
from decimal import Decimal
from time import sleep
from typing import Any, TextIO

from rich import box
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from rules.clock import market_time, new_york
from rules.greeks import Rates
from service.app.book import exit_state
from service.app.distances import NEAR, FillView, PositionView, ordered, position_view
from service.cli.admin import realised_by_position, with_store
from service.http.api import positions_json
from service.inputs import load_books
from service.ports import Store
from service.settings import Settings

TIMEOUT = 2.0  # seconds for the daemon to answer before the database is read instead
COLUMNS = (
    "id", "spread", "left", "debit", "P&L", "% max", "DTE", "nearest", "to go", "order",
    "realised",
)  # fmt: skip
RED, YELLOW, GREEN = "red", "yellow", "green"  # a row's colour: its nearest trigger's
WIDTH = 160  # columns off a terminal (a terminal's own width on one)


def daemon_url(settings: Settings) -> str:
    """Where the daemon's API answers on this machine (an any-interface bind: loopback)."""
    host = settings.http_host
    host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
    return (
        f"http://[{host}]:{settings.http_port}"
        if ":" in host
        else f"http://{host}:{settings.http_port}"
    )


def from_daemon(settings: Settings) -> dict[str, Any] | None:
    """The body of the daemon's ``/api/positions``, or None when no daemon answers."""
    if not settings.http or settings.http_port == 0:
        return None
    request = urllib.request.Request(f"{daemon_url(settings)}/api/positions")
    if settings.http_token is not None:
        request.add_header("Authorization", f"Bearer {settings.http_token.get_secret_value()}")
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as answer:
            body: dict[str, Any] = json.load(answer)
            return body
    except (OSError, ValueError):  # refused, timed out, not our JSON: no daemon here
        return None


def from_database(settings: Settings) -> dict[str, Any]:
    """The same body from the store alone: no quotes, so no marks."""
    books = load_books(settings.books_file)
    now = datetime.now(UTC)
    at = market_time(now)

    async def read(store: Store) -> tuple[list[PositionView], list[FillView], dict[str, str]]:
        watched = [p for p in await store.open_positions() if p.watched]
        attention = {p.position.id: p.attention for p in watched if p.attention is not None}
        for p in watched:
            if p.position.book not in books:  # (the daemon would not watch it either)
                attention[p.position.id] = f"book {p.position.book}: not in the books"
        positions = [p for p in watched if p.position.book in books]
        live = {o.position_id: o for o in await store.live_orders()}
        realised = realised_by_position(await store.realised())
        day = datetime.combine(at.session_date, time.min, new_york())
        fills = [
            FillView(r.position_id, r.time, r.contracts, r.price, r.realised)
            for r in await store.realised(since=day)
        ]
        views = [
            position_view(
                exit_state(p, books[p.position.book], live.get(p.position.id)),
                [None] * len(p.position.legs),
                at,
                Rates(),
                realised=realised.get(p.position.id, Decimal(0)),
                attention=() if p.attention is None else (p.attention,),
                fills=[f for f in fills if f.position == p.position.id],
            )
            for p in positions
        ]
        return views, fills, attention

    views, fills, attention = with_store(settings, read)
    return positions_json(ordered(views), fills, now, "database", attention)


def _cell(value: Any, suffix: str = "") -> str:
    return "-" if value is None else f"{value}{suffix}"


def _pct(share: str | None) -> str:
    return "-" if share is None else f"{(Decimal(share) * 100).quantize(Decimal('0.1'))}%"


def _to_go(trigger: Mapping[str, Any]) -> str:
    distance = trigger["distance"]
    if distance is None:
        return "-"
    if trigger["reached"]:
        return "reached"
    return {"points": f"{distance} pts", "delta": f"{distance} delta"}.get(
        trigger["unit"], f"{distance} days"
    )


def row(p: Mapping[str, Any]) -> list[str]:
    near = next((t for t in p["triggers"] if t["reason"] == p["nearest"]), None)
    return [
        p["id"] + (" !" if p["attention"] else ""),
        f"{p['underlying']} {p['strategy']}",
        f"{p['remaining']}/{p['contracts']}",
        _cell(p["debit"]),
        _cell(None if p["pnl"] is None else f"{Decimal(p['pnl']):,.2f}", ""),
        _pct(p["pnl_pct"]),
        f"{p['dte']}/{p['time_stop_dte']}",
        "-" if near is None else near["label"],
        "-" if near is None else _to_go(near),
        _order(p["order"]),
        f"{Decimal(p['realised']):,.2f}",
    ]


def _order(order: Mapping[str, Any] | None) -> str:
    """``profit_target 2/4 @ 0.55 step 1``: the working close (- : none)."""
    if order is None:
        return "-"
    limit = "" if order["limit"] is None else f" @ {order['limit']}"
    step = "" if order["step"] is None else f" step {order['step']}"
    return f"{order['reason']} {order['filled']}/{order['contracts']}{limit}{step}"


def colour(p: Mapping[str, Any]) -> str:
    near = next((t for t in p["triggers"] if t["reason"] == p["nearest"]), None)
    if p["attention"] or (near is not None and near["reached"]):
        return RED
    if near is not None and near["left"] is not None and Decimal(near["left"]) < NEAR:
        return YELLOW
    return GREEN


def renderable(body: Mapping[str, Any], tty: bool) -> Group:
    """The heading, the table (nearest trigger first; on a terminal, each row in its
    nearest trigger's colour), each attention reason, today's fills."""
    positions = body["positions"]
    head = f"{len(positions)} open position(s) at {body['at']} (from the {body['source']})"
    if body["source"] == "database":
        head += "\nno daemon answers: marks are blank"
    grid = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, highlight=False)
    ids = max((len(p["id"]) + 2 for p in positions), default=2)  # (" !": needs a human)
    for name in COLUMNS:  # an id whole; on a narrow terminal the other cells fold
        grid.add_column(
            name, no_wrap=name == "id", min_width=ids if name == "id" else None, overflow="fold"
        )  # fmt: skip  (folded, never cut short)
    for p in positions:
        grid.add_row(*row(p), style=colour(p) if tty else None)
    notes = [f"! {a['position']}: {a['reason']}" for a in body["attention"]]
    today = f"today: {len(body['fills_today'])} fill(s), realised {body['realised_today']}"
    parts: list[Any] = [Text(head), *([grid] if positions else []), *map(Text, notes)]
    return Group(*parts, Text(today))


def render(body: Mapping[str, Any], tty: bool) -> str:
    """:func:`renderable` as text: with colour on a terminal only."""
    console = _console(io.StringIO(), tty)
    console.print(renderable(body, tty))
    return console.file.getvalue()  # type: ignore[attr-defined,no-any-return]


def _console(out: TextIO, tty: bool) -> Console:
    """Rich's console on ``out``: colour when ``tty``; a terminal's width, else WIDTH."""
    width = None if out.isatty() else WIDTH
    return Console(file=out, force_terminal=tty, no_color=not tty, highlight=False,
                   width=width, soft_wrap=False)  # fmt: skip


def status(settings: Settings, out: TextIO, *, as_json: bool, watch: bool, every: float) -> int:
    """Print the table (or the JSON) once, or every ``every`` seconds while ``watch``: in
    place on a terminal (rich's Live), one after the other off one."""
    tty = out.isatty()
    try:
        if watch and tty and not as_json:
            with Live(console=_console(out, tty), auto_refresh=False) as live:
                while True:
                    live.update(renderable(_read(settings), tty), refresh=True)
                    sleep(every)
        while True:
            body = _read(settings)
            out.write(json.dumps(body, indent=2) + "\n" if as_json else render(body, tty))
            out.flush()
            if not watch:
                return 0
            sleep(every)
    except KeyboardInterrupt:
        if watch:  # the way a watch ends
            return 0
        raise


def _read(settings: Settings) -> dict[str, Any]:
    return from_daemon(settings) or from_database(settings)
