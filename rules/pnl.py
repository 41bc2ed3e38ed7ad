"""Realised P&L of closing spreads: the one statement of the formula."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Final

CENT: Final = Decimal("0.01")


def realised_pnl(entry_credit: Decimal, debit: Decimal, multiplier: int, contracts: int) -> Decimal:
    """Dollars made closing ``contracts`` spreads sold at ``entry_credit`` for ``debit``."""
    return (entry_credit - debit) * multiplier * contracts


def pct_of_max(entry_credit: Decimal, debit: Decimal) -> Decimal:
    """The share of the maximum profit (the credit) kept when closing at ``debit``."""
    return (entry_credit - debit) / entry_credit


def realised_net(
    entry_credit: Decimal, debit: Decimal, multiplier: int, contracts: int, commission: Decimal
) -> Decimal:
    """Dollars a fill realised, net of its commission, to the cent (half up): each fill is
    rounded once, so that a position's and a report's totals are sums of what was shown."""
    gross = realised_pnl(entry_credit, debit, multiplier, contracts)
    return (gross - commission).quantize(CENT, ROUND_HALF_UP)
