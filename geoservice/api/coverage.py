"""The planners' API: time-aware coverage per district, gap polygons, siting recommendations, the coverage map.

Routes only parse, call :mod:`geoservice.analysis` and write. The H3 grid (the expensive part) is built once
per resolution and kept in the app (``app.extensions["geoservice.coverage_grids"]``); sites and their hours
are read fresh on every request, so operators' edits show at once.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import math
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import numpy as np
import shapely
from flask import Blueprint, Response, current_app, json, request

from geoservice import serialize as S
from geoservice.api import spec as P
from geoservice.api.context import services, settings
from geoservice.api.jsonprovider import json_response
from geoservice.api.public import CRS, GEOJSON, KIND
from geoservice.api.tiles import KIND_TILESETS
from geoservice.extras import PLANNERS, require
from geoservice.geo import from_wgs84, transform_geometry
from geoservice.memory import release_freed_memory
from geoservice.model import KINDS
from geoservice.validation import Problem, ValidationFailed

if TYPE_CHECKING:  # the planners' stack is the [planners] extra: imported inside the views only
    from geoservice.analysis.coverage import CoverageResult
    from geoservice.analysis.planner import GridCache, Planner

bp = Blueprint("coverage", __name__)


@bp.after_request
def _give_memory_back(resp: Response) -> Response:
    """A coverage run or a map leaves hundreds of MB freed but kept by the allocator: give them back."""
    release_freed_memory()
    return resp


API = P.Api()


@bp.before_request
def _planners_installed() -> None:
    """501 problem+json (Chinese and English, naming the extra) when the planners' stack is not installed."""
    require(PLANNERS)

API_RESOLUTIONS = (7, 8, 9)
EMBED_MAX_SITES = 20_000  # beyond this the served map would pass 2 MB: sites=auto draws them from vector tiles
RADIUS_RANGE = (50.0, 20_000.0)
WALK_RANGE = (1.0, 240.0)
MAX_RECOMMENDATIONS = 50
DEFAULT_RADIUS_M = 1000.0

COMMON: tuple[P.Param, ...] = (
    P.Time("at", "When (default now): ISO 8601, Beijing time without an offset"), KIND,
    P.Number("radius_m", "Reach in metres, straight line (default 1000). With walk_minutes too, walk_minutes "
                         "wins (a warning says so).", lo=RADIUS_RANGE[0], hi=RADIUS_RANGE[1]),
    P.Number("walk_minutes", "Reach as minutes on foot: radius = minutes × walk speed / detour factor (the walk "
                             "model).", lo=WALK_RANGE[0], hi=WALK_RANGE[1]),
    P.Integer("resolution", "H3 resolution of the analysis grid", lo=min(API_RESOLUTIONS), hi=max(API_RESOLUTIONS),
              fallback=9),
)
OBJECT = {"type": "object"}


@dataclasses.dataclass(frozen=True)
class CoverageQuery:
    """Validated common parameters."""

    at: dt.datetime
    kinds: tuple[str, ...]
    radius_m: float
    walk_minutes: float | None
    resolution: int
    warnings: tuple[dict[str, str], ...] = ()


def _cache() -> GridCache:
    """The app's one grid cache (made on the first coverage request, then reused by every request), without the
    pieces' polygons: no served answer draws them, and they are most of a worker's memory."""
    from geoservice.analysis.planner import GridCache

    found = current_app.extensions.get("geoservice.coverage_grids")
    if found is None:
        cfg = settings()
        folder = cfg.grid_dir if cfg.grid_dir is not None else cfg.embedded_path.parent / "grids"
        found = current_app.extensions.setdefault("geoservice.coverage_grids", GridCache(folder, cell_shapes=False))
    return found  # type: ignore[no-any-return]


def planner(resolution: int) -> Planner:
    """A planner over the app's services sharing the app's grid cache."""
    from geoservice.analysis.planner import Planner

    cfg = settings()
    walk = services().walk.straight_line()  # coverage radii are straight lines, network or not
    return Planner(services().sites, resolution=resolution, walk=walk, grid_cache=_cache(),
                   layers_dir=cfg.layers_dir, bundled_demand_applies=cfg.area_is_layers_own(), area=cfg.area())


