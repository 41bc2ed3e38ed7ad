"""The HTTP server beyond loopback needs ``http_token``: refused at start without it, in
one line; the token is a secret (masked in the logs)."""

from __future__ import annotations

import pytest

from service.errors import InputError
from service.settings import load_settings

TOKEN = "0123456789abcdef"


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "localhost"])
def test_on_loopback_no_token_is_needed(host: str) -> None:
    load_settings(http_host=host).check_http_token()


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.5", "spreadwatch.example"])
def test_beyond_loopback_without_a_token_the_daemon_is_refused_in_one_line(host: str) -> None:
    with pytest.raises(InputError) as refused:
        load_settings(http_host=host).check_http_token()
    assert str(refused.value).startswith(f"http_host: {host} is beyond loopback: set http_token")
    assert "\n" not in str(refused.value)


def test_beyond_loopback_with_a_token_or_with_no_server_it_starts() -> None:
    load_settings(http_host="0.0.0.0", http_token=TOKEN).check_http_token()
    load_settings(http_host="0.0.0.0", http=False).check_http_token()


def test_a_token_shorter_than_16_characters_is_refused() -> None:
    with pytest.raises(InputError, match="http_token"):
        load_settings(http_token="short")


def test_the_token_is_a_secret_the_logs_mask() -> None:
    settings = load_settings(http_token=TOKEN)
    assert TOKEN in settings.secrets()
    assert TOKEN not in repr(settings)
