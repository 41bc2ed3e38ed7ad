"""Replay's exit lines: written directly (service.replay.engine.json_line), and exactly
what ``json.dumps`` writes for the same record, whatever its texts hold."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from service.replay.engine import json_line

VALUES = st.one_of(
    st.text(),  # quotes, backslashes, control characters, any code point
    st.integers(),
    st.none(),
    st.lists(st.text(), max_size=4),
    st.booleans(),  # (not written directly: json.dumps writes them)
    st.floats(allow_nan=False),
    st.lists(st.integers(), min_size=1, max_size=2),
)


@given(st.dictionaries(st.text(), VALUES, max_size=16))
def test_a_record_s_line_is_json_dumps_s(record: dict[str, object]) -> None:
    assert json_line(record) == json.dumps(record)


def test_an_exit_record_is_written_directly() -> None:
    """The shape of an exit record takes the direct path, and reads back as it was."""
    record: dict[str, object] = {
        "ts": '2027-03-01T10:00:00.5-05:00 "quoted" \\ é',
        "target": None,
        "triggers": ["profit_target", "delta_stop"],
        "contracts_closed": 4,
        "pnl": "-1234.50",
    }
    line = json_line(record)
    assert line == json.dumps(record)
    assert json.loads(line) == record
