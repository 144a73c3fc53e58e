"""The couriers' page (geoservice/static/index.html) in real headless Chromium on a 360×740 phone viewport."""
from __future__ import annotations

import copy
import json
import math
import re
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import pytest

from geoservice.geo import from_wgs84, to_wgs84

from .conftest import DONGCHENG, api_get, wait_results

pytestmark = pytest.mark.browser

CJK = re.compile(r"[\u3000-\u303f\u3400-\u9fff\uf900-\ufaff\uff00-\uffef]")
LATIN = re.compile(r"[A-Za-z]")

# Visible UI text in the page's language: text nodes, accessible names, <option>s and the title. Elements from
# API data ([data-from], e.g. site names and addresses) and elements marked with another language (lang="…",
# e.g. the language button's own name) are left out.
UI_TEXT_JS = """() => {
  const prim = s => (s || '').toLowerCase().split('-')[0];
  const want = prim(document.documentElement.lang);
  const visible = el => el.getClientRects().length > 0 && getComputedStyle(el).visibility !== 'hidden';
  const ours = el => { const l = el.closest('[lang]'); return prim(l && l.getAttribute('lang')) === want
                       && !el.closest('[data-from]'); };
  const out = [];
  const w = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  let n;
  while ((n = w.nextNode())) {
    const t = n.nodeValue.trim(), p = n.parentElement;
    if (!t || !p || p.closest('script,style') || !visible(p) || !ours(p)) continue;
    out.push(t);
  }
  document.querySelectorAll('[aria-label],[title],[placeholder],[alt]').forEach(el => {
    if (!visible(el) || !ours(el)) return;
    for (const a of ['aria-label', 'title', 'placeholder', 'alt']) { const v = el.getAttribute(a); if (v) out.push(v); }
  });
  document.querySelectorAll('select option').forEach(o => { if (ours(o)) out.push(o.textContent.trim()); });
  out.push(document.title);
  return out;
}"""

CARD_IDS_JS = "els => els.map(e => e.dataset.id)"


def query_of(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query)


def open_page(page: Any) -> str:
    """Load the page and wait for the first answer; return the page's request URL."""
    page.goto(page.base + "/")
    return wait_results(page)


# (a) ------------------------------------------------------------------------------------------------------
def test_geolocated_first_card_is_the_nearest_open_site(new_page: Any, live_server: str) -> None:
    page = new_page("zh-CN")
    with page.expect_response(lambda r: "/api/v1/sites/nearest" in r.url) as info:
        page.goto(live_server + "/")
    url = wait_results(page)
    page_body = info.value.json()
    q = query_of(url)
    # The page asks what the brief says: where I am, open when I arrive (60 min), time = now (no `at`).
    assert math.isclose(float(q["lat"][0]), DONGCHENG["latitude"], abs_tol=1e-6)
    assert math.isclose(float(q["lon"][0]), DONGCHENG["longitude"], abs_tol=1e-6)
    assert q["arrive_within"] == ["60"]
    assert "at" not in q and "kind" not in q and "amenity" not in q

    # The expectation, from the service itself at the instant the page's request was answered.
    at = page_body["query"]["at"]
    expected = api_get(live_server, f"/api/v1/sites/nearest?lat={DONGCHENG['latitude']}&lon={DONGCHENG['longitude']}"
                                    f"&arrive_within=60&limit={q['limit'][0]}&at={quote(at)}")
    assert expected["features"], "the demo data should have open sites in Dongcheng"
    ids = page.eval_on_selector_all("#list .card", CARD_IDS_JS)
    assert ids[0] == expected["features"][0]["id"]
    assert ids == [f["id"] for f in expected["features"]]

    first = expected["features"][0]["properties"]
    card = page.locator("#list .card").first
    assert card.locator(".name").inner_text() == first["name_zh"]
    assert card.locator(".kind").inner_text() == first["kind_label"]["zh"]
    assert card.locator(".dist").inner_text() == (
        f"{round(first['distance_m'])} 米" if first["distance_m"] < 1000 else f"{first['distance_m'] / 1000:.1f} 公里")
    assert f"步行约 {first['walk_minutes']} 分钟" in card.locator(".walk").inner_text()
    state = card.locator(".state").inner_text()
    if first["open_all_week"]:
        assert state == "24小时开放"
    else:
        assert state.startswith("开放至 ") and first["open_until"][11:16] in state
    for a in first["amenity_labels"]:
        assert card.locator(f".amen li[data-amenity={a['code']}]").inner_text() == a["zh"]
    if first["phone"]:
        assert card.locator("a.call").get_attribute("href").startswith("tel:")
    assert page.locator("#locStatus").inner_text() == "位置：我的位置"


