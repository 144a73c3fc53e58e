"""Read and validate site and district layer files into model records.

Accepted site files: GeoJSON (FeatureCollection of Points), CSV with ``lon``/``lat`` columns (UTF-8, optional
BOM), GeoPackage (first layer, or ``layer=``), and Excel workbooks (.xlsx, what union staff keep: a header row in
Chinese or English on each sheet of sites, see :data:`XLSX_HEADERS`). Each record is checked — geometry, service
area, kind, amenity vocabulary, opening hours — and every problem is collected as ``file:line N`` /
``file:feature N`` / ``file:sheet S, row N, column C`` plus field and reason before anything is written, so a bad
file changes nothing (unless the caller explicitly asks to skip the bad records).

CSV text cells are read back through :func:`geoservice.csvcells.from_csv_cell`: one leading ``'`` is removed,
the inverse of the formula neutralisation our CSV exports apply (so export → load is exact). The ``lon``/``lat``
columns are numbers and are read as they are. GeoJSON, GeoPackage and spreadsheet values are taken as they are.
"""
from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
import json
import logging
import math
from collections.abc import Generator, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import shapely

from geoservice.csvcells import from_csv_cell
from geoservice.extras import GPKG, require
from geoservice.geo import DATUMS, to_wgs84
from geoservice.hours import TZ, HoursSyntaxError, validate_hours
from geoservice.model import AMENITIES, KINDS, District, Site, site_id_for
from geoservice.phone import PhoneInvalid, validate_phone
from geoservice.validation import Problem, Problems, ValidationFailed, validate_alert_hours

LOGGER = logging.getLogger(__name__)

MAX_TEXT = {"name_zh": 200, "name_en": 200, "address": 300, "operator": 200, "phone": 40, "notes": 2000,
            "source_id": 120}
TEXT_FIELDS = ("name_zh", "name_en", "address", "operator", "phone", "notes")
FORMATS = {".geojson": "geojson", ".json": "geojson", ".csv": "csv", ".gpkg": "gpkg", ".xlsx": "xlsx"}
# Spreadsheet headers as union staff write them (trimmed, case and a trailing "(…)"/"（…）" note ignored, e.g.
# "经度（GCJ-02）") -> the field. The field names themselves are accepted too.
XLSX_HEADERS = {
    "编号": "source_id", "站点编号": "source_id", "id": "source_id", "序号编码": "source_id",
    "名称": "name_zh", "站点名称": "name_zh", "中文名称": "name_zh", "英文名称": "name_en",
    "类型": "kind", "站点类型": "kind", "地址": "address", "详细地址": "address", "运营单位": "operator",
    "承建单位": "operator", "电话": "phone", "联系电话": "phone", "开放时间": "opening_hours",
    "开放时段": "opening_hours", "服务设施": "amenities", "设施": "amenities", "备注": "notes",
    "经度": "lon", "纬度": "lat", "longitude": "lon", "latitude": "lat", "核实时间": "verified_at",
    "核实日期": "verified_at",
}
XLSX_FIELDS = ("source_id", "name_zh", "name_en", "kind", "address", "operator", "phone", "opening_hours",
               "amenities", "notes", "lon", "lat", "verified_at", "simulated")


@dataclasses.dataclass
class RawRecord:
    """One record as read from a file, before validation. ``where`` is ``line N`` or ``feature N``."""

    where: str
    props: dict[str, Any]
    lon: Any
    lat: Any
    geometry_problem: str | None = None
    # Spreadsheets: the column each field came from ("D (经度)"), so a problem names its cell.
    columns: dict[str, str] | None = None


def _refused(source: str | Path, field: str, reason: str, where: str | None = None) -> ValidationFailed:
    """A file refused as a whole (unreadable, wrong format, bad header)."""
    return ValidationFailed([Problem(field, reason, where)], str(source))


def detect_format(path: Path) -> str:
    """The file format from its extension."""
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise _refused(str(path), "file",
                       f"unsupported extension {path.suffix!r}; use .geojson, .csv, .gpkg or .xlsx")
    return fmt


