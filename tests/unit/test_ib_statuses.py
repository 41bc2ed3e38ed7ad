"""Every order status ib_async can give (IB's and its own) has its meaning in the adapter."""

from __future__ import annotations

from ib_async import OrderStatus as IbStatus

from brokers.ib.convert import STATUS
from service.ports import OrderStatus


def ib_async_statuses() -> set[str]:
    """The statuses ``ib_async.OrderStatus`` names (its class-level strings)."""
    return {
        value
        for name, value in vars(IbStatus).items()
        if not name.startswith("_") and isinstance(value, str) and name == value
    }


def test_every_ib_async_status_is_mapped() -> None:
    named = ib_async_statuses()
    assert {"ValidationError", "Inactive", "Submitted"} <= named
    assert named <= set(STATUS)


def test_only_filled_and_cancelled_are_final_inactive_and_validation_error_are_not() -> None:
    """IB's Inactive may pass (ib_async counts it done); ValidationError is a warning."""
    final = {ib for ib, ours in STATUS.items() if ours.final}
    assert final == {"Filled", "Cancelled", "ApiCancelled"}
    assert STATUS["ValidationError"] is OrderStatus.WORKING
