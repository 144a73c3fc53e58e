"""The planners' API: per-district JSON, gap GeoJSON, recommendations; problem+json naming the field."""
from __future__ import annotations

import re

import pytest
import shapely
from shapely.geometry import shape

from tests.support import demo

from .conftest import MONDAY_2200


def test_coverage_per_district(coverage_client, monday) -> None:  # type: ignore[no-untyped-def]
    resp = coverage_client.get(f"/api/v1/coverage?at={MONDAY_2200}")
    assert resp.status_code == 200 and resp.mimetype == "application/json"
    body = resp.get_json()
    assert body["query"]["at"] == "2026-11-23T22:00+08:00" and body["query"]["radius_m"] == 1000
    assert len(body["districts"]) == 16 and body["city"]["adcode"] == "110000"
    dongcheng = next(d for d in body["districts"] if d["adcode"] == "110101")
    for key in ("area_km2", "area_share", "demand_share", "open_sites", "sites", "sites_per_10k",
                "open_sites_per_10k", "open_warm_station", "sites_warm_station", "median_distance_m"):
        assert key in dongcheng
    assert body["city"]["demand_share"] == pytest.approx(monday.summary["city"]["demand_share"], rel=1e-5)
    assert body["city"]["open_sites"] == monday.summary["city"]["open_sites"]
    assert {w["code"] for w in body["warnings"]} == {"simulated-sites"}
    assert body["method"]["walk_model"]["detour_factor"] == 1.3


def test_walk_minutes_and_kind(coverage_client) -> None:  # type: ignore[no-untyped-def]
    body = coverage_client.get(f"/api/v1/coverage?at={MONDAY_2200}&kind=warm_station&walk_minutes=13").get_json()
    assert body["query"]["radius_m"] == pytest.approx(13 * 75 / 1.3)
    assert body["query"]["kind"] == ["warm_station"]
    assert body["city"]["sites"] == body["city"]["sites_warm_station"] == demo.by_kind()["warm_station"]


def test_gaps_geojson(coverage_client, monday) -> None:  # type: ignore[no-untyped-def]
    resp = coverage_client.get(f"/api/v1/coverage/gaps?at={MONDAY_2200}&simplify_m=20")
    assert resp.status_code == 200 and resp.mimetype == "application/geo+json"
    body = resp.get_json()
    assert body["type"] == "FeatureCollection" and body["numberReturned"] == len(body["features"])
    areas = {f["properties"]["adcode"]: f["properties"]["area_km2"] for f in body["features"]}
    expected = monday.gaps.set_index("adcode")["area_km2"]
    assert areas == pytest.approx(expected.to_dict(), rel=1e-5)
    for f in body["features"]:
        geom = shape(f["geometry"])
        assert (geom.geom_type in ("Polygon", "MultiPolygon") and shapely.is_valid(geom)) or geom.buffer(0).area > 0
    gcj = coverage_client.get(f"/api/v1/coverage/gaps?at={MONDAY_2200}&simplify_m=20&crs=gcj02").get_json()
    x_wgs = shape(body["features"][0]["geometry"]).centroid.x
    assert shape(gcj["features"][0]["geometry"]).centroid.x - x_wgs == pytest.approx(0.006, abs=0.004)


def test_recommendations(coverage_client) -> None:  # type: ignore[no-untyped-def]
    body = coverage_client.get(f"/api/v1/coverage/recommendations?at={MONDAY_2200}&n=4").get_json()
    assert body["numberReturned"] == 4
    props = [f["properties"] for f in body["features"]]
    assert [p["rank"] for p in props] == [1, 2, 3, 4]
    assert all(p["added_demand"] > 0 for p in props)
    assert props[-1]["demand_share_after"] > body["optimisation"]["baseline_demand_share"]
    assert body["optimisation"]["method"] == "greedy" and 0 <= body["optimisation"]["gap"] < 0.37


