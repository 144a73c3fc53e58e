"""A fast couriers' page (issue 15 part 6), in real headless Chromium: what Lighthouse checks, as a courier would
notice it. The page does not ask for the location on load, only on a tap of 使用我的位置; with the tile server
unreachable it shows its results and logs no console error; it does not jump while it loads. Speed itself is
measured in bench/bench_lighthouse.py, never here.
"""
from __future__ import annotations

from typing import Any

import pytest

from .conftest import DONGCHENG, api_get, wait_results

pytestmark = pytest.mark.browser

TILE_HOSTS = ("tile.openstreetmap.org", ".is.autonavi.com")
COUNT_POSITION_ASKS = """(() => { const g = navigator.geolocation, get = g.getCurrentPosition.bind(g);
    window.__positionAsks = 0;
    g.getCurrentPosition = (...a) => { window.__positionAsks += 1; return get(...a); }; })()"""
# Layout shifts not caused by the user's input, summed (the CLS of the page so far, all in one window).
LAYOUT_SHIFT = """(() => { window.__shift = 0; window.__shifts = [];
    new PerformanceObserver(list => list.getEntries().forEach(e => { if (e.hadRecentInput) return;
      window.__shift += e.value;
      window.__shifts.push([e.value, e.sources.map(s => s.node && (s.node.id || s.node.className || s.node.nodeName))]);
    })).observe({type: 'layout-shift', buffered: true}); })()"""


def console_errors(page: Any) -> list[Any]:
    """Record the page's console errors (the browser's own "Failed to load resource" lines included)."""
    seen: list[Any] = []
    page.on("console", lambda m: m.type == "error" and seen.append(m))
    return seen


def is_tile(url: str) -> bool:
    return any(h in url for h in TILE_HOSTS)


def test_location_is_asked_only_on_a_tap_which_finds_the_nearest_sites(new_page: Any, live_server: str) -> None:
    page = new_page("zh-CN", geolocation=None)  # nothing granted yet: a call would open the browser's prompt
    page.add_init_script(COUNT_POSITION_ASKS)
    page.goto(live_server + "/")
    page.wait_for_function("() => window.geoservice && document.querySelector('#district option + option')")
    page.wait_for_load_state("networkidle")
    assert page.evaluate("window.__positionAsks") == 0
    assert "使用我的位置" in page.inner_text("#locStatus")
    assert page.is_visible("#landmarks [data-landmark=tiananmen]")  # the other ways to say where one is
    # Nothing for the map while there is nothing to show on it: no Leaflet, no tile asked for.
    assert not any(is_tile(u) for u in page.blocked), page.blocked
    assert page.evaluate("typeof window.L") == "undefined"

    # The courier taps 使用我的位置 and allows it: the prompt's answer is the phone's position.
    page.context.grant_permissions(["geolocation"])
    page.context.set_geolocation(DONGCHENG)
    page.click("#useGps")
    url = wait_results(page)
    assert page.evaluate("window.__positionAsks") == 1
    assert "lat=39.928900" in url and "lon=116.416000" in url
    expected = api_get(live_server, url)
    ids = [f["properties"]["id"] for f in expected["features"]]
    assert ids, "the demo network has open sites around Dongcheng"
    assert page.get_attribute("#list .card:first-child", "data-id") == ids[0]
    assert "我的位置" in page.inner_text("#locStatus")


def test_unreachable_tiles_fail_quietly_and_the_results_show(new_page: Any, live_server: str) -> None:
    page = new_page("zh-CN")  # location granted: the page finds the sites by itself
    errors = console_errors(page)
    tile_requests: list[str] = []

    def abort_tile(route: Any) -> None:
        tile_requests.append(route.request.url)
        route.abort()

    page.route("https://tile.openstreetmap.org/**", abort_tile)
    page.goto(live_server + "/")
    wait_results(page)
    assert page.locator("#list .card").count() > 0
    page.wait_for_selector("body[data-map=ready]")  # the map is there, below the list, with its markers
    page.wait_for_function("() => document.querySelectorAll('#map .pin').length > 1")
    page.wait_for_load_state("networkidle")
    assert not errors, [(m.text, m.location) for m in errors]
    assert not tile_requests  # off screen: no tile asked for yet

    # The courier scrolls to the map: one tile is tried, fails, and the note says the list still works.
    page.click(".maplink")
    page.wait_for_selector("body[data-tiles=failed]")
    assert "地图暂时无法加载" in page.inner_text("#mapNote")
    page.wait_for_timeout(300)
    assert len(tile_requests) == 1, tile_requests
    # No error of the page's own: the one line in the console is Chromium's for that one failed request.
    assert all(m.text.startswith("Failed to load resource") and is_tile(m.location["url"]) for m in errors), \
        [(m.text, m.location) for m in errors]
    assert len(errors) <= 1
    assert page.locator("#map .pin").count() > 1  # the markers are drawn without tiles


def test_the_page_does_not_jump_while_it_loads(new_page: Any, live_server: str) -> None:
    for locale in ("zh-CN", "en-US"):  # English is set by the script over the Chinese page: same room
        page = new_page(locale, geolocation=None)
        page.add_init_script(LAYOUT_SHIFT)
        page.goto(live_server + "/")
        page.wait_for_function("() => document.querySelector('#district option + option')")
        page.wait_for_load_state("networkidle")
        page.wait_for_timeout(300)
        shift = page.evaluate("window.__shift")
        assert shift <= 0.05, (locale, shift, page.evaluate("window.__shifts"))