# (b) ------------------------------------------------------------------------------------------------------
def test_location_is_asked_on_a_tap_and_refusal_offers_landmarks_districts_and_map(new_page: Any,
                                                                                   live_server: str) -> None:
    page = new_page("zh-CN", geolocation=None)
    # Count the page's requests for a position: the browser's permission prompt comes with the first one.
    page.add_init_script("""(() => { const g = navigator.geolocation, get = g.getCurrentPosition.bind(g);
        window.__positionAsks = 0;
        g.getCurrentPosition = (...a) => { window.__positionAsks += 1; return get(...a); }; })()""")
    page.goto(live_server + "/")
    page.wait_for_selector("#chooser:not([hidden])")
    # Not asked on load: the page offers the choice and waits for a tap.
    assert "使用我的位置" in page.locator("#locStatus").inner_text()
    assert page.evaluate("window.__positionAsks") == 0
    page.click("#useGps")
    page.wait_for_function("() => document.querySelector('#locStatus').innerText.includes('没有定位权限')")
    assert page.evaluate("window.__positionAsks") == 1
    assert page.locator("#list .card").count() == 0

    # A landmark: one tap to an answer.
    page.click("#landmarks [data-landmark=guomao]")
    url = wait_results(page)
    q = query_of(url)
    assert (float(q["lat"][0]), float(q["lon"][0])) == (39.9087, 116.4595)
    assert page.locator("#list .card").count() > 0
    assert page.locator("#chooser").is_hidden()
    assert page.locator("#locStatus").inner_text() == "位置：国贸"

    # A district from /api/v1/districts, at its label point.
    page.click("#toggleChooser")
    page.wait_for_function("() => document.querySelectorAll('#district option').length === 17")
    haidian = next(f["properties"] for f in api_get(live_server, "/api/v1/districts")["features"]
                   if f["properties"]["adcode"] == "110108")
    page.select_option("#district", "110108")
    url2 = wait_results(page, url)
    q2 = query_of(url2)
    assert math.isclose(float(q2["lon"][0]), haidian["label_point"][0], abs_tol=1e-6)
    assert math.isclose(float(q2["lat"][0]), haidian["label_point"][1], abs_tol=1e-6)
    assert page.locator("#locStatus").inner_text() == "位置：海淀区"
    assert page.locator("#list .card").count() > 0

    # A point picked on the map (tiles are blocked: the map still takes the tap).
    page.click("#toggleChooser")
    page.click("#pickMap")
    page.wait_for_selector("body[data-map=ready]")
    assert page.locator("#pickBanner").is_visible()
    page.locator("#map").click(position={"x": 12, "y": 200})  # left edge: inside fitBounds' padding, no marker
    url3 = wait_results(page, url2)
    assert page.evaluate("window.geoservice.state.origin.src") == "map"
    assert page.locator("#locStatus").inner_text() == "位置：地图上选的点"
    assert page.locator("#pickBanner").is_hidden()
    q3 = query_of(url3)
    assert 39.4 < float(q3["lat"][0]) < 41.1 and 115.3 < float(q3["lon"][0]) < 117.6


