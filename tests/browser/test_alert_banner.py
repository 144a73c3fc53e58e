"""The couriers' page under a weather alert (issue 14 item 1), in real headless Chromium, zh and en: a banner
names the alert (type, level, until when) and the card of a site open only by its alert hours says so.

The nearest Dongcheng site is made closed now (open one hour, twelve hours ahead), then gets alert hours
``24/7`` for cold waves through the live server's service; a red cold-wave alert over Dongcheng is declared from
an hour ago for three hours. All of it is undone at the end, so the shared demo store is as other browser tests
expect it.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest

from geoservice.hours import now_local
from geoservice.services import Services
from geoservice.services.alerts import AlertService

from .conftest import DONGCHENG, api_get, wait_results
from .test_couriers_page import _assert_only

pytestmark = pytest.mark.browser

WORDS = {"zh": {"banner": "寒潮红色预警 · 至 {t}", "card": "预警延时开放"},
         "en": {"banner": "Cold wave alert, Red · until {t}", "card": "Extended hours (alert)"}}


@pytest.fixture
def alert(live_app: Any, live_server: str) -> Iterator[dict[str, Any]]:
    """A closed Dongcheng site near the page's point, opened by a cold wave's alert hours."""
    svc: Services = live_app.extensions["geoservice.services"]
    answer = api_get(live_server, f"/api/v1/sites/nearest?lat={DONGCHENG['latitude']}&lon={DONGCHENG['longitude']}"
                                  "&include_closed=true&limit=8")
    dongcheng = [f for f in answer["features"] if (f["properties"]["district"] or {}).get("adcode") == "110101"]
    assert dongcheng, "the page's point is in Dongcheng: the demo network has sites around it"
    site_id = dongcheng[0]["id"]
    site = svc.sites.get_site(site_id)
    assert site is not None
    hours = site.opening_hours
    # Closed now whatever the hour the test runs at: open one hour, twelve hours from now.
    h = (now_local() + dt.timedelta(hours=12)).hour
    svc.sites.update_site(site_id, {"opening_hours": f"Mo-Su {h:02d}:00-{h + 1:02d}:00"}, actor="browser-test")
    admin = svc.accounts.get("browser-alerts") or svc.accounts.create("browser-alerts", "admin")
    svc.sites.update_site(site_id, {"alert_hours": {"hours": "24/7", "types": ["cold_wave"], "min_level": "red"}},
                          actor="browser-test")
    now = now_local()
    declared = AlertService(svc.sites).declare(admin, "cold_wave", "red", ["110101"], now - dt.timedelta(hours=1),
                                               now + dt.timedelta(hours=3))
    try:
        yield {"site": site_id, "end": declared.end.astimezone(now.tzinfo)}
    finally:
        AlertService(svc.sites).delete(admin, declared.id)
        svc.sites.update_site(site_id, {"alert_hours": None, "opening_hours": hours}, actor="browser-test")


def test_the_alert_banner_and_the_card_label_in_chinese_and_english(new_page: Any, alert: dict[str, Any]) -> None:
    page = new_page("zh-CN")
    with page.expect_response(lambda r: "/api/v1/sites/nearest" in r.url) as info:
        page.goto(page.base + "/")
    wait_results(page)
    answer = {f["id"]: f["properties"] for f in info.value.json()["features"]}
    assert alert["site"] in answer, "the site open by its alert hours is in the page's open-only answer"
    assert answer[alert["site"]]["open_reason"] == "alert_hours"
    until = alert["end"].strftime("%m-%d %H:%M")
    page.wait_for_selector("#warnings [data-alert=cold_wave]")
    for lang in ("zh", "en"):
        if lang == "en":
            page.click("#lang")
            page.wait_for_function("() => document.documentElement.lang === 'en'")
        banner = page.locator("#warnings [data-alert=cold_wave]")
        assert banner.count() == 1 and banner.get_attribute("data-level") == "red"
        assert banner.inner_text().strip() == WORDS[lang]["banner"].format(t=until)
        label = page.locator(f"#site-{alert['site']} [data-open-reason=alert_hours]")
        assert label.inner_text().strip() == WORDS[lang]["card"]
        # Sites open by their own hours carry no such label.
        others = [i for i, p in answer.items() if p["open_reason"] == "hours"]
        assert others and all(page.locator(f"#site-{i} [data-open-reason]").count() == 0 for i in others)
        _assert_only(page, lang)
