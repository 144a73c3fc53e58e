"""The admin console (/admin) in Debian's headless Chromium, end to end against the real app (embedded store,
the two-district world): the city admin creates an account, resets its password (the one-time code is shown),
assigns it a site and asks for a verification; the operator signs in at /operator, sees the request, verifies
(which clears it) and signs out; a district admin sees neither another district's accounts, sites nor reports;
a cross-site write without the CSRF token is refused."""
from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from geoservice.hours import now_local
from geoservice.model import Report
from tests.operators.test_operator_page import CHROMIUM, BrowserThread, new_page
from tests.support.districts import Districts, build_districts
from tests.support.sites import sid

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def chromium() -> Iterator[BrowserThread]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium not found at {CHROMIUM}", pytrace=False)
    worker = BrowserThread()
    yield worker
    worker.close()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Districts, str]]:
    from werkzeug.serving import make_server

    from tests.support.stores import fresh_embedded

    tmp = tmp_path_factory.mktemp("admin-page")
    store = fresh_embedded(tmp / "admin.sqlite")
    world = build_districts(store, tmp)
    for login, password in (("carol", "carol's password 2026"), ("xcadmin", "xicheng password 2026")):
        store.accounts.set_password(store.accounts.by_login(login), password)  # type: ignore[arg-type]
    for site in (world.site["110101"], world.site["110102"]):
        store.reports.add(Report(site_id=site, type="closed_on_arrival", observed_at=now_local(),
                                 note="<img src=x onerror=alert(1)>"))
    server = make_server("127.0.0.1", 0, world.app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="admin-live-server", daemon=True)
    thread.start()
    try:
        yield world, f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)
        store.close()


def sign_in(page: Any, path: str, login: str, password: str, ready: str) -> None:
    page.goto(page.base + path)
    page.wait_for_selector("body[data-state=signed-out]")
    page.fill("#login", login)
    page.fill("#password", password)
    page.click("#password-form button[type=submit]")
    page.wait_for_selector(ready)


def test_an_admin_creates_an_account_assigns_a_site_and_asks_for_a_verification(
        chromium: BrowserThread, served: tuple[Districts, str], request: pytest.FixtureRequest) -> None:
    world, base = served
    site = sid("op-d")  # nobody's yet
    codes: list[str] = []

    def admin(browser: Any) -> None:
        with new_page(browser, base, request.node.name + "-admin") as page:
            sign_in(page, "/admin", "carol", "carol's password 2026", "body[data-tab=accounts]")
            page.fill("#new-name", "某银行东城支行")
            page.fill("#new-login", "bank.dc")
            page.click("#create-form button[type=submit]")
            page.wait_for_selector("#accounts tr[data-login='bank.dc']")
            page.click("#accounts tr[data-login='bank.dc'] [data-act=reset]")
            page.wait_for_selector("#secret:not([hidden])")
            codes.append(page.inner_text("#secret-value").strip())
            assert "某银行东城支行" in page.inner_text("#secret-label")

            page.click(".tab[data-tab=sites]")
            page.fill("#site-q", site)
            page.click("#site-search button[type=submit]")
            page.wait_for_selector(f"#site-results tr[data-site='{site}']")
            page.select_option("#assign-to", "bank.dc")
            page.click(f"#site-results tr[data-site='{site}'] [data-act=assign]")
            page.wait_for_selector(f"#site-results tr[data-site='{site}'] [data-act=unassign]")

            page.click(".tab[data-tab=stale]")
            page.wait_for_selector(f"#stale-list li[data-site='{site}'] [data-act=ask]")
            page.click(f"#stale-list li[data-site='{site}'] [data-act=ask]")
            page.wait_for_selector(f"#stale-list li[data-site='{site}'] .asked")

            page.click(".tab[data-tab=reports]")
            page.wait_for_selector("#report-list li[data-report]")
            assert page.locator("#report-list img").count() == 0  # a courier's note stays text
            assert "<img src=x" in page.inner_text("#report-list")

            # a cross-site write carries the cookie but not the CSRF token: refused, nothing created
            forged = page.evaluate("""async () => {
                const r = await fetch('/api/v1/admin/accounts', {method: 'POST', credentials: 'include',
                  headers: {'Content-Type': 'application/json'}, body: '{"name": "forged", "login": "forged"}'});
                return r.status;
            }""")
            assert forged == 403
            page.click("#signout")
            page.wait_for_selector("body[data-state=signed-out]")

    chromium.run(admin)
    assert world.store.accounts.by_login("forged") is None
    made = world.store.accounts.by_login("bank.dc")
    assert made is not None and world.store.accounts.owned_site_ids(made, [site]) == {site}
    assert site in world.store.accounts.verify_requests([site])
    assert codes and codes[0]
    world.store.accounts.redeem_setup_code("bank.dc", codes[0], "bank password 2026")

    def operator(browser: Any) -> None:
        with new_page(browser, base, request.node.name + "-operator") as page:
            sign_in(page, "/operator", "bank.dc", "bank password 2026", "body[data-state=list]")
            page.wait_for_selector(f"#sites .site[data-id='{site}'] .verify-ask")
            page.click(f"#sites .site[data-id='{site}']")
            page.wait_for_selector("body[data-state=editing]")
            assert page.is_visible("#verify-ask") and "carol" in page.inner_text("#verify-ask")
            page.click("#verify")
            page.wait_for_selector("#save-msg[data-msg=verified]")
            page.wait_for_selector("#verify-ask", state="hidden")
            page.click("#signout")
            page.wait_for_selector("body[data-state=signed-out]")

    chromium.run(operator)
    assert world.store.accounts.verify_requests([site]) == {}


