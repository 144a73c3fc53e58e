"""The public API for couriers' apps and partners: nearest open site, sites, districts, vocabulary, health.

Each route is declared once (:mod:`geoservice.api.spec`): its parameters validate the request and write the
OpenAPI document; handlers parse, call the services, and serialise (:mod:`geoservice.serialize`).
"""
from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, Response, json, request, url_for
from shapely.geometry import mapping

from geoservice import serialize as S
from geoservice.api import spec as P
from geoservice.api.context import services, settings
from geoservice.api.jsonprovider import json_response
from geoservice.errors import NotFound
from geoservice.geo import DATUMS, from_wgs84, point_to_wgs84, to_wgs84, transform_geometry
from geoservice.hours import Interval, now_local, utc_now
from geoservice.model import (
    ALERT_LEVEL_LABELS,
    ALERT_TYPE_LABELS,
    AMENITIES,
    AMENITY_LABELS,
    FULL_TOLERANCE_M,
    KIND_LABELS,
    KINDS,
    OPEN_REASON_LABELS,
    WEEKDAY_LABELS,
    District,
    NearestHit,
    NearestQuery,
    Site,
    SiteFilter,
    verification_stale,
)
from geoservice.services.sites import SiteService
from geoservice.walk import WalkModel

bp = Blueprint("public", __name__)
API = P.Api()

MAX_LIMIT = 50
MAX_PAGE = 1000
MAX_OFFSET = 10_000_000
GEOJSON = "application/geo+json"

CRS = P.Enum("crs", "Datum of input and output coordinates: WGS-84 (GPS, OSM), GCJ-02 (Amap, Tencent), BD-09 "
                    "(Baidu).", values=tuple(DATUMS), fallback="wgs84")
KIND = P.Choices("kind", "Site kind; repeat or comma-separate for several. Default: all kinds.", values=KINDS)
AMENITY = P.Choices("amenity", "Required amenities (all must be present); repeat or comma-separate.",
                    values=AMENITIES)


def _district_codes() -> tuple[str, ...]:
    return tuple(services().sites.district_index())


DISTRICT = P.Enum("district", "District adcode (see /api/v1/districts), e.g. 110101", values=_district_codes)
BBOX = P.BBox("bbox", "lon_min,lat_min,lon_max,lat_max in the request's datum (crs); lon_min > lon_max crosses "
                      "the antimeridian, lat_min > lat_max matches nothing")
OPEN_AT = P.Time("open_at", "Only sites open at this ISO 8601 time (Beijing time without an offset)",
                 now_default=False)
LIST_FILTERS: tuple[P.Param, ...] = (BBOX, KIND, DISTRICT, OPEN_AT, CRS)

SITE_REF = {"$ref": "#/components/schemas/Site"}
COLLECTION: dict[str, Any] = {"type": "object", "required": ["type", "features", "numberReturned"], "properties": {
    "type": {"const": "FeatureCollection"}, "features": {"type": "array", "items": SITE_REF},
    "numberReturned": {"type": "integer", "minimum": 0}, "numberMatched": {"type": "integer", "minimum": 0},
    "links": {"type": "array", "items": {"$ref": "#/components/schemas/Link"}},
    "query": {"type": "object"}, "walk_model": {"type": "object"},
    "warnings": {"type": "array", "items": {"$ref": "#/components/schemas/Warning"}}}}
MAX_INTERVAL_HOURS = 48
NEAREST_COLLECTION = {**COLLECTION, "required": [*COLLECTION["required"], "alternatives"], "properties": {
    **COLLECTION["properties"], "alternatives": {"$ref": "#/components/schemas/Alternatives"}}}
ETAG = {"ETag": {"description": "The site's version: send it back in If-Match to edit the site",
                 "schema": {"type": "string", "pattern": r'^"\d+"$'}}}

# What an operator can do next with a site just read or written: each write takes its ETag as If-Match.
SITE_WRITES = {"update_site": "Change the site", "verify_site": "Confirm the site is current",
               "add_closure": "Close the site on whole days"}
SITE_LINKS = {op_id: {"operationId": op_id, "description": what,
                      "parameters": {"path.site_id": "$request.path.site_id",
                                     "header.If-Match": "$response.header.ETag"}}
              for op_id, what in SITE_WRITES.items()}


def geojson(body: dict[str, Any], status: int = 200) -> Response:
    """A GeoJSON response (UTF-8, Chinese kept readable)."""
    return json_response(body, status=status, mimetype=GEOJSON)


