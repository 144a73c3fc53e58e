"""The couriers' cards show what operators posted now and couriers' "may be closed" marks (issue 14, item 2), in
real headless Chromium, in Chinese and in English.

Statuses are posted through the service of the live server (as the operators' API does) on four sites the page
is about to show; the page's answer is the real one. Everything is cleared at the end, so the shared demo store is
as other browser tests expect it.
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from geoservice.hours import now_local
from geoservice.model import Report
from geoservice.services import Services

from .conftest import DONGCHENG, api_get, wait_results
from .test_couriers_page import _assert_only

pytestmark = pytest.mark.browser

BADGES = {
    "zh": {"full": "满员", "seats": "剩余 3 个座位", "may": "可能已关闭", "posted": "{t} 发布",
           "why": "3 位快递员反馈到达时已关闭（{t} 起）"},
    "en": {"full": "Full", "seats": "3 seats free", "may": "May be closed", "posted": "posted {t}",
           "why": "3 couriers found it closed (since {t})"},
}


def hm(iso: str) -> str:
    return iso[11:16]  # the API's times are Beijing time (+08:00)


@pytest.fixture
def posted(live_app: Any, live_server: str) -> Iterator[dict[str, str]]:
    """Four sites of the page's first answer: one full, one with 3 seats free, one closed now, one marked."""
    svc: Services = live_app.extensions["geoservice.services"]
    answer = api_get(live_server, f"/api/v1/sites/nearest?lat={DONGCHENG['latitude']}&lon={DONGCHENG['longitude']}"
                                  "&arrive_within=60&limit=8")
    ids = [f["id"] for f in answer["features"]]
    assert len(ids) >= 4, "the demo network has open sites in Dongcheng now"
    roles = dict(zip(("full", "seats", "closed", "may"), ids))
    now = now_local()
    svc.live.post(roles["full"], "full", "browser-test", now, seats_free=0, capacity=6)
    svc.live.post(roles["seats"], "open", "browser-test", now, seats_free=3, capacity=8)
    svc.live.post(roles["closed"], "closed_now", "browser-test", now)
    reports = [svc.live.add_report(Report(site_id=roles["may"], type="closed_on_arrival", observed_at=now),
                                   f"203.0.113.{n}") for n in (1, 2, 3)]
    try:
        yield roles
    finally:
        for site_id in roles.values():
            svc.live.clear(site_id, "browser-test", now_local())
        for r in reports:
            assert r.id is not None
            svc.reports.resolve(r.id, "browser-test")


def test_cards_show_full_seats_and_may_be_closed_with_their_times_in_chinese_and_english(
        new_page: Any, posted: dict[str, str]) -> None:
    page = new_page("zh-CN")
    with page.expect_response(lambda r: "/api/v1/sites/nearest" in r.url) as info:
        page.goto(page.base + "/")
    wait_results(page)
    answer = {f["id"]: f["properties"] for f in info.value.json()["features"]}
    assert posted["closed"] not in answer  # closed now: not in an open-only answer
    assert page.locator(f"#site-{posted['closed']}").count() == 0
    full_at = hm(answer[posted["full"]]["live_status"]["posted_at"])
    seats_at = hm(answer[posted["seats"]]["live_status"]["posted_at"])
    may_since = hm(answer[posted["may"]]["may_be_closed"]["since"])
    for lang in ("zh", "en"):
        if lang == "en":
            page.click("#lang")
            page.wait_for_function("() => document.documentElement.lang === 'en'")
        words = BADGES[lang]
        full = page.locator(f"#site-{posted['full']} [data-live=full]")
        assert full.locator("strong").inner_text() == words["full"]
        assert full.locator(".posted").inner_text().strip(" ·") == words["posted"].format(t=full_at)
        seats = page.locator(f"#site-{posted['seats']} [data-live=open]")
        assert seats.locator("strong").inner_text() == words["seats"]
        assert seats.locator(".posted").inner_text().strip(" ·") == words["posted"].format(t=seats_at)
        may = page.locator(f"#site-{posted['may']} [data-live=may_be_closed]")
        assert may.locator("strong").inner_text() == words["may"]
        assert may.locator(".posted").inner_text().strip(" ·") == words["why"].format(t=may_since)
        # Sites with nothing posted carry no badge.
        others = [i for i in answer if i not in posted.values()]
        assert others and all(page.locator(f"#site-{i} .live").count() == 0 for i in others)
        _assert_only(page, lang)