def test_a_district_admin_sees_only_its_district(chromium: BrowserThread, served: tuple[Districts, str],
                                                 request: pytest.FixtureRequest) -> None:
    world, base = served
    dongcheng, xicheng = world.site["110101"], world.site["110102"]

    def scenario(browser: Any) -> None:
        with new_page(browser, base, request.node.name, locale="en-US") as page:
            sign_in(page, "/admin", "xcadmin", "xicheng password 2026", "body[data-tab=accounts]")
            page.wait_for_selector("#accounts tr[data-login=xop]")
            assert page.locator("#accounts tr[data-login=alice]").count() == 0
            page.click(".tab[data-tab=sites]")
            page.wait_for_selector(f"#site-results tr[data-site='{xicheng}']")
            assert page.locator(f"#site-results tr[data-site='{dongcheng}']").count() == 0
            page.fill("#site-district", "110101")  # asking for another district is refused, not answered
            page.click("#site-search button[type=submit]")
            page.wait_for_selector("#console-msg[data-kind=bad]")
            page.click(".tab[data-tab=reports]")
            page.wait_for_selector("#report-list li[data-report]")
            assert dongcheng not in page.inner_text("#report-list") and xicheng in page.inner_text("#report-list")

    chromium.run(scenario)


def test_a_city_admin_loads_an_excel_file_and_replays_a_failed_webhook_batch(
        chromium: BrowserThread, served: tuple[Districts, str], request: pytest.FixtureRequest,
        tmp_path: Path) -> None:
    from geoservice.model import SiteFilter
    from tests.cli.test_load_xlsx import bad_rows, workbook

    world, base = served
    path = workbook(tmp_path / "东城台账.xlsx", bad_rows())
    before = world.store.sites.list_sites(SiteFilter(limit=1))[1]
    hook, _ = world.store.webhooks.register("https://93.184.216.34/hooks/union-app", "test")
    world.store.webhooks.hooks.give_up(hook.id, 1, 3, 8, "HTTP 503", now_local())
    seen: dict[str, Any] = {}

    def scenario(browser: Any) -> None:
        with new_page(browser, base, request.node.name) as page:
            sign_in(page, "/admin", "carol", "carol's password 2026", "body[data-tab=accounts]")
            page.click(".tab[data-tab=imports]")
            page.set_input_files("#import-file", str(path))
            page.select_option("#import-crs", "gcj02")
            page.click("#import-form button[type=submit]")
            page.wait_for_selector("body[data-import=refused]")
            seen["refused"] = page.inner_text("#import-problems")
            seen["summary"] = page.inner_text("#import-summary")
            seen["after_refusal"] = world.store.sites.list_sites(SiteFilter(limit=1))[1]
            # The explicit choice: skip the bad rows; the preview writes nothing, the confirmation loads.
            page.check("#import-skip")
            page.click("#import-form button[type=submit]")
            page.wait_for_selector("body[data-import=previewed]")
            seen["preview"] = page.inner_text("#import-summary")
            seen["after_preview"] = world.store.sites.list_sites(SiteFilter(limit=1))[1]
            page.click("#import-apply")
            page.wait_for_selector("body[data-import=loaded]")
            seen["loaded"] = page.inner_text("#import-summary")

            page.click(".tab[data-tab=webhooks]")
            page.wait_for_selector(f"#hook-list li[data-hook='{hook.id}']")
            seen["hook"] = page.inner_text(f"#hook-list li[data-hook='{hook.id}']")
            page.click(f"#hook-list li[data-hook='{hook.id}'] [data-act=letters]")
            page.wait_for_selector("#letter-list li[data-letter]")
            seen["letter"] = page.inner_text("#letter-list")
            page.click("#letter-list [data-act=replay]")
            page.wait_for_selector("#console-msg[data-kind=ok]")

    chromium.run(scenario)
    assert "sheet 站点, row 6, column F (开放时间): opening_hours" in seen["refused"]
    assert "sheet 站点, row 7, column D (经度（GCJ-02）), E (纬度（GCJ-02）): lon/lat" in seen["refused"]
    assert "未写入任何数据" in seen["summary"]
    assert seen["after_refusal"] == before and seen["after_preview"] == before
    assert "新增 3 个" in seen["preview"] and "跳过 3 条" in seen["preview"] and "尚未写入" in seen["preview"]
    assert "新增 3 个" in seen["loaded"]
    assert world.store.sites.list_sites(SiteFilter(limit=1))[1] == before + 3
    assert "1 批失败待重发" in seen["hook"] and "HTTP 503" in seen["letter"]
    (letter,) = world.store.webhooks.dead_letters(hook.id)
    assert letter.replay_requested_at is not None  # queued for the delivery worker


