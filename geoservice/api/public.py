"""The public API for couriers' apps and partners: nearest open site, sites, districts, health."""
from __future__ import annotations

import datetime as dt
import math
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, Response, current_app, json, request, url_for

from geoservice.api import params as P
from geoservice.errors import NotFound
from geoservice.geo import from_wgs84, to_wgs84
from geoservice.hours import OpenState
from geoservice.model import AMENITIES, AMENITY_LABELS, KIND_LABELS, KINDS, WEEKDAY_LABELS, Site
from geoservice.settings import Settings
from geoservice.store.base import District, NearestHit, NearestQuery, SiteFilter, Store, closure_json

bp = Blueprint("public", __name__)

NEAREST_PARAMS = ("lat", "lon", "kind", "amenity", "at", "arrive_within", "limit", "max_distance_m",
                  "include_closed", "crs")
LIST_PARAMS = ("bbox", "kind", "district", "open_at", "limit", "offset", "crs")
MAX_LIMIT = 50
MAX_PAGE = 1000


def store() -> Store:
    """The app's store."""
    return current_app.extensions["geoservice.store"]


def settings() -> Settings:
    """The app's settings."""
    return current_app.extensions["geoservice.settings"]


def geojson(body: dict[str, Any], status: int = 200) -> Response:
    """A GeoJSON response (UTF-8, Chinese kept readable)."""
    return Response(json.dumps(body, ensure_ascii=False), status=status, mimetype="application/geo+json")


def _iso(t: dt.datetime | None) -> str | None:
    return t.isoformat(timespec="seconds") if t else None


def district_names() -> dict[str, District]:
    return store().cached_district_index()


def site_feature(site: Site, datum: str, state: OpenState | None = None, distance_m: float | None = None,
                 at: dt.datetime | None = None, unresolved_reports: int | None = None) -> dict[str, Any]:
    """One site as a GeoJSON Feature with bilingual labels (and its open couriers' reports when given)."""
    lon, lat = from_wgs84(site.lon, site.lat, datum)
    district = district_names().get(site.district_adcode or "")
    props: dict[str, Any] = {
        "id": site.id,
        "source_id": site.source_id,
        "kind": site.kind,
        "kind_label": KIND_LABELS[site.kind],
        "name_zh": site.name_zh,
        "name_en": site.name_en,
        "address": site.address,
        "district": {"adcode": district.adcode, "name_zh": district.name_zh, "name_en": district.name_en}
        if district else None,
        "opening_hours": site.opening_hours,
        "amenities": site.amenities,
        "amenity_labels": [{"code": a, **AMENITY_LABELS[a]} for a in site.amenities],
        "operator": site.operator,
        "phone": site.phone,
        "notes": site.notes,
        "simulated": site.simulated,
        "updated_at": _iso(site.updated_at),
        "verified_at": _iso(site.verified_at),
        "version": site.version,
        "status": site.status,
        # Set when the site's hours could not be evaluated: it is then shown as closed, never as open.
        "hours_problem": (state.problem if state is not None else None) or site.hours_problem,
    }
    if unresolved_reports is not None:
        props["unresolved_reports"] = unresolved_reports
    if distance_m is not None:
        props["distance_m"] = round(distance_m, 1)
        props["walk_minutes"] = math.ceil(settings().walk_minutes(distance_m))
    if state is not None:
        props["is_open"] = state.is_open
        props["open_until"] = _iso(state.open_until)
        props["next_open"] = _iso(state.next_open)
        props["open_all_week"] = state.is_open and state.open_until is None
        props["state_at"] = _iso(at)
    return {"type": "Feature", "id": site.id, "geometry": {"type": "Point", "coordinates": [
        round(float(lon), 7), round(float(lat), 7)]}, "properties": props}


def calendar_warnings(at: dt.datetime, until: dt.datetime) -> list[dict[str, str]]:
    """Say plainly when a year's official holiday schedule is not loaded, instead of guessing it."""
    missing = store().engine.calendar.missing_years(at.date(), until.date())
    return [{
        "code": "calendar-missing",
        "en": f"No official holiday schedule is loaded for {y}: public holidays and make-up working days are "
              "not applied, only weekday rules.",
        "zh": f"尚未载入 {y} 年法定节假日安排：未考虑节假日与调休，仅按星期规则计算。",
    } for y in missing]


