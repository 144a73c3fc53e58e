"""Coverage on hand-made geometry where the answer is known analytically."""
from __future__ import annotations

import datetime as dt
import math

import geopandas as gpd
import numpy as np
import pytest
import shapely
from pyproj import Proj

from geoservice.analysis import build_grid, coverage_at, radius_for_walk_minutes, sites_frame, uniform_demand
from geoservice.analysis.grid import WGS84, to_wgs84
from geoservice.calendar import bundled_calendar
from geoservice.geo import METRIC_CRS
from geoservice.hours import TZ, HoursEngine
from geoservice.model import Closure, Site
from geoservice.walk import WalkModel

# A 6 km square in UTM 50N (EPSG:32650) near Beijing, two sites 3 km apart on its middle line.
X0, Y0, SIDE = 440_000.0, 4_420_000.0, 6_000.0
R = 2_000.0
OPEN_XY = (X0 + 1_500.0, Y0 + 3_000.0)    # 24/7: its disc is cut by the left edge (1.5 km away)
CLOSED_XY = (X0 + 4_500.0, Y0 + 3_000.0)  # office hours: closed on Monday evening
MONDAY_2200 = dt.datetime(2026, 11, 23, 22, 0, tzinfo=TZ)
MONDAY_1000 = dt.datetime(2026, 11, 23, 10, 0, tzinfo=TZ)


def segment(r: float, d: float) -> float:
    """Area of the part of a disc of radius r beyond a line at distance d from its centre."""
    return r * r * math.acos(d / r) - d * math.sqrt(r * r - d * d)


def lens(r: float, d: float) -> float:
    """Overlap area of two discs of radius r whose centres are d apart."""
    return 2 * r * r * math.acos(d / (2 * r)) - d / 2 * math.sqrt(4 * r * r - d * d)


@pytest.fixture(scope="module")
def square() -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    metric = shapely.segmentize(shapely.box(X0, Y0, X0 + SIDE, Y0 + SIDE), 50.0)
    districts = gpd.GeoDataFrame({"adcode": ["990001"], "name_zh": ["方形区"], "name_en": ["Square"],
                                  "population_2020": [100_000], "area_km2": [36.0]},
                                 geometry=[to_wgs84(metric)], crs=WGS84)
    grid = build_grid(districts, 10)
    grid["demand"] = uniform_demand(grid, districts)
    return districts, grid


def _sites() -> gpd.GeoDataFrame:
    lon, lat = Proj(METRIC_CRS)(*zip(OPEN_XY, CLOSED_XY), inverse=True)
    return sites_frame([
        Site(id="open", kind="warm_station", name_zh="全天", lon=lon[0], lat=lat[0], opening_hours="24/7",
             district_adcode="990001"),
        Site(id="office", kind="warm_station", name_zh="白天", lon=lon[1], lat=lat[1],
             opening_hours="Mo-Fr 08:30-17:30; PH off", district_adcode="990001"),
    ])


def test_grid_area_is_the_square(square) -> None:  # type: ignore[no-untyped-def]
    _districts, grid = square
    # Grid areas are planar UTM areas divided by the areal scale factor, i.e. true (ellipsoidal) areas.
    k2 = Proj(METRIC_CRS).get_factors(*to_wgs84(shapely.Point(X0 + 3000, Y0 + 3000)).coords[0]).areal_scale
    assert grid["area_m2"].sum() == pytest.approx(SIDE * SIDE / k2, rel=1e-4)
    assert grid["clipped"].any() and (grid["adcode"] == "990001").all()


def test_one_site_closed_covered_share_is_analytic(square) -> None:  # type: ignore[no-untyped-def]
    districts, grid = square
    result = coverage_at(grid, districts, _sites(), MONDAY_2200, HoursEngine(bundled_calendar()), radius_m=R)
    expected = (math.pi * R * R - segment(R, 1_500.0)) / SIDE**2
    row = result.districts.iloc[0]
    assert row["open_sites"] == 1 and row["sites"] == 2
    assert row["area_share"] == pytest.approx(expected, rel=0.01)
    assert row["demand_share"] == pytest.approx(expected, rel=0.01)  # uniform demand: same share
    assert result.summary["city"]["area_share"] == pytest.approx(expected, rel=0.01)
    # The gap is the square minus the (clipped) disc, dissolved into one polygon.
    gap = result.gaps.iloc[0]
    assert gap["area_km2"] == pytest.approx((SIDE**2 - math.pi * R * R + segment(R, 1_500.0)) / 1e6, rel=0.01)
    assert gap["parts"] == 1


def test_both_open_union_of_two_discs(square) -> None:  # type: ignore[no-untyped-def]
    districts, grid = square
    result = coverage_at(grid, districts, _sites(), MONDAY_1000, HoursEngine(bundled_calendar()), radius_m=R)
    expected = (2 * (math.pi * R * R - segment(R, 1_500.0)) - lens(R, 3_000.0)) / SIDE**2
    assert result.districts.iloc[0]["area_share"] == pytest.approx(expected, rel=0.01)
    assert result.districts.iloc[0]["open_sites"] == 2


def test_closure_and_holiday_close_the_office(square) -> None:  # type: ignore[no-untyped-def]
    districts, grid = square
    engine = HoursEngine(bundled_calendar())
    sites = _sites()
    sites.at[1, "closures"] = (Closure("office", dt.date(2026, 11, 23), dt.date(2026, 11, 23), "repairs"),)
    closed = coverage_at(grid, districts, sites, MONDAY_1000, engine, radius_m=R)
    holiday = coverage_at(grid, districts, _sites(), dt.datetime(2026, 10, 1, 10, tzinfo=TZ), engine, radius_m=R)
    one = (math.pi * R * R - segment(R, 1_500.0)) / SIDE**2
    for result in (closed, holiday):
        assert result.districts.iloc[0]["open_sites"] == 1
        assert result.districts.iloc[0]["area_share"] == pytest.approx(one, rel=0.01)


def test_distances_are_to_the_nearest_open_site(square) -> None:  # type: ignore[no-untyped-def]
    districts, grid = square
    result = coverage_at(grid, districts, _sites(), MONDAY_2200, HoursEngine(bundled_calendar()), radius_m=R)
    cells = result.cells
    brute = np.hypot(cells["x"] - OPEN_XY[0], cells["y"] - OPEN_XY[1])
    np.testing.assert_allclose(cells["distance_m"], brute, rtol=1e-9)
    assert ((cells["distance_m"] <= R) == cells["covered"]).all()


def test_walk_minutes_use_the_api_walk_model() -> None:
    assert radius_for_walk_minutes(13) == pytest.approx(13 * 75 / 1.3)
    assert radius_for_walk_minutes(10, WalkModel(detour_factor=1.5, speed_m_per_min=60)) == pytest.approx(400)


def test_no_open_site_means_nothing_covered(square) -> None:  # type: ignore[no-untyped-def]
    districts, grid = square
    sites = _sites().iloc[[1]].reset_index(drop=True)
    result = coverage_at(grid, districts, sites, MONDAY_2200, HoursEngine(bundled_calendar()), radius_m=R)
    assert result.districts.iloc[0]["area_share"] == 0
    assert np.isinf(result.cells["distance_m"]).all()
    assert result.gaps.iloc[0]["area_km2"] == pytest.approx(grid["area_m2"].sum() / 1e6)