def site_tile_urls(root: str, at: dt.datetime) -> dict[str, str]:
    """Each kind's vector tile URL template of the sites open at ``at`` (the map's time)."""
    query = urlencode({"open_at": at.isoformat()})
    return {kind: f"{root}/tiles/{ts}/{{z}}/{{x}}/{{y}}.mvt?{query}" for kind, ts in KIND_TILESETS.items()}


def common(args: dict[str, Any]) -> CoverageQuery:
    """The common parameters as one query; ``walk_minutes`` wins over ``radius_m`` (and says so)."""
    minutes, radius = args["walk_minutes"], args["radius_m"]
    warnings: list[dict[str, str]] = []
    if minutes is not None:
        if radius is not None:
            warnings.append({"code": "radius-ignored",
                             "en": "radius_m was ignored: walk_minutes sets the reach when both are given.",
                             "zh": "同时给出 radius_m 与 walk_minutes 时以步行分钟数为准，已忽略 radius_m。"})
        radius = services().walk.straight_line().radius_m(minutes)
    return CoverageQuery(args["at"], args["kind"], float(radius if radius is not None else DEFAULT_RADIUS_M),
                         minutes, args["resolution"], tuple(warnings))


def _run(q: CoverageQuery) -> tuple[Planner, CoverageResult]:
    p = planner(q.resolution)
    return p, p.coverage(q.at, q.kinds, radius_m=q.radius_m)


def _clean(value: Any) -> Any:
    """JSON-safe: NaN/inf -> None, numpy scalars -> Python, floats rounded to 6 significant places."""
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        return float(f"{value:.6g}") if abs(value) < 1e6 else round(value, 1)
    return value


def _json(body: dict[str, Any], mimetype: str = "application/json") -> Response:
    return json_response(_clean(body), mimetype=mimetype)


def _query_echo(q: CoverageQuery, result: CoverageResult) -> dict[str, Any]:
    return {"at": result.summary["at"], "kind": list(q.kinds) or list(KINDS), "radius_m": q.radius_m,
            "walk_minutes": q.walk_minutes if q.walk_minutes is not None else round(
                services().walk.straight_line().minutes(q.radius_m), 1), "resolution": q.resolution}


def _warnings(q: CoverageQuery, result: CoverageResult) -> list[dict[str, str]]:
    out = [{"code": "calendar-missing",
            "en": f"No official holiday schedule is loaded for {y}: public holidays and make-up working days are not "
                  "applied, only weekday rules.",
            "zh": f"尚未载入 {y} 年法定节假日安排：未考虑节假日与调休，仅按星期规则计算。"}
           for y in result.summary.get("calendar_missing_years", [])]
    if result.summary.get("simulated_sites"):
        out.append({"code": "simulated-sites", "en": "The sites are SIMULATED demo data, not real station locations.",
                    "zh": "站点为模拟演示数据，并非真实站点位置。"})
    return out + list(q.warnings)


def _method(result: CoverageResult) -> dict[str, Any]:
    walk = services().walk.straight_line()
    return {
        "grid": f"H3 resolution {result.resolution} cells clipped to the districts; areas and distances in EPSG:32650",
        "covered": "a cell is covered when its centroid is within radius_m (straight line) of a site open at `at`",
        "walk_model": {**walk.describe(), "radius_m": "walk_minutes * speed_m_per_min / detour_factor",
                       "network_loaded": services().walk.routes_by_network},
        "demand_source": result.summary.get("demand_source"),
    }


@API.route(bp, P.Operation(
    "GET", "/api/v1/coverage", "Coverage per district at a time",
    description="Share of area and of population-weighted demand with a site of the chosen kinds OPEN within reach, "
                "open/all sites by kind, sites per 10,000 residents. Sites keep the hours they keep at `at`: alert "
                "hours where a weather alert in force then triggers them (`alerts` lists those alerts). "
                "`compare_normal=true` adds `normal_hours`: the same figures with every site on its normal hours "
                "(the night without the alert) and, per district, the difference in area and demand share.",
    params=(*COMMON, P.Boolean("compare_normal", "Also compute the normal night (no alert hours) and the "
                                                 "difference per district")),
    ok={200: P.Response("Per-district figures, city totals, method and warnings",
                        {"application/json": OBJECT})}, errors=(422, 501), public_read=True,
    tags=("planners",)))
