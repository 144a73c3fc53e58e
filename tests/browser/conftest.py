"""Real headless Chromium (Debian's, never a downloaded one) against the app served in-process.

Session: one app + one HTTP server on a free port, one Playwright, one browser. Per test: a fresh context
(360×740 phone viewport, locale and geolocation as the test asks) whose external requests are aborted, and a
full-page screenshot of the final state in ``test-artifacts/browser/<test name>.png``.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import sys
import threading
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.csp_watch import watch_csp

CHROMIUM = os.environ.get("GEOSERVICE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
PHONE = {"width": 360, "height": 740}
# A point in Dongcheng (WGS-84).
DONGCHENG = {"latitude": 39.9289, "longitude": 116.4160}


@pytest.fixture(scope="session")
def live_app(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The app behind :func:`live_server` (embedded store, bundled layers), for tests that seed it."""
    from geoservice import create_app
    from geoservice.settings import Settings

    return create_app(Settings(embedded_path=tmp_path_factory.mktemp("b") / "g.sqlite"))


@contextlib.contextmanager
def serve(app: Any) -> Iterator[str]:
    """``app`` on 127.0.0.1:<free port> in a thread, for as long as the block runs; its services closed after."""
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="browser-live-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)
        app.extensions["geoservice.services"].close()


@pytest.fixture(scope="session")
def live_server(live_app: Any) -> Iterator[str]:
    """The real app (embedded store, bundled layers) on 127.0.0.1:<free port>."""
    with serve(live_app) as url:
        yield url


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Debian's Chromium driven by Playwright. Missing Chromium is a failure, not a skip: CI installs it."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium not found at {CHROMIUM}: install Debian's `chromium` package (or set "
                    "GEOSERVICE_CHROMIUM to its path). The browser tests never download a browser.", pytrace=False)
    from playwright.sync_api import sync_playwright

    pw = sync_playwright().start()
    try:
        try:
            b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        except Exception as exc:
            pytest.fail(f"could not launch Chromium at {CHROMIUM}: {exc}", pytrace=False)
        yield b
        b.close()
    finally:
        pw.stop()


def _is_local(url: str) -> bool:
    return url.startswith(("http://127.0.0.1:", "http://127.0.0.1/", "data:", "blob:", "about:"))


@pytest.fixture
def new_page(browser: Any, live_server: str, request: pytest.FixtureRequest) -> Iterator[Callable[..., Any]]:
    """Factory: ``new_page(locale="zh-CN", geolocation=DONGCHENG or None, **context options)`` -> page.

    ``geolocation=None`` means permission refused. External requests (map tiles, anything) are aborted and
    recorded in ``page.blocked``. The last page opened is screenshotted at teardown. Every page must end with no
    JavaScript error and no Content-Security-Policy violation.
    """
    contexts: list[Any] = []
    pages: list[Any] = []

    def make(locale: str = "zh-CN", geolocation: dict[str, float] | None = DONGCHENG, **opts: Any) -> Any:
        options: dict[str, Any] = {"viewport": PHONE, "locale": locale, "device_scale_factor": 1,
                                   "service_workers": "block"}
        if geolocation is not None:
            options.update(geolocation=geolocation, permissions=["geolocation"])
        options.update(opts)
        ctx = browser.new_context(**options)
        ctx.set_default_timeout(10_000)
        blocked: list[str] = []

        def route(r: Any) -> None:
            if _is_local(r.request.url):
                r.continue_()
            else:
                blocked.append(r.request.url)
                r.abort()

        ctx.route("**/*", route)
        csp = watch_csp(ctx)
        page = ctx.new_page()
        page.csp = csp
        page.blocked = blocked
        page.errors = []
        page.on("pageerror", lambda e: page.errors.append(str(e)))
        page.base = live_server
        contexts.append(ctx)
        pages.append(page)
        return page

    yield make
    if pages:
        out = Path(request.config.rootpath) / "test-artifacts" / "browser"
        out.mkdir(parents=True, exist_ok=True)
        name = re.sub(r"[^\w.-]+", "_", request.node.name)
        try:
            pages[-1].screenshot(path=str(out / f"{name}.png"), full_page=True)
        except Exception as exc:
            sys.stderr.write(f"screenshot of {name} failed: {exc}\n")
    for ctx in contexts:
        ctx.close()
    for page in pages:
        assert not page.errors, f"JavaScript errors on the page: {page.errors}"
        assert not page.csp, f"Content-Security-Policy violations: {page.csp}"


def api_get(base: str, path: str) -> Any:
    """GET JSON from the live server (the test's own, independent view of the service)."""
    with urllib.request.urlopen(base + path, timeout=10) as resp:
        return json.loads(resp.read().decode("utf-8"))


def wait_results(page: Any, previous_url: str | None = None) -> str:
    """Wait until the page shows the answer to a (new) search; return the request URL it made."""
    page.wait_for_function(
        "prev => document.body.dataset.status === 'ok' && document.getElementById('list').dataset.url"
        " && document.getElementById('list').dataset.url !== prev", arg=previous_url or "")
    return page.get_attribute("#list", "data-url")
