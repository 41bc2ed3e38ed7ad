"""The status page in a real headless browser: the system's Chromium (Debian's package,
``/usr/bin/chromium``; CI installs it) driven by Playwright, against the daemon as a
process on the simulated market. And the token rule over HTTP."""

from __future__ import annotations

import json
import os
import shutil
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.test_status import free_port
from tests.support import ROOT, Daemon, spreadwatch

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
ARTEFACTS = ROOT / ".artefacts"  # gitignored: the screenshot, kept for a human to look at
# a Monday's session on the simulated market, five times the wall's speed
CLOCK = ("--start", "2026-12-07T10:00:00-05:00", "--speed", "5")
TOKEN = "a-token-of-sixteen-chars"


@pytest.fixture(autouse=True)
def chromium() -> None:
    """The system's Chromium, or a skip that says so; CI (``.ci/run``) installs it and sets
    ``SPREADWATCH_EXPECT_CHROMIUM=1``, which makes its absence a failure, not a skip."""
    if shutil.which(CHROMIUM) is None:
        reason = f"no Chromium at {CHROMIUM} (apt-get install chromium)"
        if os.environ.get("SPREADWATCH_EXPECT_CHROMIUM"):
            pytest.fail(reason)
        pytest.skip(reason)


def serving(env: dict[str, str], *args: str) -> tuple[Daemon, str]:
    """The daemon, once its HTTP server answers: (it, its base URL)."""
    d = Daemon({"SPREADWATCH_HTTP": "true", "SPREADWATCH_HTTP_PORT": "0", **env}, *args)
    d.until(lambda: any(line.startswith("monitoring ") for line in d.out), 60)  # (trading)
    line = next(line for line in d.out if line.startswith("health and metrics on"))
    return d, line.split()[4].rstrip("/")


@pytest.fixture
def daemon(db_url: str) -> Iterator[tuple[Daemon, str]]:
    d, base = serving({"DATABASE_URL": db_url}, *CLOCK)
    yield d, base
    d.stop()


def debits(page: object) -> str:
    return page.eval_on_selector_all(  # type: ignore[attr-defined,no-any-return]
        "#positions tbody tr", "rows => rows.map(r => r.cells[3].textContent).join()"
    )


@pytest.mark.slow
def test_the_page_shows_the_rows_then_marks_and_a_fill_arrive_live_and_a_detail_opens(
    db_url: str, daemon: tuple[Daemon, str]
) -> None:
    """Loaded once: its rows come by server-sent events; a mark changes and a fill (a
    close asked by hand once the page is up) arrives with no reload; a row opens the
    position's detail with its legs and audit trail; a screenshot is kept."""
    from playwright.sync_api import sync_playwright  # noqa: PLC0415

    _, base = daemon
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        answer = page.goto(base + "/")
        assert answer is not None
        assert answer.status == 200
        assert "script-src 'self'" in answer.headers["content-security-policy"]
        page.wait_for_selector("#positions tbody tr")
        page.evaluate("window.loadedOnce = true")  # gone if the page reloads
        assert page.locator("#positions tbody tr").count() >= 5
        before = debits(page)
        page.wait_for_function(
            "d => Array.from(document.querySelectorAll('#positions tbody tr'))"
            ".map(r => r.cells[3].textContent).join() !== d",
            arg=before,
            timeout=30_000,
        )
        fills = int(page.text_content("#fills-count") or "0")
        env = {"DATABASE_URL": db_url}
        assert spreadwatch("positions", "close", "SPY-P-10", **env).code == 0
        page.wait_for_function(
            "n => Number(document.getElementById('fills-count').textContent) > n",
            arg=fills,
            timeout=60_000,
        )
        assert page.locator("#fills tbody tr").count() > fills
        assert page.evaluate("window.loadedOnce === true")  # no reload
        page.click("#positions tbody tr >> nth=0")
        page.wait_for_selector("#detail:not([hidden]) #legs tbody tr")
        page.wait_for_selector("#events tbody tr")
        assert page.locator("#legs tbody tr").count() in (2, 4)
        assert page.locator("#triggers tbody tr").count() >= 3
        ARTEFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTEFACTS / "status-page.png"), full_page=True)
        browser.close()
    assert (ARTEFACTS / "status-page.png").stat().st_size > 0