def _read_geojson(path: Path) -> Iterator[RawRecord]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _refused(str(path), "file", f"not valid UTF-8 JSON ({exc})") from exc
    if not isinstance(doc, dict) or doc.get("type") != "FeatureCollection" or not isinstance(
            doc.get("features"), list):
        raise _refused(str(path), "file", "expected a GeoJSON FeatureCollection")
    for n, feature in enumerate(doc["features"], start=1):
        if not isinstance(feature, dict):
            yield RawRecord(f"feature {n}", {}, None, None, "is not a GeoJSON Feature object")
            continue
        props = dict(feature.get("properties") or {})
        if feature.get("id") is not None and not props.get("source_id"):
            props["source_id"] = feature["id"]
        geom = feature.get("geometry")
        if not isinstance(geom, dict) or geom.get("type") != "Point":
            kind = geom.get("type") if isinstance(geom, dict) else "missing"
            yield RawRecord(f"feature {n}", props, None, None, f"must be a Point, got {kind}")
            continue
        coords = geom.get("coordinates")
        if not isinstance(coords, list) or len(coords) < 2:
            yield RawRecord(f"feature {n}", props, None, None, "Point needs [lon, lat] coordinates")
            continue
        yield RawRecord(f"feature {n}", props, coords[0], coords[1])


def _read_csv(path: Path) -> Iterator[RawRecord]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _refused(str(path), "file", f"not valid UTF-8 ({exc})") from exc
    reader = csv.DictReader(io.StringIO(text, newline=""))  # keeps line breaks inside quoted fields
    fields = [f.strip().lower() for f in reader.fieldnames or []]
    missing = [c for c in ("lon", "lat") if c not in fields]
    if missing:
        raise _refused(str(path), "header", f"missing column(s) {', '.join(missing)}", "line 1")
    reader.fieldnames = fields
    for row in reader:
        extra = row.pop(None, None)
        # Undo the export's formula escape first (on the cell as written), then trim as for every format.
        props = {k: ((v if k in ("lon", "lat") else from_csv_cell(v)).strip() if isinstance(v, str) else v)
                 for k, v in row.items()}
        props = {k: v for k, v in props.items() if v not in ("", None)}
        where = f"line {reader.line_num}"
        if extra:
            yield RawRecord(where, props, None, None, "row has more columns than the header")
            continue
        yield RawRecord(where, props, props.pop("lon", None), props.pop("lat", None))


def _read_gpkg(path: Path) -> Iterator[RawRecord]:
    require(GPKG)  # the gpkg extra (geopandas, pyogrio); the other formats need neither
    import pyogrio

    try:
        frame = pyogrio.read_dataframe(path)
    except Exception as exc:  # pyogrio raises several DataSource errors
        raise _refused(str(path), "file", f"cannot be read as a GeoPackage ({exc})") from exc
    for n, (_, row) in enumerate(frame.iterrows(), start=1):
        props = {k: v for k, v in row.items() if k != "geometry" and not _is_missing(v)}
        geom = row.geometry
        if geom is None or geom.geom_type != "Point":
            yield RawRecord(f"feature {n}", props, None, None,
                            f"must be a Point, got {geom.geom_type if geom is not None else 'missing'}")
            continue
        yield RawRecord(f"feature {n}", props, geom.x, geom.y)


def _xlsx_field(header: Any) -> str | None:
    """The field a spreadsheet header names, or None."""
    if header is None:
        return None
    text = str(header).strip().lower()
    for opening in ("(", "（"):
        if opening in text:
            text = text.split(opening, 1)[0].strip()
    field = XLSX_HEADERS.get(text, text.replace(" ", "_"))
    return field if field in XLSX_FIELDS else None


def _xlsx_value(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, str):
        return value.strip()
    return value


def _xlsx_sheet(sheet: Any) -> Generator[RawRecord, None, bool]:
    """The records of one sheet; returns whether it is a sheet of sites (its header names both coordinates)."""
    from openpyxl.utils import get_column_letter

    rows = sheet.iter_rows(values_only=True)
    header_row, header = 0, None
    for n, row in enumerate(rows, start=1):
        if any(v not in (None, "") for v in row):
            header_row, header = n, row
            break
    if header is None:
        return False
    fields = [_xlsx_field(h) for h in header]
    if "lon" not in fields or "lat" not in fields:
        return False
    columns = {f: f"{get_column_letter(i + 1)} ({str(header[i]).strip()[:40]})"
               for i, f in enumerate(fields) if f is not None}
    columns["lon/lat"] = f"{columns['lon']}, {columns['lat']}"
    for n, row in enumerate(rows, start=header_row + 1):
        props = {f: _xlsx_value(v) for f, v in zip(fields, row) if f is not None and v not in (None, "")}
        if props:  # blank rows between blocks are skipped
            yield RawRecord(f"sheet {sheet.title}, row {n}", props, props.pop("lon", None), props.pop("lat", None),
                            columns=columns)
    return True


