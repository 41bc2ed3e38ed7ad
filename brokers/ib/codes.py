"""IB's numbers, in one place: its error and notice codes, what the adapter does on
each, and the market data types.

:class:`brokers.ib.notices.NoticesMixin` acts on :data:`CODES`; the fake gateway
(:mod:`brokers.ib.fake`) sends the same codes.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

# Connectivity (IB Gateway or TWS to IB's servers)
CONNECTIVITY_LOST, RESTORED_DATA_LOST, RESTORED_DATA_KEPT = 1100, 1101, 1102
COMPETING_SESSION = 10197
CLIENT_ID_IN_USE = 326
# Contracts and market data
NO_SECURITY = 200
LINE_LIMIT, NOT_SUBSCRIBED, DELAYED_DATA = 101, 354, 10167
# no subscription for the API (10089), part of the data not subscribed (10090) or needing
# one (10091), not subscribed with delayed data not enabled (10168): IB's "Message Codes"
# (interactivebrokers.github.io/tws-api/message_codes.html); common on paper accounts
NEEDS_SUBSCRIPTION, PART_NOT_SUBSCRIBED, PART_NEEDS_SUBSCRIPTION = 10089, 10090, 10091
DELAYED_NOT_ENABLED = 10168
# Data farms (TWS or IB Gateway to IB's servers), the farm's name after a colon:
# "Market data farm connection is broken:usopt" (message codes 2103-2106, 2158)
FARM_BROKEN, FARM_OK, HMDS_BROKEN, HMDS_OK, SECDEF_OK = 2103, 2104, 2105, 2106, 2158
# the market data farms US options and stocks stream from ("usopt", "usfarm", and their
# ".nj"-style variants): one broken stops the quotes the rules act on
QUOTE_FARMS = ("usopt", "usfarm")
# Orders
REJECTED, CANCELLED, HELD = 201, 202, 399
CANNOT_MODIFY, NOT_FOUND, CANNOT_CANCEL = 104, 10147, 10148
DUPLICATE_ORDER_ID, PRICE_INCREMENT = 103, 110
READ_ONLY = 321  # "Error validating request": with "Read-Only mode" in it, a read-only API

# Market data types (reqMarketDataType, marketDataType)
LIVE, FROZEN, DELAYED, DELAYED_FROZEN = 1, 2, 3, 4
DATA_TYPES = {LIVE: "live", FROZEN: "frozen", DELAYED: "delayed", DELAYED_FROZEN: "delayed frozen"}
FROZEN_TYPES = (FROZEN, DELAYED_FROZEN)  # the last quotes IB has: never fresh


class Effect(Enum):
    """What the adapter does on a code, besides logging it."""

    LOG = "log"  # nothing more
    GAP = "gap"  # quotes blanked, ticks still on their way dropped until restored
    RESUME = "resume"  # the lines opened afresh, executions and orders checked
    FLOWING = "flowing"  # data flows again
    FARM_DOWN = "farm down"  # a quote farm broken: as a gap, until it is OK again
    FARM_UP = "farm up"  # a farm OK again (also said at every connection)
    LINE_REFUSED = "line refused"  # a leg's line refused: kept in ``refused``, and its
    # positions need a human (the service's ``problems``); an underlying's: logged only


@dataclass(frozen=True)
class Code:
    """A code worth a log event of its own (others go as ``ib.message``)."""

    event: str
    effect: Effect = Effect.LOG
    info: bool = False  # logged at info (a notice that all is well), else a warning


CODES = {
    CONNECTIVITY_LOST: Code("ib.connectivity_lost", Effect.GAP),
    RESTORED_DATA_LOST: Code("ib.connectivity_restored_data_lost", Effect.RESUME),
    RESTORED_DATA_KEPT: Code("ib.connectivity_restored_data_kept", Effect.FLOWING),
    COMPETING_SESSION: Code("ib.competing_live_session"),
    FARM_BROKEN: Code("ib.data_farm_broken", Effect.FARM_DOWN),
    FARM_OK: Code("ib.data_farm_ok", Effect.FARM_UP, info=True),
    HMDS_BROKEN: Code("ib.hmds_farm_broken"),
    HMDS_OK: Code("ib.hmds_farm_ok", info=True),
    SECDEF_OK: Code("ib.secdef_farm_ok", info=True),
    LINE_LIMIT: Code("ib.market_data_line_limit", Effect.LINE_REFUSED),
    NOT_SUBSCRIBED: Code("ib.market_data_not_subscribed", Effect.LINE_REFUSED),
    NEEDS_SUBSCRIPTION: Code("ib.market_data_needs_subscription", Effect.LINE_REFUSED),
    PART_NOT_SUBSCRIBED: Code("ib.market_data_part_not_subscribed", Effect.LINE_REFUSED),
    PART_NEEDS_SUBSCRIPTION: Code("ib.market_data_part_needs_subscription", Effect.LINE_REFUSED),
    DELAYED_NOT_ENABLED: Code("ib.market_data_delayed_not_enabled", Effect.LINE_REFUSED),
    # delayed data in place of live: a refusal where the settings take live data only
    DELAYED_DATA: Code("ib.delayed_market_data"),
    # an order's error reaches the service through its status: ib_async marks the
    # trade cancelled (an error) or ValidationError (a warning) and logs the error on
    # it; brokers.ib.verdicts says what each means
    REJECTED: Code("ib.order_rejected"),
    CANCELLED: Code("ib.order_cancelled"),
    HELD: Code("ib.order_held"),
}
