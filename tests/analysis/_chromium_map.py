"""Load a coverage map in Debian's headless Chromium (run as a separate process by test_maps.py).

Usage: python _chromium_map.py URL SCREENSHOT. Prints one JSON object: what the page shows, every request
to another host (all of them aborted: no CDN, no tiles) and every Content-Security-Policy violation.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run as a script: the checkout, for tests.support
from tests.support.csp_watch import watch_csp

SITES = 11_829  # the bundled network (tests/analysis/test_maps.py checks the layers' counts)
CHROMIUM = os.environ.get("GEOSERVICE_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]

PROBE = """() => ({
  overlays: [...document.querySelectorAll('.leaflet-control-layers-overlays label')].map(l => l.textContent.trim()),
  checked: [...document.querySelectorAll('.leaflet-control-layers-overlays input')].filter(i => i.checked).length,
  districts: document.querySelectorAll('path.gs-district').length,
  gaps: document.querySelectorAll('path.gs-gap').length,
  clusters: document.querySelectorAll('.gs-cluster').length,
  sites: document.querySelectorAll('.gs-site').length,
  recs: [...document.querySelectorAll('.gs-rec-icon')].reduce((n, e) => n + e.dataset.ranks.split(',').length, 0),
  scale: (document.querySelector('.leaflet-control-scale') || {}).textContent || '',
  title: (document.getElementById('gs-title') || {}).textContent || '',
  legend: (document.getElementById('gs-legend') || {}).textContent || '',
  tableRows: document.querySelectorAll('#gs-table tbody tr').length,
  leaflet: typeof L !== 'undefined' && !!L.markerClusterGroup,
})"""

# Pairs of labels of one family (site clusters; recommendation numbers) whose boxes overlap on screen.
OVERLAPS = """() => {
  const boxes = sel => [...document.querySelectorAll(sel)].map(e => e.getBoundingClientRect())
    .filter(r => r.width && r.right > 0 && r.bottom > 0 && r.left < innerWidth && r.top < innerHeight);
  const pairs = rs => { let n = 0;
    for (let i = 0; i < rs.length; i++) for (let j = i + 1; j < rs.length; j++) {
      const a = rs[i], b = rs[j];
      if (a.left < b.right - 1 && b.left < a.right - 1 && a.top < b.bottom - 1 && b.top < a.bottom - 1) n++; }
    return n; };
  return {clusters: pairs(boxes('.gs-cluster')), recs: pairs(boxes('.gs-rec'))};
}"""

# Returns nothing: handing the L.Map object back to Python would make Playwright serialise the whole map.
SET_VIEW = ("([lat, lon, z]) => { Object.values(window).find(v => v instanceof L.Map)"
            ".setView([lat, lon], z, {animate: false}); }")


def main(url: str, shot: str) -> None:
    external: list[str] = []
    errors: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        ctx = browser.new_context(viewport={"width": 1280, "height": 860}, device_scale_factor=1)

        def route(r):  # type: ignore[no-untyped-def]
            if r.request.url.startswith(("http://127.0.0.1", "data:", "about:", "blob:")):
                r.continue_()
            else:
                external.append(r.request.url)
                r.abort()

        ctx.route("**/*", route)
        csp = watch_csp(ctx)
        page = ctx.new_page()
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(url, wait_until="load", timeout=60_000)
        page.wait_for_function("() => document.querySelectorAll('.leaflet-control-layers-overlays label').length >= 6"
                               " && document.querySelectorAll('.gs-cluster, .gs-site').length > 0", timeout=60_000)
        # Every kind's markers are in the shared cluster (chunked loading has finished).
        page.wait_for_selector(f"html[data-gs-sites-in='{SITES}']", state="attached", timeout=60_000)
        page.click("#gs-table summary")
        page.wait_for_timeout(300)
        probe = page.evaluate(PROBE)
        # A site popup opens with its hours: zoom into central Beijing and click the first single site marker.
        page.evaluate(SET_VIEW, [39.915, 116.40, 16])
        page.wait_for_timeout(800)
        clicked = page.evaluate("""() => {
            const inside = e => { const r = e.getBoundingClientRect();
                                  return r.left > 0 && r.top > 0 && r.right < innerWidth && r.bottom < innerHeight; };
            const el = [...document.querySelectorAll('.gs-site')].find(inside);
            if (el) { el.click(); }
            return !!el; }""")
        popup = ""
        if clicked:
            page.wait_for_selector(".gs-popup", timeout=5_000)
            # The served map fetches the site's details from the API when the popup opens.
            page.wait_for_function("() => (document.querySelector('.gs-popup') || {}).textContent"
                                   ".includes('营业时间')", timeout=5_000)
            popup = page.inner_text(".gs-popup")
        overlaps = {}
        for z in range(8, 17):
            page.evaluate(SET_VIEW, [39.93, 116.40, z])
            page.wait_for_timeout(700)
            overlaps[z] = page.evaluate(OVERLAPS)
        page.evaluate(SET_VIEW, [40.1, 116.45, 9])
        page.click("#gs-table summary")
        page.mouse.move(640, 850)  # no hover tooltip in the picture
        page.wait_for_timeout(800)
        page.screenshot(path=shot)
        browser.close()
    print(json.dumps({**probe, "popup": popup, "overlaps": overlaps, "external": external, "errors": errors,
                      "csp": csp}, ensure_ascii=False))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
