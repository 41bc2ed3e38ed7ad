"""The fake gateway's version negotiation and its version-aware message fields
(brokers.ib.fake.versions): pure, no socket."""

from __future__ import annotations

import pytest

from brokers.ib.fake.versions import (
    MIN_CLIENT_VERSION,
    SERVER_VERSION,
    before,
    for_version,
    negotiate,
    since,
)


@pytest.mark.parametrize(
    ("versions", "answer"),
    [
        ("v100..157", 157),  # ibapi 9.81
        ("v157..178", SERVER_VERSION),  # ib_async 2.1
        ("v157..178 +PACEAPI", SERVER_VERSION),  # connection options after a space
        ("v163", 163),
        ("v177..190", SERVER_VERSION),  # newer than the gateway: its highest, the client decides
        ("v100..156", None),  # older than any version the fake writes: closed unanswered
    ],
)
def test_the_answer_is_the_highest_version_both_speak(versions: str, answer: int | None) -> None:
    assert negotiate(versions) == answer


def test_the_fake_speaks_157_to_176() -> None:
    assert (MIN_CLIENT_VERSION, SERVER_VERSION) == (157, 176)


def test_fields_added_at_a_version_are_written_from_it_on() -> None:
    message = [4, 2, -1, 200, "text", since(166, "")]
    assert for_version(165, message) == [4, 2, -1, 200, "text"]
    assert for_version(166, message) == [4, 2, -1, 200, "text", ""]


def test_fields_removed_at_a_version_are_written_below_it_only() -> None:
    message = [10, before(164, 8), 1, "SPY", since(164, 1, 1, 1)]
    assert for_version(163, message) == [10, 8, 1, "SPY"]
    assert for_version(164, message) == [10, 1, "SPY", 1, 1, 1]


def test_marks_nest_for_a_field_of_a_range_of_versions() -> None:
    """contractDetails' sizeMinTick: from 163, gone at 164."""
    message = ["", since(163, before(164, 1))]
    assert [len(for_version(v, message)) for v in (162, 163, 164)] == [1, 2, 1]
