"""The planners' coverage map drawing its sites from the vector tiles (what a national network needs), in real
headless Chromium over the bundled Beijing network: grouped points at the city's zoom that say how many open
sites they stand for, single sites with their details at street level, a kind switched off in the layer control
gone from the map, and no error or Content-Security-Policy violation on the way.
"""
from __future__ import annotations

import re
from typing import Any

import pytest

from geoservice.model import KINDS

pytestmark = pytest.mark.browser

MAP = "/maps/coverage?at=2026-11-23T22:00&n=0&tiles=none&sites=tiles"
SET_VIEW = ("([lat, lon, z]) => { Object.values(window).find(v => v instanceof L.Map)"
            ".setView([lat, lon], z, {animate: false}); }")
TILES_DRAWN = "() => Number(document.documentElement.dataset.gsSiteTiles || 0) > 0"


def click_point(page: Any, selector: str) -> None:
    """A real mouse click on the first point of ``selector`` that is on top where it is drawn."""
    at = page.evaluate("""sel => { for (const p of document.querySelectorAll(sel)) {
        const r = p.getBoundingClientRect(), x = r.x + r.width / 2, y = r.y + r.height / 2;
        if (x > 60 && y > 60 && x < innerWidth - 360 && y < innerHeight - 60 && document.elementFromPoint(x, y) === p)
          { return [x, y]; } } return null; }""", selector)
    assert at is not None, f"no clickable {selector}"
    page.mouse.click(at[0], at[1])


def test_groups_then_single_sites_then_a_kind_switched_off(new_page: Any) -> None:
    page = new_page(locale="zh-CN", geolocation=None, viewport={"width": 1280, "height": 860})
    page.goto(page.base + MAP, timeout=180_000)  # the first coverage request builds the H3 grid
    page.wait_for_function(TILES_DRAWN)
    labels = page.eval_on_selector_all(".leaflet-control-layers-overlays label", "ls => ls.map(l => l.textContent)")
    assert any(re.search(r"Warm station · 暖心驿站: [\d,]+ open 开放 \(of [\d,]+\)", t) for t in labels), labels
    page.wait_for_selector("path.gs-tile-group")
    click_point(page, "path.gs-tile-group")
    page.wait_for_selector(".gs-popup-group")
    n = int(re.search(r"(\d+) open sites", page.text_content(".gs-popup-group") or "").group(1))  # type: ignore[union-attr]
    assert n >= 2

    page.evaluate(SET_VIEW, [39.9087, 116.3975, 16])  # Tiananmen, street level: every site on its own
    page.wait_for_function("() => document.querySelectorAll('path.gs-tile-site').length > 5 && "
                           "!document.querySelector('path.gs-tile-group')")
    click_point(page, "path.gs-tile-site")
    page.wait_for_selector(".gs-popup[data-site] code")
    popup = page.text_content(".gs-popup[data-site]") or ""
    assert "Open 营业中" in popup and "Hours 营业时间" in popup and "SIMULATED" in popup

    kinds_drawn = {k for k in KINDS if page.query_selector(f"path.gs-tile-{k}")}
    assert "warm_station" in kinds_drawn and len(kinds_drawn) >= 2
    page.click(".leaflet-control-layers-overlays label:has-text('Warm station') input")
    page.wait_for_function("() => !document.querySelector('path.gs-tile-warm_station')")
    assert any(page.query_selector(f"path.gs-tile-{k}") for k in kinds_drawn - {"warm_station"})