def _read_xlsx(path: Path) -> Iterator[RawRecord]:
    """Every sheet whose first non-empty row names both coordinates (经度/lon and 纬度/lat) is a sheet of sites;
    other sheets (notes, lookups) are left alone. Cached values of formulas are read, not the formulas."""
    import zipfile

    import openpyxl
    from openpyxl.utils.exceptions import InvalidFileException

    found = False
    with path.open("rb") as handle:  # closed here whatever openpyxl does with it
        try:
            book = openpyxl.load_workbook(handle, read_only=True, data_only=True)
        except (InvalidFileException, zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
            raise _refused(str(path), "file",
                           f"cannot be read as an Excel .xlsx workbook ({str(exc)[:120]})") from None
        try:
            for sheet in book.worksheets:
                of_sites = yield from _xlsx_sheet(sheet)
                found = found or of_sites
        finally:
            book.close()
    if not found:
        raise _refused(str(path), "header", "no sheet has a header row naming 经度/lon and 纬度/lat")


def _is_missing(value: Any) -> bool:
    """None, NaN, NaT, pd.NA: what GeoPackage nulls become in a DataFrame."""
    import pandas as pd

    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):  # lists and other non-scalars are values
        return False


def read_raw(path: Path) -> list[RawRecord]:
    """All records of a site file, unvalidated."""
    if not path.exists():
        raise _refused(str(path), "file", "does not exist")
    reader = {"geojson": _read_geojson, "csv": _read_csv, "gpkg": _read_gpkg, "xlsx": _read_xlsx}[detect_format(path)]
    return list(reader(path))


def _amenities(value: Any) -> list[str] | str:
    """Amenity codes from a list or a ``;``/``,``-separated string; a string return is the problem."""
    if value is None:
        return []
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                value = json.loads(text)
            except json.JSONDecodeError:
                return "is not a valid JSON list"
        else:
            value = [v.strip() for v in text.replace(",", ";").split(";") if v.strip()]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        return "must be a list of amenity codes"
    unknown = [v for v in value if v not in AMENITIES]
    if unknown:
        return f"unknown amenity {', '.join(map(repr, unknown))}; known: {', '.join(AMENITIES)}"
    return sorted(set(value))


class ServiceArea:
    """District polygons with a spatial index, for point-in-polygon district lookup.

    ``name_zh``/``name_en`` name the whole area (``geoservice.servicearea.AreaLayer``) in the loader's refusals;
    without them the message says how many areas were checked."""

    def __init__(self, districts: Sequence[District], name_zh: str | None = None, name_en: str | None = None):
        self.districts = list(districts)
        self.tree = shapely.STRtree([d.geometry for d in self.districts])
        self.name_zh = name_zh or f"{len(self.districts)} 个区域"
        self.name_en = name_en or f"{len(self.districts)} loaded areas"

    def outside(self, lon: float, lat: float, hint: str = "") -> str:
        """Why a point (WGS-84) is refused, in English and Chinese, naming the area."""
        return (f"({lon:.6f}, {lat:.6f}) WGS-84 is outside the service area ({self.name_zh} / {self.name_en})"
                f"{hint} · 不在服务区域（{self.name_zh}）内")

    def lookup(self, lon: np.ndarray, lat: np.ndarray) -> list[str | None]:
        """District adcode per point, or None outside every district."""
        points = shapely.points(lon, lat)
        result: list[str | None] = [None] * len(points)
        if not len(points) or not self.districts:
            return result
        pt_idx, poly_idx = self.tree.query(points, predicate="intersects")
        for p, d in zip(pt_idx, poly_idx):
            if result[p] is None:
                result[p] = self.districts[d].adcode
        return result


