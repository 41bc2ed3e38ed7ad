"""The human lines: the spec's line of a close (replay's), the daemon's CLOSING and FILLED
lines."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from rules.books import DEFAULT_BOOKS
from rules.machine import Close, ExitReason, ExitState, evaluate
from service.app.book import PositionBook
from service.app.readmodel import ReadModel
from service.ports import Execution, RealisedRow
from service.presentation import daemon_close_line, exchange_time, format_close_line
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


def test_the_daemons_close_line_leads_with_exchange_time_and_the_position_id() -> None:
    """The spec's line after ``<ET time> CLOSING: <id>``, its P&L said to be the
    decision's (at the mark decided on), not what the fills realise."""
    state = state_of(put_spread(contracts=10, credit="0.55"))
    state = filled(state, decide(state, "0.275"))
    close = decide(state, "0.1375")
    at = datetime(2027, 3, 2, 15, 1, 5, tzinfo=UTC)  # 10:01:05 in New York (EST)
    assert daemon_close_line(state.position, close, at) == (
        "2027-03-02 10:01:05 ET CLOSING: put-1 SPY put_credit - Profit Target (75%) - "
        "P&L at the decision's mark: $165.00 (75% of max) - Closed 4/10 contracts"
    )


def test_exchange_time_follows_new_york_daylight_saving() -> None:
    """After the second Sunday of March New York is UTC-4."""
    assert exchange_time(datetime(2027, 3, 15, 14, 0, tzinfo=UTC)) == "2027-03-15 10:00:00 ET"


def test_a_fill_line_says_what_it_realised_net_of_commission_and_the_running_total() -> None:
    """10 SPY put spreads sold at 0.55 (x100). 4 bought back at 0.14 with $5.20 commission:
    (0.55 - 0.14) x 100 x 4 - 5.20 = 158.80; then 6 at 0.30 with none said (0):
    (0.55 - 0.30) x 100 x 6 = 150.00, 308.80 in all."""
    views = ReadModel(PositionBook(dict(DEFAULT_BOOKS), subscribe=lambda leg: None))
    position = put_spread(contracts=10, credit="0.55")
    at = datetime(2027, 3, 2, 15, 1, 7, tzinfo=UTC)
    views.filled(position, Execution("E1", "put-1:1:1", 4, Decimal("0.14"), Decimal("5.20"), at))
    views.filled(position, Execution("E2", "put-1:stop:1", 6, Decimal("0.30"), Decimal(0), at))
    assert views.fill_lines() == [
        "2027-03-02 10:01:07 ET FILLED: put-1 SPY put_credit - 4 contracts @ 0.14 - "
        "commission $5.20 - realised P&L: $158.80 - position realised: $158.80",
        "2027-03-02 10:01:07 ET FILLED: put-1 SPY put_credit - 6 contracts @ 0.30 - "
        "commission $0.00 - realised P&L: $150.00 - position realised: $308.80",
    ]
    assert views.realised == {"put-1": Decimal("308.80")}
    assert [f.realised for f in views.fills_since(1)] == [Decimal("150.00")]


def test_a_fills_running_total_carries_on_from_what_the_store_had() -> None:
    """On load the store's fills seed the totals: a restart does not start them at 0."""
    views = ReadModel(PositionBook(dict(DEFAULT_BOOKS), subscribe=lambda leg: None))
    position = put_spread(contracts=10, credit="1.00")
    at = datetime(2027, 3, 2, 15, 1, 7, tzinfo=UTC)
    before = RealisedRow(
        "put-1", "PRIMARY", "profit_target", "put-1:0:1", "E0", at, 4, Decimal("0.5"), Decimal(0),
        Decimal("200.00"),
    )  # fmt: skip
    views.realised_before([before])
    views.filled(position, Execution("E1", "put-1:1:1", 1, Decimal("0.25"), Decimal("1.30"), at))
    assert views.fill_lines()[0].endswith("realised P&L: $73.70 - position realised: $273.70")