# (c) ------------------------------------------------------------------------------------------------------
def test_amenity_filter_changes_the_list(new_page: Any) -> None:
    page = new_page("en-US")
    url = open_page(page)
    before = page.eval_on_selector_all("#list .card", CARD_IDS_JS)
    page.click("#filterSummary")
    chip = page.locator("#amenities [data-amenity=nursing_chair]")
    assert chip.inner_text() == "Nursing chair" and chip.get_attribute("aria-pressed") == "false"
    chip.click()
    url2 = wait_results(page, url)
    assert query_of(url2)["amenity"] == ["nursing_chair"]
    assert chip.get_attribute("aria-pressed") == "true"
    assert page.locator("#filterSummary").inner_text() == "Filters (1 on)"
    after = page.eval_on_selector_all("#list .card", CARD_IDS_JS)
    assert after and after != before
    cards = page.locator("#list .card")
    for i in range(cards.count()):
        card = cards.nth(i)
        assert "nursing_chair" in card.get_attribute("data-amenities").split()
        label = card.locator(".amen li[data-amenity=nursing_chair]")
        assert label.is_visible() and label.inner_text() == "Nursing chair"

    # A second amenity narrows further; every card has both.
    page.click("#amenities [data-amenity=toilet]")
    url3 = wait_results(page, url2)
    assert sorted(query_of(url3)["amenity"]) == ["nursing_chair", "toilet"]
    for amenities in page.eval_on_selector_all("#list .card", "els => els.map(e => e.dataset.amenities)"):
        assert {"nursing_chair", "toilet"} <= set(amenities.split())

    # "Still open when I arrive" is on by default; turning it off drops arrive_within.
    assert query_of(url3)["arrive_within"] == ["60"]
    page.click("label.switch")
    url4 = wait_results(page, url3)
    assert "arrive_within" not in query_of(url4)


# (d) ------------------------------------------------------------------------------------------------------
LABELS = ["h1", "#useGps", "#toggleChooser", "#filterSummary", "label.switch b", "#status h2",
          "#list .card:first-child .kind", "#list .card:first-child .state", "#list .card:first-child .dist",
          "#list .card:first-child .walk", "#list .card:first-child .navlbl", "#list .card:first-child .nav-amap",
          "#list .card:first-child .report", "#amenities [data-amenity=toilet]", "#kinds [data-kind=worker_home]",
          "#landmarks [data-landmark=bjwest]", "#mapWrap h2", "footer p", "#lang"]


def _labels(page: Any) -> dict[str, str]:
    return {sel: page.locator(sel).first.inner_text() for sel in LABELS}


def _assert_only(page: Any, lang: str) -> None:
    texts = page.evaluate(UI_TEXT_JS)
    assert len(texts) > 80, texts
    bad = CJK if lang == "en" else LATIN
    leftovers = [t for t in texts if bad.search(t)]
    assert not leftovers, f"{'Chinese' if lang == 'en' else 'Latin'} text left in {lang} mode: {leftovers}"


def test_language_switch_changes_every_label(new_page: Any) -> None:
    page = new_page("en-US")
    open_page(page)
    page.click("#filterSummary")
    page.click("#toggleChooser")
    page.wait_for_function("() => document.querySelectorAll('#district option').length === 17")
    page.wait_for_selector("body[data-map=ready]")
    page.wait_for_selector(".leaflet-control-zoom-in")
    assert page.evaluate("document.documentElement.lang") == "en"
    dictionary = page.evaluate("async () => (await import('/static/js/i18n.js')).STR")
    assert set(dictionary["en"]) == set(dictionary["zh"])  # in detail: test_page_i18n.py
    assert set(dictionary["en"]["landmark"]) == set(dictionary["zh"]["landmark"])
    _assert_only(page, "en")
    english = _labels(page)

    page.click("#lang")
    page.wait_for_function("() => document.documentElement.lang === 'zh-CN'")
    assert page.title() == "附近开放的驿站"
    _assert_only(page, "zh")
    chinese = _labels(page)
    unchanged = [sel for sel in LABELS if english[sel] == chinese[sel]]
    assert not unchanged, f"labels not translated: {[(s, english[s]) for s in unchanged]}"
    assert page.locator(".leaflet-control-zoom-in").get_attribute("title") == "放大"
    # Site names follow the language (name_en in English, name_zh in Chinese).
    name_zh = page.locator("#list .card:first-child .name").inner_text()
    assert CJK.search(name_zh)

    page.click("#lang")
    page.wait_for_function("() => document.documentElement.lang === 'en'")
    _assert_only(page, "en")
    assert _labels(page) == english
    # The choice is remembered.
    assert page.evaluate("localStorage.getItem('gs.lang')") == '"en"'


