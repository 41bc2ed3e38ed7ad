"""What an ib_async trade's status, and the error IB sent with it, mean for the service
(brokers.ib.verdicts), on ib_async's own Trade objects as its Wrapper.error leaves them:
an error on a trade not done sets Cancelled with a log entry carrying the code; a warning
sets ValidationError so."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from ib_async import Contract, LimitOrder, OrderStatus, Trade, TradeLogEntry

from brokers.ib.verdicts import judge

T = datetime(2026, 12, 7, 15, tzinfo=UTC)


def trade_after(status: str, code: int = 0, text: str = "") -> Trade:
    """A trade whose last news is ``status``, with IB's ``code`` and ``text`` as ib_async
    logs an error or a warning ("Error 103, reqId 7: <IB's text>")."""
    kind = "Warning" if status == "ValidationError" else "Error"
    message = f"{kind} {code}, reqId 7: {text}" if code else ""
    log = [TradeLogEntry(T, "PendingSubmit"), TradeLogEntry(T, status, message, code)]
    return Trade(Contract(secType="BAG"), LimitOrder("BUY", 1, 0.5, orderId=7),
                 OrderStatus(orderId=7, status=status), [], log)  # fmt: skip


@pytest.mark.parametrize(
    ("code", "text"),
    [
        (201, "Order rejected - reason:no trading permissions"),
        (103, "Duplicate order id"),
        (110, "The price does not conform to the minimum price variation for this contract."),
        (463, "You must enter a valid price."),
    ],
)
def test_an_error_on_an_order_ib_never_took_is_a_rejection_with_code_and_text(
    code: int, text: str
) -> None:
    verdict = judge(trade_after("Cancelled", code, text), acknowledged=False)
    assert (verdict.status, verdict.reason) == ("rejected", f"{code}: {text}")


def test_an_error_that_ends_a_working_order_is_a_cancel_with_code_and_text() -> None:
    text = "OrderId 7 that needs to be cancelled is not found."
    verdict = judge(trade_after("Cancelled", 10147, text), acknowledged=True)
    assert (verdict.status, verdict.reason) == ("cancelled", f"10147: {text}")


def test_a_rejection_is_one_whenever_it_comes() -> None:
    verdict = judge(trade_after("Cancelled", 201, "Order rejected - reason:x"), True)
    assert verdict.status == "rejected"


def test_ibs_202_is_a_plain_cancel() -> None:
    verdict = judge(trade_after("Cancelled", 202, "Order Canceled - reason:"), True)
    assert (verdict.status, verdict.reason) == ("cancelled", "")


def test_321_before_ib_took_the_order_is_a_rejection() -> None:
    text = (
        "Error validating request:-'bh' : cause - The API interface is currently in Read-Only mode."
    )
    verdict = judge(trade_after("ValidationError", 321, text), acknowledged=False)
    assert (verdict.status, verdict.reason) == ("rejected", f"321: {text}")


@pytest.mark.parametrize("code", [321, 110, 399, 2109])
def test_a_warning_on_a_working_order_is_no_event_but_its_code_and_text(code: int) -> None:
    verdict = judge(trade_after("ValidationError", code, "IB's words"), acknowledged=True)
    assert (verdict.status, verdict.code, verdict.text) == (None, code, "IB's words")


def test_399_on_a_new_order_is_a_warning_the_order_goes_on() -> None:
    """399: held (e.g. until the open); IB works the order later."""
    verdict = judge(trade_after("ValidationError", 399, "Order Message: ..."), False)
    assert verdict.status is None


def test_inactive_is_not_an_end() -> None:
    assert judge(trade_after("Inactive"), acknowledged=True).status is None
