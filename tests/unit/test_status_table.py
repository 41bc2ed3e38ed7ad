"""``spreadwatch status``'s table: nearest trigger first, coloured on a terminal only (red:
reached or needs attention; yellow: under a quarter of its way left; green: further)."""

from __future__ import annotations

import re
from dataclasses import replace
from decimal import Decimal

from rules.evaluate import DEFAULT_RATES
from rules.model import Quote
from service.app.distances import PositionView, ordered, position_view
from service.cli.status import GREEN, RED, YELLOW, render
from service.http.api import positions_json
from tests.factories import at_dte, put_spread, state_of

D = Decimal
AT = at_dte(30)


def seen(pid: str, short: str | None, attention: tuple[str, ...] = ()) -> PositionView:
    """A PRIMARY put spread for 1.00 at 30 DTE, its short put at ``short`` (None: no quotes)."""
    state = state_of(replace(put_spread(), id=pid))
    quotes: list[Quote | None] = [None, None]
    if short is not None:
        s = D(short)
        quotes = [Quote(s, s, AT.now, -0.2), Quote(D("0.20"), D("0.20"), AT.now, -0.1)]
    return position_view(state, quotes, AT, DEFAULT_RATES, attention=attention)


def body() -> dict[str, object]:
    views = [
        seen("far", None),  # the time stop 0.375 of its way off
        seen("near", "0.75"),  # 0.05 points to its first target: 0.1 left
        seen("stopped", "1.70"),  # a 1.50 debit: the loss stop reached
        seen("held", None, ("close rejected by the broker",)),
    ]
    attention = {"held": "close rejected by the broker", "unwatched": "book X: not in the books"}
    return positions_json(ordered(views), [], AT.now, "daemon", attention)


SGR = re.compile(r"\x1b\[([0-9;]*)m")
CODES = {"31": RED, "33": YELLOW, "32": GREEN}  # the terminal's codes for rich's colours


def test_on_a_terminal_rows_are_coloured_by_their_nearest_trigger() -> None:
    lines = render(body(), tty=True).splitlines()
    rows = lines[3:7]
    coloured = {SGR.sub("", line).split()[0]: {CODES[c] for c in SGR.findall(line) if c in CODES}
                for line in rows}  # fmt: skip
    assert coloured == {"stopped": {RED}, "near": {YELLOW}, "far": {GREEN}, "held": {RED}}
    assert "! held: close rejected by the broker" in lines
    assert "! unwatched: book X: not in the books" in lines  # needs a human, not in the table


def test_off_a_terminal_the_same_table_has_no_colour_and_is_nearest_first() -> None:
    text = render(body(), tty=False)
    assert "\x1b[" not in text
    lines = text.splitlines()
    assert [line.split()[0] for line in lines[3:7]] == ["stopped", "near", "far", "held"]
    assert " ".join(lines[3].split()[8:14]) == "Loss Stop (150% of credit) reached"
    assert " ".join(lines[4].split()[8:13]) == "Profit Target (50%) 0.0500 pts"  # 0.55 - 0.5000
    assert lines[-1] == "today: 0 fill(s), realised 0"
