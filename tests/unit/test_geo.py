"""Tests for geoservice.geo: datum conversion and geodesic helpers."""
from __future__ import annotations

import math

import numpy as np
import pyproj
import pytest
import shapely

from geoservice import geo

# --------------------------------------------------------------------------------------------------------
# Published reference vectors.
# --------------------------------------------------------------------------------------------------------
# wandergis/coordtransform, test/app.js ("//result" block), input (116.404, 39.915) for every function.
# Its gcj02towgs84 is the one-step approximation and its bd09togcj02 the one-step published formula;
# our inverses iterate, so those two are compared with a looser tolerance (see below).
CT_INPUT = (116.404, 39.915)
CT_WGS84_TO_GCJ02 = (116.41024449916938, 39.91640428150164)
CT_GCJ02_TO_BD09 = (116.41036949371029, 39.92133699351021)
CT_BD09_TO_GCJ02_ONE_STEP = (116.39762729119315, 39.90865673957631)
CT_GCJ02_TO_WGS84_ONE_STEP = (116.39775550083061, 39.91359571849836)
# ShangjinTang/GeoCraft README.md (same algorithm, same input): wgs84_to_bd09(116.404, 39.915).
GEOCRAFT_WGS84_TO_BD09 = (116.41662724378733, 39.922699552216216)

# Glatzel/pyxis, Rust crate `crypto` module constants WGS84_LON/LAT, GCJ02_LON/LAT, BD09_LON/LAT
# (the current revision; an older revision of its Python tests had values ~1e-7 degrees different).
PYXIS_WGS84 = (121.0917077, 30.6107779)
PYXIS_GCJ02 = (121.09626927850977, 30.608604368560773)
PYXIS_BD09 = (121.10271724622564, 30.61484575976839)

# hujiulong/gcoord, test/unit/crs/GCJ02.spec.js: GCJ02 -> WGS84 and GCJ02 -> BD09 of (123, 45),
# asserted there with toBeCloseTo(..., 5), i.e. |diff| < 5e-6; plus (183, 45) unchanged (not in China).
GCOORD_GCJ02 = (123.0, 45.0)
GCOORD_GCJ02_TO_WGS84 = (122.99395597, 44.99804071)
GCOORD_GCJ02_TO_BD09 = (123.00636499, 45.00636899)


def _close(actual: tuple[float, float], expected: tuple[float, float], tol: float) -> None:
    assert abs(actual[0] - expected[0]) <= tol, (actual, expected)
    assert abs(actual[1] - expected[1]) <= tol, (actual, expected)


def test_forward_reference_vectors_coordtransform() -> None:
    _close(geo.wgs84_to_gcj02(*CT_INPUT), CT_WGS84_TO_GCJ02, 1e-12)
    _close(geo.gcj02_to_bd09(*CT_INPUT), CT_GCJ02_TO_BD09, 1e-12)
    _close(geo.wgs84_to_bd09(*CT_INPUT), GEOCRAFT_WGS84_TO_BD09, 1e-12)


def test_inverse_reference_vectors_coordtransform_one_step() -> None:
    # The published one-step inverses are off by up to ~1e-6 degrees (~0.1 m); ours are exact inverses.
    _close(geo.bd09_to_gcj02(*CT_INPUT), CT_BD09_TO_GCJ02_ONE_STEP, 2e-6)
    _close(geo.gcj02_to_wgs84(*CT_INPUT), CT_GCJ02_TO_WGS84_ONE_STEP, 2e-5)
    # ...and they really invert the forward transforms.
    _close(geo.gcj02_to_bd09(*geo.bd09_to_gcj02(*CT_INPUT)), CT_INPUT, 1e-9)
    _close(geo.wgs84_to_gcj02(*geo.gcj02_to_wgs84(*CT_INPUT)), CT_INPUT, 1e-9)


