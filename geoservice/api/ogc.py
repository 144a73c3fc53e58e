"""OGC API – Features – Part 1: Core + GeoJSON (+ OpenAPI 3.0) at ``/ogc``, for QGIS, ArcGIS, GDAL and partners.

Collections: ``warm_stations``, ``mother_baby_rooms``, ``worker_homes`` (one per site kind) and ``districts``.
Output is always CRS84 (WGS-84 longitude, latitude), as Part 1 requires; the service's ``crs=gcj02|bd09``
conversion is deliberately not offered here (use ``/api/v1`` or the exports for Chinese map datums).

Items are flat GeoJSON features (scalar properties only; ``amenities`` is ``;``-separated as in the CSV
export) so GIS clients get plain columns. Paging is ``limit`` (default 10, 1..10000) and ``offset`` with
``next``/``prev`` links; ``numberMatched`` is exact. Unknown or empty query parameters are rejected with
400 (problem+json), unknown collections and features are 404.

Extensions beyond the standard (documented in the landing page, each collection and the OpenAPI
document): ``open_at=<ISO 8601 time>`` keeps only sites open then (Asia/Shanghai when no offset), and
``near=lon,lat`` (CRS84) orders sites by WGS-84 ellipsoidal geodesic distance and adds ``distance_m``.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import math
import re
import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlencode

import numpy as np
from flask import Blueprint, Response, current_app, json, request, url_for
from shapely.geometry import box, mapping

from geoservice.api import params as P
from geoservice.errors import InvalidInput, NotFound
from geoservice.geo import geodesic_distance_m
from geoservice.model import KIND_LABELS, KINDS, Site
from geoservice.store.base import District, SiteFilter, Store

bp = Blueprint("ogc", __name__, url_prefix="/ogc")

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
CONFORMANCE: tuple[str, ...] = (
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
)
JSON = "application/json"
GEOJSON = "application/geo+json"
OPENAPI_30 = "application/vnd.oai.openapi+json;version=3.0"

DEFAULT_LIMIT = 10
MAX_LIMIT = 10_000
MAX_OFFSET = 10_000_000
ALL = 100_000_000  # "no limit" for Store.list_sites when filtering or sorting in Python
EXTENT_TTL_S = 60.0

EXTENSIONS_DOC = (
    "Extensions beyond OGC API – Features Part 1 (not part of the standard) on the site collections: "
    "`open_at=<ISO 8601 time>` returns only sites open at that time (a time without an offset is Beijing "
    "time, Asia/Shanghai; China's official holiday calendar applies); `near=lon,lat` (CRS84) orders the "
    "sites by WGS-84 ellipsoidal geodesic distance from that point and adds a `distance_m` property. "
    "All coordinates are CRS84 (WGS-84 lon/lat) as the standard requires; for GCJ-02 (Amap) or BD-09 "
    "(Baidu) use /api/v1 with `crs=` or the exports (/api/v1/sites.geojson, /api/v1/sites.csv). "
    "The items have no temporal geometry: `datetime` is accepted and validated but does not restrict results."
)

# Query parameters every items request accepts (Part 1 core), and the ones only the site collections take.
COMMON_ITEM_PARAMS = ("f", "limit", "offset", "bbox", "datetime")
SITE_FILTERS = ("district_adcode", "source_id", "name_zh", "name_en", "operator", "simulated")
SITE_EXTENSIONS = ("open_at", "near")
DISTRICT_FILTERS = ("adcode", "name_zh", "name_en")
# Convenience alias, as in /api/v1/sites: district=110101 is district_adcode=110101.
ALIASES = {"district": "district_adcode"}


@dataclasses.dataclass(frozen=True)
class Collection:
    """One published collection: a site kind, or the districts."""

    id: str
    title: str
    description: str
    kind: str | None = None

    @property
    def filters(self) -> tuple[str, ...]:
        """Simple property filters accepted as query parameters."""
        return SITE_FILTERS + ("district",) if self.kind else DISTRICT_FILTERS

    @property
    def item_params(self) -> tuple[str, ...]:
        """Every query parameter the items endpoint accepts."""
        return COMMON_ITEM_PARAMS + self.filters + (SITE_EXTENSIONS if self.kind else ())


def _site_collection(cid: str, kind: str, title_en: str, what: str) -> Collection:
    return Collection(cid, f"{KIND_LABELS[kind]['zh']} / {title_en}",
                      f"{what} Points in CRS84. Demo data are SIMULATED (property `simulated`). "
                      f"Property filters: {', '.join(SITE_FILTERS)} (alias `district`). " + EXTENSIONS_DOC, kind)


COLLECTIONS: dict[str, Collection] = {c.id: c for c in (
    _site_collection("warm_stations", "warm_station", "Warm stations",
                     "Warm stations (暖心驿站): rest stops for outdoor workers run by Beijing's trade unions."),
    _site_collection("mother_baby_rooms", "mother_baby_room", "Mother-and-baby rooms",
                     "Mother-and-baby rooms (母婴关爱室): private rooms for breastfeeding and baby care."),
    _site_collection("worker_homes", "worker_home", "Public-area workers' homes",
                     "Public-area workers' homes (职工之家) in business districts."),
    Collection("districts", "北京市辖区 / Beijing districts",
               "Beijing's 16 districts (MultiPolygons in CRS84, converted from GCJ-02 Amap boundaries) with "
               "2020 census population and the number of sites of each kind. Property filters: "
               f"{', '.join(DISTRICT_FILTERS)}. The items have no temporal geometry: `datetime` does not "
               "restrict results."),
)}
assert {c.kind for c in COLLECTIONS.values() if c.kind} == set(KINDS)


# ---- helpers -------------------------------------------------------------------------------------
def _store() -> Store:
    return current_app.extensions["geoservice.store"]


def _respond(body: dict[str, Any], mimetype: str = JSON, status: int = 200) -> Response:
    return Response(json.dumps(body, ensure_ascii=False), status=status, mimetype=mimetype)


def _url(endpoint: str, **values: Any) -> str:
    return url_for(f"ogc.{endpoint}", _external=True, **values)


def _bad(name: str, reason: str) -> InvalidInput:
    return InvalidInput(f"{name}: {reason}", [{"field": name, "reason": reason}])


def _check_params(allowed: Sequence[str], formats: Sequence[str] = ("json",)) -> None:
    """400 for unknown parameters (OGC /rec/core/query-param-unknown) and unsupported ``f``."""
    unknown = [k for k in request.args if k not in allowed]
    if unknown:
        raise _bad(unknown[0][:40], f"unknown parameter; allowed here: {', '.join(allowed)}")
    for name in request.args:
        values = request.args.getlist(name)
        if len(values) > 1:
            raise _bad(name, "given more than once")
        if values[0].strip() == "":
            raise _bad(name, "is empty; omit the parameter to use its default")
    f = request.args.get("f")
    if f is not None and f.strip().lower() not in formats:
        raise _bad("f", f"{f[:20]!r} is not supported; use {' or '.join(formats)} (HTML is not offered)")


def _bbox() -> tuple[float, float, float, float] | None:
    """``bbox`` in CRS84: 4 numbers, or 6 with heights (ignored: the data are 2D)."""
    raw = request.args.get("bbox")
    if raw is None or raw.strip() == "":
        return None
    try:
        parts = [float(p) for p in raw.split(",")]
    except ValueError:
        raise _bad("bbox", "must be 4 (or 6) numbers: lon_min,lat_min,lon_max,lat_max in CRS84") from None
    if len(parts) not in (4, 6) or not all(math.isfinite(p) for p in parts):
        raise _bad("bbox", "must be 4 (or 6) numbers: lon_min,lat_min,lon_max,lat_max in CRS84")
    x0, y0, x1, y1 = (parts[0], parts[1], parts[2], parts[3]) if len(parts) == 4 else (
        parts[0], parts[1], parts[3], parts[4])
    if not (-180 <= x0 <= 180 and -180 <= x1 <= 180 and -90 <= y0 <= y1 <= 90):
        raise _bad("bbox", "must satisfy -180 <= lon <= 180 and -90 <= lat_min <= lat_max <= 90")
    if x0 > x1:
        raise _bad("bbox", "boxes crossing the antimeridian (lon_min > lon_max) are not supported")
    return x0, y0, x1, y1


_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2}))?$", re.I)


def _check_datetime() -> None:
    """Validate ``datetime`` (an instant or an interval with ``..``); the items have no time to filter on."""
    raw = request.args.get("datetime")
    if raw is None:
        return
    parts = raw.split("/")
    if len(parts) == 1:
        ok = bool(_RFC3339.match(raw))
    else:
        ok = len(parts) == 2 and all(p in ("..", "") or _RFC3339.match(p) for p in parts) and \
            not all(p in ("..", "") for p in parts)
    if not ok:
        raise _bad("datetime", f"{raw[:60]!r} is not an RFC 3339 date-time or interval "
                               "(e.g. 2026-01-01T00:00:00Z or 2026-01-01T00:00:00Z/..)")


def _bool(name: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("1", "true", "yes"):
        return True
    if value in ("0", "false", "no"):
        return False
    raise _bad(name, f"{raw[:20]!r} is not true or false")


def _near() -> tuple[float, float] | None:
    raw = request.args.get("near")
    if raw is None or raw.strip() == "":
        return None
    try:
        lon, lat = (float(p) for p in raw.split(","))
    except ValueError:
        raise _bad("near", "must be lon,lat in CRS84 (WGS-84), e.g. 116.3975,39.9087") from None
    if not (math.isfinite(lon) and math.isfinite(lat) and -180 <= lon <= 180 and -90 <= lat <= 90):
        raise _bad("near", "must be a valid lon,lat in CRS84")
    return lon, lat


def _collection(cid: str) -> Collection:
    coll = COLLECTIONS.get(cid)
    if coll is None:
        raise NotFound(f"no collection {cid[:64]!r}; see /ogc/collections")
    return coll


def _timestamp() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _iso(t: dt.datetime | None) -> str | None:
    return t.isoformat() if t else None


def _districts() -> list[District]:
    return _store().cached_districts()


def _extents() -> dict[str, list[float]]:
    """Spatial extent of each collection (CRS84), cached for a minute: sites change rarely."""
    cache = current_app.extensions.setdefault("geoservice.ogc.extents", {})
    cached = cache.get("value")
    if cached is not None and time.monotonic() - cached[0] < EXTENT_TTL_S:
        return cached[1]
    districts = _districts()
    extents: dict[str, list[float]] = {}
    if districts:
        bounds = [d.geometry.bounds for d in districts]
        extents["districts"] = [min(b[0] for b in bounds), min(b[1] for b in bounds),
                                max(b[2] for b in bounds), max(b[3] for b in bounds)]
    for coll in COLLECTIONS.values():
        if coll.kind is None:
            continue
        sites, _ = _store().list_sites(SiteFilter(kinds=(coll.kind,), limit=ALL))
        if sites:
            extents[coll.id] = [min(s.lon for s in sites), min(s.lat for s in sites),
                                max(s.lon for s in sites), max(s.lat for s in sites)]
        elif "districts" in extents:
            extents[coll.id] = extents["districts"]  # empty layer: the service area
    cache["value"] = (time.monotonic(), extents)  # one assignment: readers never see half an update
    return extents


def _collection_doc(coll: Collection, extents: dict[str, list[float]]) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "id": coll.id,
        "title": coll.title,
        "description": coll.description,
        "itemType": "feature",
        "crs": [CRS84],
        "links": [
            {"rel": "self", "type": JSON, "title": "This collection", "href": _url("collection", cid=coll.id)},
            {"rel": "items", "type": GEOJSON, "title": "Items (GeoJSON)", "href": _url("items", cid=coll.id)},
        ],
    }
    if coll.id in extents:
        doc["extent"] = {"spatial": {"bbox": [[round(v, 7) for v in extents[coll.id]]], "crs": CRS84}}
    if coll.kind:
        doc["x-extensions"] = {"open_at": "only sites open at this ISO 8601 time (Asia/Shanghai when no offset)",
                               "near": "lon,lat (CRS84): order by geodesic distance, add distance_m"}
    return doc


def _site_feature(site: Site, districts: dict[str, District], distance_m: float | None = None) -> dict[str, Any]:
    """A site as a flat GeoJSON feature in CRS84: scalar properties only (``amenities`` ``;``-separated, as in
    the CSV export), so GIS clients get plain columns and a copy loads back with ``geoservice load``."""
    district = districts.get(site.district_adcode or "")
    label = KIND_LABELS[site.kind]
    props: dict[str, Any] = {
        "source_id": site.source_id,
        "kind": site.kind,
        "kind_zh": label["zh"],
        "kind_en": label["en"],
        "name_zh": site.name_zh,
        "name_en": site.name_en,
        "address": site.address,
        "district_adcode": site.district_adcode,
        "district_zh": district.name_zh if district else None,
        "district_en": district.name_en if district else None,
        "opening_hours": site.opening_hours,
        "amenities": ";".join(site.amenities),
        "operator": site.operator,
        "phone": site.phone,
        "notes": site.notes,
        "simulated": bool(site.simulated),
        "updated_at": _iso(site.updated_at),
        "verified_at": _iso(site.verified_at),
        "version": site.version,
    }
    if distance_m is not None:
        props["distance_m"] = round(float(distance_m), 1)
    return {"type": "Feature", "id": site.id,
            "geometry": {"type": "Point", "coordinates": [round(site.lon, 7), round(site.lat, 7)]},
            "properties": props}


def _district_feature(d: District, counts: dict[str, dict[str, int]]) -> dict[str, Any]:
    props: dict[str, Any] = {"adcode": d.adcode, "name_zh": d.name_zh, "name_en": d.name_en,
                             "area_km2": round(d.area_km2, 3), "population_2020": d.population_2020}
    for kind in KINDS:
        props[f"sites_{kind}"] = counts.get(d.adcode, {}).get(kind, 0)
    return {"type": "Feature", "id": d.adcode, "geometry": mapping(d.geometry), "properties": props}


def _page_links(cid: str, offset: int, limit: int, returned: int, matched: int) -> list[dict[str, Any]]:
    keep = [(k, v) for k, v in request.args.items(multi=True) if k not in ("offset",)]
    if "limit" not in request.args:
        keep.append(("limit", str(limit)))
    base = _url("items", cid=cid)
    links = [
        {"rel": "self", "type": GEOJSON, "title": "This page", "href": request.url},
        {"rel": "collection", "type": JSON, "title": "The collection", "href": _url("collection", cid=cid)},
    ]
    if offset + returned < matched:
        links.append({"rel": "next", "type": GEOJSON, "title": "Next page",
                      "href": base + "?" + urlencode(keep + [("offset", str(offset + limit))])})
    if offset > 0:
        links.append({"rel": "prev", "type": GEOJSON, "title": "Previous page",
                      "href": base + "?" + urlencode(keep + [("offset", str(max(0, offset - limit)))])})
    return links


def _property_filters(coll: Collection) -> dict[str, str]:
    out: dict[str, str] = {}
    for name in coll.filters:
        raw = request.args.get(name)
        if raw is None:
            continue
        if len(raw) > 300:
            raise _bad(name, "longer than 300 characters")
        key = ALIASES.get(name, name) if coll.kind else name
        if key in out and out[key] != raw:
            raise _bad(name, f"contradicts {key}={out[key][:40]}")
        out[key] = raw
    return out


def _matches(site: Site, filters: dict[str, str]) -> bool:
    for key, raw in filters.items():
        if key == "simulated":
            if bool(site.simulated) != _bool(key, raw):
                return False
        elif (getattr(site, key) or "") != raw:
            return False
    return True


# ---- endpoints -----------------------------------------------------------------------------------
@bp.get("/", strict_slashes=False)
def landing() -> Response:
    """Landing page: links to the API definition, conformance and the collections."""
    _check_params(("f",))
    return _respond({
        "title": "geoservice — rest sites for outdoor workers in Beijing (OGC API – Features)",
        "description": "Warm stations (暖心驿站), mother-and-baby rooms (母婴关爱室), workers' homes (职工之家) and "
                       "Beijing's districts as OGC API – Features Part 1 (Core, GeoJSON, OpenAPI 3.0). "
                       + EXTENSIONS_DOC,
        "links": [
            {"rel": "self", "type": JSON, "title": "This document", "href": _url("landing")},
            {"rel": "service-desc", "type": OPENAPI_30, "title": "API definition (OpenAPI 3.0)",
             "href": _url("api")},
            {"rel": "conformance", "type": JSON, "title": "Conformance classes", "href": _url("conformance")},
            {"rel": "data", "type": JSON, "title": "Collections", "href": _url("collections")},
        ],
        "extensions": [
            {"parameter": "open_at", "collections": [c.id for c in COLLECTIONS.values() if c.kind],
             "description": "Only sites open at this ISO 8601 time (Asia/Shanghai when no offset). Not part of "
                            "OGC API – Features."},
            {"parameter": "near", "collections": [c.id for c in COLLECTIONS.values() if c.kind],
             "description": "lon,lat in CRS84: order by WGS-84 geodesic distance and add distance_m (metres). "
                            "Not part of OGC API – Features."},
        ],
    })


@bp.get("/conformance")
def conformance() -> Response:
    """The conformance classes implemented."""
    _check_params(("f",))
    return _respond({"conformsTo": list(CONFORMANCE)})


@bp.get("/api")
def api() -> Response:
    """The OpenAPI 3.0 definition of /ogc."""
    _check_params(("f",))
    return _respond(openapi_document(_url("landing").rstrip("/")), OPENAPI_30)


@bp.get("/collections")
def collections() -> Response:
    """Every collection with its extent and links."""
    _check_params(("f",))
    extents = _extents()
    return _respond({
        "links": [{"rel": "self", "type": JSON, "title": "Collections", "href": _url("collections")}],
        "collections": [_collection_doc(c, extents) for c in COLLECTIONS.values()],
    })


@bp.get("/collections/<cid>")
def collection(cid: str) -> Response:
    """One collection."""
    coll = _collection(cid)
    _check_params(("f",))
    return _respond(_collection_doc(coll, _extents()))


@bp.get("/collections/<cid>/items")
def items(cid: str) -> Response:
    """Features of a collection: bbox, property filters, paging (and the site extensions)."""
    coll = _collection(cid)
    _check_params(coll.item_params, ("json", "geojson"))
    # OGC API - Features answers every invalid parameter with 400
    limit = P.get_int(request, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT, out_of_range_status=400)
    offset = P.get_int(request, "offset", 0, 0, MAX_OFFSET, out_of_range_status=400)
    bbox = _bbox()
    _check_datetime()
    filters = _property_filters(coll)
    if coll.kind:
        features, matched = _site_items(coll, bbox, filters, limit, offset)
    else:
        features, matched = _district_items(bbox, filters, limit, offset)
    return _respond({
        "type": "FeatureCollection",
        "timeStamp": _timestamp(),
        "numberMatched": matched,
        "numberReturned": len(features),
        "features": features,
        "links": _page_links(cid, offset, limit, len(features), matched),
    }, GEOJSON)


def _site_items(coll: Collection, bbox: tuple[float, float, float, float] | None, filters: dict[str, str],
                limit: int, offset: int) -> tuple[list[dict[str, Any]], int]:
    assert coll.kind is not None
    open_at = P.get_time(request, "open_at", default_now=False)
    near = _near()
    if "simulated" in filters:
        _bool("simulated", filters["simulated"])
    district = filters.pop("district_adcode", None)
    store = _store()
    districts = {d.adcode: d for d in _districts()}
    if not filters and near is None:
        sites, matched = store.list_sites(SiteFilter(bbox, (coll.kind,), district, open_at, limit, offset))
        return [_site_feature(s, districts) for s in sites], matched
    # Property filters the store does not index, or a distance order: filter/sort the selection here.
    everything, _ = store.list_sites(SiteFilter(bbox, (coll.kind,), district, open_at, ALL, 0))
    selected = [s for s in everything if _matches(s, filters)]
    if near is None:
        return [_site_feature(s, districts) for s in selected[offset:offset + limit]], len(selected)
    dist = geodesic_distance_m(near[0], near[1], np.array([s.lon for s in selected], dtype=float),
                               np.array([s.lat for s in selected], dtype=float))
    order = sorted(range(len(selected)), key=lambda i: (float(dist[i]), selected[i].id))
    page = order[offset:offset + limit]
    return [_site_feature(selected[i], districts, float(dist[i])) for i in page], len(selected)


def _district_items(bbox: tuple[float, float, float, float] | None, filters: dict[str, str], limit: int,
                    offset: int) -> tuple[list[dict[str, Any]], int]:
    selected = _districts()
    if bbox:
        area = box(*bbox)
        selected = [d for d in selected if d.geometry.intersects(area)]
    selected = [d for d in selected if all(getattr(d, k) == v for k, v in filters.items())]
    counts = _store().count_sites() if selected[offset:offset + limit] else {}
    return [_district_feature(d, counts) for d in selected[offset:offset + limit]], len(selected)


@bp.get("/collections/<cid>/items/<fid>")
def item(cid: str, fid: str) -> Response:
    """One feature by id (site id, or district adcode)."""
    coll = _collection(cid)
    _check_params(("f",), ("json", "geojson"))
    if len(fid) > 64:
        raise NotFound(f"no feature {fid[:64]!r} in {cid}")
    if coll.kind:
        site = _store().get_site(fid)
        if site is None or site.kind != coll.kind:
            raise NotFound(f"no feature {fid!r} in {cid}")
        feature = _site_feature(site, {d.adcode: d for d in _districts()})
    else:
        found = [d for d in _districts() if d.adcode == fid]
        if not found:
            raise NotFound(f"no feature {fid!r} in {cid}")
        feature = _district_feature(found[0], _store().count_sites())
    feature["links"] = [
        {"rel": "self", "type": GEOJSON, "title": "This feature", "href": _url("item", cid=cid, fid=fid)},
        {"rel": "collection", "type": JSON, "title": "The collection", "href": _url("collection", cid=cid)},
    ]
    return _respond(feature, GEOJSON)


# ---- OpenAPI 3.0 ---------------------------------------------------------------------------------
def openapi_document(server_url: str) -> dict[str, Any]:
    """The OpenAPI 3.0 definition of /ogc, one path per collection so clients see each one's filters."""
    problem = {"description": "Problem details (RFC 9457)", "content": {"application/problem+json": {
        "schema": {"$ref": "#/components/schemas/Problem"}}}}
    json_ok = {"description": "OK", "content": {JSON: {"schema": {"type": "object"}}}}
    geo_ok = {"description": "OK", "content": {GEOJSON: {"schema": {"$ref": "#/components/schemas/FeatureCollection"}}}}
    feature_ok = {"description": "OK", "content": {GEOJSON: {"schema": {"type": "object"}}}}
    ref = lambda name: {"$ref": f"#/components/parameters/{name}"}  # noqa: E731

    def q(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
        return {"name": name, "in": "query", "required": False, "schema": schema, "style": "form",
                "explode": False, "description": description}

    paths: dict[str, Any] = {
        "/": {"get": {"summary": "Landing page", "operationId": "getLandingPage",
                      "parameters": [ref("f")], "responses": {"200": json_ok, "400": problem}}},
        "/conformance": {"get": {"summary": "Conformance classes", "operationId": "getConformance",
                                 "parameters": [ref("f")], "responses": {"200": json_ok, "400": problem}}},
        "/api": {"get": {"summary": "This API definition", "operationId": "getAPI", "responses": {
            "200": {"description": "OK", "content": {OPENAPI_30: {"schema": {"type": "object"}}}}}}},
        "/collections": {"get": {"summary": "Collections", "operationId": "getCollections",
                                 "parameters": [ref("f")], "responses": {"200": json_ok, "400": problem}}},
    }
    for coll in COLLECTIONS.values():
        filters = [q(name, {"type": "boolean"} if name == "simulated" else {"type": "string"},
                     f"Only features whose `{ALIASES.get(name, name)}` equals this value")
                   for name in coll.filters]
        extensions = [
            q("open_at", {"type": "string", "format": "date-time"},
              "EXTENSION (not OGC): only sites open at this ISO 8601 time (Asia/Shanghai without offset)"),
            q("near", {"type": "array", "minItems": 2, "maxItems": 2, "items": {"type": "number"}},
              "EXTENSION (not OGC): lon,lat in CRS84; order by geodesic distance and add distance_m"),
        ] if coll.kind else []
        tag = coll.id
        paths[f"/collections/{coll.id}"] = {"get": {
            "summary": f"Collection {coll.id}", "operationId": f"describe_{coll.id}", "tags": [tag],
            "parameters": [ref("f")], "responses": {"200": json_ok, "400": problem, "404": problem}}}
        paths[f"/collections/{coll.id}/items"] = {"get": {
            "summary": f"Features of {coll.id}", "description": coll.description,
            "operationId": f"getFeatures_{coll.id}", "tags": [tag],
            "parameters": [ref("limit"), ref("offset"), ref("bbox"), ref("datetime"), ref("f")] + filters + extensions,
            "responses": {"200": geo_ok, "400": problem, "404": problem}}}
        paths[f"/collections/{coll.id}/items/{{featureId}}"] = {"get": {
            "summary": f"One feature of {coll.id}", "operationId": f"getFeature_{coll.id}", "tags": [tag],
            "parameters": [ref("featureId"), ref("f")],
            "responses": {"200": feature_ok, "400": problem, "404": problem}}}
    return {
        "openapi": "3.0.3",
        "info": {"title": "geoservice OGC API – Features", "version": "1.0.0",
                 "description": "OGC API – Features Part 1 (Core, GeoJSON, OpenAPI 3.0) over Beijing's rest sites "
                                "for outdoor workers. Coordinates are CRS84. " + EXTENSIONS_DOC,
                 "license": {"name": "MIT"}},
        "servers": [{"url": server_url}],
        "tags": [{"name": c.id, "description": c.title} for c in COLLECTIONS.values()],
        "paths": paths,
        "components": {
            "parameters": {
                "f": {"name": "f", "in": "query", "required": False, "description": "Output format (JSON only)",
                      "schema": {"type": "string", "enum": ["json", "geojson"]}},
                "limit": {"name": "limit", "in": "query", "required": False, "style": "form", "explode": False,
                          "description": "Page size", "schema": {
                              "type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT}},
                "offset": {"name": "offset", "in": "query", "required": False,
                           "description": "Index of the first feature (follow the `next`/`prev` links)",
                           "schema": {"type": "integer", "minimum": 0, "default": 0}},
                "bbox": {"name": "bbox", "in": "query", "required": False, "style": "form", "explode": False,
                         "description": "lon_min,lat_min,lon_max,lat_max in CRS84",
                         "schema": {"type": "array", "oneOf": [{"minItems": 4, "maxItems": 4},
                                                               {"minItems": 6, "maxItems": 6}],
                                    "items": {"type": "number"}}},
                "datetime": {"name": "datetime", "in": "query", "required": False, "style": "form",
                             "explode": False, "schema": {"type": "string"},
                             "description": "RFC 3339 instant or interval; accepted, but these collections have "
                                            "no temporal geometry so it does not restrict results"},
                "featureId": {"name": "featureId", "in": "path", "required": True, "schema": {"type": "string"},
                              "description": "Site id (e.g. s0123456789ab) or district adcode"},
            },
            "schemas": {
                "FeatureCollection": {"type": "object", "required": ["type", "features"], "properties": {
                    "type": {"type": "string", "enum": ["FeatureCollection"]},
                    "features": {"type": "array", "items": {"type": "object"}},
                    "links": {"type": "array", "items": {"type": "object"}},
                    "timeStamp": {"type": "string", "format": "date-time"},
                    "numberMatched": {"type": "integer", "minimum": 0},
                    "numberReturned": {"type": "integer", "minimum": 0}}},
                "Problem": {"type": "object", "required": ["type", "title", "status", "detail"], "properties": {
                    "type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"},
                    "detail": {"type": "string"}, "instance": {"type": "string", "nullable": True},
                    "errors": {"type": "array", "items": {"type": "object"}}}},
            },
        },
    }
