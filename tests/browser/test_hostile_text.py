"""Hostile text in every field, in real headless Chromium: the couriers' page, the operators' page and the
planners' coverage map show it as text, run none of it, and break no rule of their Content-Security-Policy.

One app over a store seeded by :func:`hostile.seed` (sites, districts, an operator) plus a history entry, a
closure and a courier's report carrying payloads; one browser (the session's). Every page is watched for
``window.__pwned`` (what every payload would set), dialogs, page errors, requests to ``/pwned/…`` (what an
injected ``<img>`` would load) and Content-Security-Policy violations (:mod:`csp_watch`).
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from geoservice.hours import TZ, now_local
from geoservice.model import Closure, Report
from geoservice.services import Services
from geoservice.settings import Settings
from geoservice.store.embedded import EmbeddedStore
from tests.support.csp_watch import watch_csp
from tests.support.hostile import LAYERS, TIANANMEN, Seeded, hours_payload, payload, seed

pytestmark = pytest.mark.browser

MAP = "/maps/coverage?at=2026-11-23T22:00&resolution=7&n=3"
SET_VIEW = "([lat, lon, z]) => { Object.values(window).find(v => v instanceof L.Map).setView([lat, lon], z); }"
# Centre on the first recommendation at zoom 16, where recommendation numbers are never grouped.
TO_FIRST_REC = """() => { const m = Object.values(window).find(v => v instanceof L.Map); let c = null;
  m.eachLayer(l => { if (!c && l instanceof L.Circle && l.options.dashArray === '4 4') { c = l; } });
  m.setView(c.getLatLng(), 16, {animate: false}); }"""
# Click the i-th point of the site tiles from the left (the order of tiles in the DOM is the order they loaded).
CLICK_NTH_POINT = """i => { const ps = [...document.querySelectorAll('path.gs-tile-site')]
  .map(p => [p.getBoundingClientRect(), p]).sort((a, b) => a[0].x - b[0].x || a[0].y - b[0].y);
  const [r, p] = ps[i];
  p.dispatchEvent(new MouseEvent('click', {bubbles: true, cancelable: true, view: window,
                                           clientX: r.x + r.width / 2, clientY: r.y + r.height / 2})); }"""
# Open the first district's tooltip the way a hover does (a hover's position depends on the screen layout).
DISTRICT_TOOLTIP = """() => { const g = Object.values(window).find(v => v instanceof L.GeoJSON);
  g.openTooltip(g.getLayers()[0].getBounds().getCenter()); }"""
TEXTS = "els => els.map(e => e.textContent)"
TEXT_NODES = "e => [...e.childNodes].filter(n => n.nodeType === Node.TEXT_NODE).map(n => n.textContent)"


@dataclasses.dataclass
class World:
    base: str
    seeded: Seeded
    extra: dict[str, str]  # the history note, closure reason and report note


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """The hostile store and the real app on 127.0.0.1:<free port>."""
    from werkzeug.serving import make_server

    from geoservice import create_app

    tmp = tmp_path_factory.mktemp("hostile-browser")
    store = Services.over(EmbeddedStore(tmp / "hostile.sqlite"))
    seeded = seed(store)
    site = seeded.sites[0]
    extra = {"history": payload("history_notes"), "closure": payload("closure_reason"),
             "report": payload("report_note")}
    store.sites.update_site(site.id, {"notes": extra["history"]}, seeded.operator)
    later = now_local().date() + dt.timedelta(days=3)
    store.sites.add_closure(Closure(site.id, later, later, reason=extra["closure"]), seeded.operator)
    store.reports.add(Report(site.id, "closed_on_arrival", dt.datetime.now(TZ), note=extra["report"], lang="zh"))
    app = create_app(Settings(embedded_path=tmp / "unused.sqlite", layers_dir=LAYERS, public_rate_per_minute=0),
                     services=store, prepare=False)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="hostile-live-server", daemon=True)
    thread.start()
    try:
        yield World(f"http://127.0.0.1:{server.server_port}", seeded, extra)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)
        store.close()


class Watched:
    """A page in a fresh context, with everything that would show an injection recorded."""

    def __init__(self, browser: Any, base: str, **options: Any):
        self.ctx = browser.new_context(device_scale_factor=1, service_workers="block", **options)
        self.ctx.set_default_timeout(20_000)
        self.csp = watch_csp(self.ctx)
        self.errors: list[str] = []
        self.policies: list[str | None] = []
        self.dialogs: list[str] = []
        self.pwned_requests: list[str] = []

        def route(r: Any) -> None:
            if r.request.url.startswith((base, "data:", "blob:", "about:")):
                r.continue_()
            else:
                r.abort()  # tiles: no network in tests

        self.ctx.route("**/*", route)
        self.page = self.ctx.new_page()
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))
        self.page.on("request", lambda r: "/pwned" in r.url and self.pwned_requests.append(r.url))
        self.base = base

    def goto(self, path: str) -> None:
        resp = self.page.goto(self.base + path)
        assert resp.status == 200
        self.policies.append(resp.headers.get("content-security-policy"))

    def check_clean(self, name: str) -> None:
        """Nothing ran, nothing was blocked, nothing broke, and the page came with its policy; a screenshot."""
        out = Path(__file__).resolve().parent.parent.parent / "test-artifacts" / "browser"
        out.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(out / f"hostile_{name}.png"), full_page=True)
        assert self.page.evaluate("typeof window.__pwned") == "undefined"
        assert self.csp == []
        assert self.dialogs == [] and self.errors == [] and self.pwned_requests == []
        assert self.policies and all(self.policies), self.policies

    def close(self) -> None:
        self.ctx.close()


@pytest.fixture
def watched(browser: Any, world: World) -> Iterator[Any]:
    """Factory of watched pages on the hostile app, closed afterwards."""
    made: list[Watched] = []

    def make(**options: Any) -> Watched:
        made.append(Watched(browser, world.base, **options))
        return made[-1]

    yield make
    for w in made:
        w.close()


def test_couriers_page_shows_hostile_text_as_text(watched: Any, world: World) -> None:
    w = watched(locale="zh-CN", viewport={"width": 360, "height": 740}, permissions=["geolocation"],
                geolocation={"latitude": TIANANMEN[1], "longitude": TIANANMEN[0]})
    page, sites = w.page, world.seeded.sites
    w.goto("/")
    page.wait_for_selector("body[data-status=ok] #list .card")
    assert sorted(page.eval_on_selector_all("#list .card .name", TEXTS)) == sorted(s.name_zh for s in sites)
    assert sorted(page.eval_on_selector_all("#list .card .addr", TEXTS)) == sorted(s.address for s in sites)
    calls = page.eval_on_selector_all("#list .card a.call", "els => els.map(e => [e.textContent, e.href])")
    assert len(calls) == 3 and all(href.startswith("tel:") for _, href in calls)
    assert all(any(s.phone in text for s in sites) for text, _ in calls)
    page.click("#lang")
    page.wait_for_function("() => document.documentElement.lang === 'en'")
    assert sorted(page.eval_on_selector_all("#list .card .name", TEXTS)) == sorted(s.name_en for s in sites)
    page.click("#toggleChooser")
    page.wait_for_function("() => document.querySelectorAll('#district option').length === 17")
    options = page.eval_on_selector_all("#district option:not([value=''])", TEXTS)
    assert sorted(options) == sorted(en for _, en in world.seeded.district_names.values())
    adcode = sites[0].district_adcode
    page.select_option("#district", adcode)
    page.wait_for_function("adcode => document.getElementById('locStatus').textContent.includes(adcode)",
                           arg=world.seeded.district_names[adcode][1][:6])
    assert world.seeded.district_names[adcode][1] in page.eval_on_selector("#locStatus", "e => e.textContent")
    page.wait_for_selector("body[data-status=ok]")
    page.wait_for_selector("body[data-map=ready]")
    page.wait_for_function("() => document.querySelectorAll('#map .pin').length === 4")  # you + 3 sites
    assert page.eval_on_selector_all("#map .pin", "els => els.map(e => getComputedStyle(e).backgroundColor)") \
        != ["rgb(17, 17, 17)"] * 4  # the kind colours, set through the CSSOM, apply
    page.click("#list .card button.report")
    page.wait_for_selector("#list .card .report-box button[data-report]")
    w.check_clean("couriers")


def test_couriers_page_shows_hostile_alternatives_as_text(watched: Any, world: World) -> None:
    """The alternatives shown when nothing matches (issue 17) carry site text into a sentence: still text."""
    def nothing_matches(route: Any) -> None:
        body = route.fetch().json()
        assert len(body["features"]) >= 2
        soonest, open_any = body["features"][:2]
        body.update(features=[], numberReturned=0,
                    alternatives={"opens_soonest": soonest, "nearest_open_any": open_any})
        route.fulfill(status=200, content_type="application/geo+json", body=json.dumps(body))

    w = watched(locale="zh-CN", viewport={"width": 360, "height": 740}, permissions=["geolocation"],
                geolocation={"latitude": TIANANMEN[1], "longitude": TIANANMEN[0]})
    page, names = w.page, {s.name_zh for s in world.seeded.sites}
    page.route("**/api/v1/sites/nearest*", nothing_matches)
    w.goto("/")
    page.wait_for_selector("body[data-status=ok] #alternatives .card")
    shown = page.eval_on_selector_all("#alternatives .alt-name", TEXTS)
    assert len(shown) == 2 and set(shown) <= names
    assert set(page.eval_on_selector_all("#alternatives .card .name", TEXTS)) == set(shown)
    page.click("#lang")
    page.wait_for_function("() => document.documentElement.lang === 'en'")
    assert set(page.eval_on_selector_all("#alternatives .alt-name", TEXTS)) <= {s.name_en for s in world.seeded.sites}
    w.check_clean("couriers_alternatives")


def test_operators_page_shows_hostile_text_as_text(watched: Any, world: World) -> None:
    w = watched(locale="zh-CN", viewport={"width": 360, "height": 740})
    page, seeded = w.page, world.seeded
    w.goto("/operator")
    page.fill("#token", seeded.token)
    page.click("#signin-form button[type=submit]")
    page.wait_for_selector("body[data-state=list]")
    assert sorted(page.eval_on_selector_all("#sites .site strong", TEXTS)) == sorted(s.name_zh for s in seeded.sites)
    page.wait_for_selector("#report-list li[data-id]")
    assert world.extra["report"] in "".join(page.eval_on_selector_all("#report-list li", TEXTS))
    site = seeded.sites[0]
    page.click(f"#sites .site[data-id={site.id}]")
    page.wait_for_selector("body[data-state=editing]")
    page.wait_for_selector("#preview[data-status=ok]")
    assert page.eval_on_selector("#site-name", "e => e.textContent") == site.name_zh
    assert page.input_value("#name_en") == site.name_en and page.input_value("#phone") == site.phone
    assert page.input_value("#notes") == world.extra["history"] and page.input_value("#hours") == hours_payload()
    assert site.address in page.eval_on_selector("#site-meta", "e => e.textContent")
    page.wait_for_selector("#closures li[data-id]")
    assert world.extra["closure"] in "".join(page.eval_on_selector_all("#closures li", TEXTS))
    page.wait_for_selector("#history li[data-id]")
    history = "".join(page.eval_on_selector_all("#history li code", TEXTS))
    assert site.notes in history and world.extra["history"] in history
    w.check_clean("operators")


def site_popups(page: Any, open_popup: Callable[[int], None], n: int = 3) -> list[list[str]]:
    """Open ``n`` sites' popups one after the other; each one's name and hours, once its details are in."""
    popups: list[list[str]] = []
    for i in range(n):
        open_popup(i)
        page.wait_for_function("n => document.querySelectorAll('.gs-popup').length === 1 && "
                               "document.querySelector('.gs-popup code') && "
                               "document.querySelector('.gs-popup b').textContent !== n",
                               arg=popups[-1][0] if popups else "")
        popups.append(page.eval_on_selector(".gs-popup", "e => [e.querySelector('b').textContent, "
                                                         "e.querySelector('code').textContent]"))
    return popups


def test_coverage_map_shows_hostile_text_as_text(watched: Any, world: World) -> None:
    w = watched(locale="zh-CN", viewport={"width": 1280, "height": 860})
    page, seeded = w.page, world.seeded
    names = {f"{zh} {en}" for zh, en in seeded.district_names.values()}
    w.goto(MAP)
    page.wait_for_function("() => document.querySelectorAll('.leaflet-control-layers-overlays label').length >= 5"
                           " && document.querySelectorAll('.gs-cluster, .gs-site').length > 0")
    labels = page.eval_on_selector_all(".leaflet-control-layers-overlays label", TEXTS)
    assert any("Workers' home" in t for t in labels) and any("Recommended" in t for t in labels)
    page.click("#gs-table summary")
    rows = page.eval_on_selector_all("#gs-table tbody tr td:first-child", TEXTS)
    assert names <= set(rows)

    page.evaluate(DISTRICT_TOOLTIP)
    page.wait_for_selector(".gs-tooltip td")
    assert page.eval_on_selector(".gs-tooltip td", "e => e.textContent") in names

    # A recommendation's popup, then each site's popup at street level (no clustering from zoom 17).
    page.evaluate(TO_FIRST_REC)
    page.wait_for_selector(".gs-rec:not(.gs-rec-group)")
    page.locator(".gs-rec:not(.gs-rec-group)").first.dispatch_event("click")
    page.wait_for_selector(".leaflet-popup-content")
    assert names & set(page.eval_on_selector(".leaflet-popup-content", TEXT_NODES))
    page.evaluate(SET_VIEW, [seeded.sites[0].lat, seeded.sites[0].lon, 17])
    page.wait_for_function("() => document.querySelectorAll('.gs-site').length === 3")
    popups = site_popups(page, lambda i: page.locator(".gs-site").nth(i).dispatch_event("click"))
    assert sorted(p[0] for p in popups) == sorted(s.name_zh for s in seeded.sites)
    assert {p[1] for p in popups} == {hours_payload()}
    w.check_clean("map")


def test_coverage_map_from_vector_tiles_shows_hostile_text_as_text(watched: Any, world: World) -> None:
    w = watched(locale="zh-CN", viewport={"width": 1280, "height": 860})
    page, seeded = w.page, world.seeded
    w.goto(MAP + "&sites=tiles&tiles=none")
    page.wait_for_function("() => Number(document.documentElement.dataset.gsSiteTiles || 0) > 0")
    assert not any(s.id in page.content() for s in seeded.sites)  # the page embeds no site
    def open_point(i: int) -> None:  # the view is set again each time: an opened popup pans the map
        page.evaluate(SET_VIEW, [seeded.sites[0].lat, seeded.sites[0].lon, 17])
        page.wait_for_function("() => document.querySelectorAll('path.gs-tile-site').length === 3")
        page.evaluate(CLICK_NTH_POINT, i)

    popups = site_popups(page, open_point)
    assert sorted(p[0] for p in popups) == sorted(s.name_zh for s in seeded.sites)
    assert {p[1] for p in popups} == {hours_payload()}
    w.check_clean("map_from_tiles")


def test_the_policy_blocks_an_injected_handler_and_the_watch_sees_it(watched: Any, world: World) -> None:
    w = watched(locale="en-US", viewport={"width": 360, "height": 740})
    w.goto("/operator")
    w.page.evaluate("() => document.body.insertAdjacentHTML('beforeend', "
                    "'<img src=\"/pwned/probe\" onerror=\"window.__pwned = 1\">')")
    w.page.wait_for_function("() => document.querySelector('img[src=\"/pwned/probe\"]').complete")
    w.page.wait_for_timeout(300)
    assert w.page.evaluate("typeof window.__pwned") == "undefined"  # CSP: no inline handlers
    assert any(isinstance(v, dict) and v["directive"].startswith("script-src") for v in w.csp), w.csp
