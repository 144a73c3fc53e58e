"""The planners' API: time-aware coverage per district, gap polygons, siting recommendations, the coverage map.

Routes only parse, call :mod:`geoservice.analysis` and write. The H3 grid (the expensive part) is built once
per resolution and kept in the app (``app.extensions["geoservice.coverage_grids"]``); sites and their hours
are read fresh on every request, so operators' edits show at once.

The planners' stack (geopandas, h3, folium, matplotlib) is the ``planners`` extra: this module imports it only
inside the views, and without it every route here answers 501 problem+json naming the extra.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import math
from typing import TYPE_CHECKING, Any

import numpy as np
import shapely
from flask import Blueprint, Response, current_app, json, request

from geoservice.api import params as P
from geoservice.api.public import settings, store
from geoservice.extras import PLANNERS, require
from geoservice.geo import transform_geometry
from geoservice.model import KINDS

if TYPE_CHECKING:
    from geoservice.analysis.coverage import CoverageResult
    from geoservice.analysis.planner import GridCache, Planner

bp = Blueprint("coverage", __name__)


@bp.before_request
def _planners_installed() -> None:
    """501 problem+json (Chinese and English, naming the extra) when the planners' stack is not installed."""
    require(PLANNERS)

API_RESOLUTIONS = (7, 8, 9)
RADIUS_RANGE = (50.0, 20_000.0)
WALK_RANGE = (1.0, 240.0)
MAX_RECOMMENDATIONS = 50
COMMON = ("at", "kind", "radius_m", "walk_minutes", "resolution")


@dataclasses.dataclass(frozen=True)
class CoverageQuery:
    """Validated common parameters."""

    at: dt.datetime
    kinds: tuple[str, ...]
    radius_m: float
    walk_minutes: float | None
    resolution: int


def _cache() -> GridCache:
    from geoservice.analysis.planner import GridCache

    return current_app.extensions.setdefault("geoservice.coverage_grids", GridCache())  # type: ignore[no-any-return]


def planner(resolution: int) -> Planner:
    """A planner over the app's store sharing the app's grid cache."""
    from geoservice.analysis.planner import Planner

    cfg = settings()
    return Planner(store(), resolution=resolution, walk_speed_m_per_min=cfg.walk_speed_m_per_min,
                   detour_factor=cfg.detour_factor, grid_cache=_cache(), layers_dir=cfg.layers_dir)


def parse_common(extra: tuple[str, ...] = ()) -> CoverageQuery:
    """Check every common parameter (400 unreadable, 422 out of range), naming the field."""
    P.check_known(request, COMMON + extra)
    at = P.get_time(request, "at")
    assert at is not None
    kinds = P.get_choices(request, "kind", KINDS)
    radius = P.get_float(request, "radius_m", lo=RADIUS_RANGE[0], hi=RADIUS_RANGE[1])
    minutes = P.get_float(request, "walk_minutes", lo=WALK_RANGE[0], hi=WALK_RANGE[1])
    if radius is not None and minutes is not None:
        raise P._bad("walk_minutes", "give radius_m or walk_minutes, not both", 422)
    resolution = P.get_int(request, "resolution", 9, min(API_RESOLUTIONS), max(API_RESOLUTIONS))
    cfg = settings()
    if minutes is not None:
        radius = minutes * cfg.walk_speed_m_per_min / cfg.detour_factor
    return CoverageQuery(at, kinds, float(radius if radius is not None else 1000.0), minutes, resolution)


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
    return Response(json.dumps(_clean(body), ensure_ascii=False), mimetype=mimetype)


def _query_echo(q: CoverageQuery, result: CoverageResult) -> dict[str, Any]:
    from geoservice.analysis.coverage import walk_minutes_for_radius

    cfg = settings()
    return {
        "at": result.summary["at"], "kind": list(q.kinds) or list(KINDS), "radius_m": q.radius_m,
        "walk_minutes": q.walk_minutes if q.walk_minutes is not None else round(
            walk_minutes_for_radius(q.radius_m, cfg.walk_speed_m_per_min, cfg.detour_factor), 1),
        "resolution": q.resolution,
    }


def _warnings(result: CoverageResult) -> list[dict[str, str]]:
    out = [{"code": "calendar-missing",
            "en": f"No official holiday schedule is loaded for {y}: public holidays and make-up working days are not "
                  "applied, only weekday rules.",
            "zh": f"尚未载入 {y} 年法定节假日安排：未考虑节假日与调休，仅按星期规则计算。"}
           for y in result.summary.get("calendar_missing_years", [])]
    if result.summary.get("simulated_sites"):
        out.append({"code": "simulated-sites", "en": "The sites are SIMULATED demo data, not real station locations.",
                    "zh": "站点为模拟演示数据，并非真实站点位置。"})
    return out


def _method(result: CoverageResult) -> dict[str, Any]:
    cfg = settings()
    return {
        "grid": f"H3 resolution {result.resolution} cells clipped to the districts; areas and distances in EPSG:32650",
        "covered": "a cell is covered when its centroid is within radius_m (straight line) of a site open at `at`",
        "walk_model": {"detour_factor": cfg.detour_factor, "speed_m_per_min": cfg.walk_speed_m_per_min,
                       "radius_m": "walk_minutes * speed_m_per_min / detour_factor"},
        "demand_source": result.summary.get("demand_source"),
    }


@bp.get("/api/v1/coverage")
def coverage() -> Response:
    """Coverage per district at ``at`` by sites of ``kind`` open then, within ``radius_m`` / ``walk_minutes``."""
    q = parse_common()
    _, result = _run(q)
    districts = result.district_table().to_dict(orient="records")
    return _json({"query": _query_echo(q, result), "city": result.summary["city"],
                  "districts": [d for d in districts if d["adcode"] != result.summary["city"]["adcode"]],
                  "method": _method(result), "warnings": _warnings(result)})


