"""Site exports — GeoJSON, CSV and GeoPackage — in a chosen datum, readable back by ``geoservice load``.

The store keeps WGS-84; an export converts coordinates at the edge with :func:`geoservice.geo.from_wgs84`
into the requested datum (``wgs84``, ``gcj02`` or ``bd09``) and says which one in every place a reader
looks: a ``crs`` column (CSV, GeoPackage), a top-level ``datum`` member (GeoJSON), the file name the API
suggests, and the CLI's message. A file exported with ``--crs X`` loads back with
``geoservice load FILE --crs X`` into the same sites (same ``source_id``, so the same public ids).

Everything here is plain Python over the site service (no Flask), so the CLI, the API and a notebook share
it. Sites are read page by page with ``SiteService.list_sites`` so an export of
the whole national network (≈200,000 sites) never holds more than a page of store rows at a time for the
streamed formats.

CSV cells are written for spreadsheets: a text cell that starts with ``=``, ``+``, ``-``, ``@``, tab, CR or
``'`` gets one leading ``'`` so Excel shows it as text instead of running it as a formula ("CSV injection");
``geoservice load`` removes that apostrophe again, so the round trip is exact. ``lon``/``lat`` are numbers and
never prefixed. The rule and its reasons are in :mod:`geoservice.csvcells`.
"""
from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
import json
import logging
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from geoservice.csvcells import to_csv_cell
from geoservice.extras import GPKG, require
from geoservice.geo import DATUMS, from_wgs84
from geoservice.model import Site, SiteFilter
from geoservice.serialize import EXPORT_ATTRIBUTES, EXPORT_COLUMNS, export_attributes
from geoservice.services.sites import SiteService

LOGGER = logging.getLogger(__name__)

FORMATS: tuple[str, ...] = ("geojson", "csv", "gpkg")
EXTENSIONS = {"geojson": ".geojson", "csv": ".csv", "gpkg": ".gpkg"}
MEDIA_TYPES = {"geojson": "application/geo+json", "csv": "text/csv; charset=utf-8",
               "gpkg": "application/geopackage+sqlite3"}

# The CSV columns, in order (``crs`` names the datum of lon/lat on every row), and the attribute columns of the
# GeoJSON and GeoPackage exports (coordinates are in the geometry there): one shape, in geoservice.serialize.
CSV_COLUMNS: tuple[str, ...] = EXPORT_COLUMNS
ATTRIBUTE_COLUMNS: tuple[str, ...] = EXPORT_ATTRIBUTES
# Written as numbers, never as text cells: the formula rule of geoservice.csvcells does not apply to them.
NUMERIC_CSV_COLUMNS = frozenset({"lon", "lat"})

PAGE = 2000
COORD_DECIMALS = 8  # ~1 mm; the store keeps 7 decimals of WGS-84

DATUM_LABELS = {"wgs84": "WGS-84 (GPS, OpenStreetMap)", "gcj02": "GCJ-02 (Amap/Gaode, Tencent)",
                "bd09": "BD-09 (Baidu)"}

# A GeoPackage needs a CRS definition. GCJ-02 and BD-09 are not geodetic datums and have no EPSG code:
# label them honestly as custom geographic CRSs on the WGS-84 ellipsoid, so a GIS neither mistakes them
# for WGS-84 nor "reprojects" them with a transformation that does not exist.
_CUSTOM_CRS_WKT = (
    'GEOGCRS["{name}",DATUM["{datum}",ELLIPSOID["WGS 84",6378137,298.257223563,LENGTHUNIT["metre",1]]],'
    'PRIMEM["Greenwich",0,ANGLEUNIT["degree",0.0174532925199433]],CS[ellipsoidal,2],'
    'AXIS["geodetic longitude (Lon)",east,ORDER[1],ANGLEUNIT["degree",0.0174532925199433]],'
    'AXIS["geodetic latitude (Lat)",north,ORDER[2],ANGLEUNIT["degree",0.0174532925199433]],'
    'REMARK["{remark}"]]'
)


@dataclasses.dataclass(frozen=True)
class ExportQuery:
    """What to export: the same filters as ``GET /api/v1/sites`` (bbox in WGS-84), without paging."""

    kinds: tuple[str, ...] = ()
    district: str | None = None
    bbox: tuple[float, float, float, float] | None = None
    open_at: dt.datetime | None = None

    def site_filter(self, limit: int, offset: int) -> SiteFilter:
        """The store filter for one page."""
        return SiteFilter(self.bbox, self.kinds, self.district, self.open_at, limit, offset)


