"""The couriers' page in a basement (issue 17, item 1), in real headless Chromium with its service worker: a search
online; then the network gone, the clock three hours on and the page reloaded — the shell comes from the worker's
cache, the last results show with their open states recomputed for the (mocked) current time from each site's
open intervals, and the page says it is offline and how old the results are; back online, fresh results by
themselves."""
from __future__ import annotations

import datetime as dt
import json
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest

from geoservice.hours import TZ

from .conftest import wait_results

pytestmark = pytest.mark.browser

T0 = dt.datetime(2026, 12, 2, 21, 30, tzinfo=TZ)  # a Wednesday evening: some sites close at 22:00 or 23:00
T1 = T0 + dt.timedelta(hours=3)  # 00:30: several of them are closed now


def answer_at(times: list[dt.datetime | None], answers: list[dict[str, Any]]) -> Any:
    """Route handler: the page's own request (its place and filters), asked of the real service at the time the
    page's mocked clock shows (``times[-1]``), so that server and browser agree on "now"; ``None``: no network
    (the request fails at once, as a phone without signal's does)."""
    def handle(route: Any) -> None:
        if times[-1] is None:
            route.abort("internetdisconnected")
            return
        parts = urlsplit(route.request.url)
        params = dict(parse_qsl(parts.query)) | {"at": times[-1].isoformat()}  # type: ignore[union-attr]
        resp = route.fetch(url=f"{parts.scheme}://{parts.netloc}{parts.path}?{urlencode(params)}")
        body = resp.json()
        answers.append(body)
        route.fulfill(status=resp.status, content_type="application/geo+json", body=json.dumps(body))
    return handle


def open_at(feature: dict[str, Any], at: dt.datetime) -> bool:
    """The test's own reading of a site's open intervals."""
    return any(dt.datetime.fromisoformat(s["start"]) <= at < dt.datetime.fromisoformat(s["end"])
               for s in feature["properties"]["open_intervals"])


def cards(page: Any) -> dict[str, dict[str, str]]:
    return {c.get_attribute("data-id"): {"cls": c.locator(".state").get_attribute("class"),
                                         "text": c.locator(".state").inner_text()}
            for c in page.locator("#list .card").all()}


@pytest.mark.parametrize("lang", ["zh-CN", "en-US"])
def test_last_results_survive_a_basement_and_refresh_when_back(new_page: Any, lang: str) -> None:
    times: list[dt.datetime | None] = [T0]
    answers: list[dict[str, Any]] = []
    page = new_page(lang, service_workers="allow")
    page.clock.set_fixed_time(T0)
    page.route("**/api/v1/sites/nearest*", answer_at(times, answers))
    page.goto(page.base + "/")
    url = wait_results(page)
    assert "intervals_hours=24" in url
    page.wait_for_function("() => navigator.serviceWorker && navigator.serviceWorker.controller !== null")
    saved = answers[-1]
    online = cards(page)
    assert len(online) > 2 and all(open_at(f, T0) for f in saved["features"])

    # No network, three hours later, the page opened again.
    page.context.set_offline(True)
    times.append(None)
    page.clock.set_fixed_time(T1)
    page.reload()
    page.wait_for_selector("#warnings [data-code=offline]")
    notice = page.inner_text("#warnings [data-code=offline]")
    assert ("3 小时前（21:30）" in notice) if lang == "zh-CN" else ("3 h ago (21:30)" in notice), notice
    offline = cards(page)
    assert list(offline) == list(online)  # the same sites, in the same order
    expected = {f["properties"]["id"]: open_at(f, T1) for f in saved["features"]}
    assert set(expected.values()) == {True, False}, "the test needs sites both open and closed at 00:30"
    for site_id, is_open in expected.items():
        cls = offline[site_id]["cls"]
        assert ("closed" not in cls) == is_open, (site_id, offline[site_id])
    closed = next(f for f in saved["features"] if not expected[f["properties"]["id"]])
    opens = min(dt.datetime.fromisoformat(s["start"]) for s in closed["properties"]["open_intervals"]
                if dt.datetime.fromisoformat(s["start"]) > T1)
    assert opens.strftime("%H:%M") in offline[closed["properties"]["id"]]["text"]

    # Back online: the page asks again by itself (the same query, answered for 00:30); the notice goes.
    n = len(answers)
    times.append(T1)
    page.context.set_offline(False)
    page.wait_for_function("() => { const b = window.geoservice.lastBody; return document.body.dataset.status === 'ok'"
                           " && b && b.query.at.startsWith('2026-12-03T00:30'); }")
    assert len(answers) == n + 1
    assert page.locator("#warnings [data-code=offline]").count() == 0
    fresh = cards(page)
    assert all("closed" not in c["cls"] for c in fresh.values())  # open-only answers again, for 00:30