@bp.get("/api/v1/coverage/gaps")
def gaps() -> Response:
    """The uncovered area at ``at`` as dissolved (Multi)Polygons per district (GeoJSON)."""
    from geoservice.analysis.grid import to_metric, to_wgs84

    q = parse_common(("crs", "simplify_m"))
    datum = P.get_datum(request)
    simplify = P.get_float(request, "simplify_m", lo=0, hi=1000, default=0.0) or 0.0
    _, result = _run(q)
    features = []
    for g in result.gaps.itertuples(index=False):
        geom = g.geometry
        if simplify:
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
                              "method": _method(result), "warnings": _warnings(result)}), ensure_ascii=False)
    body = head[:-1] + ', "features": [' + ", ".join(features) + "]}"
    return Response(body, mimetype="application/geo+json")


@bp.get("/api/v1/coverage/recommendations")
def recommendations() -> Response:
    """Top-``n`` new sites covering the most demand uncovered at ``at`` (greedy MCLP with a stated bound)."""
    q = parse_common(("n", "crs"))
    n = P.get_int(request, "n", 10, 1, MAX_RECOMMENDATIONS)
    datum = P.get_datum(request)
    p, result = _run(q)
    recs = p.recommend(result, n)
    features = []
    for r in recs.drop(columns="geometry").to_dict(orient="records"):
        lon, lat = r["lon"], r["lat"]
        if datum != "wgs84":
            from geoservice.geo import from_wgs84

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
                  "method": _method(result), "warnings": _warnings(result)}, "application/geo+json")


@bp.get("/maps/coverage")
def coverage_map() -> Response:
    """The Folium coverage map as HTML; Leaflet and plugins from this service's /static/vendor.

    Its scripts and styles carry a fresh nonce, and the response's Content-Security-Policy allows only them.
    """
    from geoservice.api.security import set_policy
    from geoservice.csp import new_nonce
    from geoservice.maps import MapError, page_policy, render_html

    q = parse_common(("n", "tiles", "metric"))
    n = P.get_int(request, "n", 10, 0, MAX_RECOMMENDATIONS)
    tiles = (request.args.get("tiles") or "osm").strip()
    if tiles not in ("osm", "amap", "none"):
        raise P._bad("tiles", "must be osm, amap or none", 422)
    metric = (request.args.get("metric") or "demand_share").strip()
    if metric not in ("demand_share", "area_share"):
        raise P._bad("metric", "must be demand_share or area_share", 422)
    p, result = _run(q)
    recs = p.recommend(result, n) if n else None
    try:
        m = p.map(result, recs, tiles=tiles, metric=metric,
                  assets_base=request.script_root.rstrip("/") + "/static/vendor")
    except MapError as exc:
        raise P._bad("tiles", str(exc), 422) from None
    nonce = new_nonce()
    return set_policy(Response(render_html(m, nonce), mimetype="text/html"), page_policy(m, nonce))


def openapi_paths(kind: dict[str, Any], crs: dict[str, Any], problem: dict[str, Any],
                  time_pattern: str) -> dict[str, Any]:
    """The planners' paths for the service's OpenAPI document (merged by geoservice.api.openapi)."""

    def param(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
        return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}

    common = [
        param("at", {"type": "string", "pattern": time_pattern},
              "ISO 8601 time, years 2000–2100; without an offset it is Beijing time. Default now."),
        kind,
        param("radius_m", {"type": "number", "minimum": RADIUS_RANGE[0], "maximum": RADIUS_RANGE[1]},
              "Reach in metres, straight line (default 1000). Not together with walk_minutes."),
        param("walk_minutes", {"type": "number", "minimum": WALK_RANGE[0], "maximum": WALK_RANGE[1]},
              "Reach as minutes on foot: radius = minutes × walk speed / detour factor (the walk model)."),
        param("resolution", {"type": "integer", "minimum": min(API_RESOLUTIONS), "maximum": max(API_RESOLUTIONS),
                             "default": 9}, "H3 resolution of the analysis grid."),
    ]
    errors = {"400": problem, "422": problem, "503": problem}
    obj = {"type": "object"}
    return {
        "/api/v1/coverage": {"get": {
            "summary": "Coverage per district at a time: share of area and of population-weighted demand with a site "
                       "of the chosen kinds OPEN within reach, open/all sites by kind, sites per 10,000 residents",
            "parameters": common,
            "responses": {"200": {"description": "Per-district figures, city totals, method and warnings",
                                  "content": {"application/json": {"schema": obj}}}, **errors}}},
        "/api/v1/coverage/gaps": {"get": {
            "summary": "The area with no open site within reach at a time, dissolved per district (GeoJSON)",
            "parameters": [*common, crs, param("simplify_m", {"type": "number", "minimum": 0, "maximum": 1000,
                                                              "default": 0}, "Simplify polygons (metres).")],
            "responses": {"200": {"description": "FeatureCollection of (Multi)Polygons",
                                  "content": {"application/geo+json": {"schema": obj}}}, **errors}}},
        "/api/v1/coverage/recommendations": {"get": {
            "summary": "Top-n new sites that would cover the most demand left uncovered at a time (maximal covering "
                       "location problem, greedy with a stated optimality bound; open sites fixed)",
            "parameters": [*common, crs, param("n", {"type": "integer", "minimum": 1, "maximum": MAX_RECOMMENDATIONS,
                                                     "default": 10}, "How many new sites.")],
            "responses": {"200": {"description": "FeatureCollection of points in pick order with added demand and "
                                                 "cumulative coverage",
                                  "content": {"application/geo+json": {"schema": obj}}}, **errors}}},
    }
