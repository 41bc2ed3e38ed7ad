"""What an ib_async order status, and the error IB sent with it, mean for the service.

ib_async (``ib_async/wrapper.py``, ``Wrapper.error``) turns IB's error messages on an
order into statuses of its own:

- a warning (codes 105, 110, 165, 321, 329, 399, 404, 434, 492, 10167 and 2100-2199;
  110 is an error on a new order) sets the status ``ValidationError``, not final
  (``OrderStatus.ActiveStates`` in ``ib_async/order.py``): the order still works
  as it did, or, for 321 ("Error validating request") on an order IB never
  acknowledged, it never went out (IB Gateway's read-only API answers every
  placeOrder so);
- any other error on an order that is not done sets ``Cancelled``, the error in the
  trade's log: an order IB refused (201, 103 duplicate order id, 110 on a new order,
  463...) or one it ended (10147: a cancel of an order it does not know).

IB's ``Inactive`` (TWS API, "Possible Order States": accepted, but inactive for now
because of system, exchange or other issues) may pass: ib_async puts it in
``DoneStates``, the adapter does not.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from brokers.ib.codes import CANCELLED, READ_ONLY, REJECTED
from brokers.ib.convert import STATUS
from service.ports import OrderStatus

VALIDATION_ERROR, INACTIVE = "ValidationError", "Inactive"


@dataclass(frozen=True)
class Verdict:
    """The service's status for an ib_async status (None: no event), the reason with
    IB's code and text, and a warning to log (IB's code and text) when there is one."""

    status: OrderStatus | None
    reason: str = ""
    code: int = 0
    text: str = ""


def ib_text(message: str) -> str:
    """IB's own text in an ib_async trade log message ("Error 201, reqId 5: <IB's
    text>[, contract: ...]")."""
    return message.split(": ", 1)[-1].split(", contract", maxsplit=1)[0]


def judge(trade: Any, acknowledged: bool) -> Verdict:
    """The verdict on ``trade``'s status now; ``acknowledged``: IB said the order works
    (the service was told it is working) before."""
    ib_status = trade.orderStatus.status
    last = trade.log[-1] if trade.log else None
    code = last.errorCode if last is not None and last.status == ib_status else 0
    text = ib_text(last.message) if code and last is not None else ""
    if ib_status == VALIDATION_ERROR:
        if code == READ_ONLY and not acknowledged:  # refused before it went out
            return Verdict(OrderStatus.REJECTED, f"{code}: {text}", code, text)
        return Verdict(None, code=code, text=text)  # a warning: it works as it did
    if ib_status == INACTIVE:
        return Verdict(None, code=code, text=text)
    status = STATUS.get(ib_status)
    if status is OrderStatus.CANCELLED and code and code != CANCELLED:  # IB's error ended it
        refused = code == REJECTED or not acknowledged
        ended = OrderStatus.REJECTED if refused else OrderStatus.CANCELLED
        return Verdict(ended, f"{code}: {text}", code, text)
    return Verdict(status)
