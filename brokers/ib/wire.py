"""The TWS API wire format, both ways.

After a handshake (``API\\0`` then a length-prefixed ``v{min}..{max}``), every
message is a 4-byte big-endian length, then NUL-terminated text fields, the
first being the message id. ``ib_async``'s client speaks it; the fake gateway
(:mod:`brokers.ib.fake`) answers in it.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from decimal import Decimal

API_PREFIX = b"API\0"
HEADER = struct.Struct(">I")
MAX_MESSAGE = 1 << 24  # the TWS API's own cap on a message's length


class WireError(ValueError):
    """Bytes that are not the TWS API protocol."""


def field(value: object) -> str:
    """One field as the TWS API writes it: booleans as 1/0, None as empty."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float | Decimal):
        text = format(value, "f") if isinstance(value, Decimal) else repr(value)
        return text
    return str(value)


def encode(*fields: object) -> bytes:
    """A message: its fields, each NUL-terminated, behind the length prefix."""
    body = "".join(field(f) + "\0" for f in fields).encode()
    return HEADER.pack(len(body)) + body


def frame(body: bytes) -> bytes:
    return HEADER.pack(len(body)) + body


class Reader:
    """Splits a byte stream into messages (lists of text fields)."""

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, data: bytes) -> Iterator[list[str]]:
        self._buffer += data
        while len(self._buffer) >= HEADER.size:
            (size,) = HEADER.unpack_from(self._buffer)
            if size > MAX_MESSAGE:
                raise WireError(f"message of {size} bytes: larger than the protocol allows")
            end = HEADER.size + size
            if len(self._buffer) < end:
                return
            body, self._buffer = self._buffer[HEADER.size : end], self._buffer[end:]
            fields = body.decode(errors="replace").split("\0")
            if fields and fields[-1] == "":
                fields.pop()
            yield fields