def test_reference_vectors_pyxis() -> None:
    _close(geo.wgs84_to_gcj02(*PYXIS_WGS84), PYXIS_GCJ02, 1e-12)
    _close(geo.wgs84_to_bd09(*PYXIS_WGS84), PYXIS_BD09, 1e-12)
    _close(geo.gcj02_to_bd09(*PYXIS_GCJ02), PYXIS_BD09, 1e-12)
    _close(geo.gcj02_to_wgs84(*PYXIS_GCJ02), PYXIS_WGS84, 1e-8)
    _close(geo.bd09_to_wgs84(*PYXIS_BD09), PYXIS_WGS84, 1e-8)
    _close(geo.bd09_to_gcj02(*PYXIS_BD09), PYXIS_GCJ02, 1e-8)


def test_reference_vectors_gcoord() -> None:
    _close(geo.gcj02_to_wgs84(*GCOORD_GCJ02), GCOORD_GCJ02_TO_WGS84, 5e-6)
    _close(geo.gcj02_to_bd09(*GCOORD_GCJ02), GCOORD_GCJ02_TO_BD09, 5e-6)
    assert geo.gcj02_to_wgs84(183.0, 45.0) == (183.0, 45.0)


def _china_grid(n: int = 40) -> tuple[np.ndarray, np.ndarray]:
    lon, lat = np.meshgrid(np.linspace(74.0, 134.5, n), np.linspace(18.0, 53.3, n))
    return lon.ravel(), lat.ravel()


def test_round_trip_gcj02_grid_within_half_metre() -> None:
    lon, lat = _china_grid()
    w_lon, w_lat = geo.gcj02_to_wgs84(lon, lat)
    g_lon, g_lat = geo.wgs84_to_gcj02(w_lon, w_lat)
    assert np.max(geo.geodesic_distance_m(lon, lat, g_lon, g_lat)) < 0.5
    # and the other way round
    g_lon, g_lat = geo.wgs84_to_gcj02(lon, lat)
    w_lon, w_lat = geo.gcj02_to_wgs84(g_lon, g_lat)
    assert np.max(geo.geodesic_distance_m(lon, lat, w_lon, w_lat)) < 0.5


def test_round_trip_bd09_grid_within_half_metre() -> None:
    lon, lat = _china_grid()
    b_lon, b_lat = geo.wgs84_to_bd09(lon, lat)
    w_lon, w_lat = geo.bd09_to_wgs84(b_lon, b_lat)
    assert np.max(geo.geodesic_distance_m(lon, lat, w_lon, w_lat)) < 0.5
    g_lon, g_lat = geo.bd09_to_gcj02(lon, lat)
    b_lon, b_lat = geo.gcj02_to_bd09(g_lon, g_lat)
    assert np.max(geo.geodesic_distance_m(lon, lat, b_lon, b_lat)) < 0.5
    w_lon, w_lat = geo.bd09_to_wgs84(lon, lat)
    b_lon, b_lat = geo.wgs84_to_bd09(w_lon, w_lat)
    assert np.max(geo.geodesic_distance_m(lon, lat, b_lon, b_lat)) < 0.5


def test_outside_china_identity() -> None:
    pts = [(2.35, 48.85), (-74.0, 40.7), (139.69, 35.69), (151.2, -33.9), (100.0, 60.0)]
    for lon, lat in pts:
        assert geo.out_of_china(lon, lat) is True
        assert geo.wgs84_to_gcj02(lon, lat) == (lon, lat)
        assert geo.gcj02_to_wgs84(lon, lat) == (lon, lat)
        assert geo.to_wgs84(lon, lat, "gcj02") == (lon, lat)
    assert geo.out_of_china(116.4, 39.9) is False
    mask = geo.out_of_china(np.array([116.4, 2.35]), np.array([39.9, 48.85]))
    assert mask.tolist() == [False, True]