@bp.get("/api/v1/sites/nearest")
def nearest() -> Response:
    """Nearest sites open at ``at`` (default now), ordered by distance."""
    P.check_known(request, NEAREST_PARAMS)
    datum = P.get_datum(request)
    lat = P.get_float(request, "lat", required=True, lo=-90, hi=90)
    lon = P.get_float(request, "lon", required=True, lo=-180, hi=180)
    assert lat is not None and lon is not None
    kinds = P.get_choices(request, "kind", KINDS)
    amenities = P.get_choices(request, "amenity", AMENITIES)
    at = P.get_time(request, "at")
    assert at is not None
    arrive = P.get_float(request, "arrive_within", lo=1, hi=180)
    limit = P.get_int(request, "limit", 5, 1, MAX_LIMIT)
    max_d = P.get_float(request, "max_distance_m", lo=1, hi=200_000)
    include_closed = P.get_bool(request, "include_closed", False)
    wlon, wlat = to_wgs84(lon, lat, datum)
    cfg = settings()
    q = NearestQuery(
        lon=float(wlon), lat=float(wlat), at=at, kinds=kinds, amenities=amenities, limit=limit,
        max_distance_m=max_d, arrive_within_s=arrive * 60 if arrive is not None else None,
        open_only=not include_closed, detour_factor=cfg.detour_factor,
        walk_speed_m_per_s=cfg.walk_speed_m_per_min / 60.0,
    )
    hits: list[NearestHit] = store().nearest(q)
    features = [site_feature(h.site, datum, h.state, h.distance_m, at, h.unresolved_reports) for h in hits]
    return geojson({
        "type": "FeatureCollection",
        "features": features,
        "numberReturned": len(features),
        "query": {"lat": lat, "lon": lon, "crs": datum, "at": _iso(at), "kind": list(kinds),
                  "amenity": list(amenities), "arrive_within": arrive, "limit": limit, "max_distance_m": max_d,
                  "include_closed": include_closed},
        "walk_model": {"detour_factor": cfg.detour_factor, "speed_m_per_min": cfg.walk_speed_m_per_min,
                       "walk_minutes": "ceil(distance_m * detour_factor / speed_m_per_min)",
                       "distance_m": "WGS-84 ellipsoidal geodesic (straight line)"},
        "warnings": calendar_warnings(at, q.latest_instant()),
    })


@bp.get("/api/v1/sites/<site_id>")
def get_site(site_id: str) -> Response:
    """One site with its state now."""
    P.check_known(request, ("crs", "at"))
    datum = P.get_datum(request)
    at = P.get_time(request, "at")
    assert at is not None
    site = store().get_site(P.site_id(site_id))
    if site is None:
        raise NotFound(f"no site with id {site_id!r}")
    # closures_for includes the open-ended closure standing for status temporarily_closed (id None): it
    # counts for the state, but the list shows the operator's own closures only (status says the rest).
    closures = store().closures_for([site.id]).get(site.id, [])
    state = store().engine.state(site.opening_hours, at, closures)
    reports = store().unresolved_report_counts([site.id]).get(site.id, 0)
    feature = site_feature(site, datum, state, at=at, unresolved_reports=reports)
    feature["properties"]["closures"] = [closure_json(c) for c in closures if c.id is not None]
    resp = geojson(feature)
    resp.headers["ETag"] = f'"{site.version}"'  # the stored version: send it back in If-Match to edit the site
    return resp