def test_the_sixth_wrong_password_in_a_row_is_throttled_on_the_page(
        chromium: BrowserThread, served: tuple[Districts, str], request: pytest.FixtureRequest) -> None:
    _, base = served
    said: list[str] = []

    def scenario(browser: Any) -> None:
        with new_page(browser, base, request.node.name) as page:
            page.goto(page.base + "/admin")
            page.wait_for_selector("body[data-state=signed-out]")
            for n in range(1, 7):
                page.fill("#login", "dcadmin")  # nobody signs in as dcadmin elsewhere in this module
                page.fill("#password", f"wrong password number {n}")
                with page.expect_response(lambda r: r.url.endswith("/api/v1/session") and r.request.method == "POST"):
                    page.click("#password-form button[type=submit]")
                page.wait_for_selector("#signin-msg:not([hidden])")
                said.append(page.inner_text("#signin-msg"))
                assert page.input_value("#password") == ""  # the page never keeps a typed password

    chromium.run(scenario)
    assert said[:5] == ["登录名或密码错误。"] * 5
    assert said[5] == "密码错误次数太多，请稍后再试。"


def _beijing(at: Any) -> str:
    """``at`` as the value of a datetime-local input (Beijing time, minutes)."""
    return at.strftime("%Y-%m-%dT%H:%M")


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_a_district_admin_declares_moves_and_deletes_a_weather_alert_only_in_its_districts(
        chromium: BrowserThread, served: tuple[Districts, str], request: pytest.FixtureRequest, lang: str) -> None:
    import datetime as dt

    from geoservice.services.alerts import AlertService
    from tests.support.districts import DONGCHENG, XICHENG

    world, base = served
    alerts = AlertService(world.store.sites)
    start = now_local().replace(second=0, microsecond=0) + dt.timedelta(hours=1)
    end, later = start + dt.timedelta(hours=6), start + dt.timedelta(hours=9)
    seen: dict[str, Any] = {}

    def scenario(browser: Any) -> None:
        with new_page(browser, base, request.node.name, locale="en-US" if lang == "en" else "zh-CN") as page:
            page.add_init_script(f"localStorage.setItem('gs.admin.lang', '{lang}')")
            sign_in(page, "/admin", "xcadmin", "xicheng password 2026", "body[data-tab=accounts]")
            page.click(".tab[data-tab=alerts]")
            page.wait_for_selector("body[data-tab=alerts] #alert-type option[value=cold_wave]", state="attached")
            seen["types"] = page.inner_text("#alert-type")
            seen["districts"] = page.input_value("#alert-districts")  # its own, filled in
            page.select_option("#alert-type", "cold_wave")
            page.select_option("#alert-level", "orange")
            page.fill("#alert-districts", f"{XICHENG}, {DONGCHENG}")
            page.fill("#alert-start", _beijing(start))
            page.fill("#alert-end", _beijing(end))
            page.click("#alert-form button[type=submit]")
            page.wait_for_selector("#console-msg[data-kind=bad]")
            seen["refused"] = page.inner_text("#console-msg")
            seen["after_refusal"] = alerts.active(now_local())
            page.fill("#alert-districts", XICHENG)
            page.click("#alert-form button[type=submit]")
            page.wait_for_selector("#alert-list li[data-alert]")
            seen["line"] = page.inner_text("#alert-list li[data-alert]")
            seen["declared"] = alerts.active(now_local())
            page.fill("#alert-list li[data-alert] input[data-field=end]", _beijing(later))
            page.click("#alert-list li[data-alert] [data-act=move-end]")
            page.wait_for_selector(f"#alert-list li[data-alert]:has-text('{later.strftime('%Y-%m-%d %H:%M')}')")
            seen["moved"] = alerts.active(now_local())
            page.click("#alert-list li[data-alert] [data-act=delete]")
            page.wait_for_selector("#alert-list li.muted")
            seen["after_delete"] = alerts.active(now_local())

    chromium.run(scenario)
    assert ("寒潮" if lang == "zh" else "Cold wave") in seen["types"]
    assert seen["districts"] == XICHENG
    assert DONGCHENG in seen["refused"] and seen["after_refusal"] == []  # nothing was written
    (alert,) = seen["declared"]
    assert (alert.type, alert.level, alert.districts, alert.start, alert.end) == (
        "cold_wave", "orange", (XICHENG,), start, end)
    expected = "寒潮 橙色预警" if lang == "zh" else "Cold wave, Orange"
    assert expected in seen["line"] and end.strftime("%Y-%m-%d %H:%M") in seen["line"]
    assert [a.end for a in seen["moved"]] == [later]
    assert seen["after_delete"] == []
