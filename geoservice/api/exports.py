"""Bulk downloads of the site layer: ``/api/v1/sites.geojson`` and ``/api/v1/sites.csv``.

Same filters as ``GET /api/v1/sites`` (``kind``, ``district``, ``bbox``, ``open_at``, ``crs``) but no paging:
the whole selection is streamed page by page. Coordinates are in the requested datum (``crs``, default WGS-84);
the datum is in the suggested file name (``Content-Disposition``), in the ``X-Coordinate-Datum`` header, in a
``crs`` column (CSV) or a top-level ``datum`` member (GeoJSON). CSV is UTF-8; ``bom=true`` prefixes a byte-order
mark so Excel reads the Chinese text correctly, and text cells that a spreadsheet would run as a formula are
neutralised (:mod:`geoservice.csvcells`; ``geoservice load`` reverses it).

Partners keep a copy up to date with ``GET /api/v1/changes`` (:mod:`geoservice.services.feed`). Downloads carry
an ``ETag`` and ``Last-Modified`` taken from the feed's latest cursor and its time (with the request's filters in
the ETag), so they change exactly when the data does, and answer 304 to ``If-None-Match`` / ``If-Modified-Since``.
The data licence is a top-level ``license`` member (GeoJSON, feed) and the ``X-License`` header (CSV: a comment
line would break spreadsheets and ``geoservice load``).
"""
from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

from flask import Blueprint, Response, json, request
from werkzeug.http import is_resource_modified

from geoservice import exports as X
from geoservice import serialize as S
from geoservice.api import spec as P
from geoservice.api.context import services
from geoservice.api.jsonprovider import json_response
from geoservice.api.public import LIST_FILTERS, wgs84_bbox
from geoservice.model import CURSOR_PATTERN, decode_cursor, encode_cursor
from geoservice.services.feed import MAX_LIMIT

bp = Blueprint("exports", __name__)
API = P.Api()

HEADERS = {"Content-Disposition": {"description": "attachment; filename=sites-<kinds>[-<district>]-<crs>.<ext>",
                                   "schema": {"type": "string"}},
           "X-Coordinate-Datum": {"description": "The datum of the coordinates", "schema": {"type": "string"}},
           "X-Total-Count": {"description": "How many sites the file holds", "schema": {"type": "string"}}}
CONDITIONAL = {"ETag": {"description": "Changes exactly when the data (or the request's filters) does: send it in "
                                      "If-None-Match", "schema": {"type": "string"}},
               "Last-Modified": {"description": "When the data last changed: send it in If-Modified-Since",
                                 "schema": {"type": "string"}},
               "X-License": {"description": "The data licence (SPDX id and URL)", "schema": {"type": "string"}}}
NOT_MODIFIED = P.Response("Not modified since the ETag or time sent (no body)", {}, CONDITIONAL)


def _validators(fmt: str) -> tuple[str, Any]:
    """The ETag (feed head, format and the request's parameters) and Last-Modified of a download."""
    cursor, at = services().changes.head()
    args = sorted(request.args.items(multi=True))
    digest = hashlib.sha256(json.dumps([fmt, args]).encode("utf-8")).hexdigest()[:16]
    return f'"{cursor}-{digest}"', at


def _conditional(resp: Response, etag: str, at: Any) -> Response:
    resp.headers["ETag"] = etag
    if at is not None:
        resp.last_modified = at
    license_ = S.DATA_LICENSE
    resp.headers["X-License"] = f"{license_['id']}; {license_['url']}"
    return resp


def _not_modified(fmt: str) -> tuple[Response | None, str, Any]:
    """A 304 when the client's copy is current; else None and the validators to send."""
    etag, at = _validators(fmt)
    if not is_resource_modified(request.environ, etag=etag.strip('"'), last_modified=at):
        return _conditional(Response(status=304), etag, at), etag, at
    return None, etag, at


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
                        {**HEADERS, **CONDITIONAL}), 304: NOT_MODIFIED}))
def sites_geojson(args: dict[str, Any]) -> Response:
    """All matching sites as one GeoJSON FeatureCollection (streamed)."""
    cached, etag, at = _not_modified("geojson")
    if cached is not None:
        return cached
    query, sites = _query(args), services().sites
    count = X.count_sites(sites, query)
    return _conditional(_download(X.geojson_chunks(X.iter_site_pages(sites, query), args["crs"], S.DATA_LICENSE),
                                  "geojson", query, args["crs"], count), etag, at)


@API.route(bp, P.Operation(
    "GET", "/api/v1/sites.csv", "Download all matching sites as CSV (UTF-8, streamed)",
    description="Columns: " + ", ".join(X.CSV_COLUMNS) + " (amenities ;-separated; crs is the datum of lon/lat). "
                "Same filters as /api/v1/sites. A text cell starting with = + - @ tab, CR or ' gets one leading "
                "' (so Excel does not run it); `geoservice load FILE --crs <crs>` removes it again.",
    params=(*LIST_FILTERS, P.Boolean("bom", "Start with a UTF-8 byte-order mark so Excel shows the Chinese text "
                                            "correctly")),
    errors=(422,), public_read=True,
    ok={200: P.Response("Attachment sites-<kinds>-<crs>.csv", {"text/csv": {"type": "string"}},
                        {**HEADERS, **CONDITIONAL}), 304: NOT_MODIFIED}))
def sites_csv(args: dict[str, Any]) -> Response:
    """All matching sites as CSV (UTF-8; ``bom=true`` for Excel), streamed."""
    cached, etag, at = _not_modified("csv")
    if cached is not None:
        return cached
    query, sites = _query(args), services().sites
    count = X.count_sites(sites, query)
    return _conditional(_download(X.csv_chunks(X.iter_site_pages(sites, query), args["crs"], args["bom"]), "csv",
                                  query, args["crs"], count), etag, at)


@API.route(bp, P.Operation(
    "GET", "/api/v1/changes", "The change feed for partners: every public change after a cursor, in order",
    description="Every change to what a partner shows (sites added or changed by a load, operators' edits, "
                "closures and verifications, hours problems, live status, weather alerts), oldest first, each "
                "with the resulting public state: a site entry (`site_id`) its feature (WGS-84; null for a "
                "removal), an alert entry (`alert_id`, kinds `alert` and `alert_removed`) the alert (null once "
                "deleted). Resume with `since=<next>`: from any cursor nothing is missed or given twice. No "
                "`since`: from the beginning (every entry is kept). Kind `removed` is reserved; skip kinds you do "
                "not know.",
    params=(P.Text("since", "Cursor to resume after (the `next` of an earlier answer); omit to start at the "
                            "beginning", max_length=12, pattern=CURSOR_PATTERN),
            P.Integer("limit", "Entries per page", lo=1, hi=MAX_LIMIT, fallback=100)),
    ok={200: P.Response("Entries after the cursor, the cursor to resume from, whether more wait, the licence",
                        {"application/json": {"$ref": "#/components/schemas/Changes"}})},
    errors=(422,), public_read=True))
def changes(args: dict[str, Any]) -> Response:
    """A page of the change feed after ``since``."""
    since = decode_cursor(args["since"]) if args["since"] is not None else 0
    try:
        page = services().changes.page(since, args["limit"])
    except ValueError as exc:
        raise P.bad("since", str(exc), 422) from None
    body = {"entries": [S.feed_entry(e, encode_cursor(e.seq)) for e in page.entries], "next": page.next,
            "has_more": page.has_more, "license": S.DATA_LICENSE}
    return json_response(body)