@dataclasses.dataclass
class SiteFile:
    """A validated site file: its sites, and where in the file each came from (``source_id`` -> ``line N``)."""

    path: str
    sites: list[Site]
    where: dict[str, str]
    # With skip_invalid: the records left out, each with its problems (its source id when it has one).
    skipped: list[tuple[str | None, list[Problem]]] = dataclasses.field(default_factory=list)

    def locate(self, source_id: str) -> str:
        """``file:line N`` (or ``file:feature N``) of a record, for messages about it."""
        return f"{self.path}:{self.where.get(source_id, '?')}"


def validate_records(records: Iterable[RawRecord], filename: str, area: ServiceArea, kind: str | None,
                     datum: str = "wgs84") -> list[Site]:
    """Turn raw records into Sites, or raise ``ValidationFailed`` listing every problem."""
    return validate_file(records, filename, area, kind, datum).sites


def validate_file(  # noqa: C901 - one flat pass over every field of a record, collecting all problems
    records: Iterable[RawRecord], filename: str, area: ServiceArea, kind: str | None,
    datum: str = "wgs84", skip_invalid: bool = False) -> SiteFile:
    """:func:`validate_records` keeping each site's place in the file. ``skip_invalid``: instead of refusing
    the file, leave out every record with a problem and list it in ``skipped`` (an explicit choice)."""
    if datum not in DATUMS:
        raise _refused(filename, "crs", f"{datum!r} is not one of {', '.join(DATUMS)}")
    if kind is not None and kind not in KINDS:
        raise _refused(filename, "kind", f"{kind!r} is not one of {', '.join(KINDS)}")
    problems = Problems(filename)
    pending: list[tuple[RawRecord, dict[str, Any], float, float]] = []
    seen: dict[str, str] = {}

    failed: dict[str, tuple[str | None, list[Problem]]] = {}

    def bad(rec: RawRecord, field: str, reason: str) -> None:
        column = (rec.columns or {}).get(field)
        problem = Problem(field, reason, f"{rec.where}, column {column}" if column else rec.where)
        problems.extend([problem])
        sid = rec.props.get("source_id", rec.props.get("id"))
        failed.setdefault(rec.where, (None if sid in (None, "") else str(sid).strip(), []))[1].append(problem)

    positions: dict[str, int] = {}
    for rec in records:
        positions[rec.where] = len(positions)
        p = rec.props
        ok = True
        if rec.geometry_problem:
            bad(rec, "geometry", rec.geometry_problem)
            ok = False
        out: dict[str, Any] = {}
        source_id = p.get("source_id", p.get("id"))
        if source_id is None or str(source_id).strip() == "":
            bad(rec, "source_id", "missing: every record needs its own stable id (column id or source_id)")
            ok = False
        else:
            source_id = str(source_id).strip()
            if len(source_id) > MAX_TEXT["source_id"]:
                bad(rec, "source_id", f"longer than {MAX_TEXT['source_id']} characters")
                ok = False
            elif source_id in seen:
                bad(rec, "source_id", f"{source_id!r} repeats {seen[source_id]}")
                ok = False
            else:
                seen[source_id] = rec.where
        out["source_id"] = source_id
        rec_kind = p.get("kind") or kind
        if rec_kind is None:
            bad(rec, "kind", f"missing; pass --kind or give a kind column ({', '.join(KINDS)})")
            ok = False
        elif rec_kind not in KINDS:
            bad(rec, "kind", f"{rec_kind!r} is not one of {', '.join(KINDS)}")
            ok = False
        elif kind is not None and rec_kind != kind:
            bad(rec, "kind", f"{rec_kind!r} contradicts --kind {kind}")
            ok = False
        out["kind"] = rec_kind
        name = p.get("name_zh") or p.get("name")
        if not isinstance(name, str) or not name.strip():
            bad(rec, "name_zh", "missing: a Chinese name is required")
            ok = False
        out["name_zh"] = name.strip() if isinstance(name, str) else None
        for field in TEXT_FIELDS[1:]:
            value = p.get(field)
            if value is None:
                out[field] = None
            elif not isinstance(value, (str, int)):
                bad(rec, field, "must be text")
                ok = False
            elif len(str(value)) > MAX_TEXT[field]:
                bad(rec, field, f"longer than {MAX_TEXT[field]} characters")
                ok = False
            else:
                out[field] = str(value).strip() or None
        if out.get("phone"):
            try:
                out["phone"] = validate_phone(out["phone"])
            except PhoneInvalid as exc:
                bad(rec, "phone", str(exc))
                ok = False
        hours = p.get("opening_hours")
        try:
            out["opening_hours"] = validate_hours(hours if isinstance(hours, str) else "")
        except HoursSyntaxError as exc:
            bad(rec, "opening_hours", f"{hours!r} {exc}" if hours else "missing")
            ok = False
        amenities = _amenities(p.get("amenities"))
        if isinstance(amenities, str):
            bad(rec, "amenities", amenities)
            ok = False
        out["amenities"] = amenities
        out["alert_hours"] = None
        rule = p.get("alert_hours")
        if rule not in (None, ""):
            try:  # an object in GeoJSON; a JSON text in a CSV cell or a GeoPackage column
                out["alert_hours"] = validate_alert_hours(json.loads(rule) if isinstance(rule, str) else rule)
            except (ValueError, TypeError) as exc:
                bad(rec, "alert_hours", str(exc)[:300])
                ok = False
        out["simulated"] = str(p.get("simulated", "")).lower() in ("true", "1", "yes")
        verified = p.get("verified_at")
        out["verified_at"] = None
        if verified not in (None, ""):
            try:
                stamp = dt.datetime.fromisoformat(str(verified).replace("Z", "+00:00"))
            except ValueError:
                bad(rec, "verified_at", f"{str(verified)[:40]!r} is not an ISO 8601 time")
                ok = False
            else:
                out["verified_at"] = stamp if stamp.tzinfo else stamp.replace(tzinfo=TZ)
        lon = lat = math.nan
        if not rec.geometry_problem:
            try:
                lon, lat = float(rec.lon), float(rec.lat)
            except (TypeError, ValueError):
                bad(rec, "lon/lat", f"not numbers: {rec.lon!r}, {rec.lat!r}")
                ok = False
            else:
                if not (math.isfinite(lon) and math.isfinite(lat)) or not (-180 <= lon <= 180 and -90 <= lat <= 90):
                    bad(rec, "lon/lat", f"({rec.lon}, {rec.lat}) is not a valid longitude/latitude")
                    ok = False
                else:
                    lon, lat = to_wgs84(lon, lat, datum)
        if ok:
            pending.append((rec, out, lon, lat))
    if pending:
        lons = np.array([x[2] for x in pending])
        lats = np.array([x[3] for x in pending])
        adcodes = area.lookup(lons, lats)
        for (rec, out, lon, lat), adcode in zip(pending, adcodes):
            if adcode is None:
                hint = "; is the file GCJ-02 or BD-09? pass --crs" if datum == "wgs84" else ""
                bad(rec, "lon/lat", area.outside(lon, lat, hint))
            out["district_adcode"] = adcode
    if not skip_invalid:
        problems.raise_if_any()
    pending = [x for x in pending if x[0].where not in failed]
    sites = [Site(id=site_id_for(out["source_id"]), lon=round(float(lon), 7), lat=round(float(lat), 7), **out)
             for _, out, lon, lat in pending]
    skipped = [failed[w] for w in sorted(failed, key=positions.__getitem__)]  # in the file's order
    return SiteFile(filename, sites, {out["source_id"]: rec.where for rec, out, _, _ in pending}, skipped)


def read_sites(path: Path, area: ServiceArea, kind: str | None = None, datum: str = "wgs84") -> list[Site]:
    """Read and validate one site file; raises ``ValidationFailed`` with every problem."""
    return read_site_file(path, area, kind, datum).sites


def read_site_file(path: Path, area: ServiceArea, kind: str | None = None, datum: str = "wgs84",
                   skip_invalid: bool = False) -> SiteFile:
    """:func:`read_sites` keeping each site's line (or feature number) for messages about it."""
    return validate_file(read_raw(path), str(path), area, kind, datum, skip_invalid)


def read_districts(path: Path) -> list[District]:
    """Read and check a districts (areas) layer such as the bundled ``data/layers/districts.geojson`` (WGS-84)."""
    from geoservice.servicearea import service_area

    return list(service_area(path).districts)


def bundled_site_files(layers_dir: Path) -> list[Path]:
    """The shipped site layers (simulated demo network)."""
    return sorted(layers_dir.glob("sites_*.geojson"))
