"""What a local delta imports, seen from a fresh interpreter (tests/unit/test_greeks.py
has the greeks themselves)."""

from __future__ import annotations


def test_local_greeks_do_not_import_scipy() -> None:
    """A local delta costs vollib's price and IV only: no scipy (70 MB, half a second)."""
    import subprocess  # noqa: PLC0415
    import sys  # noqa: PLC0415

    code = (
        "import sys; from datetime import date, datetime, UTC; "
        "from rules.greeks import Rates, local_delta; from rules.model import Right; "
        "local_delta(Right.PUT, 95.0, date(2027, 4, 16), 1.2, 100.0, "
        "datetime(2027, 3, 2, 15, tzinfo=UTC), Rates()); "
        "print('scipy' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