# (e) ------------------------------------------------------------------------------------------------------
TARGETS_JS = """() => {
  const out = [];
  document.querySelectorAll('button, a[href], select, summary, label.switch, .leaflet-bar a').forEach(el => {
    if (el.closest('.leaflet-control-attribution') || el.closest('.leaflet-marker-icon')) return;
    const r = el.getBoundingClientRect();
    if (!r.width || !r.height || getComputedStyle(el).visibility === 'hidden') return;
    if (r.width < 44 || r.height < 44) out.push([el.outerHTML.slice(0, 80), Math.round(r.width), Math.round(r.height)]);
  });
  return out;
}"""


def test_phone_viewport_has_no_horizontal_scroll_and_big_targets(new_page: Any) -> None:
    page = new_page("zh-CN")
    open_page(page)
    # The answer is on the first screen: the first card's name and open state, without scrolling.
    assert page.evaluate("window.scrollY") == 0
    for sel in ("#list .card:first-child .name", "#list .card:first-child .state"):
        box = page.locator(sel).bounding_box()
        assert box is not None and box["y"] + box["height"] <= 740, (sel, box)
    page.click("#filterSummary")
    page.click("#toggleChooser")
    page.wait_for_function("() => document.querySelectorAll('#district option').length === 17")
    page.wait_for_selector("body[data-map=ready]")
    page.locator("#list .card:first-child .report").click()
    page.wait_for_selector("#list .card:first-child .report-box [data-report=closed_on_arrival]")  # endpoint exists
    for lang in ("zh", "en"):
        assert page.evaluate("document.documentElement.scrollWidth") <= 360, lang
        assert page.evaluate("document.body.scrollWidth") <= 360, lang
        assert page.evaluate(TARGETS_JS) == [], lang
        if lang == "zh":
            page.click("#lang")
            page.wait_for_function("() => document.documentElement.lang === 'en'")


# (f) ------------------------------------------------------------------------------------------------------
def _pair(text: str) -> tuple[float, float]:
    a, b = text.split(",")
    return float(a), float(b)


