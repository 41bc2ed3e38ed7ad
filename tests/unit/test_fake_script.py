"""``fake-gateway --script FILE``: the file's moves, read in time order, or refused in one
line that names the file, the move and the field (exit code 2, before the gateway
listens)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from brokers.ib.fake.script import ScriptedMove, load_script
from service.errors import InputError
from tests.support import Run

START = datetime(2026, 12, 7, 15, 0, tzinfo=UTC)
MARKET = ["QQQ", "SPY"]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "moves.toml"
    path.write_text(text)
    return path


def test_moves_are_read_in_time_order_after_counted_from_the_start(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '[[moves]]\nafter = 30\nunderlying = "QQQ"\npercent = -2.5\n\n'
        '[[moves]]\nat = 2026-12-07T10:10:00-05:00\nunderlying = "SPY"\nprice = 431.15\n',
    )
    assert load_script(path, START, MARKET) == [
        ScriptedMove(START + timedelta(minutes=10), "SPY", price=Decimal("431.15")),
        ScriptedMove(START + timedelta(minutes=30), "QQQ", percent=Decimal("-2.5")),
    ]


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ('[[moves]]\nunderlying = "SPY"\nprice = 400\n', "move 1: at: give a time (at) or "
         "minutes after the start (after), one"),
        ('[[moves]]\nafter = 1\nat = 2026-12-07T10:10:00-05:00\nunderlying = "SPY"\nprice = 1\n',
         "move 1: at: give a time (at) or minutes after the start (after), one"),
        ('[[moves]]\nafter = 1\nunderlying = "SPY"\n', "move 1: price: give a price or a "
         "percent move, one"),
        ('[[moves]]\nafter = 1\nunderlying = "SPY"\nprice = 0\n', "move 1: price: Input "
         "should be greater than 0"),
        ('[[moves]]\nafter = 1\nunderlying = "SPY"\nprice = 1\n\n[[moves]]\nafter = 2\n'
         'underlying = "SPY"\npercent = -100\n', "move 2: percent: Input should be greater "
         "than -100"),
        ('[[moves]]\nat = "2026-12-07T10:10:00"\nunderlying = "SPY"\nprice = 1\n',
         "move 1: at: Input should have timezone info"),
        ('[[moves]]\nafter = 1\nunderlying = "TSLA"\nprice = 1\n', "move 1: underlying: "
         "'TSLA' is not in the fake gateway's market (QQQ, SPY)"),
        ('[[moves]]\nafter = 1\nunderlying = "SPY"\nprice = 1\nsize = 2\n', "move 1: size: "
         "Extra inputs are not permitted"),
        ("[[move]]\n", "move: unknown top-level key (expected [[moves]])"),
    ],
)  # fmt: skip
def test_a_bad_move_is_refused_naming_the_file_the_move_and_the_field(
    tmp_path: Path, text: str, error: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(InputError) as caught:
        load_script(path, START, MARKET)
    assert str(caught.value) == f"{path}: {error}"


def test_the_command_refuses_a_bad_script_in_one_line_with_exit_code_2(
    tmp_path: Path, cli: Callable[..., Run]
) -> None:
    path = write(tmp_path, '[[moves]]\nafter = 1\nunderlying = "NOPE"\nprice = 1\n')
    ledger = tmp_path / "ledger.jsonl"
    out = cli("fake-gateway", "--port", "0", "--script", path, "--ledger", ledger)
    assert out.code == 2
    assert out.err == (
        f"spreadwatch: {path}: move 1: underlying: 'NOPE' is not in the fake gateway's market "
        "(AAPL, DIA, IWM, QQQ, SPY, TSLA, XLF)\n"
    )
    assert out.out == ""
    assert not ledger.exists()
