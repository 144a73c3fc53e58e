"""Bulk downloads of the site layer: ``/api/v1/sites.geojson`` and ``/api/v1/sites.csv``.

Same filters as ``GET /api/v1/sites`` (``kind``, ``district``, ``bbox``, ``open_at``, ``crs``) but no paging:
the whole selection is streamed page by page from the store. Coordinates are in the requested datum
(``crs``, default WGS-84); the datum is in the suggested file name (``Content-Disposition``), in the
``X-Coordinate-Datum`` header, in a ``crs`` column (CSV) or a top-level ``datum`` member (GeoJSON).
CSV is UTF-8; ``bom=true`` prefixes a byte-order mark so Excel reads the Chinese text correctly.
"""
from __future__ import annotations

from collections.abc import Iterator

from flask import Blueprint, Response, request

from geoservice import exports as X
from geoservice.api import params as P
from geoservice.api.public import site_filters, store

bp = Blueprint("exports", __name__)

EXPORT_PARAMS = ("kind", "district", "bbox", "open_at", "crs")


def _query() -> tuple[X.ExportQuery, str]:
    """Parse the shared filters (exactly as ``/api/v1/sites`` reads them)."""
    datum, bbox, kinds, district, open_at = site_filters()
    return X.ExportQuery(kinds=kinds, district=district, bbox=bbox, open_at=open_at), datum


def _download(chunks: Iterator[str], fmt: str, query: X.ExportQuery, datum: str, count: int) -> Response:
    filename = X.suggested_filename(fmt, datum, query.kinds, query.district)
    resp = Response((c.encode("utf-8") for c in chunks), mimetype=X.MEDIA_TYPES[fmt].split(";")[0])
    if fmt == "csv":
        resp.headers["Content-Type"] = X.MEDIA_TYPES["csv"]
    resp.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    resp.headers["X-Coordinate-Datum"] = datum
    resp.headers["X-Total-Count"] = str(count)
    return resp


@bp.get("/api/v1/sites.geojson")
def sites_geojson() -> Response:
    """All matching sites as one GeoJSON FeatureCollection (streamed)."""
    P.check_known(request, EXPORT_PARAMS)
    query, datum = _query()
    s = store()
    count = X.count_sites(s, query)
    return _download(X.geojson_chunks(X.iter_site_pages(s, query), datum), "geojson", query, datum, count)


@bp.get("/api/v1/sites.csv")
def sites_csv() -> Response:
    """All matching sites as CSV (UTF-8; ``bom=true`` for Excel), streamed."""
    P.check_known(request, EXPORT_PARAMS + ("bom",))
    query, datum = _query()
    bom = P.get_bool(request, "bom", False)
    s = store()
    count = X.count_sites(s, query)
    return _download(X.csv_chunks(X.iter_site_pages(s, query), datum, bom), "csv", query, datum, count)