@dataclass(frozen=True)
class Features:
    """What every site feature of one answer shares (districts, walk model, the staleness clock), looked up once
    per answer rather than once per site."""

    datum: str
    districts: Mapping[str, District]
    walk: WalkModel
    now: dt.datetime
    stale_after_days: int

    @classmethod
    def of(cls, datum: str) -> Features:
        """The shared parts for an answer in ``datum``, now."""
        svc = services()
        return cls(datum, svc.sites.district_index(), svc.walk, utc_now(), settings().stale_after_days)

    def feature(self, site: Site, **parts: Any) -> dict[str, Any]:
        """A site as its public feature (see :func:`geoservice.serialize.site_feature`)."""
        lon, lat = from_wgs84(site.lon, site.lat, self.datum)
        district = self.districts.get(site.district_adcode or "")
        route_m = parts.pop("route_m", None)
        if "distance_m" in parts and parts["distance_m"] is not None:
            parts["walk_minutes"] = (self.walk.whole_minutes(parts["distance_m"]) if route_m is None
                                     else math.ceil(route_m / self.walk.speed_m_per_min))
        parts["stale"] = verification_stale(site.verified_at, self.now, self.stale_after_days)
        return S.site_feature(site, district, (float(lon), float(lat)), **parts)

    def hit(self, hit: NearestHit, at: dt.datetime, open_intervals: list[Interval] | None = None) -> dict[str, Any]:
        """A nearest answer (a result or an alternative) as its feature: distance, walk minutes, state at ``at``
        and, when asked for, its open intervals ahead."""
        return self.feature(hit.site, state=hit.state, at=at, distance_m=hit.distance_m, route_m=hit.route_m,
                            walk_model=hit.walk_model, walk_reason=hit.walk_reason,
                            unresolved_reports=hit.unresolved_reports, open_intervals=open_intervals, live=hit.live)


def feature(site: Site, datum: str, **parts: Any) -> dict[str, Any]:
    """One site as its public feature in ``datum`` (an answer of many sites uses one :class:`Features`)."""
    return Features.of(datum).feature(site, **parts)


def calendar_warnings(sites: SiteService, at: dt.datetime, until: dt.datetime) -> list[dict[str, str]]:
    """Say plainly when a year's official holiday schedule is not loaded, instead of guessing it."""
    missing = sites.engine.calendar.missing_years(at.date(), until.date())
    return [{
        "code": "calendar-missing",
        "en": f"No official holiday schedule is loaded for {y}: public holidays and make-up working days are "
              "not applied, only weekday rules.",
        "zh": f"尚未载入 {y} 年法定节假日安排：未考虑节假日与调休，仅按星期规则计算。",
    } for y in missing]


def wgs84_bbox(bbox: tuple[float, float, float, float] | None, datum: str
               ) -> tuple[float, float, float, float] | None:
    """A bbox given in ``datum`` as WGS-84 (the store's datum)."""
    if bbox is None or datum == "wgs84":
        return bbox
    x0, y0 = to_wgs84(bbox[0], bbox[1], datum)
    x1, y1 = to_wgs84(bbox[2], bbox[3], datum)
    return float(x0), float(y0), float(x1), float(y1)


def site_filter(args: dict[str, Any], limit: int, offset: int) -> SiteFilter:
    """The listing filter shared by /api/v1/sites and the downloads."""
    return SiteFilter(wgs84_bbox(args["bbox"], args["crs"]), args["kind"], args["district"], args["open_at"],
                      limit, offset)


