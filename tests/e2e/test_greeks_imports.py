"""What a local delta imports, seen from a fresh interpreter (tests/unit/test_greeks.py
has the greeks themselves)."""

from __future__ import annotations


def test_local_greeks_import_neither_scipy_nor_numpy() -> None:
    """A local delta costs LetsBeRational's solver only: no scipy (70 MB, half a second),
    no numpy (vollib's BSM wrapper imports it for two exponentials: 0.15 s)."""
    import subprocess  # noqa: PLC0415
    import sys  # noqa: PLC0415

    code = (
        "import sys; from datetime import date, datetime, UTC; "
        "from rules.greeks import Rates, local_delta; from rules.model import Right; "
        "local_delta(Right.PUT, 95.0, date(2027, 4, 16), 1.2, 100.0, "
        "datetime(2027, 3, 2, 15, tzinfo=UTC), Rates()); "
        "print('scipy' in sys.modules, 'numpy' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False False"
