"""The operators' page (geoservice/static/operator.html, at /operator) in real headless Chromium (Debian's, never
downloaded).

The page is driven end to end against the real app on a free port (embedded store with the small test network):
sign in with a token, edit hours with the live preview (including a parse error shown at its position), save,
and the PUBLIC nearest answer changes; closures, history, couriers' reports, a conflicting edit, both languages.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import re
import sys
import threading
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from geoservice.auth import token_hash
from tests.support import ROOT, TIANANMEN
from tests.support.csp_watch import watch_csp
from tests.support.sites import sid
from tests.support.world import World, build_world, rows_of_every_table

from .conftest import tomorrow_at

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("GEOSERVICE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
PHONE = {"width": 360, "height": 740}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[World, str]]:
    """A seeded embedded store and the real app on 127.0.0.1:<free port>."""
    from werkzeug.serving import make_server

    from tests.support.stores import fresh_embedded

    tmp = tmp_path_factory.mktemp("operator-page")
    store = fresh_embedded(tmp / "ops.sqlite")
    world = build_world(store, tmp)
    server = make_server("127.0.0.1", 0, world.app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="operator-live-server", daemon=True)
    thread.start()
    try:
        yield world, f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)
        store.close()


class BrowserThread:
    """Debian's Chromium driven by Playwright's sync API on a thread of its own.

    tests/browser keeps a session-wide Playwright on the main thread, and the sync API cannot be started a second
    time on a thread that already runs one, so this module's Playwright lives on a worker thread and every
    scenario runs there (``run``); assertion errors come back to the test as they are.
    """

    def __init__(self) -> None:
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="operator-chromium")
        self.pw, self.browser = self.pool.submit(self._start).result(timeout=60)

    @staticmethod
    def _start() -> tuple[Any, Any]:
        from playwright.sync_api import sync_playwright

        pw = sync_playwright().start()
        try:
            return pw, pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        except Exception:
            pw.stop()
            raise

    def run(self, scenario: Callable[[Any], None]) -> None:
        """Run ``scenario(browser)`` on the browser's thread."""
        self.pool.submit(scenario, self.browser).result(timeout=180)

    def close(self) -> None:
        def stop() -> None:
            self.browser.close()
            self.pw.stop()

        self.pool.submit(stop).result(timeout=60)
        self.pool.shutdown()


