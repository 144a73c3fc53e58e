"""Vector tiles for planners and GIS (issue 15 part 4): ``/tiles/{tileset}/{z}/{x}/{y}.mvt`` and TileJSON.

Tilesets: ``sites`` (every kind, ``kind=`` to choose), one per site kind with the OGC collections' ids
(``warm_stations``, ``mother_baby_rooms``, ``worker_homes``) and ``districts``. Tiles are Mapbox Vector Tiles
2.1 on the Web Mercator quad (EPSG:3857, XYZ scheme, 4096 extent), one layer named after the tileset; zooms
0-20. Sites are points; from zoom 13 each site is its own point with its id, kind, names, district and
``simulated``; below, and wherever a tile would hold more than 4,096 sites, the sites of one kind within 1/16
of a tile become one point with ``count`` (see :mod:`geoservice.tiles`). ``open_at`` keeps only sites open
then (Beijing time without an offset). A tile with nothing in it is an empty 200 body. Tiles carry an ETag
(``If-None-Match`` answers 304), may be cached for a minute, and may be read by a map on any origin (CORS ``*``:
public data; no cookie or token is read here).
"""
from __future__ import annotations

import dataclasses
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, Response, request

from geoservice import tiles
from geoservice.api import spec as P
from geoservice.api.context import services
from geoservice.api.jsonprovider import json_response
from geoservice.api.ogc import COLLECTIONS
from geoservice.errors import NotFound
from geoservice.model import KINDS
from geoservice.tiles import TileQuery

bp = Blueprint("tiles", __name__)
API = P.Api()

MVT = "application/vnd.mapbox-vector-tile"
MAX_AGE_S = 60
TAGS = ("tiles",)


@dataclasses.dataclass(frozen=True)
class Tileset:
    """One published tileset: a set of site kinds, or the districts (``kinds`` None)."""

    id: str
    title: str
    kinds: tuple[str, ...] | None


TILESETS: dict[str, Tileset] = {t.id: t for t in (
    Tileset("sites", "所有站点 / All sites", KINDS),
    *(Tileset(c.id, c.title, (c.kind,)) for c in COLLECTIONS.values() if c.kind),
    Tileset("districts", COLLECTIONS["districts"].title, None),
)}

KIND_TILESETS = {t.kinds[0]: t.id for t in TILESETS.values() if t.kinds is not None and len(t.kinds) == 1}

TILESET = P.PathId("tileset", "Tileset id: " + ", ".join(TILESETS), what="tileset",
                   pattern="^(?:" + "|".join(TILESETS) + ")$")
KIND = P.Choices("kind", "Site tilesets only: only sites of these kinds (repeat or comma-separate)", values=KINDS)
OPEN_AT = P.Time("open_at", "Site tilesets only: only sites open at this ISO 8601 time (Beijing time without "
                            "an offset; China's holiday calendar and weather alerts apply)", now_default=False)
IF_NONE_MATCH = P.Text("If-None-Match", "An ETag of this tile from an earlier answer: 304 when it still holds",
                       where="header", max_length=200)
ETAG = {"ETag": {"description": "The tile's version (its content's hash)", "schema": {"type": "string"}},
        "Cache-Control": {"description": "How long the tile may be reused", "schema": {"type": "string"}},
        "Access-Control-Allow-Origin": {"description": "`*`: maps on any origin may read the tiles",
                                        "schema": {"type": "string"}}}
TILEJSON_SCHEMA: dict[str, Any] = {
    "type": "object", "required": ["tilejson", "tiles", "minzoom", "maxzoom", "bounds", "vector_layers"],
    "properties": {
        "tilejson": {"const": "3.0.0"}, "name": {"type": "string"}, "description": {"type": "string"},
        "attribution": {"type": "string"}, "scheme": {"const": "xyz"},
        "tiles": {"type": "array", "items": {"type": "string"}, "minItems": 1},
        "minzoom": {"type": "integer"}, "maxzoom": {"type": "integer"},
        "bounds": {"type": "array", "items": {"type": "number"}, "minItems": 4, "maxItems": 4},
        "center": {"type": "array", "items": {"type": "number"}, "minItems": 3, "maxItems": 3},
        "vector_layers": {"type": "array", "items": {
            "type": "object", "required": ["id", "fields"],
            "properties": {"id": {"type": "string"}, "description": {"type": "string"},
                           "minzoom": {"type": "integer"}, "maxzoom": {"type": "integer"},
                           "fields": {"type": "object", "additionalProperties": {"type": "string"}}}}}}}


def _public(resp: Response) -> Response:
    """Cacheable for a minute, and readable by a partner's map on any origin (public data, no cookies read)."""
    resp.headers["Cache-Control"] = f"public, max-age={MAX_AGE_S}"
    resp.headers["Access-Control-Allow-Origin"] = "*"
    return resp