def status_of(url: str, token: str | None = None) -> int:
    request = urllib.request.Request(url)
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as exc:
        return exc.code


@pytest.mark.slow
def test_beyond_loopback_a_token_is_needed_to_start_and_to_read(
    db_url: str, tmp_path: Path
) -> None:
    """Bound to every interface without ``http_token``: refused at start in one line,
    exit 2. With it: the page and the API answer 401 without the token, 200 with it (a
    bearer, or the login form's cookie, in the browser); /healthz stays open."""
    env = {"DATABASE_URL": db_url, "SPREADWATCH_HTTP_HOST": "0.0.0.0"}
    port = str(free_port())
    refused = spreadwatch("run", *CLOCK, SPREADWATCH_HTTP_PORT=port, **env)
    assert refused.code == 2
    (line,) = refused.err.strip().splitlines()
    assert line.startswith("spreadwatch: http_host: 0.0.0.0")
    assert "http_token" in line
    d, base = serving({**env, "SPREADWATCH_HTTP_TOKEN": TOKEN}, *CLOCK)
    try:
        base = base.replace("0.0.0.0", "127.0.0.1")
        assert TOKEN not in "".join(d.out + d.errors)
        for path in ("/", "/api/positions", "/api/events", "/metrics", "/readyz"):
            assert status_of(base + path) == 401, path
        assert status_of(base + "/api/positions", "wrong-token-of-sixteen") == 401
        assert status_of(base + "/api/positions", TOKEN) == 200
        assert status_of(base + "/healthz") == 200
        port = base.rsplit(":", 1)[1]
        status = spreadwatch(
            "status", "--json", SPREADWATCH_HTTP_PORT=port, SPREADWATCH_HTTP_TOKEN=TOKEN, **env
        )
        assert json.loads(status.out)["source"] == "daemon"  # its token sent as a bearer
        from playwright.sync_api import sync_playwright  # noqa: PLC0415

        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = browser.new_page()
            assert page.goto(base + "/").status == 401  # type: ignore[union-attr]
            page.fill("input[name=token]", TOKEN)
            page.click("button[type=submit]")
            page.wait_for_selector("#positions tbody tr")
            assert TOKEN not in page.content()
            browser.close()
    finally:
        d.stop()


def body_of(url: str, token: str) -> str:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=5) as answer:
        if answer.headers["Content-Type"] == "text/event-stream":
            return answer.readline().decode() + answer.readline().decode()
        return str(answer.read().decode())


@pytest.mark.slow
def test_no_response_carries_a_secret_of_the_settings(db_url: str) -> None:
    """A webhook URL (its token in the path) and the HTTP token in the settings: neither is
    in the page, its files, the API (the list, a detail, the stream), /readyz, /metrics."""
    hook = "http://127.0.0.1:9/hooks/not-to-be-shown-4f9c"
    webhooks = json.dumps([{"url": hook, "format": "slack"}])
    env = {"DATABASE_URL": db_url, "SPREADWATCH_HTTP_TOKEN": TOKEN}
    env["SPREADWATCH_WEBHOOKS"] = webhooks
    d, base = serving(env, *CLOCK)
    try:
        paths = ("/", "/static/app.js", "/static/style.css", "/api/positions",
                 "/api/positions/SPY-P-10", "/api/events", "/readyz", "/metrics")  # fmt: skip
        for path in paths:
            text = body_of(base + path, TOKEN)
            assert text, path
            assert "not-to-be-shown-4f9c" not in text, path
            assert TOKEN not in text, path
    finally:
        d.stop()
