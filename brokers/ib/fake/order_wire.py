"""The fake gateway's reading of a ``placeOrder`` message (as ib_async 2.1 writes it
to a server of version 176: ``ib_async/client.py``, ``Client.placeOrder``), and the
texts IB answers some orders with."""

from __future__ import annotations

from decimal import Decimal

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
