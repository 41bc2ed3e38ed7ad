"""Realised P&L of closing spreads: the one statement of the formula."""

from __future__ import annotations

from decimal import Decimal


def realised_pnl(entry_credit: Decimal, debit: Decimal, multiplier: int, contracts: int) -> Decimal:
    """Dollars made closing ``contracts`` spreads sold at ``entry_credit`` for ``debit``."""
    return (entry_credit - debit) * multiplier * contracts


def pct_of_max(entry_credit: Decimal, debit: Decimal) -> Decimal:
    """The share of the maximum profit (the credit) kept when closing at ``debit``."""
    return (entry_credit - debit) / entry_credit