def coverage(args: dict[str, Any]) -> Response:
    """Coverage per district at ``at`` by sites of ``kind`` open then, within ``radius_m`` / ``walk_minutes``."""
    q = common(args)
    p, result = _run(q)
    city = result.summary["city"]["adcode"]
    districts = [d for d in result.district_table().to_dict(orient="records") if d["adcode"] != city]
    body = {"query": _query_echo(q, result), "city": result.summary["city"], "districts": districts,
            "alerts": [S.alert(a) for a in services().sites.alerts_in_force(q.at)],
            "method": _method(result), "warnings": _warnings(q, result)}
    if args["compare_normal"]:
        normal = p.coverage(q.at, q.kinds, radius_m=q.radius_m, alert_hours=False)
        before = {d["adcode"]: d for d in normal.district_table().to_dict(orient="records")}
        body["normal_hours"] = {"city": normal.summary["city"], "difference": [{
            "adcode": d["adcode"], "name_zh": d["name_zh"], "name_en": d["name_en"],
            "open_sites": d["open_sites"], "open_sites_normal": before[d["adcode"]]["open_sites"],
            "area_share": d["area_share"], "area_share_normal": before[d["adcode"]]["area_share"],
            "area_share_difference": _difference(d["area_share"], before[d["adcode"]]["area_share"]),
            "demand_share": d["demand_share"], "demand_share_normal": before[d["adcode"]]["demand_share"],
            "demand_share_difference": _difference(d["demand_share"], before[d["adcode"]]["demand_share"]),
        } for d in [*districts, result.summary["city"]]]}
    return _json(body)


def _difference(now: Any, normal: Any) -> float | None:
    """``now - normal`` where both are numbers (a district without demand has none)."""
    try:
        value = float(now) - float(normal)
    except (TypeError, ValueError):
        return None
    return value if value == value else None  # NaN: unknown


@API.route(bp, P.Operation(
    "GET", "/api/v1/coverage/gaps", "The area with no open site within reach at a time, per district (GeoJSON)",
    params=(*COMMON, CRS, P.Number("simplify_m", "Simplify the polygons (metres)", lo=0, hi=1000, fallback=0)),
    ok={200: P.Response("FeatureCollection of (Multi)Polygons", {GEOJSON: OBJECT})}, errors=(422, 501),
    public_read=True, tags=("planners",)))
def gaps(args: dict[str, Any]) -> Response:
    """The uncovered area at ``at`` as dissolved (Multi)Polygons per district (GeoJSON)."""
    q = common(args)
    datum, simplify = args["crs"], args["simplify_m"] or 0.0
    _, result = _run(q)
    features = []
    for g in result.gaps.itertuples(index=False):
        geom = g.geometry
        if simplify:
            from geoservice.analysis.grid import to_metric, to_wgs84

            geom = to_wgs84(shapely.simplify(to_metric(geom), simplify, preserve_topology=True))
        if datum != "wgs84":
            geom = transform_geometry(geom, "wgs84", datum)
        geom = shapely.transform(geom, lambda c: np.round(c, 6))  # ~0.1 m
        props = _clean({"adcode": g.adcode, "name_zh": g.name_zh, "name_en": g.name_en, "area_km2": g.area_km2,
                        "uncovered_demand": g.uncovered_demand, "parts": g.parts})
        # Geometry serialised by GEOS (fast for large polygons), spliced into the feature's JSON.
        features.append(f'{{"type": "Feature", "id": {json.dumps(g.adcode)}, "geometry": {shapely.to_geojson(geom)}, '
                        f'"properties": {json.dumps(props, ensure_ascii=False)}}}')
    head = json.dumps(_clean({"type": "FeatureCollection", "numberReturned": len(features),
                              "query": {**_query_echo(q, result), "crs": datum, "simplify_m": simplify},
                              "method": _method(result), "warnings": _warnings(q, result)}), ensure_ascii=False)
    body = head[:-1] + ', "features": [' + ", ".join(features) + "]}"
    return Response(body, mimetype=GEOJSON)