def test_navigation_links_carry_converted_coordinates(new_page: Any, live_server: str) -> None:
    page = new_page("en-US")
    open_page(page)
    cards = page.locator("#list .card")
    assert cards.count() >= 5
    tol = 1e-6
    for i in range(cards.count()):
        card = cards.nth(i)
        site = api_get(live_server, f"/api/v1/sites/{card.get_attribute('data-id')}")
        lon, lat = site["geometry"]["coordinates"]
        name_zh = site["properties"]["name_zh"]
        g_lon, g_lat = from_wgs84(lon, lat, "gcj02")
        b_lon, b_lat = from_wgs84(lon, lat, "bd09")
        links = {a: card.locator(f"a[data-app={a}]").get_attribute("href") for a in ("amap", "baidu", "apple", "osm")}

        amap = urlsplit(links["amap"])
        assert (amap.scheme, amap.netloc, amap.path) == ("https", "uri.amap.com", "/marker")
        aq = parse_qs(amap.query)
        x, y = _pair(aq["position"][0])  # lon,lat in GCJ-02
        assert abs(x - g_lon) < tol and abs(y - g_lat) < tol, (links["amap"], g_lon, g_lat)
        assert aq["coordinate"] == ["gaode"] and aq["name"] == [name_zh]

        baidu = urlsplit(links["baidu"])
        assert (baidu.netloc, baidu.path) == ("api.map.baidu.com", "/marker")
        bq = parse_qs(baidu.query)
        y, x = _pair(bq["location"][0])  # lat,lon in BD-09
        assert abs(x - b_lon) < tol and abs(y - b_lat) < tol, (links["baidu"], b_lon, b_lat)
        assert bq["coord_type"] == ["bd09ll"] and bq["output"] == ["html"]
        assert bq["title"] == [name_zh] and bq["content"] == [name_zh]

        apple = urlsplit(links["apple"])
        assert apple.netloc == "maps.apple.com"
        pq = parse_qs(apple.query)
        y, x = _pair(pq["ll"][0])  # WGS-84
        assert abs(x - lon) < tol and abs(y - lat) < tol
        assert pq["q"] == [site["properties"]["name_en"] or name_zh]

        osm = urlsplit(links["osm"])
        assert osm.netloc == "www.openstreetmap.org"
        oq = parse_qs(osm.query)
        assert abs(float(oq["mlat"][0]) - lat) < tol and abs(float(oq["mlon"][0]) - lon) < tol
        assert osm.fragment.startswith("map=18/")
        _, flat, flon = osm.fragment[len("map="):].split("/")
        assert abs(float(flat) - lat) < tol and abs(float(flon) - lon) < tol

        # Same in Chromium's own number formatting: the gap to WGS-84 is the real GCJ-02 offset (~100-700 m).
        assert 1e-4 < math.hypot(g_lon - lon, g_lat - lat) < 1e-2

    # datum.js itself, across China and outside its box (identity there), against geoservice.geo.
    points = [(lon, lat) for lon in (73.5, 100.0, 116.3975, 116.4595, 121.47, 135.0)
              for lat in (18.2, 31.2, 39.9087, 53.0)]
    points += [(139.69, 35.68), (-0.1276, 51.5072), (2.35, 48.86), (72.0, 40.0), (116.4, 56.0)]
    got = page.evaluate("async pts => { const D = await import('/static/js/datum.js');"
                        " return pts.map(p => [D.wgs84ToGcj02(p[0], p[1]), D.wgs84ToBd09(p[0], p[1]),"
                        " D.gcj02ToWgs84(p[0], p[1])]); }", points)
    for (lon, lat), (gcj, bd, back) in zip(points, got):
        for datum, value in (("gcj02", gcj), ("bd09", bd)):
            ex, ey = from_wgs84(lon, lat, datum)
            assert abs(value[0] - ex) < 1e-9 and abs(value[1] - ey) < 1e-9, (datum, lon, lat, value, (ex, ey))
        # The inverse, for a point picked on GCJ-02 tiles (the input read as GCJ-02).
        ex, ey = to_wgs84(lon, lat, "gcj02")
        assert abs(back[0] - ex) < 1e-9 and abs(back[1] - ey) < 1e-9, ("gcj02->wgs84", lon, lat, back, (ex, ey))


# (g) ------------------------------------------------------------------------------------------------------
def test_first_load_weighs_under_300_kb(new_page: Any) -> None:
    page = new_page("zh-CN")
    finished: list[Any] = []
    page.on("requestfinished", lambda r: finished.append(r))
    open_page(page)
    page.wait_for_selector("body[data-map=ready]")
    page.wait_for_load_state("networkidle")
    sizes: dict[str, int] = {}
    for req in finished:
        s = req.sizes()
        sizes[urlsplit(req.url).path] = s["responseBodySize"] + s["responseHeadersSize"]
    total = sum(sizes.values())
    detail = json.dumps(sizes, indent=1)
    assert "/static/vendor/leaflet/leaflet.js" in sizes and any(p.startswith("/api/v1/sites/nearest") for p in sizes)
    assert total < 300_000, f"first load is {total} bytes:\n{detail}"
    # Cross-check with the browser's Performance API (transfer sizes of the document and every resource).
    perf = page.evaluate("""() => performance.getEntriesByType('navigation').concat(
        performance.getEntriesByType('resource')).filter(e => e.name.startsWith(location.origin))
        .reduce((n, e) => n + Math.max(e.transferSize, e.encodedBodySize), 0)""")
    assert 0 < perf < 300_000, f"Performance API says {perf} bytes:\n{detail}"
    # Nothing external but map tiles was asked for (no CDN, no fonts, no analytics).
    hosts = {urlsplit(u).hostname for u in page.blocked}
    assert hosts <= {"tile.openstreetmap.org"}, hosts


