"""How a close reads to people: the spec's human line, the daemon's lines, dollar amounts.

Presentation, not rules: the domain (``rules``) hands over ``Close`` values;
the monitor's log and replay's output render them here. Replay prints the spec's
line as it is (:func:`format_close_line`); the daemon's lines
(:func:`daemon_close_line`, :func:`filled_line`) lead with the exchange's time and
carry the position id, so that a line in a day's output can be traced to its
position and to the audit trail, and ``CLOSING:`` / ``FILLED:`` stay findable.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Final

from rules.clock import new_york
from rules.model import Position
from rules.pnl import CENT
from rules.state import Close

_WHOLE: Final = Decimal(1)  # (constants made once: a Decimal(...) in a function is a call)


def dollars(amount: Decimal) -> str:
    """``$1,165.00`` / ``-$50.00``."""
    cents = amount.quantize(CENT)
    return f"-${-cents:,.2f}" if cents < 0 else f"${cents:,.2f}"


def exchange_time(at: datetime) -> str:
    """``2027-03-02 10:01:05 ET``: the exchange's wall clock, as a trader reads the tape."""
    return f"{at.astimezone(new_york()):%Y-%m-%d %H:%M:%S} ET"


def format_close_line(position: Position, close: Close, *, pnl_label: str = "P&L") -> str:
    """The spec's human line: ``CLOSING: SPY put_credit - Profit Target (75%) - ...``."""
    money = dollars(close.pnl)
    # (str pieces: mypyc joins them in one call; a Decimal or an enum in an f-string makes
    # it a str.format call)
    pct = str((close.pct_of_max * 100).quantize(_WHOLE))
    strategy = str(position.strategy)
    return (
        f"CLOSING: {position.underlying} {strategy} - {close.label} - "
        f"{pnl_label}: {money} ({pct}% of max) - "
        f"Closed {close.contracts}/{position.contracts} contracts"
    )


def daemon_close_line(
    position: Position, close: Close, at: datetime, *, dry_run: bool = False
) -> str:
    """The daemon's close line: ``2027-03-02 10:01:05 ET CLOSING: P1 SPY put_credit - ...``;
    ``dry_run``: ``... WOULD CLOSE: P1 ... (dry run: nothing sent)``.

    The P&L is the decision's (at the mark it was decided on), not what the fills will
    realise: said so in the line, the fills' own lines (:func:`filled_line`) say the rest."""
    line = format_close_line(position, close, pnl_label="P&L at the decision's mark")
    rest = line.removeprefix("CLOSING: ")
    if dry_run:
        return f"{exchange_time(at)} WOULD CLOSE: {position.id} {rest} (dry run: nothing sent)"
    return f"{exchange_time(at)} CLOSING: {position.id} {rest}"


@dataclass(frozen=True, slots=True)
class FillSeen:
    """One fill as the daemon says it: what it realised, net of its commission."""

    position: Position
    at: datetime  # the execution's time
    contracts: int
    price: Decimal  # debit per spread
    commission: Decimal  # 0 when the broker has not said it
    realised: Decimal  # net of the commission, to the cent
    total: Decimal  # the position's realised P&L so far, this fill's included
    pending: bool = False  # the commission is not known yet (it comes in a COMMISSION line)


def filled_line(fill: FillSeen) -> str:
    """``2027-03-02 10:01:07 ET FILLED: P1 SPY put_credit - 4 contracts @ 0.35 - ...``."""
    p = fill.position
    commission = "commission pending" if fill.pending else f"commission {dollars(fill.commission)}"
    return (
        f"{exchange_time(fill.at)} FILLED: {p.id} {p.underlying} {p.strategy} - "
        f"{fill.contracts} contracts @ {fill.price:.2f} - {commission}"
        f" - realised P&L: {dollars(fill.realised)} - position realised: {dollars(fill.total)}"
        + (" (before commission)" if fill.pending else "")
    )


def commission_line(
    position_id: str, at: datetime, exec_id: str, amount: Decimal, fill: Decimal, total: Decimal
) -> str:
    """``... COMMISSION: P1 $1.30 more on fill E1 - its commission $2.60 - position
    realised: ...``: a commission report that came after its fill's FILLED line (``fill``:
    that fill's commission now; ``total``: the position's realised P&L, net of it)."""
    return (
        f"{exchange_time(at)} COMMISSION: {position_id} {dollars(amount)} more on fill "
        f"{exec_id} - its commission {dollars(fill)} - position realised: {dollars(total)}"
    )
