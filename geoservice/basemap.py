"""Base-map tiles: the named presets (OpenStreetMap in WGS-84, Amap in GCJ-02), ``none``, or a URL template
with its datum — one spec for the couriers' page (``GEOSERVICE_TILES``) and the planners' Folium maps.

Chinese tile servers draw the streets in GCJ-02, so a WGS-84 point drawn unchanged on Amap tiles lands
100–700 m off. Whoever draws on tiles converts every coordinate into :attr:`BaseMap.datum` first
(:func:`geoservice.geo.from_wgs84`; in the couriers' page ``static/js/datum.js``). Baidu's tiles are not in a
datum but in Baidu's own Mercator, so converting coordinates would not make them line up: they are refused.
"""
from __future__ import annotations

import dataclasses
import re
from urllib.parse import urlsplit

TILE_DATUMS = ("wgs84", "gcj02")
NAMED = ("osm", "amap", "none")


class BaseMapError(ValueError):
    """A tile setting that cannot be honoured (unknown name, BD-09, a template without {z}/{x}/{y})."""


@dataclasses.dataclass(frozen=True)
class BaseMap:
    """A tile layer: URL template (``{s}`` subdomain, ``{z}/{x}/{y}``), the datum its streets are drawn in, and
    the attribution its licence asks for, as plain text in Chinese and English plus an optional link."""

    key: str
    url: str
    datum: str
    subdomains: str
    max_zoom: int
    name: str
    attribution_zh: str
    attribution_en: str
    attribution_url: str = ""

    def attribution_html(self) -> str:
        """The attribution as HTML for Leaflet/Folium (text escaped; a link when there is one)."""
        from html import escape

        words = self.attribution_en if self.attribution_zh == self.attribution_en else \
            f"{self.attribution_zh} · {self.attribution_en}"
        text = escape(words)
        if self.attribution_url:
            return f'&copy; <a href="{escape(self.attribution_url)}">{text}</a>'
        return f"&copy; {text}"

    def image_source(self) -> str:
        """The Content-Security-Policy source its tile images need: the origin, with a ``{s}`` label widened."""
        parts = urlsplit(self.url)
        host = parts.netloc
        if "{s}" in host:
            host = re.sub(r"^[^.]*\{s\}[^.]*\.", "*.", host)
        return f"{parts.scheme}://{host}"


PRESETS: dict[str, BaseMap] = {
    "osm": BaseMap("osm", "https://tile.openstreetmap.org/{z}/{x}/{y}.png", "wgs84", "abc", 19, "OpenStreetMap",
                   "OpenStreetMap 贡献者", "OpenStreetMap contributors", "https://www.openstreetmap.org/copyright"),
    "amap": BaseMap("amap",
                    "https://webrd0{s}.is.autonavi.com/appmaprd/?lang=zh_cn&size=1&scale=1&style=8&x={x}&y={y}&z={z}",
                    "gcj02", "1234", 18, "Amap 高德 (GCJ-02)", "高德地图 AutoNavi", "Amap AutoNavi"),
}


def resolve(tiles: str, tiles_datum: str | None = None, attribution: str = "") -> BaseMap | None:
    """The base map for a tile setting (``osm``, ``amap``, ``none`` or an http(s) template with ``{z}``, ``{x}``
    and ``{y}``) and its datum, or raise :class:`BaseMapError` saying what would work. ``none`` gives None."""
    key = (tiles or "osm").strip()
    datum = (tiles_datum or "").strip().lower().replace("-", "")
    if key.lower() == "none":
        return None
    if key.lower() in PRESETS:
        preset = PRESETS[key.lower()]
        if datum and datum != preset.datum:
            raise BaseMapError(f"tiles {key!r} are {preset.datum}; tiles_datum {tiles_datum!r} does not match")
        return preset
    if key.lower() in ("baidu", "bd09") or datum == "bd09":
        raise BaseMapError("Baidu tiles (BD-09, Baidu's own Mercator) are not supported: converting coordinates "
                           "does not make features line up with them. Use tiles=osm (WGS-84) or tiles=amap (GCJ-02).")
    if not re.match(r"^https?://[^/{}]*(\{s\}[^/{}]*)?(/|$)", key) or not all(p in key for p in ("{x}", "{y}", "{z}")):
        raise BaseMapError("tiles must be 'osm', 'amap', 'none' or an http(s) URL template with {z}, {x} and {y}")
    datum = datum or "wgs84"
    if datum not in TILE_DATUMS:
        raise BaseMapError(f"tiles_datum must be one of {', '.join(TILE_DATUMS)} (BD-09 tiles are not supported)")
    text = attribution.strip() or "custom tiles"
    return BaseMap("custom", key, datum, "abc", 19, "Custom tiles", attribution.strip() or "自定义底图", text)