def site_filters() -> tuple[str, tuple[float, float, float, float] | None, tuple[str, ...], str | None,
                          dt.datetime | None]:
    """The listing filters shared by /api/v1/sites and the downloads: datum, WGS-84 bbox, kinds, district, open_at."""
    datum = P.get_datum(request)
    bbox = P.get_bbox(request)
    if bbox and datum != "wgs84":
        x0, y0 = to_wgs84(bbox[0], bbox[1], datum)
        x1, y1 = to_wgs84(bbox[2], bbox[3], datum)
        bbox = (float(x0), float(y0), float(x1), float(y1))
    kinds = P.get_choices(request, "kind", KINDS)
    district = request.args.get("district") or None
    if district is not None and district not in district_names():
        raise P._bad("district", f"unknown district adcode {district[:20]!r}; see /api/v1/districts", 422)
    return datum, bbox, kinds, district, P.get_time(request, "open_at", default_now=False)


@bp.get("/api/v1/sites")
def list_sites() -> Response:
    """Sites by bbox/kind/district, optionally open at a time, paginated with links."""
    P.check_known(request, LIST_PARAMS)
    datum, bbox, kinds, district, open_at = site_filters()
    limit = P.get_int(request, "limit", 100, 1, MAX_PAGE)
    offset = P.get_int(request, "offset", 0, 0, 10_000_000)
    sites, total = store().list_sites(SiteFilter(bbox, kinds, district, open_at, limit, offset))
    reports = store().unresolved_report_counts([s.id for s in sites])
    features = [site_feature(s, datum, unresolved_reports=reports.get(s.id, 0)) for s in sites]
    base = {k: v for k, v in request.args.items(multi=True) if k not in ("offset",)}
    links = [{"rel": "self", "type": "application/geo+json", "href": request.url}]
    if offset + len(sites) < total:
        links.append({"rel": "next", "type": "application/geo+json",
                      "href": url_for("public.list_sites", _external=True) + "?" + urlencode(
                          list(base.items()) + [("offset", offset + limit)])})
    if offset > 0:
        links.append({"rel": "prev", "type": "application/geo+json",
                      "href": url_for("public.list_sites", _external=True) + "?" + urlencode(
                          list(base.items()) + [("offset", max(0, offset - limit))])})
    return geojson({"type": "FeatureCollection", "features": features, "numberMatched": total,
                    "numberReturned": len(features), "links": links})


@bp.get("/api/v1/districts")
def districts() -> Response:
    """Beijing's districts with population and site counts; geometry only with ``geometry=true``."""
    P.check_known(request, ("geometry", "crs"))
    with_geometry = P.get_bool(request, "geometry", False)
    datum = P.get_datum(request)
    counts = store().count_sites()
    features = []
    for d in store().cached_districts():
        point = d.geometry.representative_point()
        cx, cy = from_wgs84(point.x, point.y, datum)
        geometry = None
        if with_geometry:
            from shapely.geometry import mapping

            from geoservice.geo import transform_geometry

            geometry = mapping(transform_geometry(d.geometry, "wgs84", datum) if datum != "wgs84" else d.geometry)
        features.append({"type": "Feature", "id": d.adcode, "geometry": geometry, "properties": {
            "adcode": d.adcode, "name_zh": d.name_zh, "name_en": d.name_en, "area_km2": d.area_km2,
            "population_2020": d.population_2020, "label_point": [round(float(cx), 6), round(float(cy), 6)],
            "sites": {k: counts.get(d.adcode, {}).get(k, 0) for k in KINDS},
        }})
    return geojson({"type": "FeatureCollection", "features": features, "numberReturned": len(features)})


@bp.get("/api/v1/vocabulary")
def vocabulary() -> Response:
    """Kinds, amenities and weekdays with Chinese and English labels, for clients' filters and the pages.

    Keys stay in the model's display order (weekdays Mo..Su), not sorted: the pages show them in that order."""
    body = {"kinds": KIND_LABELS, "amenities": AMENITY_LABELS, "weekdays": WEEKDAY_LABELS}
    return Response(json.dumps(body, ensure_ascii=False, sort_keys=False), mimetype="application/json")


@bp.get("/healthz")
def healthz() -> Response:
    """Checks that the store answers (503 problem+json when it does not)."""
    info = store().health()
    window = store().window()
    info.update(status="ok", window=[_iso(w) for w in window] if window else None)
    return Response(json.dumps(info), mimetype="application/json")
