"""The TWS API versions the fake gateway speaks: the handshake's choice of one, and each
message written for the version its connection chose.

IB's handshake: the client sends the range of versions it speaks (``v{min}..{max}``),
and TWS or IB Gateway answers the highest version both speak, min(client's max, its
own), with its time; every message after that has the fields of that version, no
more (TWS API docs, "Connectivity": "information is exchanged about the highest
version supported by TWS and the API ... API messages can have different lengths and
fields in different versions"). IB's clients read each message by the version they
were answered: a field added at ``MIN_SERVER_VER_X`` is read only when the version is
at least X (IB's ``ibapi/decoder.py`` and ``server_versions.py``, its C++
``EDecoder.cpp``). A server answering a higher version than the client asked for makes
the client misread every message that changed in between (ibapi 9.81, whose highest is
157, drops each error message and misreads contract details from a server that writes
176).

So a message is one list of fields in which the fields IB added (or removed) at a
version are marked with :func:`since` (or :func:`before`), and :func:`for_version`
writes it for a connection's version: one encoding per message, for every version
the gateway speaks.

What IB does with a client range it cannot serve: a client whose lowest version is
above the server's highest still gets the server's highest, and the client refuses it
(ibapi's ``EClient.connect`` reads whatever version comes; IB's Java and C++ clients
then report 503 "The TWS is out of date and must be upgraded", ib_async's
``Client._onSocketHasData`` disconnects with "TWS/gateway version must be >= 972").
The other way round, a client whose versions are all older than any the server
writes, IB does not document; IB's clients may ask from 100 (ibapi's
``MIN_CLIENT_VER``, the "v100+" handshake), which TWS serves. The fake writes messages
as of 157 only (the oldest ib_async asks for, ibapi 9.81's highest) and closes the
socket unanswered on an older range: the client sees the connection fail (ibapi's 502
path, ib_async's connect error) rather than messages it would misread.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

# IB's names and numbers for the versions at which a message the fake writes changed
# (ibapi/server_versions.py; the fields each adds: ibapi/decoder.py, EDecoder.cpp).
MIN_SERVER_VER_DURATION = 158  # openOrder: duration
MIN_SERVER_VER_POST_TO_ATS = 160  # openOrder: postToAts
MIN_SERVER_VER_AUTO_CANCEL_PARENT = 162  # openOrder: autoCancelParent
MIN_SERVER_VER_FRACTIONAL_SIZE_SUPPORT = 163  # contractDetails: sizeMinTick (163 only)
MIN_SERVER_VER_SIZE_RULES = 164  # contractDetails: no version, no mdSizeMultiplier; size rules
MIN_SERVER_VER_ADVANCED_ORDER_REJECT = 166  # error: advancedOrderRejectJson
MIN_SERVER_VER_PEGBEST_PEGMID_OFFSETS = 170  # openOrder: minTradeQty .. midOffsetAtHalf
MIN_SERVER_VER_FA_PROFILE_DESUPPORT = 177  # openOrder: no faProfile

SERVER_VERSION = 176  # the highest version the fake speaks
MIN_CLIENT_VERSION = 157  # the oldest


@dataclass(frozen=True)
class Since:
    """Fields IB writes from server version ``version`` on."""

    version: int
    fields: tuple[object, ...]


@dataclass(frozen=True)
class Before:
    """Fields IB writes below server version ``version`` only (removed at it)."""

    version: int
    fields: tuple[object, ...]


def since(version: int, *fields: object) -> Since:
    return Since(version, fields)


def before(version: int, *fields: object) -> Before:
    return Before(version, fields)


def for_version(version: int, fields: Iterable[object]) -> list[object]:
    """A message's fields as written at server version ``version``."""
    out: list[object] = []
    for f in fields:
        if isinstance(f, Since):
            if version >= f.version:
                out += for_version(version, f.fields)
        elif isinstance(f, Before):
            if version < f.version:
                out += for_version(version, f.fields)
        else:
            out.append(f)
    return out


def negotiate(versions: str) -> int | None:
    """The version to answer a client's ``v{min}..{max}`` (options may follow a space)
    with: the highest both speak, min(client's max, the server's). None when the client's
    highest is older than the oldest the fake writes: the socket is closed unanswered.
    A client whose lowest is above the server's highest gets the server's highest, and
    refuses it itself, as with IB."""
    low, _, high = versions.removeprefix("v").split(" ")[0].partition("..")
    highest = int(high or low)
    if highest < MIN_CLIENT_VERSION:
        return None
    return min(highest, SERVER_VERSION)