@pytest.fixture(scope="module")
def chromium() -> Iterator[BrowserThread]:
    """Chromium for this module; missing Chromium is a failure, not a skip."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium not found at {CHROMIUM}: install Debian's `chromium` (or set GEOSERVICE_CHROMIUM)",
                    pytrace=False)
    worker = BrowserThread()
    yield worker
    worker.close()


@contextmanager
def new_page(browser: Any, base: str, name: str, locale: str = "zh-CN", **options: Any) -> Iterator[Any]:
    """A fresh phone-sized context whose requests to anything but the live server are aborted; afterwards a
    screenshot in test-artifacts/operators/ and a check that the page had no JavaScript errors and broke no rule of
    its Content-Security-Policy."""
    ctx = browser.new_context(viewport=PHONE, locale=locale, device_scale_factor=1, service_workers="block",
                              **options)
    ctx.set_default_timeout(10_000)
    blocked: list[str] = []

    def route(r: Any) -> None:
        if r.request.url.startswith(("http://127.0.0.1:", "data:", "about:")):
            r.continue_()
        else:
            blocked.append(r.request.url)
            r.abort()

    ctx.route("**/*", route)
    csp = watch_csp(ctx)
    pg = ctx.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.base = base
    pg.blocked = blocked
    try:
        yield pg
    finally:
        out = ROOT / "test-artifacts" / "operators"
        out.mkdir(parents=True, exist_ok=True)
        try:
            pg.screenshot(path=str(out / (re.sub(r"[^\w.-]+", "_", name) + ".png")), full_page=True)
        except Exception as exc:
            sys.stderr.write(f"screenshot failed: {exc}\n")
        ctx.close()
    assert not errors, f"JavaScript errors on the page: {errors}"
    assert not csp, f"Content-Security-Policy violations: {csp}"


def public_nearest(base: str, at: str) -> list[str]:
    """The PUBLIC nearest answer, fetched independently of the page."""
    query = f"lat={TIANANMEN[1]}&lon={TIANANMEN[0]}&limit=10&at={urllib.request.quote(at)}"
    with urllib.request.urlopen(f"{base}/api/v1/sites/nearest?{query}", timeout=10) as resp:
        return [f["id"] for f in json.loads(resp.read().decode("utf-8"))["features"]]


def http(base: str, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None) -> Any:
    req = urllib.request.Request(base + path, method=method, data=json.dumps(body).encode() if body else None,
                                 headers={"Content-Type": "application/json", **(headers or {})})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return resp.status, resp.headers, json.loads(resp.read().decode("utf-8"))


def sign_in(page: Any, token: str) -> None:
    page.goto(page.base + "/operator")
    page.fill("#token", token)
    page.click("#signin-form button[type=submit]")
    page.wait_for_selector("body[data-state=list]")


def test_the_page_edits_hours_end_to_end_and_the_public_answer_changes(
        chromium: BrowserThread, served: tuple[World, str], request: pytest.FixtureRequest) -> None:
    world, base = served
    a, b = sid("op-a"), sid("op-b")
    ten, seven_pm = tomorrow_at(10).isoformat(), tomorrow_at(19).isoformat()
    assert public_nearest(base, ten)[:2] == [a, b]

    def scenario(browser: Any) -> None:
        with new_page(browser, base, request.node.name) as page:
            sign_in(page, world.tokens["alice"])
            assert page.locator("#sites .site").count() == 2
            assert "alice" in page.inner_text("#whoami")
            page.click(f"#sites .site[data-id={a}]")
            page.wait_for_selector("body[data-state=editing]")
            page.wait_for_selector("#preview[data-status=ok]")
            assert page.input_value("#hours") == "24/7"

            # a typo: the preview says where and what was expected
            page.fill("#hours", "Mo-Su 18:00-22:0x")
            page.wait_for_selector("#preview[data-status=error]")
            assert page.is_visible("#hours-error")
            column = int(page.get_attribute("#hours-error", "data-column"))
            assert column == 16 and "16" in page.inner_text("#hours-error-text")
            expr_line, caret_line = page.inner_text("#hours-caret").split("\n")[:2]
            assert expr_line == "Mo-Su 18:00-22:0x" and caret_line.index("^") == column - 1

            # the fix: the live preview shows tomorrow's evening hours
            page.fill("#hours", "Mo-Su 18:00-22:00")
            page.wait_for_selector("#preview[data-status=ok][data-expr='Mo-Su 18:00-22:00']")
            assert page.is_hidden("#hours-error")
            assert page.locator("#preview-days tr").count() == 7
            tomorrow = tomorrow_at(0).date().isoformat()
            row = f"#preview-days tr[data-date='{tomorrow}']"
            assert page.inner_text(f"{row} td:nth-child(2)") == "18:00–22:00"
            weekday = "一二三四五六日"[tomorrow_at(0).weekday()]
            assert page.inner_text(f"{row} td:first-child") == f"{tomorrow[5:]} 周{weekday}"

            page.click("#save")
            page.wait_for_selector("#save-msg[data-msg=saved]")
            assert "已保存" in page.inner_text("#save-msg")
            # the PUBLIC nearest answer changed as soon as the save returned
            assert a not in public_nearest(base, ten) and public_nearest(base, ten)[0] == b
            assert public_nearest(base, seven_pm)[0] == a

            # a closure for the day after tomorrow
            later_day = (tomorrow_at(0).date() + dt.timedelta(days=1)).isoformat()
            page.fill("#c-from", later_day)
            page.fill("#c-to", later_day)
            page.fill("#c-reason", "设备检修")
            page.click("#closure-form button[type=submit]")
            page.wait_for_selector("#closure-msg[data-msg=closureAdded]")
            assert page.locator("#closures li[data-id]").count() == 1
            assert a not in public_nearest(base, f"{later_day}T19:00:00+08:00")

            # the history shows both changes, newest first, with before → after
            page.wait_for_function("() => document.querySelectorAll('#history li[data-id]').length === 2")
            actions = page.eval_on_selector_all("#history li[data-id]", "els => els.map(e => e.dataset.action)")
            assert actions == ["add_closure", "update"]
            assert "24/7" in page.inner_text("#history li[data-action=update]")
            assert "Mo-Su 18:00-22:00" in page.inner_text("#history li[data-action=update]")

            # English, every control a big enough target, no horizontal scroll on a 360 px phone
            page.click("#lang")
            assert page.get_attribute("html", "lang") == "en"
            assert page.inner_text("#save") == "Save" and page.inner_text("#back") == "← Back to the list"
            assert page.title() == "Station operators"
            small = page.eval_on_selector_all(
                "button, input, select, textarea, .checks label",
                "els => els.filter(e => e.getClientRects().length && e.type !== 'checkbox')"
                "  .map(e => [e.id || e.className || e.tagName, e.getBoundingClientRect().height])"
                "  .filter(([_, h]) => h < 44)")
            assert small == []
            assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
            assert page.blocked == []  # no CDN, nothing external

    chromium.run(scenario)


def test_a_conflicting_edit_is_refused_and_reports_can_be_resolved(
        chromium: BrowserThread, served: tuple[World, str], request: pytest.FixtureRequest) -> None:
    world, base = served
    b = sid("op-b")
    status, _, _ = http(base, "POST", f"/api/v1/sites/{b}/reports", {"type": "closed_on_arrival", "note": "铁门锁了"})
    assert status == 201

    def scenario(browser: Any) -> None:
        with new_page(browser, base, request.node.name) as page:
            sign_in(page, world.tokens["alice"])
            page.wait_for_selector("#report-list li[data-id]")
            assert "铁门锁了" in page.inner_text("#report-list")
            page.click("#report-list li[data-id] button")
            page.wait_for_selector("#reports-empty:not([hidden])")

            page.click(f"#sites .site[data-id={b}]")
            page.wait_for_selector("#preview[data-status=ok]")
            # meanwhile the union's staff change the same site
            _, headers, _ = http(base, "GET", f"/api/v1/sites/{b}")
            code, _, _ = http(base, "PATCH", f"/api/v1/sites/{b}", {"phone": "010-8888 0000"},
                              {"Authorization": f"Bearer {world.tokens['carol']}", "If-Match": headers["ETag"]})
            assert code == 200
            page.fill("#notes", "晚上有人值班")
            page.click("#save")
            page.wait_for_selector("#save-msg[data-msg=conflict]")
            assert world.store.sites.get_site(b).notes is None  # type: ignore[union-attr]  # not silently overwritten
            page.click("#reload")
            page.wait_for_function("() => document.getElementById('phone').value === '010-8888 0000'")
            page.fill("#notes", "晚上有人值班")
            page.click("#save")
            page.wait_for_selector("#save-msg[data-msg=saved]")

    chromium.run(scenario)
    site = world.store.sites.get_site(b)
    assert site is not None and site.notes == "晚上有人值班" and site.phone == "010-8888 0000"


def test_a_bad_token_is_refused_politely(chromium: BrowserThread, served: tuple[World, str],
                                         request: pytest.FixtureRequest) -> None:
    def scenario(browser: Any) -> None:
        with new_page(browser, served[1], request.node.name) as page:
            page.goto(page.base + "/operator")
            page.fill("#token", "gso_not-a-real-token")
            page.click("#signin-form button[type=submit]")
            page.wait_for_selector("#signin-msg[data-msg=badToken]")
            assert page.get_attribute("body", "data-state") == "signed-out"
            assert "令牌无效" in page.inner_text("#signin-msg")

    chromium.run(scenario)


def test_a_couriers_report_reaches_the_sites_operator(chromium: BrowserThread, served: tuple[World, str],
                                                      request: pytest.FixtureRequest) -> None:
    """End to end: the couriers' page finds the report endpoint in openapi.json, a courier reports a missing
    amenity, the card then shows the open report, and the site's operator sees it and resolves it."""
    world, base = served
    d = sid("op-d")  # open 24/7, so it is on the couriers' list whatever the time
    world.store.accounts.assign("bob", [d])
    here = {"latitude": TIANANMEN[1], "longitude": TIANANMEN[0]}

    def scenario(browser: Any) -> None:
        with new_page(browser, base, request.node.name + "-courier", "en-US", geolocation=here,
                      permissions=["geolocation"]) as courier:
            courier.goto(base + "/")
            courier.wait_for_function("() => document.body.dataset.status === 'ok'")
            card = courier.locator(f"#list .card[data-id={d}]")
            card.locator(".report").click()
            card.locator("[data-report=amenity_missing]").click()
            with courier.expect_response(lambda r: r.request.method == "POST") as resp:
                card.locator(".report-box [data-amenity=charging]").click()
            assert resp.value.status == 201
            card.locator(".report-msg[data-msg=reportThanks]").wait_for()
            courier.reload()
            courier.wait_for_function("() => document.body.dataset.status === 'ok'")
            reports = courier.locator(f"#list .card[data-id={d}] .reports").inner_text()
            assert reports == "1 problem report not yet resolved"
            # only map tiles are external (blocked here)
            assert {urllib.parse.urlsplit(u).hostname for u in courier.blocked} <= {"tile.openstreetmap.org"}
            courier.blocked.clear()

        with new_page(browser, base, request.node.name) as page:
            # The vocabulary (the amenities' labels) arriving after the reports must not leave codes in the list.
            page.route("**/api/v1/vocabulary*", lambda route: (page.wait_for_timeout(700), route.continue_()))
            sign_in(page, world.tokens["bob"])
            page.wait_for_selector("#report-list li[data-id]")
            assert "缺少设施：充电" in page.inner_text("#report-list")
            assert "1 条反馈" in page.inner_text(f"#sites .site[data-id={d}]")
            page.click("#report-list li[data-id] button")
            page.wait_for_selector("#reports-empty:not([hidden])")

    chromium.run(scenario)
    assert world.store.reports.unresolved_counts([d]) == {}


