"""How a close reads to people: SPEC.md's human line and dollar amounts.

Presentation, not rules: the domain (``rules``) hands over ``Close`` values;
the monitor's log and replay's output render them here.
"""

from __future__ import annotations

from decimal import Decimal

from rules.model import Position
from rules.state import Close


def dollars(amount: Decimal) -> str:
    """``$1,165.00`` / ``-$50.00``."""
    cents = amount.quantize(Decimal("0.01"))
    return f"-${-cents:,.2f}" if cents < 0 else f"${cents:,.2f}"


def format_close_line(position: Position, close: Close) -> str:
    """SPEC.md's human line: ``CLOSING: SPY put_credit - Profit Target (75%) - ...``."""
    money = dollars(close.pnl)
    pct = (close.pct_of_max * 100).quantize(Decimal(1))
    return (
        f"CLOSING: {position.underlying} {position.strategy.value} - {close.label} - "
        f"P&L: {money} ({pct}% of max) - Closed {close.contracts}/{position.contracts} contracts"
    )
