"""Hostile input gets a clear 4xx problem and never reaches SQL unchecked (run on both stores)."""
from __future__ import annotations

from pathlib import Path

import pytest

from geoservice import create_app
from geoservice.model import SiteFilter
from geoservice.services import Services
from geoservice.settings import Settings

SQL_META = ["'", "\"", ";", "--", "' OR '1'='1", "1; DROP TABLE sites; --", "%", "_", "\\", "$1", "\x00",
            "𝔘𝔫𝔦𝔠𝔬𝔡𝔢", "ﾟ･✿ヾ╲(｡◕‿◕｡)╱✿･ﾟ", "A" * 5000]
STRING_PARAMS = {
    "/api/v1/sites/nearest": {"base": {"lat": "39.9", "lon": "116.4"},
                              "params": ["kind", "amenity", "at", "crs", "include_closed", "lat", "lon", "limit",
                                         "arrive_within", "max_distance_m"]},
    "/api/v1/sites": {"base": {}, "params": ["bbox", "kind", "district", "open_at", "limit", "offset", "crs"]},
    "/api/v1/districts": {"base": {}, "params": ["geometry", "crs"]},
}


@pytest.fixture
def hostile_client(store: Services, tmp_path: Path):  # type: ignore[no-untyped-def]
    from tests.support.sites import BASIC, make_sites

    store.sites.upsert_sites(make_sites(store, BASIC))
    app = create_app(Settings(embedded_path=tmp_path / "unused.sqlite"), services=store, prepare=False)
    return app.test_client()


def test_sql_metacharacters_in_every_string_parameter(hostile_client, store: Services) -> None:  # type: ignore[no-untyped-def]
    for path, spec in STRING_PARAMS.items():
        for param in spec["params"]:
            for value in SQL_META:
                resp = hostile_client.get(path, query_string=spec["base"] | {param: value})
                assert 400 <= resp.status_code < 500, (path, param, value[:20], resp.status_code)
                assert resp.mimetype == "application/problem+json"
                assert resp.get_json()["errors"][0]["field"] == param
        for value in SQL_META:
            resp = hostile_client.get(f"/api/v1/sites/{value}" if "/" not in value else "/api/v1/sites/x%2Fy")
            assert resp.status_code in (404, 400), (value[:20], resp.status_code)
    assert store.sites.list_sites(SiteFilter(limit=1))[1] == 5  # nothing was dropped or changed


@pytest.mark.parametrize("value", ["NaN", "nan", "Infinity", "-inf", "1e999", "0x1A", "", " "])
def test_non_finite_and_odd_numbers(hostile_client, value: str) -> None:  # type: ignore[no-untyped-def]
    resp = hostile_client.get("/api/v1/sites/nearest", query_string={"lat": value, "lon": "116.4"})
    assert resp.status_code == 400 and resp.get_json()["errors"][0]["field"] == "lat"


def test_huge_limits_and_offsets(hostile_client) -> None:  # type: ignore[no-untyped-def]
    for path, params in [("/api/v1/sites/nearest", {"lat": 39.9, "lon": 116.4, "limit": 10**12}),
                         ("/api/v1/sites", {"limit": 10**6}), ("/api/v1/sites", {"offset": 10**30}),
                         ("/api/v1/sites/nearest", {"lat": 39.9, "lon": 116.4, "max_distance_m": 1e308})]:
        resp = hostile_client.get(path, query_string=params)
        assert resp.status_code == 422, (path, params)


def test_invalid_utf8_in_the_query_string(hostile_client) -> None:  # type: ignore[no-untyped-def]
    resp = hostile_client.get("/api/v1/sites/nearest?lat=39.9&lon=116.4&kind=%ff%fe%fa")
    assert 400 <= resp.status_code < 500
    assert resp.mimetype == "application/problem+json"


def test_oversized_request_body_is_413(hostile_client) -> None:  # type: ignore[no-untyped-def]
    resp = hostile_client.post("/api/v1/sites/nearest", data=b"x" * (6 * 1024 * 1024),
                               content_type="application/octet-stream")
    assert resp.status_code in (405, 413)  # GET-only route: refused before the body is read
    assert resp.mimetype == "application/problem+json"


def test_invalid_geometries_in_an_uploaded_file_change_nothing(store: Services, tmp_path: Path) -> None:
    import json

    from click.testing import CliRunner

    from geoservice.cli import main

    path = tmp_path / "broken.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "id": "a", "geometry": {"type": "Point", "coordinates": ["x", None]},
         "properties": {"name_zh": "甲", "opening_hours": "24/7"}},
        {"type": "Feature", "id": "b", "geometry": {"type": "Point", "coordinates": [116.4]},
         "properties": {"name_zh": "乙", "opening_hours": "24/7"}},
        {"type": "Feature", "id": "c", "geometry": {"type": "Polygon", "coordinates": [[[116, 39], [116, 39]]]},
         "properties": {"name_zh": "丙", "opening_hours": "24/7"}},
        {"type": "Feature", "id": "d", "geometry": None, "properties": {"name_zh": "丁", "opening_hours": "24/7"}},
        "not a feature",
    ]}), encoding="utf-8")
    env = {"DATABASE_URL": store.spatial.url} if store.backend == "postgis" else {  # type: ignore[attr-defined]
        "DATABASE_URL": "", "GEOSERVICE_EMBEDDED_PATH": str(store.spatial.path)}  # type: ignore[attr-defined]
    result = CliRunner().invoke(main, ["load", str(path), "--kind", "warm_station"], env=env)
    assert result.exit_code == 1
    for n in range(1, 6):
        assert f"{path}:feature {n}: geometry:" in result.output or f"feature {n}: lon/lat" in result.output
    assert "Traceback" not in result.output
    assert store.sites.list_sites(SiteFilter(limit=1))[1] == 0


def test_a_50_mb_csv_upload_is_refused_and_changes_nothing(store: Services, tmp_path: Path) -> None:
    from tests.support.sites import sid
    from tests.support.world import build_world, rows_of_every_table

    world = build_world(store, tmp_path)
    before = rows_of_every_table(store)
    line = f"{sid('op-a')},Mo-Su 08:00-20:00,,,\n"
    body = ("site_id,opening_hours,closed_from,closed_to,reason\n" + line * (50 * 1024 * 1024 // len(line)))
    resp = world.client.post("/api/v1/operator/bulk", data=body.encode(), content_type="text/csv",
                             headers=world.auth("alice"))
    assert resp.status_code == 413 and resp.mimetype == "application/problem+json"
    assert rows_of_every_table(store) == before
