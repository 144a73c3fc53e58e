"""OGC API – Features – Part 1: Core + GeoJSON (+ OpenAPI 3.0) at ``/ogc``, for QGIS, ArcGIS, GDAL and partners.

Collections: ``warm_stations``, ``mother_baby_rooms``, ``worker_homes`` (one per site kind) and ``districts``.
Output is always CRS84 (WGS-84 longitude, latitude), as Part 1 requires; the service's ``crs=gcj02|bd09``
conversion is deliberately not offered here (use ``/api/v1`` or the exports for Chinese map datums).

Items are flat GeoJSON features (scalar properties only; ``amenities`` is ``;``-separated as in the CSV
export) so GIS clients get plain columns. Paging is ``limit`` (default 10, 1..10000) and ``offset`` with
``next``/``prev`` links; ``numberMatched`` is exact. Every invalid parameter is a 400 (problem+json), as the
standard asks; unknown collections and features are 404. Parameters are declared once
(:mod:`geoservice.api.spec`): the same declarations check requests and write ``/ogc/api``.

Extensions beyond the standard (documented in the landing page, each collection and the OpenAPI
document): ``open_at=<ISO 8601 time>`` keeps only sites open then (Asia/Shanghai when no offset), and
``near=lon,lat`` (CRS84) orders sites by WGS-84 ellipsoidal geodesic distance and adds ``distance_m``.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import time
from typing import Any
from urllib.parse import urlencode

import numpy as np
from flask import Blueprint, Response, current_app, request, url_for
from shapely.geometry import box, mapping

from geoservice import serialize as S
from geoservice.api import spec as P
from geoservice.api.context import services, settings
from geoservice.api.jsonprovider import json_response
from geoservice.errors import NotFound
from geoservice.geo import geodesic_distance_m
from geoservice.hours import now_local
from geoservice.model import KIND_LABELS, KINDS, District, Site, SiteFilter

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
ALL = 100_000_000  # "no limit" when filtering or sorting here
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

# RFC 3339 date-time or date, and the intervals OGC API - Features allows (".." or empty for an open end).
_RFC3339 = r"\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|z|[+-]\d{2}:\d{2}))?"
DATETIME_PATTERN = rf"^(?!(?:\.\.)?/(?:\.\.)?$)(?:{_RFC3339}|(?:{_RFC3339}|\.\.)?/(?:{_RFC3339}|\.\.)?)$"

F_JSON = P.Enum("f", "Output format: JSON (HTML is not offered)", values=("json",))
F_FEATURES = P.Enum("f", "Output format: GeoJSON (json and geojson are the same)", values=("json", "geojson"))
LIMIT = P.Integer("limit", "Page size", lo=1, hi=MAX_LIMIT, fallback=DEFAULT_LIMIT)
OFFSET = P.Integer("offset", "Index of the first feature (follow the `next`/`prev` links)", lo=0, hi=MAX_OFFSET,
                   fallback=0)
BBOX = P.BBox("bbox", "lon_min,lat_min,lon_max,lat_max (or with heights: 6 numbers, heights ignored) in CRS84; "
                      "lon_min > lon_max crosses the antimeridian, lat_min > lat_max matches nothing", heights=True)
DATETIME = P.Text("datetime", "RFC 3339 instant or interval; accepted, but these collections have no temporal "
                              "geometry so it does not restrict results", max_length=80, pattern=DATETIME_PATTERN)
SITE_TEXT_FILTERS = ("district_adcode", "source_id", "name_zh", "name_en", "operator")
DISTRICT_TEXT_FILTERS = ("adcode", "name_zh", "name_en")


def _equals(name: str, key: str | None = None) -> P.Text:
    return P.Text(name, f"Only features whose `{key or name}` equals this value", max_length=300)


@dataclasses.dataclass(frozen=True)
class Collection:
    """One published collection: a site kind, or the districts."""

    id: str
    title: str
    description: str
    kind: str | None = None

    @property
    def filters(self) -> tuple[P.Param, ...]:
        """Simple property filters accepted as query parameters."""
        if self.kind is None:
            return tuple(_equals(n) for n in DISTRICT_TEXT_FILTERS)
        return (*(_equals(n) for n in SITE_TEXT_FILTERS), _equals("district", "district_adcode"),
                P.Boolean("simulated", "Only simulated (true) or only real (false) sites", fallback=None))

    def items_operation(self) -> P.Operation:
        """The declaration of this collection's items endpoint (parses requests, writes ``/ogc/api``)."""
        extensions: tuple[P.Param, ...] = (
            P.Time("open_at", "EXTENSION (not OGC): only sites open at this ISO 8601 time (Asia/Shanghai without "
                              "offset)", now_default=False),
            P.LonLat("near", "EXTENSION (not OGC): lon,lat in CRS84; order by geodesic distance and add "
                             "distance_m"),
        ) if self.kind else ()
        return P.Operation("GET", f"/collections/{self.id}/items", f"Features of {self.id}",
                           description=self.description, operation_id=f"getFeatures_{self.id}", tags=(self.id,),
                           params=(LIMIT, OFFSET, BBOX, DATETIME, F_FEATURES, *self.filters, *extensions),
                           ok={200: P.Response("OK", {GEOJSON: {"$ref": "#/components/schemas/FeatureCollection"}})},
                           errors=(404,), out_of_range=400, public_read=True)