def _tileset(tileset_id: str) -> Tileset:
    found = TILESETS.get(tileset_id)
    if found is None:
        raise NotFound(f"no tileset {tileset_id[:64]!r}; tilesets: {', '.join(TILESETS)}")
    return found


def _filters(ts: Tileset, args: dict[str, Any]) -> tuple[tuple[str, ...], Any]:
    """The kinds and time a site tileset is filtered by; the filters on the districts are a 400."""
    if ts.kinds is None:
        for name in ("kind", "open_at"):
            if args[name]:
                raise P.bad(name, "applies to the site tilesets only, not to districts")
        return (), None
    kinds = tuple(k for k in ts.kinds if not args["kind"] or k in args["kind"])
    return kinds, args["open_at"]


@API.route(bp, P.Operation(
    "GET", "/tiles/{tileset}/{z:int}/{x:int}/{y:int}.mvt", "One vector tile (Mapbox Vector Tile)",
    description=__doc__ or "", tags=TAGS, public_read=True, out_of_range=400, errors=(404,),
    params=(TILESET, P.PathInt("z", f"Zoom {tiles.MIN_ZOOM}-{tiles.MAX_ZOOM}", hi=tiles.MAX_ZOOM),
            P.PathInt("x", "Column, 0 at 180° W (less than 2^z)", hi=2 ** tiles.MAX_ZOOM - 1),
            P.PathInt("y", "Row, 0 at the north edge (less than 2^z)", hi=2 ** tiles.MAX_ZOOM - 1),
            KIND, OPEN_AT, IF_NONE_MATCH),
    ok={200: P.Response("The tile (empty body: nothing in it)", {MVT: {"type": "string", "format": "binary"}},
                        ETAG),
        304: P.Response("The tile named by If-None-Match still holds", headers=ETAG)}))
def tile(args: dict[str, Any], tileset: str, z: int, x: int, y: int) -> Response:
    """One tile of a tileset."""
    ts = _tileset(tileset)
    if not tiles.exists(z, x, y):
        raise NotFound(f"no tile {z}/{x}/{y}: x and y must be less than 2^z = {2 ** z}")
    kinds, open_at = _filters(ts, args)
    if ts.kinds is None:
        body = services().tiles.district_tile(z, x, y, ts.id)
    elif not kinds:
        body = b""  # kinds outside the tileset: nothing matches
    else:
        body = services().tiles.site_tile(TileQuery(z, x, y, ts.id, kinds, open_at))
    resp = _public(Response(body, mimetype=MVT))
    resp.add_etag()
    resp.make_conditional(request)  # 304 without a body when If-None-Match names this tile
    return resp


@API.route(bp, P.Operation(
    "GET", "/tiles/{tileset}/tiles.json", "The tileset's TileJSON 3.0 description (QGIS, MapLibre, GDAL)",
    description="The tile URL template, zooms, bounds and each layer's fields. `kind` and `open_at` given here "
                "are carried into the tile URLs.", tags=TAGS, public_read=True, out_of_range=400, errors=(404,),
    params=(TILESET, KIND, OPEN_AT), ok={200: P.Response("TileJSON", {"application/json": TILEJSON_SCHEMA})}))
def tilejson(args: dict[str, Any], tileset: str) -> Response:
    """The TileJSON of one tileset."""
    ts = _tileset(tileset)
    kinds, open_at = _filters(ts, args)
    query: dict[str, str] = {}
    if ts.kinds is not None and args["kind"]:
        query["kind"] = ",".join(kinds) or ",".join(args["kind"])
    if open_at is not None:
        query["open_at"] = open_at.isoformat()
    base = request.host_url.rstrip("/") + request.script_root
    suffix = ("?" + urlencode(query)) if query else ""
    lon0, lat0, lon1, lat1 = services().tiles.bounds()
    fields = tiles.DISTRICT_FIELDS if ts.kinds is None else tiles.SITE_FIELDS
    doc = {"tilejson": "3.0.0", "name": ts.title, "scheme": "xyz",
           "description": ("Sites as points; below zoom 13 sites close together are one point with `count`. "
                           "Demo data are SIMULATED (property `simulated`)." if ts.kinds is not None else
                           "Beijing's districts (GCJ-02 Amap boundaries converted to WGS-84)"),
           "attribution": "geoservice (data: see /ogc/collections)",
           "tiles": [f"{base}/tiles/{ts.id}/{{z}}/{{x}}/{{y}}.mvt{suffix}"],
           "minzoom": tiles.MIN_ZOOM, "maxzoom": tiles.MAX_ZOOM,
           "bounds": [round(v, 6) for v in (lon0, lat0, lon1, lat1)],
           "center": [round((lon0 + lon1) / 2, 6), round((lat0 + lat1) / 2, 6), 9],
           "vector_layers": [{"id": ts.id, "description": ts.title, "minzoom": tiles.MIN_ZOOM,
                              "maxzoom": tiles.MAX_ZOOM, "fields": fields}]}
    return _public(json_response(doc))