# Report hook -------------------------------------------------------------------------------------------------
def test_report_a_problem_is_polite_until_the_endpoint_exists(new_page: Any, live_server: str) -> None:
    # A service whose OpenAPI document does not offer POST /api/v1/sites/{id}/reports: the button says so,
    # nothing is sent.
    page = new_page("en-US")
    doc = api_get(live_server, "/api/v1/openapi.json")
    assert "post" in doc["paths"]["/api/v1/sites/{site_id}/reports"]  # this service does offer it (issue 3)
    without = copy.deepcopy(doc)
    del without["paths"]["/api/v1/sites/{site_id}/reports"]
    page.route("**/api/v1/openapi.json", lambda r: r.fulfill(status=200, content_type="application/json",
                                                             body=json.dumps(without)))
    open_page(page)
    posts: list[Any] = []
    page.on("request", lambda r: posts.append(r) if r.method == "POST" else None)
    page.locator("#list .card:first-child .report").click()
    msg = page.locator("#list .card:first-child .report-msg[data-msg=reportUnavailable]")
    msg.wait_for()
    assert "reporting is not available yet" in msg.inner_text()
    assert posts == []

    # When the OpenAPI document lists the endpoint, the page posts; a 404/405 still ends politely...
    page = new_page("zh-CN")
    page.route("**/api/v1/sites/*/reports", lambda r: r.fulfill(status=405, content_type="application/problem+json",
                                                                body='{"status": 405, "detail": "no"}'))
    open_page(page)
    first = page.locator("#list .card").nth(0)
    first.locator(".report").click()
    with page.expect_response(lambda r: r.request.method == "POST") as info:
        first.locator("[data-report=closed_on_arrival]").click()
    assert info.value.status in (404, 405)
    assert json.loads(info.value.request.post_data)["type"] == "closed_on_arrival"
    first.locator(".report-msg[data-msg=reportUnavailable]").wait_for()
    assert "暂不支持上报" in first.locator(".report-msg").inner_text()

    # ... and a 201 thanks the reporter. (Answered here, not by the shared server, so that no real report
    # changes the other tests' cards; tests/operators/test_operator_page.py posts real ones end to end.)
    page.unroute("**/api/v1/sites/*/reports")
    page.route("**/api/v1/sites/*/reports", lambda r: r.fulfill(status=201, content_type="application/json",
                                                                body='{"id": 1}'))
    second = page.locator("#list .card").nth(1)
    second.locator(".report").click()
    second.locator("[data-report=amenity_missing]").click()
    amenity = second.get_attribute("data-amenities").split()[0]
    with page.expect_request(lambda r: r.method == "POST") as req:
        second.locator(f".report-box [data-amenity={amenity}]").click()
    body = json.loads(req.value.post_data)
    assert body["type"] == "amenity_missing" and body["amenity"] == amenity and body["lang"] == "zh"
    assert f"/api/v1/sites/{second.get_attribute('data-id')}/reports" in req.value.url
    second.locator(".report-msg[data-msg=reportThanks]").wait_for()


