"""format_close_line(): the spec's human log line of a close."""

from __future__ import annotations

from decimal import Decimal

from rules.machine import Close, ExitReason, ExitState, evaluate
from service.presentation import format_close_line
from tests.factories import at_dte, filled, put_spread, state_of, vertical_quotes

NOW = at_dte(30)


def decide(state: ExitState, debit: str) -> Close:
    decision = evaluate(state, vertical_quotes(debit, NOW.now), NOW)
    assert isinstance(decision, Close), decision
    return decision


def test_profit_line_of_the_second_tranche() -> None:
    """10 SPY put spreads for 0.55; 4 closed at 0.55 x 0.25 = 0.1375.

    P&L = (0.55 - 0.1375) x 100 x 4 = 0.4125 x 400 = 165.00; 0.4125 / 0.55 = 75%.
    """
    state = state_of(put_spread(contracts=10, credit="0.55"))
    state = filled(state, decide(state, "0.275"))  # tranche 1: 50% of 0.55
    close = decide(state, "0.1375")
    assert format_close_line(state.position, close) == (
        "CLOSING: SPY put_credit - Profit Target (75%) - P&L: $165.00 (75% of max) "
        "- Closed 4/10 contracts"
    )


def test_loss_line_shows_a_negative_dollar_amount() -> None:
    """10 spreads for 1.00 stopped at 1.50: (1.00 - 1.50) x 100 x 10 = -$500.00, -50%."""
    state = state_of(put_spread(contracts=10, credit="1.00"))
    close = decide(state, "1.50")
    assert close.reason is ExitReason.LOSS_STOP
    assert format_close_line(state.position, close) == (
        "CLOSING: SPY put_credit - Loss Stop (150% of credit) - P&L: -$500.00 (-50% of max) "
        "- Closed 10/10 contracts"
    )


def test_line_names_the_underlying_and_the_strategy() -> None:
    """A QQQ position's line starts 'CLOSING: QQQ put_credit - '."""
    state = state_of(put_spread(contracts=2, credit="1.00", underlying="QQQ"))
    close = decide(state, "0.50")
    assert format_close_line(state.position, close) == (
        "CLOSING: QQQ put_credit - Profit Target (50%) - P&L: $100.00 (50% of max) "
        "- Closed 2/2 contracts"
    )


def test_pnl_and_percentage_are_shown_to_cents_and_whole_percent() -> None:
    """Credit 1.00, debit 0.496 on 2 spreads: 0.504 x 100 x 2 = $100.80, 50.4% shown as 50%."""
    state = state_of(put_spread(contracts=2, credit="1.00"))
    close = decide(state, "0.496")
    assert close.pnl == Decimal("100.80")
    assert "P&L: $100.80 (50% of max)" in format_close_line(state.position, close)
