"""`/api/v1/sites.geojson` and `/api/v1/sites.csv`: same filters as /api/v1/sites, datum at the edge, loadable."""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from geoservice.exports import CSV_COLUMNS
from geoservice.geo import from_wgs84
from geoservice.model import SiteFilter
from geoservice.services import Services

from .conftest import run_cli


def _get(client, url: str):  # type: ignore[no-untyped-def]
    """GET a streamed download, read it whole and close it (ResourceWarning is an error here)."""
    resp = client.get(url)
    body = resp.get_data()
    resp.close()
    return resp, body


def test_csv_export_in_gcj02_with_bom(client, demo_embedded: Services) -> None:  # type: ignore[no-untyped-def]
    resp, body = _get(client, "/api/v1/sites.csv?kind=worker_home&crs=gcj02&bom=true")
    assert resp.status_code == 200
    assert resp.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert resp.headers["Content-Disposition"] == 'attachment; filename="sites-worker_home-gcj02.csv"'
    assert resp.headers["X-Coordinate-Datum"] == "gcj02"
    assert body.startswith(b"\xef\xbb\xbf")  # UTF-8 BOM for Excel
    rows = list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"), newline="")))
    assert tuple(rows[0]) == CSV_COLUMNS
    sites, total = demo_embedded.sites.list_sites(SiteFilter(kinds=("worker_home",), limit=1000))
    assert len(rows) == total == int(resp.headers["X-Total-Count"]) == 159
    by_id = {s.id: s for s in sites}
    for row in rows[:40]:
        site = by_id[row["id"]]
        glon, glat = from_wgs84(site.lon, site.lat, "gcj02")
        assert float(row["lon"]) == pytest.approx(glon, abs=2e-8)
        assert float(row["lat"]) == pytest.approx(glat, abs=2e-8)
        assert row["crs"] == "gcj02" and row["kind"] == "worker_home"
        assert row["amenities"] == ";".join(site.amenities)
        assert row["name_zh"] == site.name_zh and row["opening_hours"] == site.opening_hours


def test_geojson_export_matches_the_listing_filters(client, demo_embedded: Services) -> None:  # type: ignore[no-untyped-def]
    bbox = (116.38, 39.90, 116.42, 39.94)
    resp, body = _get(client, "/api/v1/sites.geojson?district=110101&kind=warm_station,mother_baby_room&bbox="
                      + ",".join(map(str, bbox)))
    assert resp.status_code == 200 and resp.mimetype == "application/geo+json"
    assert 'filename="sites-warm_station-mother_baby_room-110101-wgs84.geojson"' in resp.headers["Content-Disposition"]
    doc = json.loads(body)
    assert doc["type"] == "FeatureCollection" and doc["datum"] == "wgs84"
    _, total = demo_embedded.sites.list_sites(SiteFilter(bbox=bbox, kinds=("warm_station", "mother_baby_room"),
                                                   district="110101", limit=1))
    assert total > 0 and len(doc["features"]) == total
    ids = [f["id"] for f in doc["features"]]
    assert len(set(ids)) == total
    for f in doc["features"]:
        lon, lat = f["geometry"]["coordinates"]
        assert bbox[0] <= lon <= bbox[2] and bbox[1] <= lat <= bbox[3]
        assert f["properties"]["district_adcode"] == "110101"


@pytest.mark.parametrize("url,field,status", [
    ("/api/v1/sites.csv?limit=5", "limit", 400),
    ("/api/v1/sites.geojson?bom=true", "bom", 400),
    ("/api/v1/sites.csv?crs=epsg4326", "crs", 422),
    ("/api/v1/sites.csv?kind=hotel", "kind", 422),
    ("/api/v1/sites.geojson?district=999999", "district", 422),
    ("/api/v1/sites.csv?bbox=1,2,3", "bbox", 400),
])
def test_bad_export_parameters_are_problems(client, url: str, field: str, status: int) -> None:  # type: ignore[no-untyped-def]
    resp = client.get(url)
    assert resp.status_code == status
    assert resp.mimetype == "application/problem+json"
    assert resp.get_json()["errors"][0]["field"] == field


def test_api_csv_download_loads_back(client, demo_embedded: Services, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _resp, body = _get(client, "/api/v1/sites.csv?kind=worker_home&crs=bd09")
    path = tmp_path / "homes-bd09.csv"
    path.write_bytes(body)
    env = {"DATABASE_URL": "", "GEOSERVICE_EMBEDDED_PATH": str(tmp_path / "fresh.sqlite")}
    result = run_cli(env, "load", str(path), "--kind", "worker_home", "--crs", "bd09")
    assert result.exit_code == 0, result.output
    assert "159 inserted" in result.output
    from geoservice.store.embedded import EmbeddedStore

    fresh = Services.over(EmbeddedStore(tmp_path / "fresh.sqlite"))
    try:
        back, _ = fresh.sites.list_sites(SiteFilter(limit=1000))
        originals = {s.id: s for s in demo_embedded.sites.list_sites(SiteFilter(kinds=("worker_home",), limit=1000))[0]}
        assert {s.id for s in back} == set(originals)
        for site in back:
            orig = originals[site.id]
            assert site.lon == pytest.approx(orig.lon, abs=1e-6) and site.lat == pytest.approx(orig.lat, abs=1e-6)
            assert site.district_adcode == orig.district_adcode and site.amenities == orig.amenities
    finally:
        fresh.close()
