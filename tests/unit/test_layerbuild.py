"""Tests for the bundled layers in geoservice/data/layers/ and their builders in tools.layers."""
from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import opening_hours
import pytest
import shapely
from shapely.geometry import shape

from geoservice.geo import area_km2
from geoservice.model import AMENITIES, KINDS
from tools.layers import LAYERS_DIR, demo_sites, districts

DISTRICTS_PATH = LAYERS_DIR / "districts.geojson"
EXPECTED_ADCODES = [
    "110101", "110102", "110105", "110106", "110107", "110108", "110109", "110111",
    "110112", "110113", "110114", "110115", "110116", "110117", "110118", "110119",
]
EXPECTED_TOTALS = {"warm_station": 9650, "mother_baby_room": 2020, "worker_home": 159}
SITE_FILES = {kind: LAYERS_DIR / f"sites_{kind}_simulated.geojson" for kind in EXPECTED_TOTALS}
ID_PATTERN = {"warm_station": r"sim-ws-\d{5}", "mother_baby_room": r"sim-mb-\d{5}",
              "worker_home": r"sim-wh-\d{5}"}


@cache
def _load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


@cache
def _district_geoms() -> dict[str, shapely.MultiPolygon]:
    out = {}
    for feat in _load(DISTRICTS_PATH)["features"]:
        geom = shape(feat["geometry"])
        shapely.prepare(geom)
        out[feat["properties"]["adcode"]] = geom
    return out


def _points(kind: str) -> np.ndarray:
    return np.array([f["geometry"]["coordinates"] for f in _load(SITE_FILES[kind])["features"]])


def _count_in(adcode: str, xy: np.ndarray) -> int:
    return int(shapely.contains_xy(_district_geoms()[adcode], xy[:, 0], xy[:, 1]).sum())


# ------------------------------------------------------------------------------------------------------
# districts.geojson
# ------------------------------------------------------------------------------------------------------
def test_districts_features_and_properties() -> None:
    doc = _load(DISTRICTS_PATH)
    assert doc["type"] == "FeatureCollection"
    feats = doc["features"]
    assert [f["properties"]["adcode"] for f in feats] == EXPECTED_ADCODES
    assert [f["id"] for f in feats] == EXPECTED_ADCODES
    assert [f["properties"]["name_en"] for f in feats] == [
        "Dongcheng", "Xicheng", "Chaoyang", "Fengtai", "Shijingshan", "Haidian", "Mentougou", "Fangshan",
        "Tongzhou", "Shunyi", "Changping", "Daxing", "Huairou", "Pinggu", "Miyun", "Yanqing"]
    assert feats[0]["properties"]["name_zh"] == "东城区"
    assert all(f["properties"]["name_zh"].endswith("区") for f in feats)
    assert "converted from GCJ-02" in doc["metadata"]["datum"]
    assert "7th" in doc["metadata"]["population_source"]


def test_districts_area_and_population() -> None:
    feats = _load(DISTRICTS_PATH)["features"]
    total_area = sum(f["properties"]["area_km2"] for f in feats)
    assert total_area == pytest.approx(16_393, rel=0.01)
    assert sum(f["properties"]["population_2020"] for f in feats) == 21_893_095
    assert {f["properties"]["adcode"]: f["properties"]["population_2020"] for f in feats} == \
        districts.POPULATION_2020_CENSUS
    # The stored area is the geodesic area of the stored geometry.
    for f in feats:
        assert area_km2(shape(f["geometry"])) == pytest.approx(f["properties"]["area_km2"], abs=0.006)


def test_districts_geometry_valid_and_known_facts() -> None:
    geoms = _district_geoms()
    for code, geom in geoms.items():
        assert geom.geom_type == "MultiPolygon", code
        assert geom.is_valid, code
    # Tiananmen (WGS-84) lies in Dongcheng and nowhere else.
    inside = [code for code, g in geoms.items() if shapely.contains_xy(g, 116.3975, 39.9087)]
    assert inside == ["110101"]
    # Chaoyang has two parts: the main district and the Capital Airport exclave inside Shunyi.
    assert len(geoms["110105"].geoms) == 2
    assert all(len(g.geoms) == 1 for code, g in geoms.items() if code != "110105")
    # Coordinates are rounded to 6 decimals.
    ring = _load(DISTRICTS_PATH)["features"][0]["geometry"]["coordinates"][0][0]
    assert all(len(repr(v).split(".")[1]) <= 6 for xy in ring[:50] for v in xy)


def test_build_districts_reproduces_committed_file(tmp_path: Path) -> None:
    out = tmp_path / "districts.geojson"
    gdf = districts.build_districts(out)
    assert len(gdf) == 16 and gdf.crs.to_epsg() == 4326
    assert list(gdf["adcode"]) == EXPECTED_ADCODES
    assert out.read_bytes() == DISTRICTS_PATH.read_bytes()


# ------------------------------------------------------------------------------------------------------
# Simulated site layers
# ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", list(EXPECTED_TOTALS))
def test_site_layer_counts_and_metadata(kind: str) -> None:
    doc = _load(SITE_FILES[kind])
    assert doc["type"] == "FeatureCollection"
    assert doc["name"] == f"sites_{kind}_simulated"
    meta = doc["metadata"]
    assert meta["simulated"] is True
    assert "NOT real" in meta["description"]
    assert meta["licence"].startswith("CC0-1.0")
    assert meta["datum"] == "WGS-84 (EPSG:4326)"
    assert meta["seed"] == demo_sites.DEFAULT_SEED
    assert meta["count"] == EXPECTED_TOTALS[kind] == len(doc["features"])
    assert sum(meta["counts_by_district"].values()) == EXPECTED_TOTALS[kind]


