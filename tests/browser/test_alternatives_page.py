"""When nothing matching is open, the couriers' page says what the courier can do (issue 17, item 4), in real
headless Chromium, in Chinese and in English.

The page always asks about "now"; its request is answered by the real service for 23:45 on a Tuesday in
Dongcheng, for a mother-and-baby room with a toilet (none is open within an hour's walk in the demo network).
"""
from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest

from .conftest import wait_results
from .test_couriers_page import _assert_only

pytestmark = pytest.mark.browser

NOTHING_OPEN = {"at": "2026-11-24T23:45", "kind": "mother_baby_room", "amenity": "toilet", "arrive_within": "60"}
LINES = {
    "zh": {"opens_soonest": "{name}，明天 05:00 开门，步行约 {min} 分钟",
           "nearest_open_any": "{name}，{dist}，步行约 {min} 分钟"},
    "en": {"opens_soonest": "{name}: opens tomorrow 05:00, about {min} min on foot",
           "nearest_open_any": "{name}: {dist}, about {min} min on foot"},
}
TITLES = {"zh": {"opens_soonest": "最早开放", "nearest_open_any": "现在开放的最近站点（任何类型）"},
          "en": {"opens_soonest": "Opens soonest",
                 "nearest_open_any": "The nearest site open now (any kind)"}}
STATES = {"zh": {"opens_soonest": "已关闭 — 周三 05:00 开放"}, "en": {"opens_soonest": "Closed — opens Wed 05:00"}}


def distance(m: float, lang: str) -> str:
    if m < 1000:
        return f"{round(m)} 米" if lang == "zh" else f"{round(m)} m"
    km = f"{m / 1000:.1f}" if m < 10000 else f"{m / 1000:.0f}"
    return f"{km} 公里" if lang == "zh" else f"{km} km"


def test_nothing_open_shows_both_alternatives_in_chinese_and_english(new_page: Any) -> None:
    answers: list[dict[str, Any]] = []

    def at_night(route: Any) -> None:
        """The page's own request (its place, its limit), asked of the real service at 23:45 with the filters."""
        parts = urlsplit(route.request.url)
        params = dict(parse_qsl(parts.query)) | NOTHING_OPEN
        resp = route.fetch(url=f"{parts.scheme}://{parts.netloc}{parts.path}?{urlencode(params)}")
        body = resp.json()
        answers.append(body)
        route.fulfill(status=resp.status, content_type="application/geo+json", body=json.dumps(body))

    page = new_page("zh-CN")
    page.route("**/api/v1/sites/nearest*", at_night)
    page.goto(page.base + "/")
    wait_results(page)
    assert answers, "the page asked for the nearest sites"
    body = answers[-1]
    assert body["features"] == [] and page.locator("#list .card").count() == 0
    alt = body["alternatives"]
    assert alt["opens_soonest"] is not None and alt["nearest_open_any"] is not None
    assert alt["opens_soonest"]["properties"]["next_open"] == "2026-11-25T05:00:00+08:00"
    assert alt["nearest_open_any"]["properties"]["is_open"] is True
    assert "toilet" not in alt["nearest_open_any"]["properties"]["amenities"]  # the filters do not hold for it

    box = page.locator("#alternatives")
    for lang in ("zh", "en"):
        if lang == "en":
            page.click("#lang")
            page.wait_for_function("() => document.documentElement.lang === 'en'")
        assert box.is_visible()
        assert box.locator("h2").inner_text() == ("你还可以去：" if lang == "zh" else "Where you can go instead:")
        for which in ("opens_soonest", "nearest_open_any"):
            f = alt[which]
            p = f["properties"]
            name = (p["name_en"] or p["name_zh"]) if lang == "en" else p["name_zh"]
            sec = box.locator(f"section[data-alt={which}]")
            assert sec.locator(".alt-title").inner_text() == TITLES[lang][which]
            line = LINES[lang][which].format(name=name, min=p["walk_minutes"], dist=distance(p["distance_m"], lang))
            assert sec.locator(".alt-line").inner_text() == line, (lang, which)
            card = sec.locator(".card")
            assert card.count() == 1 and card.get_attribute("data-id") == f["id"]
            assert card.locator(".name").inner_text() == name
            assert card.locator(".dist").inner_text() == distance(p["distance_m"], lang)
            if which in STATES[lang]:
                assert card.locator(".state").inner_text() == STATES[lang][which]
            else:
                assert "closed" not in (card.locator(".state").get_attribute("class") or "")
            assert card.locator("[data-app=amap]").count() == 1  # directions, as for any result
        # The soonest opening is a matching room: the card says its kind in the page's language.
        kinds = box.locator(".card .kind").all_inner_texts()
        assert len(kinds) == 2 and kinds[0] == ("母婴关爱室" if lang == "zh" else "Mother-and-baby room")
        _assert_only(page, lang)


def test_alternatives_are_apart_from_results_and_gone_when_there_are_results(new_page: Any) -> None:
    def doctor(route: Any) -> None:
        body = route.fetch().json()
        assert body["features"], "the demo network has open sites near Dongcheng now"
        assert body["alternatives"] is None
        route.fulfill(status=200, content_type="application/geo+json", body=json.dumps(body))

    page = new_page("en-US")
    page.route("**/api/v1/sites/nearest*", doctor)
    page.goto(page.base + "/")
    wait_results(page)
    assert page.locator("#list .card").count() > 0
    assert page.locator("#alternatives").is_hidden()
    assert page.locator("#alternatives .card").count() == 0


def test_no_alternative_is_said_plainly(new_page: Any) -> None:
    def nothing_at_all(route: Any) -> None:
        body = route.fetch().json()
        body.update(features=[], numberReturned=0, alternatives={"opens_soonest": None, "nearest_open_any": None})
        route.fulfill(status=200, content_type="application/geo+json", body=json.dumps(body))

    page = new_page("zh-CN")
    page.route("**/api/v1/sites/nearest*", nothing_at_all)
    page.goto(page.base + "/")
    wait_results(page)
    box = page.locator("#alternatives")
    assert box.locator("[data-alt=opens_soonest] .alt-none").inner_text() == "附近没有即将开放的符合条件的站点。"
    assert box.locator("[data-alt=nearest_open_any] .alt-none").inner_text() == "现在没有任何开放的站点。"
    assert box.locator(".card").count() == 0
    page.click("#lang")
    page.wait_for_function("() => document.documentElement.lang === 'en'")
    assert box.locator("[data-alt=nearest_open_any] .alt-none").inner_text() == "No site is open anywhere right now."
