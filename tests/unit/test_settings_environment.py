"""Settings cannot be silently wrong: a ``SPREADWATCH_*`` variable that names no setting,
or malformed JSON in one that takes JSON, is one line naming the variable."""

from __future__ import annotations

import re

import pytest

from service.errors import InputError
from service.settings import NOT_SETTINGS, load_settings, setting_variables
from tests.support import ROOT


@pytest.mark.parametrize(
    ("variable", "error"),
    [
        (
            "SPREADWATCH_BROKR",
            "SPREADWATCH_BROKR: no such setting; did you mean SPREADWATCH_BROKER?",
        ),
        (
            "SPREADWATCH_IB_PORT",
            "SPREADWATCH_IB_PORT: no such setting; did you mean SPREADWATCH_IB__PORT?",
        ),
        ("SPREADWATCH_QQQQQ", "SPREADWATCH_QQQQQ: no such setting; see docs/configuration.md"),
    ],
)
def test_a_variable_that_names_no_setting_is_an_error_with_the_closest_one(
    monkeypatch: pytest.MonkeyPatch, variable: str, error: str
) -> None:
    monkeypatch.setenv(variable, "1")
    with pytest.raises(InputError) as raised:
        load_settings()
    assert str(raised.value) == error


@pytest.mark.parametrize(
    "variable", ["SPREADWATCH_WEBHOOKS", "SPREADWATCH_IB", "SPREADWATCH_SYNC__BOOKS"]
)
def test_malformed_json_in_a_setting_is_one_line_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    monkeypatch.setenv(variable, "not json")
    with pytest.raises(InputError) as raised:
        load_settings()
    assert str(raised.value).startswith(f"{variable}: not valid JSON: ")
    assert "\n" not in str(raised.value)


def test_settings_nested_ones_and_the_non_settings_are_accepted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for variable in NOT_SETTINGS:
        monkeypatch.setenv(variable, "1")
    monkeypatch.setenv("SPREADWATCH_IB__PORT", "7497")
    monkeypatch.setenv("spreadwatch_broker", "ib")  # (names are not case-sensitive)
    monkeypatch.setenv("SPREADWATCH_SYNC__BOOKS__QQQ", "INCOME_POP")  # a key of a mapping
    settings = load_settings()
    assert (settings.ib.port, settings.broker) == (7497, "ib")


def test_every_spreadwatch_variable_the_project_names_is_a_setting_or_allowed() -> None:
    """The allow-list is the one place for variables that are not settings: whatever the
    docs, the Dockerfile or compose name is either a setting or on it."""
    known = {*setting_variables(), *NOT_SETTINGS}
    files = [ROOT / "Dockerfile", ROOT / "docker-compose.yml", *(ROOT / "docs").glob("*.md")]
    named = set()
    for path in files:
        text = "\n".join(
            line for line in path.read_text().splitlines() if "no such setting" not in line
        )  # (the examples of the error name wrong variables on purpose)
        named |= set(re.findall(r"SPREADWATCH_[A-Z_]*[A-Z]", text))
    keys = {n for n in named if any(n.startswith(f"{k}__") for k in known)}  # a mapping's
    assert named - known - keys == set()
