"""A position record read without pydantic (service.fields.plain_record) is read as the
pydantic model reads it (service.records.PositionRecord): the same Position, to the repr
(its opened_at's timezone too), and never a record the model refuses. What the plain
reader does not take it leaves to the model, which converts it or names what is wrong.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from rules.model import Strategy
from service.fields import plain_record
from service.inputs import _position, read_section
from service.records import PositionRecord

ROOT = Path(__file__).resolve().parents[2]
D = Decimal
MISSING = object()  # a key left out

LEG_VALUES: dict[str, list[Any]] = {
    "right": ["P", "C", "p", "X", 1, None],
    "strike": [D("450"), D("450.00"), 450, "450", 450.0, D("NaN"), D("Infinity"), True],
    "expiry": [date(2027, 1, 15), "2027-01-15", "20270115", 20270115, "2027-02-30", "soon",
               datetime(2027, 1, 15, tzinfo=UTC)],
    "side": ["short", "long", "Short", 0],
}  # fmt: skip
LEG = {"right": "P", "strike": D("450"), "expiry": "2027-01-15", "side": "short"}

RECORD_VALUES: dict[str, list[Any]] = {
    "id": ["SPY-1", "", " x ", 3, None],
    "book": ["PRIMARY", "", 1],
    "underlying": ["SPY", "", b"SPY"],
    "strategy": ["put_credit", "iron_condor", "PUT_CREDIT", Strategy.CALL_CREDIT, 1],
    "contracts": [3, 0, -1, True, "3", D("3"), 3.0, 3.5],
    "entry_credit": [D("1.25"), 2, "1.25", 1.25, D("NaN"), D("-Infinity"), True],
    "opened_at": [
        "2026-12-04", date(2026, 12, 4), "2026-12-04T10:00:00-05:00",
        datetime(2026, 12, 4, 15, tzinfo=UTC),
        datetime(2026, 12, 4, 10, tzinfo=timezone(timedelta(hours=-5))),
        datetime(2026, 12, 4, 10),  # noqa: DTZ001  (a naive time: the model's to refuse)
        "2026-12-04T10:00:00", "2026-13-04", 20261204,
    ],
    "multiplier": [MISSING, 100, 10, "100", True, D("100")],
    "trading_class": [MISSING, "", "spxw ", 3],
    "extra": [MISSING, "x"],
}  # fmt: skip
RECORD: dict[str, Any] = {
    "id": "SPY-1",
    "book": "PRIMARY",
    "underlying": "SPY",
    "strategy": "put_credit",
    "contracts": 3,
    "entry_credit": D("1.25"),
    "opened_at": "2026-12-04",
    "legs": [LEG, {**LEG, "strike": D("445"), "side": "long"}],
}


def _with(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    out = {**base, **changes}
    return {k: v for k, v in out.items() if v is not MISSING}


def _changes(values: dict[str, list[Any]]) -> st.SearchStrategy[dict[str, Any]]:
    """Some keys set to one of their values (MISSING: left out)."""
    return st.fixed_dictionaries({}, optional={k: st.sampled_from(v) for k, v in values.items()})


legs = st.lists(_changes(LEG_VALUES).map(lambda c: _with(LEG, c)), max_size=4) | st.sampled_from(
    [[LEG, {**LEG, "extra": 1}], [{"right": "P"}], (LEG, LEG), "legs", []]
)
records = st.builds(
    lambda changes, new_legs, drop: {
        k: v for k, v in _with(RECORD, {**changes, "legs": new_legs}).items() if k != drop
    },
    _changes(RECORD_VALUES),
    legs,
    st.sampled_from([None, None, None, "id", "legs", "opened_at", "contracts"]),
)


def _model(raw: object) -> dict[str, Any] | None:
    try:
        return PositionRecord.model_validate(raw).model_dump()
    except ValidationError:
        return None


@settings(max_examples=3000, deadline=None)
@given(records | st.sampled_from([None, [], "x", {"positions": 1}]))
@example(RECORD)
def test_a_plain_record_reads_as_the_model_reads_it(raw: Any) -> None:
    plain, model = plain_record(raw), _model(raw)
    if plain is None:
        return  # (the model's to read: it converts the value, or names what is wrong)
    assert model is not None, f"the plain reader took a record the model refuses: {raw!r}"
    assert repr(_position(plain)) == repr(_position(model))


def test_the_common_records_are_read_plainly() -> None:
    """The records a user writes (the examples, the benchmark's generator's) skip pydantic;
    so does each plain variant the property above may draw, read alike by both."""
    files = [ROOT / "examples" / "positions.toml"]
    for path in files:
        for raw in read_section(path, "positions", list, "[[positions]]"):
            assert plain_record(raw) is not None, raw
    for key, value in [
        ("opened_at", date(2026, 12, 4)),
        ("opened_at", "2026-12-04T10:00:00-05:00"),
        ("opened_at", datetime(2026, 12, 4, 10, tzinfo=timezone(timedelta(hours=-5)))),
        ("entry_credit", 2),
        ("multiplier", 10),
        ("trading_class", "spxw "),
    ]:
        raw = {**RECORD, key: value}
        plain = plain_record(raw)
        assert plain is not None, (key, value)
        assert repr(_position(plain)) == repr(_position(_model(raw) or {}))
