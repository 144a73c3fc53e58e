"""The service area: the areas layer a deployment serves (``GEOSERVICE_SERVICE_AREA``), read and checked once.

An areas layer has the shape of the bundled ``data/layers/districts.geojson``: a GeoJSON FeatureCollection in
WGS-84 of Polygons or MultiPolygons, each with a code (``adcode``, or ``code``) and ``name_zh``/``name_en``;
``area_km2`` (computed on the ellipsoid when absent) and ``population_2020`` (0, i.e. unknown, when absent) are
optional. ``metadata.service_area`` — ``{"code", "name_zh", "name_en"}`` and optionally ``"centre": [lon, lat]``
(where the pages open their map) — names the whole area; a layer of a single area may leave it out and is then
named after that area. Everything that used to assume Beijing derives from it: the loader's inside-the-area
check and district assignment, the pages' initial view, the planners' city-wide row, collection texts.

Every problem is collected (``file``, ``feature N``, field, reason) before the service starts, so a bad file is a
settings problem naming the file and the feature, never a traceback.
"""
from __future__ import annotations

import dataclasses
import functools
import json
import math
from pathlib import Path
from typing import Any

import shapely
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

from geoservice.geo import area_km2
from geoservice.model import District
from geoservice.validation import Problem, ValidationFailed

BUNDLED_FILE = "districts.geojson"
MAX_CODE = 40
WHOLE_CODE = "all"  # the whole area's code when a one-area layer does not name it (never an area's own code)
MAX_NAME = 200


@dataclasses.dataclass(frozen=True)
class AreaLayer:
    """A checked areas layer: the whole area's code and names, its areas (as districts) and where it is."""

    path: str
    code: str
    name_zh: str
    name_en: str
    districts: tuple[District, ...]
    centre: tuple[float, float]  # lon, lat: where the pages open the map

    @property
    def label(self) -> str:
        """``北京市 / Beijing``: the area's name in both languages, for messages."""
        return f"{self.name_zh} / {self.name_en}"

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """lon_min, lat_min, lon_max, lat_max (WGS-84) of all the areas."""
        boxes = [d.geometry.bounds for d in self.districts]
        return (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes),
                max(b[3] for b in boxes))



def _text(value: Any, limit: int) -> str | None:
    """A non-empty text (numbers allowed for codes) of at most ``limit`` characters, or None."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        return None
    text = str(value).strip()
    return text if text and len(text) <= limit else None


def _geometry(raw: Any) -> tuple[BaseGeometry | None, str | None]:
    """A valid, non-empty WGS-84 (Multi)Polygon, or the reason it is not one."""
    kind = raw.get("type") if isinstance(raw, dict) else None
    if kind not in ("Polygon", "MultiPolygon"):
        return None, f"must be a Polygon or MultiPolygon, got {kind or 'missing'}"
    try:
        geom = shape(raw)
    except (ValueError, TypeError, AttributeError, IndexError) as exc:
        return None, f"cannot be read as {kind} ({exc})"
    if geom.is_empty:
        return None, "is empty"
    x0, y0, x1, y1 = geom.bounds
    if not all(math.isfinite(v) for v in (x0, y0, x1, y1)) or x0 < -180 or x1 > 180 or y0 < -90 or y1 > 90:
        return None, "coordinates are not WGS-84 longitude/latitude"
    if not geom.is_valid:
        return None, f"is not a valid polygon ({shapely.is_valid_reason(geom)})"
    return geom, None


def _district(n: int, feature: Any, seen: dict[str, str], problems: list[Problem]) -> District | None:
    """One feature as a District, adding its problems (``feature N``) to ``problems``."""
    where = f"feature {n}"
    if not isinstance(feature, dict):
        problems.append(Problem("feature", "is not a GeoJSON Feature object", where))
        return None
    raw_props = feature.get("properties")
    props: dict[str, Any] = raw_props if isinstance(raw_props, dict) else {}
    before = len(problems)
    code = _text(props.get("adcode", props.get("code", feature.get("id"))), MAX_CODE)
    if code is None:
        problems.append(Problem("adcode", f"missing or longer than {MAX_CODE} characters: every area needs a code",
                                where))
    elif code in seen:
        problems.append(Problem("adcode", f"{code!r} repeats {seen[code]}", where))
    else:
        seen[code] = where
    names = {f: _text(props.get(f), MAX_NAME) for f in ("name_zh", "name_en")}
    problems.extend(Problem(f, f"missing or longer than {MAX_NAME} characters", where)
                    for f, v in names.items() if v is None)
    geom, why = _geometry(feature.get("geometry"))
    if why:
        problems.append(Problem("geometry", why, where))
    population = props.get("population_2020", 0)
    if isinstance(population, bool) or not isinstance(population, int) or population < 0:
        problems.append(Problem("population_2020", "must be a whole number ≥ 0 (or absent)", where))
    km2 = props.get("area_km2")
    if km2 is not None and (isinstance(km2, bool) or not isinstance(km2, (int, float)) or not km2 > 0):
        problems.append(Problem("area_km2", "must be a number > 0 (or absent: computed)", where))
    if len(problems) > before or geom is None or code is None:
        return None
    return District(code, str(names["name_zh"]), str(names["name_en"]),
                    float(km2) if km2 is not None else round(area_km2(geom), 2), int(population), geom)


def _whole(meta: Any, districts: list[District], problems: list[Problem]) -> dict[str, Any]:
    """The whole area's code, names and centre from ``metadata.service_area`` (or the single area)."""
    given = meta.get("service_area") if isinstance(meta, dict) else None
    if given is None:
        if len(districts) == 1:
            only = districts[0]
            return {"code": WHOLE_CODE, "name_zh": only.name_zh, "name_en": only.name_en, "centre": None}
        problems.append(Problem("metadata.service_area", "missing: a layer of several areas names the whole "
                                                         "area as {\"code\", \"name_zh\", \"name_en\"}"))
        return {}
    if not isinstance(given, dict):
        problems.append(Problem("metadata.service_area", "must be an object {code, name_zh, name_en}"))
        return {}
    out: dict[str, Any] = {f: _text(given.get(f), MAX_CODE if f == "code" else MAX_NAME)
                           for f in ("code", "name_zh", "name_en")}
    problems.extend(Problem(f"metadata.service_area.{f}", "missing or too long") for f, v in out.items() if v is None)
    if out["code"] in {d.adcode for d in districts}:
        problems.append(Problem("metadata.service_area.code", f"{out['code']!r} is also an area's code: the whole "
                                                              "area needs its own (its city-wide rows use it)"))
    centre = given.get("centre")
    out["centre"] = None
    if centre is not None:
        ok = (isinstance(centre, list) and len(centre) == 2
              and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in centre))
        if not ok:
            problems.append(Problem("metadata.service_area.centre", "must be [lon, lat]"))
        else:
            out["centre"] = (float(centre[0]), float(centre[1]))
    return out