def _site_collection(cid: str, kind: str, title_en: str, what: str) -> Collection:
    return Collection(cid, f"{KIND_LABELS[kind]['zh']} / {title_en}",
                      f"{what} Points in CRS84. Demo data are SIMULATED (property `simulated`). "
                      f"Property filters: {', '.join(SITE_TEXT_FILTERS)}, simulated (alias `district`). "
                      + EXTENSIONS_DOC, kind)


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
               f"{', '.join(DISTRICT_TEXT_FILTERS)}. The items have no temporal geometry: `datetime` does not "
               "restrict results."),
)}
ITEMS = {cid: c.items_operation() for cid, c in COLLECTIONS.items()}
assert {c.kind for c in COLLECTIONS.values() if c.kind} == set(KINDS)

LANDING = P.Operation("GET", "/", "Landing page", params=(F_JSON,), operation_id="getLandingPage",
                      ok={200: P.Response("OK", {JSON: {"type": "object"}})}, out_of_range=400)
CONFORMANCE_OP = P.Operation("GET", "/conformance", "Conformance classes", params=(F_JSON,),
                             operation_id="getConformance", out_of_range=400,
                             ok={200: P.Response("OK", {JSON: {"type": "object", "required": ["conformsTo"]}})})
API_OP = P.Operation("GET", "/api", "This API definition", params=(F_JSON,), operation_id="getAPI",
                     ok={200: P.Response("OK", {OPENAPI_30: {"type": "object"}})}, out_of_range=400)
COLLECTIONS_OP = P.Operation("GET", "/collections", "Collections", params=(F_JSON,), operation_id="getCollections",
                             ok={200: P.Response("OK", {JSON: {"type": "object"}})}, out_of_range=400)


def _collection_op(coll: Collection) -> P.Operation:
    return P.Operation("GET", f"/collections/{coll.id}", f"Collection {coll.id}", params=(F_JSON,),
                       operation_id=f"describe_{coll.id}", tags=(coll.id,), errors=(404,), out_of_range=400,
                       ok={200: P.Response("OK", {JSON: {"type": "object"}})})


def _item_op(coll: Collection) -> P.Operation:
    return P.Operation("GET", f"/collections/{coll.id}/items/{{featureId}}", f"One feature of {coll.id}",
                       params=(P.PathId("featureId", "Site id (e.g. s0123456789ab) or district adcode",
                                        what="feature"), F_FEATURES),
                       operation_id=f"getFeature_{coll.id}", tags=(coll.id,), errors=(404,), out_of_range=400,
                       public_read=True, ok={200: P.Response("OK", {GEOJSON: {"type": "object"}})})