def check_datum(datum: str) -> str:
    """Normalise and check a datum name (``wgs84``/``gcj02``/``bd09``)."""
    key = str(datum).strip().lower().replace("-", "").replace("_", "")
    if key not in DATUMS:
        raise ValueError(f"unknown datum {datum!r}; allowed: {', '.join(DATUMS)}")
    return key


def suggested_filename(fmt: str, datum: str, kinds: tuple[str, ...] = (), district: str | None = None) -> str:
    """A file name that says what is inside and in which datum, e.g. ``sites-warm_station-gcj02.csv``."""
    parts = ["sites", *(kinds or ("all",))]
    if district:
        parts.append(district)
    parts.append(datum)
    return "-".join(parts) + EXTENSIONS[fmt]


def count_sites(store: SiteService, query: ExportQuery) -> int:
    """How many sites the export will hold."""
    return store.list_sites(query.site_filter(1, 0))[1]


def iter_site_pages(store: SiteService, query: ExportQuery, page: int = PAGE) -> Iterator[list[Site]]:
    """Pages of matching sites, ordered by id, read with ``SiteService.list_sites``."""
    offset = 0
    while True:
        sites, total = store.list_sites(query.site_filter(page, offset))
        if not sites:
            return
        yield sites
        offset += len(sites)
        if offset >= total:
            return


def _converted(sites: list[Site], datum: str) -> list[tuple[float, float]]:
    """Coordinates of ``sites`` in ``datum``, rounded to ``COORD_DECIMALS`` (one vectorised conversion)."""
    if not sites:
        return []
    lon, lat = from_wgs84([s.lon for s in sites], [s.lat for s in sites], datum)
    return [(round(float(x), COORD_DECIMALS), round(float(y), COORD_DECIMALS)) for x, y in zip(lon, lat)]


def site_attributes(site: Site, datum: str) -> dict[str, Any]:
    """Typed attributes of one site for GeoJSON/GeoPackage (amenities a list, simulated a bool)."""
    return export_attributes(site, datum)


def csv_row(site: Site, lon: float, lat: float, datum: str) -> list[str]:
    """One CSV row (``CSV_COLUMNS`` order): amenities ``;``-separated, booleans ``true``/``false``, every text
    cell passed through :func:`geoservice.csvcells.to_csv_cell` (lon/lat are numbers and left alone)."""
    attrs = site_attributes(site, datum)
    attrs["amenities"] = ";".join(site.amenities)
    attrs["simulated"] = "true" if site.simulated else "false"
    attrs["lon"] = f"{lon:.{COORD_DECIMALS}f}"
    attrs["lat"] = f"{lat:.{COORD_DECIMALS}f}"
    cells = ["" if attrs[c] is None else str(attrs[c]) for c in CSV_COLUMNS]
    return [cell if c in NUMERIC_CSV_COLUMNS else to_csv_cell(cell) for c, cell in zip(CSV_COLUMNS, cells)]


def csv_chunks(pages: Iterator[list[Site]], datum: str, bom: bool = False) -> Iterator[str]:
    """The CSV export as text chunks (header first), one chunk per page of sites."""
    datum = check_datum(datum)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    yield ("\ufeff" if bom else "") + buf.getvalue()
    for sites in pages:
        buf.seek(0)
        buf.truncate()
        for site, (lon, lat) in zip(sites, _converted(sites, datum)):
            writer.writerow(csv_row(site, lon, lat, datum))
        yield buf.getvalue()


def geojson_feature(site: Site, lon: float, lat: float, datum: str) -> dict[str, Any]:
    """One site as an export Feature (``id`` = public id; ``source_id`` in the properties)."""
    return {"type": "Feature", "id": site.id, "geometry": {"type": "Point", "coordinates": [lon, lat]},
            "properties": site_attributes(site, datum)}