def test_an_operator_signs_in_with_a_password_edits_and_signs_out(
        chromium: BrowserThread, served: tuple[World, str], request: pytest.FixtureRequest) -> None:
    world, base = served
    site = sid("op-c")  # bob's
    bob = world.store.accounts.give_login("bob", "bob.ops")
    world.store.accounts.set_password(bob, "bob's password 2026")
    seen: list[str] = []

    def scenario(browser: Any) -> None:
        with new_page(browser, base, request.node.name) as page:
            page.goto(base + "/operator")
            page.wait_for_selector("body[data-state=signed-out]")
            page.fill("#login", "Bob.Ops")
            page.fill("#password", "not the password")
            page.click("#password-form button[type=submit]")
            page.wait_for_selector("#password-msg[data-msg=badPassword]")
            assert "登录名或密码错误" in page.inner_text("#password-msg")
            assert page.input_value("#password") == ""  # a refused password is not left in the form

            page.fill("#password", "bob's password 2026")
            page.click("#password-form button[type=submit]")
            page.wait_for_selector("body[data-state=list]")
            assert "bob" in page.inner_text("#whoami")
            [cookie] = [c for c in page.context.cookies() if c["name"] == "gs_session"]
            assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/"
            seen.append(cookie["value"])
            assert "gs_session" not in page.evaluate("document.cookie")  # scripts cannot read it
            assert page.evaluate("sessionStorage.getItem('gs.op.token')") is None  # no token kept

            page.click(f"#sites .site[data-id={site}]")
            page.wait_for_selector("body[data-state=editing]")
            page.fill("#hours", "Mo-Su 09:00-17:00")
            page.wait_for_selector("#preview[data-status=ok][data-expr='Mo-Su 09:00-17:00']")
            page.click("#save")
            page.wait_for_selector("#save-msg[data-msg=saved]")
            assert world.store.sites.get_site(site).opening_hours == "Mo-Su 09:00-17:00"  # type: ignore[union-attr]

            # the same cookie without the CSRF token (what a forged request carries) is refused
            forged = page.evaluate("""async (site) => {
                const r = await fetch('/api/v1/sites/' + site, {method: 'PATCH', credentials: 'include',
                  headers: {'Content-Type': 'application/json', 'If-Match': '"99"'}, body: '{"notes": "forged"}'});
                return [r.status, (await r.json()).errors[0].field];
            }""", site)
            assert forged == [403, "X-CSRF-Token"]

            page.reload()  # a reload carries on with the live session
            page.wait_for_selector("body[data-state=list]")
            page.click("#signout")
            page.wait_for_selector("body[data-state=signed-out]")
            assert page.is_visible("#password-form")
            assert page.evaluate("fetch('/api/v1/session').then(r => r.json())")["signed_in"] is False
            assert not [c for c in page.context.cookies() if c["name"] == "gs_session"]

    chromium.run(scenario)
    assert seen and token_hash(seen[0]) not in rows_of_every_table(world.store)  # ended on the server too