@pytest.mark.parametrize("query, field, status", [
    ("radius_m=abc", "radius_m", 400),
    ("radius_m=5", "radius_m", 422),
    ("walk_minutes=0", "walk_minutes", 422),
    ("kind=castle", "kind", 422),
    ("at=yesterday", "at", 400),
    ("resolution=12", "resolution", 422),
    ("colour=red", "colour", 400),
])
def test_bad_parameters_name_the_field(coverage_client, query: str, field: str, status: int) -> None:  # type: ignore[no-untyped-def]
    for path in ("/api/v1/coverage", "/api/v1/coverage/gaps", "/api/v1/coverage/recommendations"):
        resp = coverage_client.get(f"{path}?{query}")
        assert resp.status_code == status and resp.mimetype == "application/problem+json", (path, query)
        assert resp.get_json()["errors"][0]["field"] == field


def test_walk_minutes_win_over_radius_and_say_so(coverage_client) -> None:  # type: ignore[no-untyped-def]
    for path in ("/api/v1/coverage", "/api/v1/coverage/gaps", "/api/v1/coverage/recommendations"):
        both = coverage_client.get(f"{path}?radius_m=500&walk_minutes=5&resolution=7")
        alone = coverage_client.get(f"{path}?walk_minutes=5&resolution=7")
        assert both.status_code == alone.status_code == 200, path
        warned = [w["code"] for w in both.get_json()["warnings"]]
        assert "radius-ignored" in warned and "radius-ignored" not in [w["code"] for w in alone.get_json()["warnings"]]
        assert both.get_json()["query"]["radius_m"] == alone.get_json()["query"]["radius_m"] != 500


def test_recommendation_count_is_bounded(coverage_client) -> None:  # type: ignore[no-untyped-def]
    resp = coverage_client.get("/api/v1/coverage/recommendations?n=500")
    assert resp.status_code == 422 and resp.get_json()["errors"][0]["field"] == "n"
    assert coverage_client.get("/maps/coverage?tiles=baidu").get_json()["errors"][0]["field"] == "tiles"


def test_grid_is_built_once_per_resolution(app, coverage_client, grid_cache) -> None:  # type: ignore[no-untyped-def]
    before = len(grid_cache._items)
    coverage_client.get(f"/api/v1/coverage?at={MONDAY_2200}")
    coverage_client.get(f"/api/v1/coverage?at={MONDAY_2200}&radius_m=700")
    assert len(grid_cache._items) == before  # the r9 grid was already cached by the planner fixture


def test_openapi_lists_the_planners_paths(coverage_client) -> None:  # type: ignore[no-untyped-def]
    paths = coverage_client.get("/api/v1/openapi.json").get_json()["paths"]
    for path in ("/api/v1/coverage", "/api/v1/coverage/gaps", "/api/v1/coverage/recommendations"):
        names = {p["name"] for p in paths[path]["get"]["parameters"]}
        assert {"at", "kind", "radius_m", "walk_minutes"} <= names


def test_the_map_draws_beijing_embedded_and_tiles_only_on_a_wgs84_base_map(coverage_client) -> None:  # type: ignore[no-untyped-def]
    auto = coverage_client.get(f"/maps/coverage?at={MONDAY_2200}&n=0").get_data(as_text=True)
    assert "leaflet.markercluster.js" in auto and "Leaflet.VectorGrid" not in auto  # 11,829 sites: embedded
    tiled = coverage_client.get(f"/maps/coverage?at={MONDAY_2200}&n=0&sites=tiles").get_data(as_text=True)
    site_id = re.compile(r"\"s[0-9a-f]{12}\"")
    assert len(site_id.findall(auto)) == 11_829 and "Leaflet.VectorGrid.bundled.min.js" in tiled
    assert site_id.findall(tiled) == [] and len(tiled) < len(auto) - 500_000  # no site in the page
    assert "/tiles/warm_stations/{z}/{x}/{y}.mvt?open_at=2026-11-23T22%3A00%3A00%2B08%3A00" in tiled
    refused = coverage_client.get(f"/maps/coverage?at={MONDAY_2200}&sites=tiles&tiles=amap")
    assert refused.status_code == 422 and refused.get_json()["errors"][0]["field"] == "sites"


def test_planners_requests_give_freed_memory_back(coverage_client, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import geoservice.api.coverage as route

    calls: list[int] = []
    monkeypatch.setattr(route, "release_freed_memory", lambda: calls.append(1))
    assert coverage_client.get(f"/api/v1/coverage?at={MONDAY_2200}").status_code == 200
    assert calls == [1]  # a worker does not stay as large as its largest coverage run (bench/bench_gridfile.py)