# ---- helpers -------------------------------------------------------------------------------------
def _respond(body: dict[str, Any], mimetype: str = JSON, status: int = 200) -> Response:
    return json_response(body, status=status, mimetype=mimetype)


def _url(endpoint: str, **values: Any) -> str:
    return url_for(f"ogc.{endpoint}", _external=True, **values)


def _collection(cid: str) -> Collection:
    coll = COLLECTIONS.get(cid)
    if coll is None:
        raise NotFound(f"no collection {cid[:64]!r}; see /ogc/collections")
    return coll


def _timestamp() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _extents() -> dict[str, list[float]]:
    """Spatial extent of each collection (CRS84), cached for a minute: sites change rarely."""
    cache = current_app.extensions.setdefault("geoservice.ogc.extents", {})
    cached = cache.get("value")
    if cached is not None and time.monotonic() - cached[0] < EXTENT_TTL_S:
        return cached[1]  # type: ignore[no-any-return]
    sites = services().sites
    districts = sites.districts()
    extents: dict[str, list[float]] = {}
    if districts:
        bounds = [d.geometry.bounds for d in districts]
        extents["districts"] = [min(b[0] for b in bounds), min(b[1] for b in bounds),
                                max(b[2] for b in bounds), max(b[3] for b in bounds)]
    for coll in COLLECTIONS.values():
        if coll.kind is None:
            continue
        found, _ = sites.list_sites(SiteFilter(kinds=(coll.kind,), limit=ALL))
        if found:
            extents[coll.id] = [min(s.lon for s in found), min(s.lat for s in found),
                                max(s.lon for s in found), max(s.lat for s in found)]
        elif "districts" in extents:
            extents[coll.id] = extents["districts"]  # empty layer: the service area
    cache["value"] = (time.monotonic(), extents)  # one assignment: readers never see half an update
    return extents


def _collection_doc(coll: Collection, extents: dict[str, list[float]]) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "id": coll.id, "title": coll.title, "description": coll.description, "itemType": "feature", "crs": [CRS84],
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


def _district_feature(d: District, counts: dict[str, dict[str, int]]) -> dict[str, Any]:
    props: dict[str, Any] = {"adcode": d.adcode, "name_zh": d.name_zh, "name_en": d.name_en,
                             "area_km2": round(d.area_km2, 3), "population_2020": d.population_2020}
    for kind, n in S.district_counts(d, counts).items():
        props[f"sites_{kind}"] = n
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


def _matches(site: Site, filters: dict[str, Any]) -> bool:
    for key, wanted in filters.items():
        value = bool(site.simulated) if key == "simulated" else (getattr(site, key) or "")
        if value != wanted:
            return False
    return True


