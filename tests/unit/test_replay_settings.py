"""Replay's three settings (rate, dividend, books file) without the settings model when
nothing could set them (service.defaults), and through it, as before, when anything could."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from service import defaults
from service.defaults import untouched
from service.settings import Settings
from tests.factories import put_spread_toml as put_spread
from tests.factories import tick
from tests.support import ROOT, Run

TS = "2027-03-08T10:00:00-05:00"
OK_TICKS = [tick(TS, 450, "1.00", "1.10", "-0.20"), tick(TS, 445, "0.50", "0.60", "-0.15")]
Files = Callable[..., tuple[Path, Path]]


def test_the_defaults_replay_takes_are_the_settings_model_s() -> None:
    settings = Settings()
    assert (settings.rate, settings.dividend) == (defaults.RATE, defaults.DIVIDEND)
    assert settings.books_file is None


@pytest.mark.parametrize(
    ("environ", "given", "expected"),
    [
        ({}, (None, None, None), True),
        ({"PATH": "/bin", "SPREADWATCH_PURE": "1", "SPREADWATCH_EXPECT_NATIVE": "1"}, (), True),
        ({"SPREADWATCH_RATE": "0.05"}, (), False),
        ({"spreadwatch_rate": "0.05"}, (), False),  # (pydantic-settings: any case)
        ({"SPREADWATCH_NO_SUCH": "1"}, (), False),  # (the model refuses it: it must see it)
        ({"DATABASE_URL": "postgresql://x"}, (), False),
        ({}, (Path("spreadwatch.toml"), None, None), False),
        ({}, (None, 0.05, None), False),
        ({}, (None, None, 0.0), False),
    ],
)
def test_only_nothing_set_skips_the_settings_model(
    environ: dict[str, str], given: tuple[object, ...], expected: bool
) -> None:
    assert untouched(environ, *given) is expected


def test_replay_with_nothing_set_loads_neither_the_settings_model_nor_the_version(
    files: Files,
) -> None:
    """Start-up: pydantic-settings and importlib.metadata (--version) cost ~80 ms, a third of
    replay's start-up before this; a fresh interpreter shows what replay imported."""
    p, t = files(put_spread(), OK_TICKS)
    code = (
        "import sys; from service.cli.main import main; "
        f"main(['replay', '--positions', {str(p)!r}, '--ticks', {str(t)!r}]); "
        "print('service.settings' in sys.modules, 'pydantic_settings' in sys.modules, "
        "'service.cli.main' in sys.modules)"
    )
    environ = {k: v for k, v in os.environ.items() if untouched({k: v})}
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=environ,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[-1] == "False False True"


@pytest.mark.parametrize("name", ["SPREADWATCH_RATE", "spreadwatch_rate"])
def test_a_rate_in_the_environment_still_goes_through_the_settings_model(
    cli: Callable[..., Run], files: Files, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    monkeypatch.setenv(name, "2")
    p, t = files(put_spread(), OK_TICKS)
    run = cli("replay", "--positions", p, "--ticks", t)
    assert (run.code, run.out) == (2, "")
    assert run.err_lines == [
        "spreadwatch: settings: rate: Input should be less than or equal to 0.5"
    ]


def test_an_unknown_spreadwatch_variable_still_refuses_replay(
    cli: Callable[..., Run], files: Files, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SPREADWATCH_RATES", "0.05")
    p, t = files(put_spread(), OK_TICKS)
    run = cli("replay", "--positions", p, "--ticks", t)
    assert (run.code, run.out) == (2, "")
    assert run.err_lines[0].startswith("spreadwatch: SPREADWATCH_RATES: no such setting")


def test_version_prints_the_installed_version() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "service.cli", "--version"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
    )
    assert out.stdout.startswith("spreadwatch 0.")
    assert out.stderr == ""