@API.route(bp, P.Operation(
    "GET", "/api/v1/sites/nearest", "Nearest sites open at a time, by distance",
    description=(f"Ordered by distance_m, except that a site whose live status is full ranks as if it were "
                 f"{FULL_TOLERANCE_M:g} m farther: after the non-full sites at most {FULL_TOLERANCE_M:g} m farther "
                 "than it, before those beyond. A site whose live status closed_now is in force at `at` is left "
                 "out unless include_closed=true. Each result carries live_status and may_be_closed."),
    params=(P.Number("lat", "Latitude", required=True, lo=-90, hi=90),
            P.Number("lon", "Longitude", required=True, lo=-180, hi=180), KIND, AMENITY,
            P.Time("at", f"When (default now): ISO 8601, e.g. {P.TIME_EXAMPLE}; years 2000-2100"),
            P.Number("arrive_within", "Minutes on foot the walker accepts: keeps only sites reachable in that "
                                      "time AND still open when the walker arrives.", lo=1, hi=180),
            P.Integer("limit", "Results", lo=1, hi=MAX_LIMIT, fallback=5),
            P.Number("max_distance_m", "Straight-line radius in metres", lo=1, hi=200_000),
            P.Boolean("include_closed", "Also return sites closed at `at` (each says is_open / next_open)."),
            P.Integer("intervals_hours", "Also give each site's `open_intervals` from `at` for this many hours (0: "
                                         "none), so a client can tell open from closed later while offline",
                      lo=0, hi=MAX_INTERVAL_HOURS, fallback=0), CRS),
    ok={200: P.Response("Sites ordered by distance; when none matches, `alternatives` says what the courier can do",
                        {GEOJSON: NEAREST_COLLECTION})}, errors=(422,), public_read=True))
def nearest(args: dict[str, Any]) -> Response:
    """Nearest sites open at ``at`` (default now), ordered by distance; when none matches, the alternatives."""
    datum, at, arrive = args["crs"], args["at"], args["arrive_within"]
    lon, lat = point_to_wgs84(args["lon"], args["lat"], datum)
    svc = services()
    q = NearestQuery(lon=float(lon), lat=float(lat), at=at, kinds=args["kind"], amenities=args["amenity"],
                     limit=args["limit"], max_distance_m=args["max_distance_m"],
                     arrive_within_s=arrive * 60 if arrive is not None else None,
                     open_only=not args["include_closed"], walk=svc.walk)
    hits, alternatives = svc.sites.nearest_with_alternatives(q)
    extra = [] if alternatives is None else [alternatives.opens_soonest, alternatives.nearest_open_any]
    ahead = (svc.sites.upcoming_intervals([h.site for h in (*hits, *extra) if h], at, args["intervals_hours"])
             if args["intervals_hours"] else {})

    features_of = Features.of(datum)

    def one(hit: NearestHit | None) -> dict[str, Any] | None:
        return None if hit is None else features_of.hit(hit, at, ahead.get(hit.site.id) if ahead else None)

    features = [one(h) for h in hits]
    alt = None if alternatives is None else {"opens_soonest": one(alternatives.opens_soonest),
                                             "nearest_open_any": one(alternatives.nearest_open_any)}
    return geojson({
        "type": "FeatureCollection", "features": features, "numberReturned": len(features), "alternatives": alt,
        "query": {"lat": args["lat"], "lon": args["lon"], "crs": datum, "at": S.iso(at), "kind": list(args["kind"]),
                  "amenity": list(args["amenity"]), "arrive_within": arrive, "limit": args["limit"],
                  "max_distance_m": args["max_distance_m"], "include_closed": args["include_closed"],
                  "intervals_hours": args["intervals_hours"]},
        "walk_model": S.walk_model_answer(svc.walk.describe(), hits),
        "warnings": calendar_warnings(svc.sites, at, q.latest_instant()),
    })


@API.route(bp, P.Operation(
    "GET", "/api/v1/sites/{site_id:site_id}", "One site with its state and its closures",
    params=(P.PathId("site_id", "Site id, e.g. s0123456789ab", what="site"), CRS,
            P.Time("at", "ISO 8601 time for the state (default now)")),
    ok={200: P.Response("The site", {GEOJSON: SITE_REF}, ETAG, SITE_LINKS)}, errors=(404, 422), public_read=True))
def get_site(args: dict[str, Any], site_id: str) -> Response:
    """One site with its state at ``at`` (default now), its closures and its open reports."""
    svc = services()
    site = svc.sites.get_site(site_id)
    if site is None:
        raise NotFound(f"no site with id {site_id!r}")
    # closures_for includes the open-ended closure standing for status temporarily_closed (id None): it
    # counts for the state, but the list shows the operator's own closures only (status says the rest).
    closures = svc.sites.closures_for([site.id]).get(site.id, [])
    state = svc.sites.state(site, args["at"], closures)
    reports = svc.reports.unresolved_counts([site.id]).get(site.id, 0)
    resp = geojson(feature(site, args["crs"], state=state, at=args["at"], unresolved_reports=reports,
                           closures=closures, live=svc.live.view(site.id, args["at"])))
    resp.headers["ETag"] = f'"{site.version}"'
    return resp


