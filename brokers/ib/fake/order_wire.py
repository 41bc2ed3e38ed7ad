"""The fake gateway's reading of a ``placeOrder`` message (as ib_async 2.1 writes it
to a server of version 176: ``ib_async/client.py``, ``Client.placeOrder``), and the
texts IB answers some orders with."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from brokers.ib.fake.versions import (
    MIN_SERVER_VER_AUTO_CANCEL_PARENT,
    MIN_SERVER_VER_DURATION,
    MIN_SERVER_VER_FA_PROFILE_DESUPPORT,
    MIN_SERVER_VER_PEGBEST_PEGMID_OFFSETS,
    MIN_SERVER_VER_POST_TO_ATS,
    before,
    since,
)
from rules.clock import OPEN, new_york

UNSET = 1e300  # IB's "no value" double (1.7976931348623157e308), written as such

# placeOrder's fixed fields: the contract (conId .. secId) from 2, then the order
ACTION, QUANTITY, ORDER_TYPE, LIMIT, ORDER_REF = 16, 17, 18, 19, 26
SEC_TYPE, FIRST_LEG_COUNT = 4, 35  # after ``hidden`` (34): a BAG's combo legs

# IB's texts (TWS API message codes; the read-only one as IB Gateway writes it, e.g.
# IbcAlpha/IBC issue 10: "Error validating request:-'bh' : cause - The API interface
# is currently in Read-Only mode.")
READ_ONLY_TEXT = (
    "Error validating request:-'bh' : cause - The API interface is currently in Read-Only mode."
)
PRICE_INCREMENT_TEXT = (
    "The price does not conform to the minimum price variation for this contract."
)
TICK = Decimal("0.01")  # the fake's minimum price variation for every option and combo


def _skip(fields: list[str], at: int, count_at: int, width: int) -> int:
    """The index after a counted group: the count at ``count_at``, ``width`` fields each."""
    return count_at + 1 + width * int(fields[count_at] or 0)


def what_if(fields: list[str]) -> bool:
    """Whether a placeOrder message is a what-if (``Order.whatIf``): its field comes after
    groups whose length varies, walked here in the order ib_async writes them."""
    i = FIRST_LEG_COUNT
    if fields[SEC_TYPE] == "BAG":
        i = _skip(fields, i, i, 8)  # combo legs
        i = _skip(fields, i, i, 1)  # order combo legs (a price each)
        i = _skip(fields, i, i, 2)  # smart combo routing params (tag, value)
    i += 7 + 1  # "", discretionaryAmt .. faPercentage; faProfile (server version < 177)
    if fields[i + 22]:  # deltaNeutralOrderType
        i += 8
    i += 24  # modelCode .. deltaNeutralAuxPrice
    increment = fields[i + 6]  # scalePriceIncrement
    i += 7  # continuousUpdate .. scalePriceIncrement
    if increment and 0 < float(increment) < UNSET:
        i += 7
    i += 4  # scaleTable, activeStartTime, activeStopTime, hedgeType
    if fields[i - 1]:
        i += 1  # hedgeParam
    i += 4  # optOutSmartRouting, clearingAccount, clearingIntent, notHeld
    i += 4 if fields[i] == "1" else 1  # a delta-neutral contract
    if fields[i]:  # algoStrategy, and its params
        i = _skip(fields, i, i + 1, 2)
    else:
        i += 1
    i += 1  # algoId
    return fields[i] == "1"


def off_tick(limit: Decimal) -> bool:
    """A limit that is not a whole number of the minimum price variation (IB's 110)."""
    return limit % TICK != 0


def held_text(action: str, quantity: int, ref: str, now: datetime) -> str:
    """IB's warning 399 for a DAY order placed outside regular hours: it waits for the open
    (IB: "Order Message: ... Warning: your order will not be placed at the exchange until
    <time> US/Eastern")."""
    day = now.astimezone(new_york())
    opens = datetime.combine(day.date(), OPEN, new_york())
    while opens <= day or opens.weekday() >= 5:
        opens = datetime.combine(opens.date() + timedelta(days=1), OPEN, new_york())
    return (
        f"Order Message:\n{action} {quantity} {ref or 'BAG'}\nWarning: your order will not "
        f"be placed at the exchange until {opens:%Y-%m-%d %H:%M:%S} US/Eastern"
    )


def _contract_and_legs(order: Any) -> tuple[list[object], list[object]]:
    """An order's contract fields (conId .. tradingClass; a BAG's with conId 0) and its
    combo legs (the count, then 8 fields a leg), as openOrder and completedOrder write
    them."""
    legs: list[object] = [len(order.legs) if order.bag else 0]
    for ins, ratio, action in order.legs if order.bag else ():
        legs += [ins.con_id, ratio, action, "SMART", 0, 0, "", -1]
    contract = order.contract
    if order.bag:
        symbol = order.legs[0][0].symbol if order.legs else ""
        contract = [0, symbol, "BAG", "", 0.0, "", "", "SMART", "USD", "", ""]
    return contract, legs


def completed_order(order: Any, account: str) -> tuple[object, ...]:
    """completedOrder (message 101, no version field) as server version 176 writes it: the
    order's final status, the quantity filled and when it was done (ib_async's
    ``Decoder.completedOrder``; IB's ``ibapi/decoder.py``, ``processCompletedOrderMsg``)."""
    contract, legs = _contract_and_legs(order)
    done = order.ended.astimezone(new_york()) if order.ended is not None else None
    return (
        101,
        *contract,
        order.action, order.quantity, "LMT", order.limit, "", "DAY", "", account,
        "", 0, order.ref, order.perm_id, 0, 0, 0.0, "", "", "", "",  # openClose .. faPercentage
        before(MIN_SERVER_VER_FA_PROFILE_DESUPPORT, ""),  # faProfile
        "", "", "", "", "", 0, "", -1,  # modelCode .. exemptCode
        "", "", "", "", "", "", 0, 0, "", 0, 0, "", 0, "", "",  # startingPrice .. deltaNeutral
        0, 0, "", "", "",  # continuousUpdate .. comboLegsDescrip
        *legs,
        0, 0,  # order combo legs, smart combo routing params
        "", "", "",  # scale init level size, subs level size, price increment
        "",  # hedge type
        "", "", 0, 0,  # clearing account/intent, notHeld, no delta-neutral contract
        "",  # algo strategy
        0, order.status, 0, 0,  # solicited, the status, randomize size/price
        0,  # conditions
        "", "", "", 0, 0, "",  # trailStopPrice .. autoCancelDate
        order.filled, 0, 0, "", 0, 0, 0,  # filledQuantity .. parentPermId
        f"{done:%Y%m%d %H:%M:%S} America/New_York" if done else "", order.status,
        since(MIN_SERVER_VER_PEGBEST_PEGMID_OFFSETS, "", "", "", "", ""),  # minTradeQty ..
    )  # fmt: skip


def open_order(order: Any, account: str, *, what_if: bool = False) -> tuple[object, ...]:
    """openOrder as server version 176 writes it (faProfile included, before 177); a
    what-if's carries ``whatIf`` and the margin the order would take."""
    contract, legs = _contract_and_legs(order)
    margin = ["0.0", "0.0", "0.0", "1000.0", "1000.0", "0.0", "1000.0", "1000.0", "0.0",
              1.3, 1.3, 1.3, "USD", ""] if what_if else [""] * 14  # fmt: skip
    return (
        5, order.order_id,
        *contract,
        order.action, order.quantity, "LMT", order.limit, "", "DAY", "", account,
        "", 0, order.ref, order.client_id, order.perm_id, 0, 0, 0.0, "", "", "", "", "",
        before(MIN_SERVER_VER_FA_PROFILE_DESUPPORT, ""),  # faProfile
        "", "", "", "", "", 0, "", -1, 0, "", "", "", "", "", 0, 0, 0, 0, "", 0, 0, 0, 0,
        0, 0, "", 0, "", "",  # modelCode .. deltaNeutralAuxPrice
        0, 0, "", "", "", "", "",  # continuousUpdate .. comboLegsDescrip
        *legs,
        0, 0,  # order combo legs, smart combo routing params
        "", "", "",  # scale init level size, subs level size, price increment
        "",  # hedge type
        0, "", "", 0, 0,  # optOutSmartRouting, clearing account/intent, notHeld, no DNC
        "",  # algo strategy
        0, int(what_if), order.status, *margin, 0, 0,
        0,  # conditions
        "", "", "", "", "", "", "", 0, "", "", "", "", 0, 0, "", 0,
        since(MIN_SERVER_VER_DURATION, ""), since(MIN_SERVER_VER_POST_TO_ATS, ""),
        since(MIN_SERVER_VER_AUTO_CANCEL_PARENT, 0),
        since(MIN_SERVER_VER_PEGBEST_PEGMID_OFFSETS, "", "", "", "", ""),  # minTradeQty ..
    )  # fmt: skip