def test_offset_magnitude_in_beijing() -> None:
    lon_min, lat_min, lon_max, lat_max = geo.BEIJING_BBOX
    lon, lat = np.meshgrid(np.linspace(lon_min, lon_max, 25), np.linspace(lat_min, lat_max, 25))
    g_lon, g_lat = geo.wgs84_to_gcj02(lon, lat)
    d = geo.geodesic_distance_m(lon, lat, g_lon, g_lat)
    assert d.shape == lon.shape
    assert d.min() > 100.0 and d.max() < 700.0
    b_lon, b_lat = geo.wgs84_to_bd09(lon, lat)
    assert geo.geodesic_distance_m(lon, lat, b_lon, b_lat).max() < 2000.0


def test_vectorised_equals_scalar() -> None:
    lon, lat = _china_grid(7)
    for fn in (geo.wgs84_to_gcj02, geo.gcj02_to_wgs84, geo.gcj02_to_bd09, geo.bd09_to_gcj02,
               geo.wgs84_to_bd09, geo.bd09_to_wgs84):
        a_lon, a_lat = fn(lon, lat)
        assert isinstance(a_lon, np.ndarray) and a_lon.shape == lon.shape
        for i in range(lon.size):
            s_lon, s_lat = fn(float(lon[i]), float(lat[i]))
            assert isinstance(s_lon, float) and isinstance(s_lat, float)
            assert s_lon == pytest.approx(a_lon[i], abs=1e-11)
            assert s_lat == pytest.approx(a_lat[i], abs=1e-11)
    # lists are accepted and give arrays; 2-D shape is kept
    out = geo.wgs84_to_gcj02([116.4, 116.5], [39.9, 39.95])
    assert isinstance(out[0], np.ndarray) and out[0].shape == (2,)
    grid = geo.gcj02_to_wgs84(lon.reshape(7, 7), lat.reshape(7, 7))
    assert grid[0].shape == (7, 7)


def test_to_from_wgs84_dispatch_and_unknown_datum() -> None:
    lon, lat = 116.3975, 39.9087
    assert geo.to_wgs84(lon, lat, "wgs84") == (lon, lat)
    assert geo.from_wgs84(lon, lat, "wgs84") == (lon, lat)
    assert geo.from_wgs84(lon, lat, "gcj02") == geo.wgs84_to_gcj02(lon, lat)
    assert geo.from_wgs84(lon, lat, "bd09") == geo.wgs84_to_bd09(lon, lat)
    assert geo.to_wgs84(*geo.wgs84_to_bd09(lon, lat), "bd09") == pytest.approx((lon, lat), abs=1e-9)
    assert geo.to_wgs84(*geo.wgs84_to_gcj02(lon, lat), "GCJ-02") == pytest.approx((lon, lat), abs=1e-9)
    assert geo.DATUMS == ("wgs84", "gcj02", "bd09")
    with pytest.raises(ValueError, match=r"mars.*wgs84, gcj02, bd09"):
        geo.to_wgs84(lon, lat, "mars")
    with pytest.raises(ValueError, match="epsg:4326"):
        geo.from_wgs84(lon, lat, "epsg:4326")
    with pytest.raises(ValueError):
        geo.transform_geometry(shapely.Point(lon, lat), "wgs84", "cgcs2000")


def test_transform_geometry_polygons() -> None:
    ring = [(116.3, 39.8), (116.5, 39.8), (116.5, 40.0), (116.3, 40.0), (116.3, 39.8)]
    hole = [(116.35, 39.85), (116.4, 39.85), (116.4, 39.9), (116.35, 39.85)]
    poly = shapely.Polygon(ring, [hole])
    multi = shapely.MultiPolygon([poly, shapely.box(117.0, 40.1, 117.1, 40.2)])
    for geom in (poly, multi, shapely.Point(116.4, 39.9), shapely.LineString(ring)):
        out = geo.transform_geometry(geom, "gcj02", "wgs84")
        assert out.geom_type == geom.geom_type
        src = shapely.get_coordinates(geom)
        dst = shapely.get_coordinates(out)
        exp_lon, exp_lat = geo.gcj02_to_wgs84(src[:, 0], src[:, 1])
        np.testing.assert_allclose(dst[:, 0], exp_lon, atol=1e-12, rtol=0)
        np.testing.assert_allclose(dst[:, 1], exp_lat, atol=1e-12, rtol=0)
    back = geo.transform_geometry(geo.transform_geometry(multi, "wgs84", "bd09"), "bd09", "wgs84")
    assert len(back.geoms) == 2 and len(back.geoms[0].interiors) == 1
    np.testing.assert_allclose(shapely.get_coordinates(back), shapely.get_coordinates(multi), atol=1e-8)
    assert geo.transform_geometry(poly, "wgs84", "wgs84") is poly


