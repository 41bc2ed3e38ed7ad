"""The monitor's sessions of tests/unit/test_monitor.py once more on a real PostgreSQL:
the same tests, collected here with a ``run`` on this test's own database."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.unit.test_monitor import (
    session,
    test_a_quiet_market_closes_nothing,
    test_a_quiet_market_is_kept_by_the_screens_and_still_read_as_fresh,
    test_a_rally_takes_every_profit_tranche_40_40_20,
    test_a_selloff_fires_the_loss_stop_for_everything,
    test_partial_fills_land_as_they_come,
)

__all__ = [
    "test_a_quiet_market_closes_nothing",
    "test_a_quiet_market_is_kept_by_the_screens_and_still_read_as_fresh",
    "test_a_rally_takes_every_profit_tranche_40_40_20",
    "test_a_selloff_fires_the_loss_stop_for_everything",
    "test_partial_fills_land_as_they_come",
]


@pytest.fixture
def run(db_url: str) -> Callable[..., Any]:
    """A session on the database ``db_url``."""
    return lambda move, minutes, **broker: session(move, db_url, minutes, **broker)