@API.route(bp, P.Operation(
    "GET", "/api/v1/coverage/recommendations", "Top-n new sites that would cover the most demand left uncovered",
    description="Maximal covering location problem, greedy with a stated optimality bound; open sites fixed.",
    params=(*COMMON, CRS, P.Integer("n", "How many new sites", lo=1, hi=MAX_RECOMMENDATIONS, fallback=10)),
    ok={200: P.Response("FeatureCollection of points in pick order with added demand and cumulative coverage",
                        {GEOJSON: OBJECT})}, errors=(422, 501), public_read=True, tags=("planners",)))
def recommendations(args: dict[str, Any]) -> Response:
    """Top-``n`` new sites covering the most demand uncovered at ``at`` (greedy MCLP with a stated bound)."""
    q = common(args)
    n, datum = args["n"], args["crs"]
    p, result = _run(q)
    recs = p.recommend(result, n)
    features = []
    for r in recs.drop(columns="geometry").to_dict(orient="records"):
        lon, lat = r["lon"], r["lat"]
        if datum != "wgs84":
            lon, lat = from_wgs84(lon, lat, datum)
        features.append({"type": "Feature", "id": r["h3"], "geometry": {
            "type": "Point", "coordinates": [round(float(lon), 6), round(float(lat), 6)]},
            "properties": {k: v for k, v in r.items() if k not in ("lon", "lat")}})
    a = recs.attrs
    return _json({"type": "FeatureCollection", "features": features, "numberReturned": len(features),
                  "query": {**_query_echo(q, result), "n": n, "crs": datum},
                  "optimisation": {k: a.get(k) for k in ("method", "objective", "upper_bound", "gap", "guarantee",
                                                         "baseline_demand_share", "baseline_area_share", "candidates",
                                                         "demand_points", "candidate_min_distance_m")},
                  "method": _method(result), "warnings": _warnings(q, result)}, GEOJSON)


@API.route(bp, P.Operation(
    "GET", "/maps/coverage", "The coverage map (HTML, Folium/Leaflet, every asset from this service)",
    params=(*COMMON, P.Integer("n", "Recommended new sites to draw (0: none)", lo=0, hi=MAX_RECOMMENDATIONS,
                               fallback=10),
            P.Enum("tiles", "Base map: OpenStreetMap (WGS-84), Amap (GCJ-02) or none", values=("osm", "amap", "none"),
                   fallback="osm"),
            P.Enum("metric", "What colours the districts", values=("demand_share", "area_share"),
                   fallback="demand_share"),
            P.Enum("sites", f"How sites are drawn: embedded in the page (open and closed), from this service's "
                            f"vector tiles (open sites only, needs a WGS-84 base map: tiles=osm or none), or auto "
                            f"(tiles beyond {EMBED_MAX_SITES:,} sites on a WGS-84 base map)",
                   values=("auto", "embedded", "tiles"), fallback="auto")),
    ok={200: P.Response("The map page", {"text/html": {"type": "string"}})}, errors=(422, 501), public_read=True,
    tags=("planners",)))
def coverage_map(args: dict[str, Any]) -> Response:
    """The Folium coverage map as HTML; Leaflet and plugins from this service's /static/vendor.

    Its scripts and styles carry a fresh nonce, and the response's Content-Security-Policy allows only them.
    """
    from geoservice.analysis.maps import MapError, page_policy, render_html
    from geoservice.api.security import set_policy
    from geoservice.csp import new_nonce

    q = common(args)
    p, result = _run(q)
    recs = p.recommend(result, args["n"]) if args["n"] else None
    root = request.script_root.rstrip("/")
    wgs84_base = args["tiles"] in ("osm", "none")
    from_tiles = args["sites"] == "tiles" or (args["sites"] == "auto" and wgs84_base
                                              and len(result.sites) > EMBED_MAX_SITES)
    if from_tiles and not wgs84_base:
        raise ValidationFailed([Problem("sites", "sites=tiles draws WGS-84 vector tiles: use tiles=osm or none")])
    try:
        m = p.map(result, recs, tiles=args["tiles"], metric=args["metric"], assets_base=root + "/static/vendor",
                  site_api=root + "/api/v1/sites", site_tiles=site_tile_urls(root, q.at) if from_tiles else None)
    except MapError as exc:
        raise ValidationFailed([Problem("tiles", str(exc))]) from None
    nonce = new_nonce()
    return set_policy(Response(render_html(m, nonce), mimetype="text/html"), page_policy(m, nonce))