def test_warm_stations_in_dongcheng_by_point_in_polygon() -> None:
    assert _count_in("110101", _points("warm_station")) == 644


@pytest.mark.parametrize("kind", list(EXPECTED_TOTALS))
def test_every_site_inside_exactly_its_district(kind: str) -> None:
    feats = _load(SITE_FILES[kind])["features"]
    xy = _points(kind)
    hits = np.zeros(len(xy), dtype=int)
    for code, geom in _district_geoms().items():
        inside = shapely.contains_xy(geom, xy[:, 0], xy[:, 1])
        hits += inside
        claimed = np.array([f["properties"]["district_adcode"] == code for f in feats])
        assert np.array_equal(inside, claimed), code
    assert np.all(hits == 1)


@pytest.mark.parametrize("kind", list(EXPECTED_TOTALS))
def test_site_properties(kind: str) -> None:
    feats = _load(SITE_FILES[kind])["features"]
    ids = [f["id"] for f in feats]
    assert len(set(ids)) == len(ids)
    hours_seen = set()
    for f in feats:
        p = f["properties"]
        assert f["type"] == "Feature" and f["geometry"]["type"] == "Point"
        assert f["id"] == p["source_id"] and re.fullmatch(ID_PATTERN[kind], p["source_id"])
        assert p["kind"] == kind and kind in KINDS
        assert p["simulated"] is True
        assert p["name_zh"] and p["name_en"] and p["operator"] and p["host_type"]
        assert p["address"].startswith("北京市")
        assert p["amenities"] and set(p["amenities"]) <= set(AMENITIES)
        assert len(set(p["amenities"])) == len(p["amenities"])
        assert p["phone"] is None or re.fullmatch(r"010-5\d{3}-\d{4}", p["phone"])
        assert p["notes"] is None or isinstance(p["notes"], str)
        hours_seen.add(p["opening_hours"])
        lon, lat = f["geometry"]["coordinates"]
        assert round(lon, 6) == lon and round(lat, 6) == lat
    for hours in hours_seen:
        assert opening_hours.validate(hours), hours


def test_site_mix_is_realistic() -> None:
    ws = [f["properties"] for f in _load(SITE_FILES["warm_station"])["features"]]
    toilet_share = sum("toilet" in p["amenities"] for p in ws) / len(ws)
    assert 0.5 <= toilet_share <= 0.7
    assert sum("drinking_water" in p["amenities"] for p in ws) / len(ws) > 0.9
    assert {p["host_type"] for p in ws} == {"convenience_store", "fuel_station", "bank", "estate_agency",
                                            "union_station", "community_centre"}
    assert any(p["opening_hours"] == "Tu-Su 09:00-20:00" for p in ws)
    wh = [f["properties"] for f in _load(SITE_FILES["worker_home"])["features"]]
    assert sum(p["opening_hours"] == "24/7" for p in wh) / len(wh) > 0.5
    mb = [f["properties"] for f in _load(SITE_FILES["mother_baby_room"])["features"]]
    assert sum("nursing_chair" in p["amenities"] for p in mb) / len(mb) > 0.9


def test_density_urban_core_above_mountains() -> None:
    areas = {f["properties"]["adcode"]: f["properties"]["area_km2"]
             for f in _load(DISTRICTS_PATH)["features"]}
    for kind in ("warm_station", "mother_baby_room"):
        xy = _points(kind)
        density = {code: _count_in(code, xy) / areas[code] for code in areas}
        for core in ("110101", "110102"):
            for mountain in ("110119", "110109", "110116", "110118"):
                assert density[core] > 20 * density[mountain], (kind, core, mountain)


def test_centres_lie_in_their_districts() -> None:
    geoms = _district_geoms()
    for code, centres in demo_sites.DISTRICT_CENTRES.items():
        for c in centres:
            assert shapely.contains_xy(geoms[code], c.lon, c.lat), (code, c.name)


def test_apportion() -> None:
    assert demo_sites.apportion(10, [1, 1, 1]) == [4, 3, 3]
    assert sum(demo_sites.apportion(9006, [3.0, 2.5, 0.1, 7.7])) == 9006
    with pytest.raises(ValueError):
        demo_sites.apportion(5, [0, 0])


def test_generation_is_reproducible(tmp_path: Path) -> None:
    counts = demo_sites.generate_demo_sites(DISTRICTS_PATH, tmp_path)
    assert counts == EXPECTED_TOTALS
    for kind, committed in SITE_FILES.items():
        assert (tmp_path / committed.name).read_bytes() == committed.read_bytes(), kind


def test_other_seed_gives_other_sites(tmp_path: Path) -> None:
    counts = demo_sites.generate_demo_sites(DISTRICTS_PATH, tmp_path, seed=7)
    assert counts == EXPECTED_TOTALS
    other = json.loads((tmp_path / SITE_FILES["worker_home"].name).read_text(encoding="utf-8"))
    assert other["metadata"]["seed"] == 7
    committed = _load(SITE_FILES["worker_home"])
    assert other["features"][0]["geometry"] != committed["features"][0]["geometry"]
