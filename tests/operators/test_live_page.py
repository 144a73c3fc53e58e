"""The operators' page posts and clears a site's live status (issue 14, item 2), in real headless Chromium, in
Chinese and English; the couriers' public answer changes at once."""
from __future__ import annotations

import json
import urllib.request
from typing import Any

import pytest

from tests.support import TIANANMEN
from tests.support.sites import sid
from tests.support.world import World

from .test_operator_page import BrowserThread, chromium, new_page, served, sign_in  # noqa: F401 - fixtures

pytestmark = pytest.mark.browser


def public(base: str, **params: Any) -> list[dict[str, Any]]:
    query = urllib.parse.urlencode({"lat": TIANANMEN[1], "lon": TIANANMEN[0], "limit": 10, **params})
    with urllib.request.urlopen(f"{base}/api/v1/sites/nearest?{query}", timeout=10) as resp:
        features: list[dict[str, Any]] = json.loads(resp.read().decode("utf-8"))["features"]
    assert features, "the public answer is empty"
    return features


def test_the_page_posts_full_then_closed_now_then_clears_and_couriers_see_each(
        chromium: BrowserThread, served: tuple[World, str], request: pytest.FixtureRequest) -> None:  # noqa: F811
    world, base = served
    a, b = sid("op-a"), sid("op-b")

    def scenario(browser: Any) -> None:
        with new_page(browser, base, request.node.name) as page:
            sign_in(page, world.tokens["alice"])
            page.click(f"#sites .site[data-id={a}]")
            page.wait_for_selector("body[data-state=editing]")
            assert page.inner_text("#live-now") == "现在没有发布的状态。"

            page.select_option("#live-state", "full")
            page.fill("#live-seats", "0")
            page.fill("#live-capacity", "6")
            page.select_option("#live-minutes", "30")
            page.click("#live-post")
            page.wait_for_selector("#live-now[data-state=full]")
            assert page.inner_text("#live-msg") == "已发布。"
            text = page.inner_text("#live-now")
            assert text.startswith("满员，") and "发布" in text and "剩余 0 / 6 个座位" in text
            ids = [f["id"] for f in public(base, include_closed="true")]
            assert ids.index(b) < ids.index(a)  # full: after the non-full site 200 m farther
            status = {f["id"]: f["properties"]["live_status"] for f in public(base, include_closed="true")}[a]
            assert status["state"] == "full" and status["capacity"] == 6

            page.click("#lang")
            page.wait_for_function("() => document.documentElement.lang === 'en'")
            assert page.inner_text("#live-now").startswith("Full, posted ")
            assert "0 of 6 seats free" in page.inner_text("#live-now")

            page.select_option("#live-state", "closed_now")
            page.fill("#live-seats", "")
            page.fill("#live-capacity", "")
            page.click("#live-post")
            page.wait_for_selector("#live-now[data-state=closed_now]")
            assert page.inner_text("#live-now").startswith("Closed now, posted ")
            assert a not in [f["id"] for f in public(base)]  # out of the open-only answer

            page.click("#live-clear")
            page.wait_for_selector("#live-now[data-state='']")
            assert page.inner_text("#live-now") == "No status posted now."
            assert page.inner_text("#live-msg") == "Cleared."
            assert a in [f["id"] for f in public(base)]
            page.wait_for_selector("#history li[data-action=live_status_clear]")
            assert "live status cleared" in page.inner_text("#history li[data-action=live_status_clear]")
            assert page.locator("#history li[data-action=live_status]").count() == 2

    chromium.run(scenario)


def test_a_refused_status_says_why(chromium: BrowserThread, served: tuple[World, str],  # noqa: F811
                                   request: pytest.FixtureRequest) -> None:
    world, base = served

    def scenario(browser: Any) -> None:
        with new_page(browser, base, request.node.name, locale="en-US") as page:
            sign_in(page, world.tokens["bob"])
            page.click(f"#sites .site[data-id={sid('op-c')}]")
            page.wait_for_selector("body[data-state=editing]")
            page.fill("#live-seats", "9")
            page.fill("#live-capacity", "4")
            page.click("#live-post")
            page.wait_for_selector("#live-msg[data-kind=bad]")
            assert "seats_free" in page.inner_text("#live-msg")
            assert page.inner_text("#live-now") == "No status posted now."

    chromium.run(scenario)
