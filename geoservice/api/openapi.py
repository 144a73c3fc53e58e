"""The OpenAPI 3.1 document for the public API, served at /api/v1/openapi.json."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, json

from geoservice.api.operators_openapi import add_operator_paths
from geoservice.api.ratelimit import is_public_read
from geoservice.model import AMENITIES, KINDS

bp = Blueprint("openapi", __name__)

# ISO 8601 local or offset time, or "now" (the server also checks it is a real calendar date).
TIME_PATTERN = (r"^(now|20\d\d-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])[T ]([01]\d|2[0-3]):[0-5]\d"
                r"(:[0-5]\d(\.\d+)?)?(Z|[+-]([01]\d|2[0-3]):?[0-5]\d)?)$")
PROBLEM = {"description": "Problem details (RFC 9457)", "content": {"application/problem+json": {
    "schema": {"$ref": "#/components/schemas/Problem"}}}}


def _param(name: str, schema: dict[str, Any], description: str, required: bool = False,
           where: str = "query", explode: bool | None = None) -> dict[str, Any]:
    p: dict[str, Any] = {"name": name, "in": where, "required": required, "schema": schema,
                         "description": description}
    if explode is not None:
        p["explode"] = explode
    return p


def document(detour: float, speed: float) -> dict[str, Any]:
    """Build the document; the walk model's numbers are the running configuration."""
    from geoservice.api.coverage import openapi_paths as _coverage_paths
    crs = _param("crs", {"type": "string", "enum": ["wgs84", "gcj02", "bd09"], "default": "wgs84"},
                 "Datum of input and output coordinates: WGS-84 (GPS, OSM), GCJ-02 (Amap, Tencent), BD-09 (Baidu).")
    kind = _param("kind", {"type": "array", "items": {"type": "string", "enum": list(KINDS)}},
                  "Site kind; repeat or comma-separate for several. Default: all kinds.", explode=True)
    labels = {"type": "object", "additionalProperties": {"type": "object", "required": ["zh", "en"], "properties": {
        "zh": {"type": "string"}, "en": {"type": "string"}}}}
    site_props = {
        "id": {"type": "string"}, "source_id": {"type": ["string", "null"]},
        "kind": {"type": "string", "enum": list(KINDS)},
        "kind_label": {"type": "object", "properties": {"zh": {"type": "string"}, "en": {"type": "string"}}},
        "name_zh": {"type": "string"}, "name_en": {"type": ["string", "null"]},
        "address": {"type": ["string", "null"]}, "district": {"type": ["object", "null"]},
        "opening_hours": {"type": "string", "description": "OpenStreetMap opening_hours syntax"},
        "amenities": {"type": "array", "items": {"type": "string", "enum": list(AMENITIES)}},
        "amenity_labels": {"type": "array", "items": {"type": "object"}},
        "operator": {"type": ["string", "null"]}, "phone": {"type": ["string", "null"]},
        "notes": {"type": ["string", "null"]}, "simulated": {"type": "boolean"},
        "updated_at": {"type": ["string", "null"]}, "verified_at": {"type": ["string", "null"]},
        "version": {"type": "integer"},
        "distance_m": {"type": "number", "description": "WGS-84 ellipsoidal geodesic distance in metres"},
        "walk_minutes": {"type": "integer",
                         "description": f"ceil(distance_m × {detour} detour factor / {speed} m per minute)"},
        "is_open": {"type": "boolean"},
        "open_until": {"type": ["string", "null"], "format": "date-time",
                       "description": "When it closes; null if open beyond the next 8 days (e.g. 24/7)"},
        "next_open": {"type": ["string", "null"], "format": "date-time",
                      "description": "When a closed site opens next; null if not within 8 days"},
        "open_all_week": {"type": "boolean"}, "state_at": {"type": ["string", "null"]},
        "hours_problem": {"type": ["string", "null"],
                          "description": "Set when the site's opening hours could not be evaluated; the site is then "
                                         "reported closed"},
    }
    feature = {"type": "object", "required": ["type", "geometry", "properties"], "properties": {
        "type": {"const": "Feature"}, "id": {"type": "string"},
        "geometry": {"type": "object", "properties": {"type": {"const": "Point"}, "coordinates": {
            "type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2}}},
        "properties": {"type": "object", "properties": site_props}}}
    collection = {"type": "object", "required": ["type", "features"], "properties": {
        "type": {"const": "FeatureCollection"},
        "features": {"type": "array", "items": {"$ref": "#/components/schemas/Site"}},
        "numberReturned": {"type": "integer"}, "numberMatched": {"type": "integer"},
        "links": {"type": "array"}, "query": {"type": "object"}, "walk_model": {"type": "object"},
        "warnings": {"type": "array", "items": {"type": "object"}}}}
    geo = {"application/geo+json": {"schema": {"$ref": "#/components/schemas/SiteCollection"}}}
    doc: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {"title": "geoservice — rest sites for outdoor workers (Beijing)", "version": "1.0.0",
                 "description": "Nearest open warm stations (暖心驿站), mother-and-baby rooms (母婴关爱室) and "
                                "workers' homes (职工之家). Times are Asia/Shanghai; a time without an offset is read "
                                "as Beijing local time. Opening hours follow OSM syntax with China's official holiday "
                                "calendar (public holidays and make-up working days). Walking time is straight-line "
                                f"distance × {detour} / {speed} m per minute (no road network).",
                 "license": {"name": "MIT"}},
        "paths": {
            "/api/v1/sites/nearest": {"get": {
                "summary": "Nearest sites open at a time",
                "parameters": [
                    _param("lat", {"type": "number", "minimum": -90, "maximum": 90}, "Latitude", True),
                    _param("lon", {"type": "number", "minimum": -180, "maximum": 180}, "Longitude", True),
                    kind,
                    _param("amenity", {"type": "array", "items": {"type": "string", "enum": list(AMENITIES)}},
                           "Required amenities (all must be present); repeat or comma-separate.", explode=True),
                    _param("at", {"type": "string", "pattern": TIME_PATTERN},
                           "ISO 8601 time, years 2000–2100; without an offset it is Beijing time. Default now."),
                    _param("arrive_within", {"type": "number", "minimum": 1, "maximum": 180},
                           "Minutes on foot the walker accepts; keeps only sites reachable in that time AND still "
                           "open when the walker arrives."),
                    _param("limit", {"type": "integer", "minimum": 1, "maximum": 50, "default": 5}, "Results"),
                    _param("max_distance_m", {"type": "number", "minimum": 1, "maximum": 200000},
                           "Straight-line radius in metres"),
                    _param("include_closed", {"type": "boolean", "default": False},
                           "Also return sites closed at `at` (each says is_open / next_open)."),
                    crs,
                ],
                "responses": {"200": {"description": "Sites ordered by distance", "content": geo},
                              "400": PROBLEM, "422": PROBLEM, "503": PROBLEM}}},
            "/api/v1/sites": {"get": {
                "summary": "List sites, paginated",
                "parameters": [
                    _param("bbox", {"type": "string"}, "lon_min,lat_min,lon_max,lat_max"), kind,
                    _param("district", {"type": "string"}, "District adcode, e.g. 110101"),
                    _param("open_at", {"type": "string", "pattern": TIME_PATTERN},
                           "Only sites open at this ISO 8601 time"),
                    _param("limit", {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}, "Page size"),
                    _param("offset", {"type": "integer", "minimum": 0, "default": 0}, "Page start"), crs],
                "responses": {"200": {"description": "A page of sites with next/prev links", "content": geo},
                              "400": PROBLEM, "422": PROBLEM, "503": PROBLEM}}},
            "/api/v1/sites/{id}": {"get": {
                "summary": "One site with its state now and its closures",
                "parameters": [_param("id", {"type": "string"}, "Site id", True, "path"), crs,
                               _param("at", {"type": "string", "pattern": TIME_PATTERN},
                                      "ISO 8601 time for the state; default now")],
                "responses": {"200": {"description": "The site", "content": {"application/geo+json": {
                    "schema": {"$ref": "#/components/schemas/Site"}}}}, "404": PROBLEM, "400": PROBLEM,
                    "422": PROBLEM, "503": PROBLEM}}},
            "/api/v1/sites.geojson": {"get": {
                "summary": "Download all matching sites as one GeoJSON FeatureCollection (streamed, no paging)",
                "description": "Same filters as /api/v1/sites. Coordinates are in `crs`; the top-level `datum` "
                               "member, the X-Coordinate-Datum header and the suggested file name say which. "
                               "Loads back with `geoservice load FILE --crs <crs>`.",
                "parameters": [
                    _param("bbox", {"type": "string"}, "lon_min,lat_min,lon_max,lat_max (in `crs`)"), kind,
                    _param("district", {"type": "string"}, "District adcode, e.g. 110101"),
                    _param("open_at", {"type": "string"}, "Only sites open at this ISO 8601 time"), crs],
                "responses": {"200": {"description": "Attachment sites-<kinds>-<crs>.geojson", "content": {
                    "application/geo+json": {"schema": {"type": "object"}}}},
                    "400": PROBLEM, "422": PROBLEM, "503": PROBLEM}}},
            "/api/v1/sites.csv": {"get": {
                "summary": "Download all matching sites as CSV (UTF-8, streamed, no paging)",
                "description": "Columns: id, source_id, kind, name_zh, name_en, address, district_adcode, lon, lat, "
                               "opening_hours, amenities (;-separated), operator, phone, notes, simulated, "
                               "updated_at, verified_at, crs (the datum of lon/lat). Same filters as /api/v1/sites. "
                               "Loads back with `geoservice load FILE --crs <crs>`.",
                "parameters": [
                    _param("bbox", {"type": "string"}, "lon_min,lat_min,lon_max,lat_max (in `crs`)"), kind,
                    _param("district", {"type": "string"}, "District adcode, e.g. 110101"),
                    _param("open_at", {"type": "string"}, "Only sites open at this ISO 8601 time"), crs,
                    _param("bom", {"type": "boolean", "default": False},
                           "Start with a UTF-8 byte-order mark so Excel shows the Chinese text correctly")],
                "responses": {"200": {"description": "Attachment sites-<kinds>-<crs>.csv", "content": {
                    "text/csv": {"schema": {"type": "string"}}}},
                    "400": PROBLEM, "422": PROBLEM, "503": PROBLEM}}},
            "/api/v1/districts": {"get": {
                "summary": "Beijing's 16 districts with 2020 census population and site counts",
                "parameters": [_param("geometry", {"type": "boolean", "default": False}, "Include polygons"), crs],
                "responses": {"200": {"description": "Districts", "content": {"application/geo+json": {
                    "schema": {"type": "object"}}}}, "400": PROBLEM, "422": PROBLEM, "503": PROBLEM}}},
            "/api/v1/vocabulary": {"get": {"summary": "Kinds, amenities and weekdays with zh/en labels", "responses": {
                "200": {"description": "Labels, each keyed by its code (weekdays by OSM token, Mo..Su)", "content": {
                    "application/json": {"schema": {"type": "object", "required": ["kinds", "amenities", "weekdays"],
                                                     "properties": {"kinds": labels, "amenities": labels,
                                                                    "weekdays": labels}}}}}}}},
            "/healthz": {"get": {"summary": "Store health", "responses": {
                "200": {"description": "OK", "content": {"application/json": {"schema": {"type": "object"}}}},
                "503": PROBLEM}}},
            **_coverage_paths(kind, crs, PROBLEM, TIME_PATTERN),  # planners: geoservice/api/coverage.py
        },
        "components": {"schemas": {
            "Site": feature,
            "SiteCollection": collection,
            "Problem": {"type": "object", "required": ["type", "title", "status", "detail"], "properties": {
                "type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"},
                "detail": {"type": "string"}, "instance": {"type": ["string", "null"]},
                "errors": {"type": "array", "items": {"type": "object", "properties": {
                    "field": {"type": "string"}, "reason": {"type": "string"}}}}}},
        }},
    }
    doc = add_operator_paths(doc)  # operators' API, couriers' reports, hours preview
    limited = {**PROBLEM, "description": "Rate limit for this client address reached",
               "headers": {"Retry-After": {"description": "Seconds to wait", "schema": {"type": "integer"}}}}
    for path, ops in doc["paths"].items():
        if "get" in ops and is_public_read("GET", path):
            ops["get"]["responses"].setdefault("429", limited)
    return doc


@bp.get("/api/v1/openapi.json")
def openapi() -> Response:
    """The OpenAPI document."""
    cfg = current_app.extensions["geoservice.settings"]
    return Response(json.dumps(document(cfg.detour_factor, cfg.walk_speed_m_per_min), ensure_ascii=False),
                    mimetype="application/vnd.oai.openapi+json;version=3.1")
