"""The console script on bad input, as a process: exit 2, nothing on stdout, one line."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from tests.factories import put_spread_toml as put_spread
from tests.factories import tick
from tests.support import ROOT

TS = "2027-03-08T10:00:00-05:00"
OK_TICKS = [tick(TS, 450, "1.00", "1.10", "-0.20"), tick(TS, 445, "0.50", "0.60", "-0.15")]
Files = Callable[..., tuple[Path, Path]]


def test_the_console_script_exits_2_with_nothing_on_stdout(files: Files) -> None:
    p, t = files(put_spread(contracts=-1), OK_TICKS)
    proc = subprocess.run(
        [sys.executable, "-m", "service.cli", "replay", "--positions", str(p), "--ticks", str(t)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.count("\n") == 1
    assert "position 'P1' (record 1): contracts: must be > 0, got -1" in proc.stderr