def page_links(endpoint: str, offset: int, limit: int, returned: int, total: int) -> list[dict[str, str]]:
    """self/next/prev links of a listing, keeping the request's other parameters."""
    base = [(k, v) for k, v in request.args.items(multi=True) if k != "offset"]
    href = url_for(endpoint, _external=True) + "?"
    links = [{"rel": "self", "type": GEOJSON, "href": request.url}]
    if offset + returned < total:
        links.append({"rel": "next", "type": GEOJSON,
                      "href": href + urlencode(base + [("offset", str(offset + limit))])})
    if offset > 0:
        links.append({"rel": "prev", "type": GEOJSON,
                      "href": href + urlencode(base + [("offset", str(max(0, offset - limit)))])})
    return links


@API.route(bp, P.Operation(
    "GET", "/api/v1/sites", "List sites, paginated (by id)",
    params=(*LIST_FILTERS, P.Integer("limit", "Page size", lo=1, hi=MAX_PAGE, fallback=100),
            P.Integer("offset", "Page start", lo=0, hi=MAX_OFFSET, fallback=0)),
    ok={200: P.Response("A page of sites with next/prev links", {GEOJSON: COLLECTION})}, errors=(422,),
    public_read=True))
def list_sites(args: dict[str, Any]) -> Response:
    """Sites by bbox/kind/district, optionally open at a time, paginated with links."""
    svc = services()
    limit, offset = args["limit"], args["offset"]
    sites, total = svc.sites.list_sites(site_filter(args, limit, offset))
    ids = [s.id for s in sites]
    reports = svc.reports.unresolved_counts(ids)
    live = svc.live.views(ids, args["open_at"] or now_local())  # live status at the time asked about, or now
    features_of = Features.of(args["crs"])
    features = [features_of.feature(s, unresolved_reports=reports.get(s.id, 0), live=live.get(s.id))
                for s in sites]
    return geojson({"type": "FeatureCollection", "features": features, "numberMatched": total,
                    "numberReturned": len(features),
                    "links": page_links("public.list_sites", offset, limit, len(features), total)})


DISTRICT_FEATURE = {"type": "object", "required": ["type", "id", "geometry", "properties"], "properties": {
    "type": {"const": "Feature"}, "id": {"type": "string"}, "geometry": {"type": ["object", "null"]},
    "properties": {"type": "object", "required": ["adcode", "name_zh", "name_en", "area_km2", "population_2020",
                                                  "label_point", "sites"], "properties": {
        "adcode": {"type": "string"}, "name_zh": {"type": "string"}, "name_en": {"type": "string"},
        "area_km2": {"type": "number"}, "population_2020": {"type": "integer"},
        "label_point": {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2},
        "sites": {"type": "object", "additionalProperties": {"type": "integer"}}}}}}


@API.route(bp, P.Operation(
    "GET", "/api/v1/districts", "Beijing's districts with 2020 census population and site counts",
    params=(P.Boolean("geometry", "Include the boundaries"), CRS),
    ok={200: P.Response("Districts", {GEOJSON: {"type": "object", "required": ["type", "features"], "properties": {
        "type": {"const": "FeatureCollection"}, "features": {"type": "array", "items": DISTRICT_FEATURE},
        "numberReturned": {"type": "integer"}}}})}, errors=(422,), public_read=True))
def districts(args: dict[str, Any]) -> Response:
    """The districts with population and site counts; boundaries only with ``geometry=true``."""
    svc, datum = services(), args["crs"]
    counts = svc.sites.count_sites()
    features = []
    for d in svc.sites.districts():
        point = d.geometry.representative_point()
        cx, cy = from_wgs84(point.x, point.y, datum)
        geometry = None
        if args["geometry"]:
            geometry = mapping(transform_geometry(d.geometry, "wgs84", datum) if datum != "wgs84" else d.geometry)
        features.append({"type": "Feature", "id": d.adcode, "geometry": geometry, "properties": {
            "adcode": d.adcode, "name_zh": d.name_zh, "name_en": d.name_en, "area_km2": d.area_km2,
            "population_2020": d.population_2020, "label_point": [round(float(cx), 6), round(float(cy), 6)],
            "sites": S.district_counts(d, counts)}})
    return geojson({"type": "FeatureCollection", "features": features, "numberReturned": len(features)})