def test_an_operator_sets_alert_hours_with_a_preview_and_a_cold_wave_then_opens_the_site(
        chromium: BrowserThread, served: tuple[World, str], request: pytest.FixtureRequest) -> None:
    from geoservice.services.alerts import AlertService

    world, base = served
    b = sid("op-b")  # alice's, Mo-Su 06:00-22:00
    late = tomorrow_at(23)
    seen: dict[str, Any] = {}

    def scenario(browser: Any) -> None:
        with new_page(browser, base, request.node.name) as page:
            sign_in(page, world.tokens["alice"])
            page.click(f"#sites .site[data-id={b}]")
            page.wait_for_selector("body[data-state=editing]")
            assert page.is_hidden("#alert-box") and not page.is_checked("#alert-on")
            page.check("#alert-on")
            assert page.input_value("#alert-hours") == "24/7"  # the usual choice, offered
            page.fill("#alert-hours", "Mo-Su 05:00-24:0x")
            page.wait_for_selector("#alert-preview[data-status=error]")
            seen["error"] = page.inner_text("#alert-hours-error-text")
            assert page.is_hidden("#hours-error")  # the regular hours are fine
            page.fill("#alert-hours", "Mo-Su 05:00-24:00")
            page.wait_for_selector("#alert-preview[data-status=ok][data-expr='Mo-Su 05:00-24:00']")
            seen["preview"] = page.inner_text(f"#alert-preview-days tr[data-date='{late.date().isoformat()}']")
            seen["types"] = page.inner_text("#alert-types")
            assert page.is_checked("#at-cold_wave")
            page.check("#at-blizzard")
            page.select_option("#alert-level", "yellow")
            page.click("#save")
            page.wait_for_selector("#save-msg[data-msg=saved]")
            page.click("#back")
            page.wait_for_selector("body[data-state=list]")
            page.click(f"#sites .site[data-id={b}]")  # what was saved comes back into the form
            page.wait_for_selector("#alert-preview[data-status=ok]")
            seen["again"] = (page.is_checked("#alert-on"), page.input_value("#alert-hours"),
                             page.input_value("#alert-level"), page.is_checked("#at-blizzard"))

    chromium.run(scenario)
    assert "16" in seen["error"]
    assert "05:00–24:00" in seen["preview"] and "寒潮" in seen["types"]
    assert seen["again"] == (True, "Mo-Su 05:00-24:00", "yellow", True)
    stored = world.store.sites.get_site(b)
    assert stored is not None and stored.alert_hours == {
        "hours": "Mo-Su 05:00-24:00", "types": ["cold_wave", "blizzard"], "min_level": "yellow"}
    assert b not in public_nearest(base, late.isoformat())
    carol = world.store.accounts.get("carol")
    assert carol is not None
    alert = AlertService(world.store.sites).declare(carol, "cold_wave", "yellow", [stored.district_adcode],
                                                    late - dt.timedelta(hours=2), late + dt.timedelta(hours=3))
    assert b in public_nearest(base, late.isoformat())
    AlertService(world.store.sites).delete(carol, alert.id)
    assert b not in public_nearest(base, late.isoformat())
