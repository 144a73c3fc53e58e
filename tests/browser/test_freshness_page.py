"""Each card says when its site was last verified, and warns plainly when that is long ago or never (issue 16,
item 5), in real headless Chromium, in Chinese and English. The service's answer is altered in flight for three
sites: verified ten days ago, 400 days ago, and never (the demo network has no verification dates)."""
from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from geoservice.hours import TZ

from .conftest import wait_results

pytestmark = pytest.mark.browser

NOW = dt.datetime.now(TZ)
STAMPS = [(NOW - dt.timedelta(days=10), False), (NOW - dt.timedelta(days=400), True), (None, True)]
TEXTS = {"zh-CN": ("核实于 {d}", "核实于 {d} · 很久没有核实", "从未核实"),
         "en-US": ("Verified {d}", "Verified {d} · not checked for a long time", "Never verified")}


@pytest.mark.parametrize("lang", ["zh-CN", "en-US"])
def test_cards_say_when_each_site_was_verified(new_page: Any, lang: str) -> None:
    def verified(route: Any) -> None:
        resp = route.fetch()
        body = resp.json()
        for f, (when, stale) in zip(body["features"], STAMPS):
            f["properties"]["verified_at"] = when.astimezone(dt.UTC).isoformat() if when else None
            f["properties"]["stale"] = stale
        route.fulfill(status=resp.status, content_type="application/geo+json", body=json.dumps(body))

    page = new_page(lang)
    page.route("**/api/v1/sites/nearest*", verified)
    page.goto(page.base + "/")
    wait_results(page)
    lines = [c.locator(".verified") for c in page.locator("#list .card").all()[:3]]
    fresh, old, never = TEXTS[lang]
    assert lines[0].inner_text() == fresh.format(d=STAMPS[0][0].strftime("%Y-%m-%d"))  # type: ignore[union-attr]
    assert lines[0].get_attribute("data-stale") is None
    assert lines[1].inner_text().startswith(old.format(d=STAMPS[1][0].strftime("%Y-%m-%d")))  # type: ignore[union-attr]
    assert lines[2].inner_text().startswith(never)
    assert lines[1].get_attribute("data-stale") == "true" and lines[2].get_attribute("data-stale") == "true"