VOCABULARY = {"type": "object", "required": ["kinds", "amenities", "weekdays", "service_area"], "properties": {
    "kinds": {"type": "object", "additionalProperties": {"$ref": "#/components/schemas/Labels"}},
    "amenities": {"type": "object", "additionalProperties": {"$ref": "#/components/schemas/Labels"}},
    "weekdays": {"type": "object", "description": "OpenStreetMap weekday tokens, Monday first",
                 "additionalProperties": {"$ref": "#/components/schemas/Labels"}},
    "alert_types": {"type": "object", "additionalProperties": {"$ref": "#/components/schemas/Labels"}},
    "alert_levels": {"type": "object", "description": "Weather alert levels, lowest first",
                     "additionalProperties": {"$ref": "#/components/schemas/Labels"}},
    "open_reasons": {"type": "object", "description": "Why a site is open (open_reason)",
                     "additionalProperties": {"$ref": "#/components/schemas/Labels"}},
    "service_area": {"$ref": "#/components/schemas/ServiceArea"}}}


@API.route(bp, P.Operation(
    "GET", "/api/v1/vocabulary", "Kinds, amenities and weekdays with Chinese and English labels, and the service "
                                 "area (its name, extent and where maps open)",
    ok={200: P.Response("Labels", {"application/json": VOCABULARY})}))
def vocabulary(args: dict[str, Any]) -> Response:
    """Kinds, amenities and weekdays with Chinese and English labels, for clients' filters and the pages, and
    the service area the deployment serves (``GEOSERVICE_SERVICE_AREA``), so the pages open their map there.

    Keys stay in the model's display order (weekdays Mo..Su), not sorted: the pages show them in that order."""
    body = {"kinds": KIND_LABELS, "amenities": AMENITY_LABELS, "weekdays": WEEKDAY_LABELS,
            "alert_types": ALERT_TYPE_LABELS, "alert_levels": ALERT_LEVEL_LABELS, "open_reasons": OPEN_REASON_LABELS,
            "service_area": S.service_area(settings().area())}
    return Response(json.dumps(body, ensure_ascii=False, sort_keys=False), mimetype="application/json")


@API.route(bp, P.Operation(
    "GET", "/api/v1/basemap", "The base map the service's pages draw on, and the datum to draw coordinates in",
    description="Tiles whose streets are drawn in GCJ-02 (Amap) need every WGS-84 coordinate converted to GCJ-02 "
                "before it is drawn on them, or markers land 100–700 m off. Set by GEOSERVICE_TILES.",
    ok={200: P.Response("Base map", {"application/json": S.BASEMAP_SCHEMA})}))
def basemap(args: dict[str, Any]) -> Response:
    """The configured base map, so the couriers' page draws on the server's tiles in their datum."""
    resp = json_response(S.basemap(settings().basemap()))
    resp.cache_control.public = True
    resp.cache_control.max_age = 600
    return resp


# PostGIS only: the primary and each read replica (GEOSERVICE_READ_URLS), as the store routes reads now.
SERVERS_SCHEMA: dict[str, Any] = {"type": "array", "items": {
    "type": "object", "required": ["role", "server", "reachable", "replay_lag_s", "in_use"],
    "properties": {"role": {"enum": ["primary", "standby"]}, "server": {"type": "string"},
                   "reachable": {"type": "boolean"},
                   "replay_lag_s": {"type": ["number", "null"], "description": "standby: seconds behind the primary"},
                   "in_use": {"type": "boolean", "description": "reads (primary: writes) are sent to it"}}}}


@API.route(bp, P.Operation(
    "GET", "/healthz", "Store health (for load balancers)",
    ok={200: P.Response("OK", {"application/json": {"type": "object", "required": ["status", "backend"],
                                                    "properties": {"status": {"const": "ok"},
                                                                   "backend": {"type": "string"},
                                                                   "servers": SERVERS_SCHEMA}}})}))
def healthz(args: dict[str, Any]) -> Response:
    """Checks that the store answers (503 problem+json when it does not)."""
    svc = services()
    info = svc.health()
    window = svc.sites.window()
    info.update(status="ok", window=[S.iso(w) for w in window] if window else None)
    return Response(json.dumps(info), mimetype="application/json")


def walk_model_description() -> str:
    """The walk model in words, for the API documents."""
    walk = settings().walk_model()
    return (f"Walking time is straight-line distance × {walk.detour_factor:g} / {walk.speed_m_per_min:g} m per "
            "minute (no road network).")
