"""Bulk downloads of the site layer: ``/api/v1/sites.geojson`` and ``/api/v1/sites.csv``.

Same filters as ``GET /api/v1/sites`` (``kind``, ``district``, ``bbox``, ``open_at``, ``crs``) but no paging:
the whole selection is streamed page by page. Coordinates are in the requested datum (``crs``, default WGS-84);
the datum is in the suggested file name (``Content-Disposition``), in the ``X-Coordinate-Datum`` header, in a
``crs`` column (CSV) or a top-level ``datum`` member (GeoJSON). CSV is UTF-8; ``bom=true`` prefixes a byte-order
mark so Excel reads the Chinese text correctly, and text cells that a spreadsheet would run as a formula are
neutralised (:mod:`geoservice.csvcells`; ``geoservice load`` reverses it).
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from flask import Blueprint, Response

from geoservice import exports as X
from geoservice.api import spec as P
from geoservice.api.context import services
from geoservice.api.public import LIST_FILTERS, wgs84_bbox

bp = Blueprint("exports", __name__)
API = P.Api()

HEADERS = {"Content-Disposition": {"description": "attachment; filename=sites-<kinds>[-<district>]-<crs>.<ext>",
                                   "schema": {"type": "string"}},
           "X-Coordinate-Datum": {"description": "The datum of the coordinates", "schema": {"type": "string"}},
           "X-Total-Count": {"description": "How many sites the file holds", "schema": {"type": "string"}}}


def _query(args: dict[str, Any]) -> X.ExportQuery:
    """The shared filters, exactly as ``/api/v1/sites`` reads them."""
    return X.ExportQuery(kinds=args["kind"], district=args["district"], bbox=wgs84_bbox(args["bbox"], args["crs"]),
                         open_at=args["open_at"])


def _download(chunks: Iterator[str], fmt: str, query: X.ExportQuery, datum: str, count: int) -> Response:
    filename = X.suggested_filename(fmt, datum, query.kinds, query.district)
    resp = Response((c.encode("utf-8") for c in chunks), mimetype=X.MEDIA_TYPES[fmt].split(";")[0])
    if fmt == "csv":
        resp.headers["Content-Type"] = X.MEDIA_TYPES["csv"]
    resp.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    resp.headers["X-Coordinate-Datum"] = datum
    resp.headers["X-Total-Count"] = str(count)
    return resp


@API.route(bp, P.Operation(
    "GET", "/api/v1/sites.geojson", "Download all matching sites as one GeoJSON FeatureCollection (streamed)",
    description="Same filters as /api/v1/sites. Coordinates are in `crs`; the top-level `datum` member, the "
                "X-Coordinate-Datum header and the suggested file name say which. Loads back with "
                "`geoservice load FILE --crs <crs>`.",
    params=LIST_FILTERS, errors=(422,), public_read=True,
    ok={200: P.Response("Attachment sites-<kinds>-<crs>.geojson", {"application/geo+json": {"type": "object"}},
                        HEADERS)}))
def sites_geojson(args: dict[str, Any]) -> Response:
    """All matching sites as one GeoJSON FeatureCollection (streamed)."""
    query, sites = _query(args), services().sites
    count = X.count_sites(sites, query)
    return _download(X.geojson_chunks(X.iter_site_pages(sites, query), args["crs"]), "geojson", query, args["crs"],
                     count)


@API.route(bp, P.Operation(
    "GET", "/api/v1/sites.csv", "Download all matching sites as CSV (UTF-8, streamed)",
    description="Columns: " + ", ".join(X.CSV_COLUMNS) + " (amenities ;-separated; crs is the datum of lon/lat). "
                "Same filters as /api/v1/sites. A text cell starting with = + - @ tab, CR or ' gets one leading "
                "' (so Excel does not run it); `geoservice load FILE --crs <crs>` removes it again.",
    params=(*LIST_FILTERS, P.Boolean("bom", "Start with a UTF-8 byte-order mark so Excel shows the Chinese text "
                                            "correctly")),
    errors=(422,), public_read=True,
    ok={200: P.Response("Attachment sites-<kinds>-<crs>.csv", {"text/csv": {"type": "string"}}, HEADERS)}))
def sites_csv(args: dict[str, Any]) -> Response:
    """All matching sites as CSV (UTF-8; ``bom=true`` for Excel), streamed."""
    query, sites = _query(args), services().sites
    count = X.count_sites(sites, query)
    return _download(X.csv_chunks(X.iter_site_pages(sites, query), args["crs"], args["bom"]), "csv", query,
                     args["crs"], count)
