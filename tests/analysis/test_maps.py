"""The coverage map: served by the app and written by the CLI, with no CDN, rendered in real headless Chromium."""
from __future__ import annotations

import json
import re
import subprocess
import sys
import urllib.request
from html.parser import HTMLParser
from pathlib import Path

import pytest

from geoservice.analysis.maps import MapError, coverage_map, render_html, resolve_tiles

from .conftest import ARTIFACTS, MONDAY_2200

MAX_BYTES = 2_000_000
TILE_TEMPLATE = re.compile(r"\{[xyz]\}")


class _Assets(HTMLParser):
    """Every <script src> and <link href> in a page."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "script" and a.get("src"):
            self.urls.append(a["src"] or "")
        if tag == "link" and a.get("href"):
            self.urls.append(a["href"] or "")


def external_assets(html: str) -> list[str]:
    """Script/link URLs on another host, and any http(s) URL in the page that is not a tile template."""
    parser = _Assets()
    parser.feed(html)
    bad = [u for u in parser.urls if re.match(r"^(https?:)?//", u)]
    for url in re.findall(r"""https?://[^\s"'<>`\\)]+""", html):
        if TILE_TEMPLATE.search(url) or "openstreetmap.org/copyright" in url:
            continue  # tile URL templates and the OSM attribution link are allowed
        if url.startswith(("https://leafletjs.com", "https://bugs.chromium.org", "https://bugzilla.mozilla.org",
                           "http://www.w3.org/")):
            continue  # comments and namespaces inside the vendored Leaflet source (inline mode), not requests
        bad.append(url)
    return bad


def test_served_map_renders_in_chromium_with_all_layers(coverage_server: str) -> None:
    kinds = "warm_station,mother_baby_room,worker_home"
    url = f"{coverage_server}/maps/coverage?at={MONDAY_2200}&kind={kinds}&radius_m=1000"
    with urllib.request.urlopen(url, timeout=120) as resp:
        html = resp.read().decode("utf-8")
        assert resp.headers.get_content_type() == "text/html"
    assert len(html.encode("utf-8")) < MAX_BYTES  # the whole of Beijing's 11,829 sites: under 2 MB
    assert external_assets(html) == []
    assert '<script src="/static/vendor/leaflet/leaflet.js" nonce=' in html
    assert "/static/vendor/leaflet.markercluster/leaflet.markercluster.js" in html
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "coverage_map_monday_2200.png"
    proc = subprocess.run([sys.executable, str(Path(__file__).with_name("_chromium_map.py")), url, str(shot)],
                          capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    seen = json.loads(proc.stdout.strip().splitlines()[-1])
    assert seen["errors"] == [] and seen["csp"] == []
    assert seen["leaflet"] is True
    overlays = seen["overlays"]
    assert len(overlays) == 6 and seen["checked"] == 6, overlays
    for needle in ("Districts", "Gaps", "Warm station", "Mother-and-baby room", "Workers' home", "Recommended"):
        assert any(needle in o for o in overlays), (needle, overlays)
    assert any("open 开放 / 9,650" in o for o in overlays)
    assert seen["districts"] >= 16 and seen["gaps"] >= 10 and seen["recs"] == 10
    assert "2026-11-23 22:00" in seen["title"] and "SIMULATED" in seen["title"] and "1,000 m" in seen["title"]
    assert "Legend" in seen["legend"] and seen["tableRows"] == 17
    # One cluster for every kind and grouped recommendation numbers: no label sits on another at any zoom.
    assert all(o == {"clusters": 0, "recs": 0} for o in seen["overlaps"].values()), seen["overlaps"]
    assert "km" in seen["scale"] and "mi" not in seen["scale"] and "ft" not in seen["scale"]
    assert "Hours 营业时间" in seen["popup"] and ("Open 营业中" in seen["popup"] or "Closed 已关闭" in seen["popup"])
    # Only tile requests may try to leave the machine (and they are aborted here).
    assert all("tile.openstreetmap.org" in u for u in seen["external"]), seen["external"][:5]
    assert shot.stat().st_size > 50_000


def test_inline_map_is_self_contained(monday) -> None:  # type: ignore[no-untyped-def]
    html = render_html(coverage_map(monday, inline_assets=True))
    assert external_assets(html) == []
    assert "<script src=" not in html and '<link rel="stylesheet" href=' not in html
    assert "L.markerClusterGroup" in html and "data:image/png;base64," in html
    assert len(html.encode("utf-8")) < 5_000_000  # every detail in the file (offline): larger


def test_assets_base_for_a_running_service(monday) -> None:  # type: ignore[no-untyped-def]
    html = render_html(coverage_map(monday, assets_base="https://gs.example.cn/static/vendor/"))
    assert '<script src="https://gs.example.cn/static/vendor/leaflet/leaflet.js" nonce=' in html
    assert "cdn" not in html.lower().replace("cdn-", "")


def test_amap_tiles_convert_every_coordinate_to_gcj02(monday) -> None:  # type: ignore[no-untyped-def]
    from geoservice.geo import wgs84_to_gcj02

    osm = render_html(coverage_map(monday, tiles="osm"))
    amap = render_html(coverage_map(monday, tiles="amap"))
    assert "autonavi.com" in amap and "GCJ-02" in amap
    site = monday.sites.iloc[0]
    lon, lat = site.geometry.x, site.geometry.y
    glon, glat = wgs84_to_gcj02(lon, lat)
    assert f"[{round(lat, 5)},{round(lon, 5)}," in osm.replace(" ", "")
    assert f"[{round(glat, 5)},{round(glon, 5)}," in amap.replace(" ", "")


def test_tiles_that_cannot_line_up_are_refused() -> None:
    with pytest.raises(MapError, match="Baidu"):
        resolve_tiles("baidu")
    with pytest.raises(MapError, match="BD-09"):
        resolve_tiles("https://t.example/{z}/{x}/{y}.png", "bd09")
    assert resolve_tiles("https://t.example/{z}/{x}/{y}.png", "gcj02").datum == "gcj02"
    assert resolve_tiles("none") is None