def geojson_header(datum: str, license_: dict[str, Any] | None = None) -> dict[str, Any]:
    """Top-level members of an export FeatureCollection, naming the datum of the coordinates (and the data
    licence when given)."""
    note = ("Coordinates are WGS-84 longitude/latitude (RFC 7946)." if datum == "wgs84" else
            f"Coordinates are {DATUM_LABELS[datum]}, NOT WGS-84 as RFC 7946 assumes; load back with "
            f"`geoservice load FILE --crs {datum}`.")
    out = {"type": "FeatureCollection", "datum": datum, "datum_note": note,
           "generated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}
    return out if license_ is None else out | {"license": license_}


def geojson_chunks(pages: Iterator[list[Site]], datum: str, license_: dict[str, Any] | None = None) -> Iterator[str]:
    """The GeoJSON export as text chunks: a FeatureCollection streamed feature by feature."""
    datum = check_datum(datum)
    head = json.dumps(geojson_header(datum, license_), ensure_ascii=False)
    yield head[:-1] + ', "features": [\n'
    first = True
    for sites in pages:
        parts = []
        for site, (lon, lat) in zip(sites, _converted(sites, datum)):
            parts.append(("" if first else ",\n") + json.dumps(geojson_feature(site, lon, lat, datum),
                                                               ensure_ascii=False))
            first = False
        yield "".join(parts)
    yield "\n]}\n"


def gpkg_crs(datum: str) -> Any:
    """The CRS written into a GeoPackage for ``datum`` (EPSG:4326, or an honest custom CRS)."""
    from pyproj import CRS

    if datum == "wgs84":
        return CRS.from_epsg(4326)
    name = {"gcj02": "GCJ-02 (offset of WGS 84; Amap/Gaode, Tencent)", "bd09": "BD-09 (Baidu; offset of GCJ-02)"}[datum]
    remark = (f"{datum.upper()} is an obfuscated offset of WGS 84, not a geodetic datum; no EPSG code exists. "
              "Convert with geoservice (geoservice.geo) rather than with a CRS transformation.")
    return CRS.from_wkt(_CUSTOM_CRS_WKT.format(name=name, datum=datum.upper(), remark=remark))


def write_gpkg(pages: Iterator[list[Site]], path: Path, datum: str, layer: str = "sites",
               on_page: Callable[[int], None] | None = None) -> int:
    """Write a GeoPackage (one Point layer) and return the number of sites written (needs the gpkg extra)."""
    require(GPKG)
    import geopandas as gpd
    import pandas as pd
    import shapely

    datum = check_datum(datum)
    rows: list[dict[str, Any]] = []
    lons: list[float] = []
    lats: list[float] = []
    for sites in pages:
        for site, (lon, lat) in zip(sites, _converted(sites, datum)):
            attrs = site_attributes(site, datum)
            attrs["amenities"] = ";".join(site.amenities)
            attrs["updated_at"] = site.updated_at
            attrs["verified_at"] = site.verified_at
            rows.append(attrs)
            lons.append(lon)
            lats.append(lat)
        if on_page:
            on_page(len(sites))
    frame = pd.DataFrame(rows, columns=list(ATTRIBUTE_COLUMNS))
    for col in ("updated_at", "verified_at"):
        frame[col] = pd.to_datetime(frame[col], utc=True)
    frame["simulated"] = frame["simulated"].astype(bool)
    gdf = gpd.GeoDataFrame(frame, geometry=shapely.points(lons, lats) if rows else [], crs=gpkg_crs(datum))
    # GeoPackage 1.2 so older GIS (GDAL < 3.7, ArcGIS) read it without a version warning.
    gdf.to_file(path, driver="GPKG", layer=layer, engine="pyogrio", dataset_options={"VERSION": "1.2"})
    return len(rows)


@dataclasses.dataclass
class ExportResult:
    """What an export wrote."""

    path: Path
    format: str
    datum: str
    count: int


def export_sites(store: SiteService, query: ExportQuery, fmt: str, datum: str, path: Path, bom: bool = False,
                 progress: Callable[[int], None] | None = None) -> ExportResult:
    """Export matching sites to ``path``: written to a temporary file first, so a failure leaves nothing.

    ``progress`` is called with the number of sites of each page written.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; allowed: {', '.join(FORMATS)}")
    datum = check_datum(datum)
    path = Path(path)
    count = 0

    def pages() -> Iterator[list[Site]]:
        nonlocal count
        for page in iter_site_pages(store, query):
            count += len(page)
            yield page
            if progress and fmt != "gpkg":
                progress(len(page))

    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=EXTENSIONS[fmt],
                                    dir=str(path.parent.resolve()))
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        if fmt == "gpkg":
            tmp.unlink()  # let GDAL create the GeoPackage from scratch
            write_gpkg(pages(), tmp, datum, on_page=progress)
        else:
            chunks = csv_chunks(pages(), datum, bom) if fmt == "csv" else geojson_chunks(pages(), datum)
            # newline="" keeps the CSV's \r\n line ends as written (RFC 4180).
            with open(tmp, "w", encoding="utf-8", newline="") as fh:
                for chunk in chunks:
                    fh.write(chunk)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    LOGGER.info("exported %d sites to %s (%s, %s)", count, path, fmt, datum)
    return ExportResult(path, fmt, datum, count)