# ---- endpoints -----------------------------------------------------------------------------------
@bp.get("/", strict_slashes=False)
def landing() -> Response:
    """Landing page: links to the API definition, conformance and the collections."""
    LANDING.parse(request)
    area = settings().area()
    return _respond({
        "title": f"geoservice — rest sites for outdoor workers in {area.name_en} (OGC API – Features)",
        "description": "Warm stations (暖心驿站), mother-and-baby rooms (母婴关爱室), workers' homes (职工之家) and "
                       f"the districts of {area.label} as OGC API – Features Part 1 (Core, GeoJSON, OpenAPI 3.0). "
                       + EXTENSIONS_DOC,
        "links": [
            {"rel": "self", "type": JSON, "title": "This document", "href": _url("landing")},
            {"rel": "service-desc", "type": OPENAPI_30, "title": "API definition (OpenAPI 3.0)", "href": _url("api")},
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
    CONFORMANCE_OP.parse(request)
    return _respond({"conformsTo": list(CONFORMANCE)})


@bp.get("/api")
def api() -> Response:
    """The OpenAPI 3.0 definition of /ogc."""
    API_OP.parse(request)
    return _respond(openapi_document(_url("landing").rstrip("/")), OPENAPI_30)


@bp.get("/collections")
def collections() -> Response:
    """Every collection with its extent and links."""
    COLLECTIONS_OP.parse(request)
    extents = _extents()
    return _respond({
        "links": [{"rel": "self", "type": JSON, "title": "Collections", "href": _url("collections")}],
        "collections": [_collection_doc(c, extents) for c in COLLECTIONS.values()],
    })


@bp.get("/collections/<cid>")
def collection(cid: str) -> Response:
    """One collection."""
    coll = _collection(cid)
    _collection_op(coll).parse(request)
    return _respond(_collection_doc(coll, _extents()))


@bp.get("/collections/<cid>/items")
def items(cid: str) -> Response:
    """Features of a collection: bbox, property filters, paging (and the site extensions)."""
    coll = _collection(cid)
    args = ITEMS[coll.id].parse(request)
    limit, offset = args["limit"], args["offset"]
    names = {p.name for p in coll.filters}
    filters = {("district_adcode" if k == "district" else k): v for k, v in args.items()
               if k in names and v is not None}
    if args.get("district") and args.get("district_adcode") not in (None, args["district"]):
        features: list[dict[str, Any]] = []
        matched = 0  # filters are conjunctive: two different districts match nothing
    elif coll.kind:
        features, matched = _site_items(coll, args, filters, limit, offset)
    else:
        features, matched = _district_items(args["bbox"], filters, limit, offset)
    return _respond({"type": "FeatureCollection", "timeStamp": _timestamp(), "numberMatched": matched,
                     "numberReturned": len(features), "features": features,
                     "links": _page_links(cid, offset, limit, len(features), matched)}, GEOJSON)


def _site_items(coll: Collection, args: dict[str, Any], filters: dict[str, Any], limit: int,
                offset: int) -> tuple[list[dict[str, Any]], int]:
    assert coll.kind is not None
    sites = services().sites
    index = sites.district_index()
    district = filters.pop("district_adcode", None)
    flt = SiteFilter(args["bbox"], (coll.kind,), district, args["open_at"], limit, offset)
    near = args["near"]
    at = args["open_at"] or now_local()  # the live status in force at the time asked about, or now

    def features(page: list[Site], distances: list[float | None]) -> list[dict[str, Any]]:
        live = services().live.views([s.id for s in page], at)
        return [S.ogc_site_feature(s, index.get(s.district_adcode or ""), d, live.get(s.id))
                for s, d in zip(page, distances)]

    if not filters and near is None:
        found, matched = sites.list_sites(flt)
        return features(found, [None] * len(found)), matched
    # Property filters the store does not index, or a distance order: filter/sort the selection here.
    everything, _ = sites.list_sites(dataclasses.replace(flt, limit=ALL, offset=0))
    selected = [s for s in everything if _matches(s, filters)]
    if near is None:
        shown = selected[offset:offset + limit]
        return features(shown, [None] * len(shown)), len(selected)
    dist = geodesic_distance_m(near[0], near[1], np.array([s.lon for s in selected], dtype=float),
                               np.array([s.lat for s in selected], dtype=float))
    order = sorted(range(len(selected)), key=lambda i: (float(dist[i]), selected[i].id))
    page = order[offset:offset + limit]
    return features([selected[i] for i in page], [float(dist[i]) for i in page]), len(selected)


def _district_items(bbox: tuple[float, float, float, float] | None, filters: dict[str, Any], limit: int,
                    offset: int) -> tuple[list[dict[str, Any]], int]:
    selected = services().sites.districts()
    if bbox:
        x0, y0, x1, y1 = bbox
        if y0 > y1:
            selected = []
        else:
            areas = [box(x0, y0, x1, y1)] if x0 <= x1 else [box(x0, y0, 180, y1), box(-180, y0, x1, y1)]
            selected = [d for d in selected if any(d.geometry.intersects(a) for a in areas)]
    selected = [d for d in selected if all(getattr(d, k) == v for k, v in filters.items())]
    counts = services().sites.count_sites() if selected[offset:offset + limit] else {}
    return [_district_feature(d, counts) for d in selected[offset:offset + limit]], len(selected)


@bp.get("/collections/<cid>/items/<fid>")
def item(cid: str, fid: str) -> Response:
    """One feature by id (site id, or district adcode)."""
    coll = _collection(cid)
    _item_op(coll).parse(request)
    sites = services().sites
    if len(fid) > 64:
        raise NotFound(f"no feature {fid[:64]!r} in {cid}")
    if coll.kind:
        site = sites.get_site(fid)
        if site is None or site.kind != coll.kind:
            raise NotFound(f"no feature {fid!r} in {cid}")
        feature = S.ogc_site_feature(site, sites.district_index().get(site.district_adcode or ""),
                                     live=services().live.view(site.id, now_local()))
    else:
        found = [d for d in sites.districts() if d.adcode == fid]
        if not found:
            raise NotFound(f"no feature {fid!r} in {cid}")
        feature = _district_feature(found[0], sites.count_sites())
    feature["links"] = [
        {"rel": "self", "type": GEOJSON, "title": "This feature", "href": _url("item", cid=cid, fid=fid)},
        {"rel": "collection", "type": JSON, "title": "The collection", "href": _url("collection", cid=cid)},
    ]
    return _respond(feature, GEOJSON)


# ---- OpenAPI 3.0 ---------------------------------------------------------------------------------
def operations() -> list[P.Operation]:
    """Every operation of /ogc, one per collection for the per-collection paths."""
    ops = [LANDING, CONFORMANCE_OP, API_OP, COLLECTIONS_OP]
    for coll in COLLECTIONS.values():
        ops += [_collection_op(coll), ITEMS[coll.id], _item_op(coll)]
    return ops


def public_endpoints() -> set[str]:
    """The Flask endpoints of /ogc that the public rate limit counts."""
    return {"ogc.items", "ogc.item", "ogc.collections", "ogc.collection", "ogc.landing", "ogc.conformance",
            "ogc.api"}


def openapi_document(server_url: str) -> dict[str, Any]:
    """The OpenAPI 3.0 definition of /ogc, one path per collection so clients see each one's filters."""
    paths: dict[str, Any] = {}
    for op in operations():
        paths.setdefault(P.openapi_path(op.path), {})[op.method.lower()] = to_openapi30(op.openapi())
    return {
        "openapi": "3.0.3",
        "info": {"title": "geoservice OGC API – Features", "version": "1.0.0",
                 "description": "OGC API – Features Part 1 (Core, GeoJSON, OpenAPI 3.0) over Beijing's rest sites "
                                "for outdoor workers. Coordinates are CRS84. " + EXTENSIONS_DOC,
                 "license": {"name": "MIT"}},
        "servers": [{"url": server_url}],
        "tags": [{"name": c.id, "description": c.title} for c in COLLECTIONS.values()],
        "paths": paths,
        "components": {"schemas": {
            "FeatureCollection": {"type": "object", "required": ["type", "features", "links", "numberMatched",
                                                                 "numberReturned"], "properties": {
                "type": {"type": "string", "enum": ["FeatureCollection"]},
                "features": {"type": "array", "items": {"type": "object", "required": ["type", "geometry",
                                                                                       "properties"]}},
                "links": {"type": "array", "items": {"type": "object", "required": ["rel", "href"]}},
                "timeStamp": {"type": "string", "format": "date-time"},
                "numberMatched": {"type": "integer", "minimum": 0},
                "numberReturned": {"type": "integer", "minimum": 0}}},
            "Problem": to_openapi30(S.SCHEMAS["Problem"]),
        }},
    }


def to_openapi30(node: Any) -> Any:
    """An OpenAPI 3.1 fragment in the 3.0 dialect: ``type: [x, "null"]`` → ``nullable``, ``const`` → ``enum``."""
    if isinstance(node, list):
        return [to_openapi30(v) for v in node]
    if not isinstance(node, dict):
        return node
    out = {k: to_openapi30(v) for k, v in node.items()}
    kind = out.get("type")
    if isinstance(kind, list):
        rest = [t for t in kind if t != "null"]
        out["type"] = rest[0] if len(rest) == 1 else rest
        if "null" in kind:
            out["nullable"] = True
    if "const" in out:
        out["enum"] = [out.pop("const")]
    return out
