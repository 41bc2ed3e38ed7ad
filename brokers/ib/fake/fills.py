"""The fake gateway's executions as IB writes them: a combo fill's BAG execution and
its legs', and each leg's commission report (TWS API, "Executions and Commissions":
``execDetails`` and ``commissionReport``, separate messages).

As IB: the BAG execution carries the combo's own conId (IB's combo conId for USD,
28812380, as IB's own clients write a combo: e.g. Voyz/ibind issue 51, its
``conidex`` "28812380;;;..."), not 0; the executions of one combo fill share the
leading part of their execIds (``<perm id>.<fill><k>.01.01`` here; IB: a
correction differs only after the final period); a leg may be stamped a second
after its BAG; a commission report says "no value" (``UNSET_DOUBLE``) for the
realised P&L and yield it does not give, not 0."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from brokers.ib.fake.base import Session
from brokers.ib.fake.instrument import Instrument
from service.ports import Execution

BAG_CON_ID = 28812380  # IB's conId of a (USD, SMART) combo
COMMISSION_DELAY = 0.05  # seconds a live commission report trails the message before it
LEG_LAG = timedelta(seconds=1)  # a leg's execution time after its BAG's (IB: at times)
UNSET_DOUBLE = 1.7976931348623157e308  # IB's "no value" double (sys.float_info.max)
LegFill = tuple[Instrument, str, Decimal, int]  # instrument, side (BOT | SLD), price, ratio


@dataclass(frozen=True)
class Row:
    """One execDetails: the execution of the BAG, or of a leg (or a single option)."""

    exec_id: str
    contract: list[object]  # the contract's fields, as execDetails writes them
    side: str  # BOT | SLD
    shares: int
    price: Decimal
    time: datetime
    bag: bool = False


def execution_rows(
    prefix: str, action: str, bag: bool, execution: Execution, legs: list[LegFill]
) -> list[Row]:
    """A fill's executions: the BAG's when ``bag`` (at the combo's price, ``action``'s
    side), then each leg's (``execution``'s spreads times its ratio, a second after)."""
    if len(legs) == 1 and not bag and legs[0][3] == 1:  # a single option: its own only
        ins, side, price, _ = legs[0]
        return [Row(f"{prefix}0001.01.01", ins.fields_without_primary(), side,
                    execution.quantity, price, execution.time)]  # fmt: skip
    rows = []
    if bag:
        contract: list[object] = [BAG_CON_ID, legs[0][0].symbol, "BAG", "", 0.0, "", "",
                                  "SMART", "USD", "", ""]  # fmt: skip
        side = "BOT" if action == "BUY" else "SLD"
        rows.append(Row(f"{prefix}0000.01.01", contract, side, execution.quantity,
                        execution.price, execution.time, bag=True))  # fmt: skip
    for k, (ins, side, price, ratio) in enumerate(legs):
        rows.append(Row(f"{prefix}{k + 1:04x}.01.01", ins.fields_without_primary(), side,
                        execution.quantity * ratio, price, execution.time + LEG_LAG))  # fmt: skip
    return rows


def exec_details(req_id: int, order: Any, r: Row, time: str, account: str) -> tuple[object, ...]:
    """execDetails of row ``r`` of ``order``'s fill (``time``: as the gateway writes it)."""
    return (11, req_id, order.order_id, *r.contract, r.exec_id, time, account, "SMART", r.side,
            r.shares, r.price, order.perm_id, order.client_id, 0, r.shares, r.price, order.ref,
            "", "", "", 0)  # fmt: skip


def send_report(s: Session, exec_id: str, amount: Decimal) -> None:
    """commissionReport: IB's "no value" for the realised P&L and yield it does not say."""
    s.send(59, 1, exec_id, amount, "USD", UNSET_DOUBLE, UNSET_DOUBLE, 0)