def _centre(districts: list[District], given: tuple[float, float] | None, problems: list[Problem]
            ) -> tuple[float, float]:
    """The given centre if it lies in the area, else a point inside the area near its middle."""
    if given is not None:
        if any(d.geometry.covers(shapely.Point(given)) for d in districts):
            return given
        problems.append(Problem("metadata.service_area.centre", f"{list(given)} is outside the areas"))
    union = shapely.union_all([d.geometry for d in districts])
    middle = union.centroid
    point = middle if union.covers(middle) else union.point_on_surface()
    return float(point.x), float(point.y)


def read_service_area(path: Path) -> AreaLayer:
    """Read and check an areas layer; ``ValidationFailed`` (source: the file) lists every problem."""
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8-sig"))
    except OSError as exc:
        raise ValidationFailed([Problem("file", f"cannot be read ({exc.strerror or exc})")], str(path)) from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValidationFailed([Problem("file", f"not valid UTF-8 JSON ({exc})")], str(path)) from None
    if not isinstance(doc, dict) or doc.get("type") != "FeatureCollection" or not isinstance(
            doc.get("features"), list):
        raise ValidationFailed([Problem("file", "expected a GeoJSON FeatureCollection")], str(path))
    problems: list[Problem] = []
    seen: dict[str, str] = {}
    districts = [d for n, f in enumerate(doc["features"], start=1)
                 if (d := _district(n, f, seen, problems)) is not None]
    if not doc["features"]:
        problems.append(Problem("features", "no areas: the layer needs at least one Polygon or MultiPolygon"))
    whole = _whole(doc.get("metadata"), districts, problems) if districts else {}
    centre = _centre(districts, whole.get("centre"), problems) if districts else (0.0, 0.0)
    if problems:
        raise ValidationFailed(problems, str(path))
    return AreaLayer(str(path), whole["code"], whole["name_zh"], whole["name_en"], tuple(districts), centre)


@functools.lru_cache(maxsize=8)
def _cached(path: str, mtime_ns: int, size: int) -> AreaLayer:
    return read_service_area(Path(path))


def service_area(path: Path) -> AreaLayer:
    """:func:`read_service_area`, read once per file version (settings are built often, the file is large)."""
    try:
        stat = Path(path).stat()
    except OSError:
        return read_service_area(path)  # says why it cannot be read
    return _cached(str(Path(path).resolve()), stat.st_mtime_ns, stat.st_size)