# Times, warnings, report counts and errors -----------------------------------------------------------------------
def test_times_are_beijing_time_and_warnings_and_problems_are_shown(new_page: Any, live_server: str) -> None:
    """Times come from the API's +08:00 strings, even on a phone set to New York time."""
    real: dict[str, Any] = {}

    def doctor(route: Any) -> None:
        if "amenity=" in route.request.url:  # the second search: a problem+json error
            route.fulfill(status=422, content_type="application/problem+json", body=json.dumps({
                "type": "https://geoservice.example/problems/unprocessable", "title": "Unprocessable",
                "status": 422, "detail": "amenity: something the server did not like",
                "errors": [{"field": "amenity", "reason": "something"}]}))
            return
        body = route.fetch().json()
        real.update(copy.deepcopy(body))
        fs = body["features"]
        for f in fs:
            f["properties"]["state_at"] = "2026-11-23T15:33+08:00"  # a Monday
        fs[0]["properties"]["unresolved_reports"] = 2
        fs[1]["properties"]["unresolved_reports"] = 1
        fs[1]["properties"].update(is_open=False, open_until=None, next_open="2026-11-24T09:00+08:00",
                                   open_all_week=False)
        fs[2]["properties"].update(is_open=True, open_until=None, next_open=None, open_all_week=True)
        fs[3]["properties"].update(is_open=True, open_until="2026-11-23T22:00+08:00", open_all_week=False)
        fs[4]["properties"].update(is_open=True, open_until="2026-11-24T02:00+08:00", open_all_week=False)
        fs[5]["properties"].update(is_open=True, open_until="2026-11-23T16:00+08:00", open_all_week=False)
        body["warnings"] = [{"code": "calendar-missing", "en": "No official holiday schedule is loaded for 2027.",
                             "zh": "尚未载入 2027 年法定节假日安排。"}]
        route.fulfill(status=200, content_type="application/geo+json", body=json.dumps(body))

    page = new_page("en-US", timezone_id="America/New_York")
    page.route("**/api/v1/sites/nearest*", doctor)
    open_page(page)
    states = page.locator("#list .card .state")
    assert states.nth(1).inner_text() == "Closed — opens Tue 09:00"
    assert states.nth(2).inner_text() == "Open 24 hours"
    assert states.nth(3).inner_text() == "Open until 22:00"
    assert states.nth(4).inner_text() == "Open until Tue 02:00"
    assert states.nth(5).inner_text() == "Open until 16:00 · closes in 27 min"
    assert "soon" in states.nth(5).get_attribute("class") and "closed" in states.nth(1).get_attribute("class")
    assert page.locator("#list .card").nth(0).locator(".reports").inner_text() == "2 problem reports not yet resolved"
    assert page.locator("#list .card").nth(1).locator(".reports").inner_text() == "1 problem report not yet resolved"
    assert page.locator("#list .card").nth(2).locator(".reports").count() == 0
    assert "No official holiday schedule is loaded for 2027." in page.locator("#warnings").inner_text()
    assert "simulated" in page.locator("#warnings .demo").inner_text()

    page.click("#lang")
    page.wait_for_function("() => document.documentElement.lang === 'zh-CN'")
    assert states.nth(1).inner_text() == "已关闭 — 周二 09:00 开放"
    assert states.nth(2).inner_text() == "24小时开放"
    assert states.nth(3).inner_text() == "开放至 22:00"
    assert states.nth(4).inner_text() == "开放至 周二 02:00"
    assert "尚未载入 2027 年法定节假日安排" in page.locator("#warnings").inner_text()
    assert page.locator("#list .card").nth(0).locator(".reports").inner_text() == "2 条问题反馈尚未处理"

    # An API error: its problem+json detail is shown, with a retry button; the old list is not left stale.
    page.click("#filterSummary")
    page.click("#amenities [data-amenity=wifi]")
    page.wait_for_function("() => document.body.dataset.status === 'error'")
    status = page.locator("#status").inner_text()
    assert "抱歉，查询没有成功" in status and "amenity: something the server did not like" in status
    assert page.locator("#status button").inner_text() == "重试"
    assert page.locator("#list .card").count() == 0
    assert real["features"], "the unmodified API answer had sites"