def test_geodesic_distance_known_values_and_broadcast() -> None:
    # One degree of latitude at the equator on WGS-84 is 110,574.4 m.
    assert geo.geodesic_distance_m(0.0, 0.0, 0.0, 1.0) == pytest.approx(110_574.4, abs=1.0)
    # One degree of longitude along the equator: a * pi / 180 = 111,319.49 m.
    assert geo.geodesic_distance_m(0.0, 0.0, 1.0, 0.0) == pytest.approx(111_319.49, abs=0.1)
    assert isinstance(geo.geodesic_distance_m(116.4, 39.9, 116.41, 39.9), float)
    lons = np.array([116.3975, 116.4975, 116.3975])
    lats = np.array([39.9087, 39.9087, 40.0087])
    d = geo.geodesic_distance_m(116.3975, 39.9087, lons, lats)
    assert d.shape == (3,)
    assert d[0] == 0.0
    # 0.1 degree of longitude at 39.9°N is about 8.54 km; 0.1 degree of latitude about 11.10 km.
    assert d[1] == pytest.approx(8_545, rel=2e-3)
    assert d[2] == pytest.approx(11_104, rel=2e-3)


def test_area_km2_against_utm_square() -> None:
    # A 10 km x 10 km square in UTM 50N on its central meridian (117°E): true area = 100 km² / k0².
    to_wgs = pyproj.Transformer.from_crs(geo.METRIC_CRS, "EPSG:4326", always_xy=True)
    square_utm = shapely.box(500_000.0 - 5_000, 4_420_000.0, 500_000.0 + 5_000, 4_430_000.0)
    square_utm = shapely.segmentize(square_utm, 100.0)
    square = shapely.transform(square_utm, lambda xy: np.column_stack(to_wgs.transform(xy[:, 0], xy[:, 1])))
    expected = 100.0 / 0.9996**2
    assert geo.area_km2(square) == pytest.approx(expected, rel=2e-4)
    # Orientation does not matter; holes are subtracted; parts are added.
    assert geo.area_km2(shapely.reverse(square)) == pytest.approx(geo.area_km2(square), rel=1e-12)
    c = square.centroid
    hole = shapely.box(c.x - 0.01, c.y - 0.01, c.x + 0.01, c.y + 0.01)
    holed = square.difference(hole)
    assert geo.area_km2(holed) == pytest.approx(geo.area_km2(square) - geo.area_km2(hole), rel=1e-9)
    multi = shapely.MultiPolygon([square, shapely.box(118.0, 40.0, 118.1, 40.1)])
    assert geo.area_km2(multi) == pytest.approx(
        geo.area_km2(square) + geo.area_km2(shapely.box(118.0, 40.0, 118.1, 40.1)), rel=1e-12)


def test_constants() -> None:
    assert geo.METRIC_CRS == "EPSG:32650"
    assert pyproj.CRS(geo.METRIC_CRS).utm_zone == "50N"
    lon_min, lat_min, lon_max, lat_max = geo.BEIJING_BBOX
    assert lon_min < 116.3975 < lon_max and lat_min < 39.9087 < lat_max
    assert math.isclose(geo.CHINA_BBOX[0], 72.004)
