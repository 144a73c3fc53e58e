"""Datum conversion (WGS-84 / GCJ-02 / BD-09) and geodesic helpers.

Chinese map providers publish coordinates in offset datums: Amap/Gaode and most Chinese apps use GCJ-02
("Mars coordinates"), Baidu uses BD-09 (a further offset of GCJ-02). GPS and OpenStreetMap use WGS-84.
The service stores WGS-84 only and converts at the edges with the functions here.

The forward transforms follow the widely published open algorithms:

* WGS-84 -> GCJ-02: the Krasovsky-ellipsoid polynomial offset (a = 6378245.0, ee = 0.00669342162296594323,
  the ``transformlat``/``transformlon`` polynomials). Points outside the rough mainland-China bounding box
  are left unchanged, as the algorithm defines.
* GCJ-02 -> BD-09: the published ``x_pi`` formula (0.00002 sin / 0.000003 cos terms, +0.0065 / +0.006).

Neither has a closed-form inverse, so GCJ-02 -> WGS-84 and BD-09 -> GCJ-02 iterate a fixed point on the
forward transform until the residual is below ``INVERSE_TOLERANCE_DEG`` (about 0.1 mm), which makes round
trips exact to far better than 0.5 m.

Every conversion accepts Python floats or numpy arrays (anything ``numpy.asarray`` takes) and returns the
same kind: two floats for scalar input, two float64 arrays otherwise.
"""
from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from typing import overload

import numpy as np
import numpy.typing as npt
import shapely
from pyproj import Geod
from shapely.geometry.base import BaseGeometry

LOGGER = logging.getLogger(__name__)

DATUMS: tuple[str, ...] = ("wgs84", "gcj02", "bd09")

# UTM zone 50N covers Beijing (114°E–120°E); use it when a planar metric CRS is needed.
METRIC_CRS = "EPSG:32650"

# (lon_min, lat_min, lon_max, lat_max), WGS-84: roughly Beijing municipality, the service area.
BEIJING_BBOX: tuple[float, float, float, float] = (115.3, 39.4, 117.6, 41.1)

# The rough mainland-China bounding box used by the GCJ-02 algorithm (eviltransform's variant).
CHINA_BBOX: tuple[float, float, float, float] = (72.004, 0.8293, 137.8347, 55.8271)

# Krasovsky 1940 ellipsoid, as used by the GCJ-02 algorithm.
_GCJ_A = 6378245.0
_GCJ_EE = 0.00669342162296594323
_X_PI = math.pi * 3000.0 / 180.0

# Inverse conversions stop when the forward transform of the estimate is this close to the input.
INVERSE_TOLERANCE_DEG = 1e-9
INVERSE_MAX_ITERATIONS = 30

_GEOD = Geod(ellps="WGS84")

# Scalars in -> floats out; arrays (or sequences) in -> float64 arrays out.
Coord = float | np.ndarray
CoordLike = float | npt.ArrayLike
ArrayIn = np.ndarray | Sequence[float]


# --------------------------------------------------------------------------------------------------------
# Internal array helpers
# --------------------------------------------------------------------------------------------------------
def _as_arrays(lon: CoordLike, lat: CoordLike) -> tuple[np.ndarray, np.ndarray, bool]:
    """Broadcast inputs to float64 arrays; report whether both were scalars."""
    lon_a = np.asarray(lon, dtype=np.float64)
    lat_a = np.asarray(lat, dtype=np.float64)
    scalar = lon_a.ndim == 0 and lat_a.ndim == 0
    lon_a, lat_a = np.broadcast_arrays(lon_a, lat_a)
    return lon_a, lat_a, scalar


def _result(lon: np.ndarray, lat: np.ndarray, scalar: bool) -> tuple[Coord, Coord]:
    """Return floats for scalar input, fresh arrays otherwise."""
    if scalar:
        return float(lon), float(lat)
    return np.array(lon, dtype=np.float64), np.array(lat, dtype=np.float64)


def _out_of_china(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    lon_min, lat_min, lon_max, lat_max = CHINA_BBOX
    return (lon < lon_min) | (lon > lon_max) | (lat < lat_min) | (lat > lat_max)


def _transform_lat(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    ret = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * np.sqrt(np.abs(x))
    ret += (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
    ret += (20.0 * np.sin(y * np.pi) + 40.0 * np.sin(y / 3.0 * np.pi)) * 2.0 / 3.0
    ret += (160.0 * np.sin(y / 12.0 * np.pi) + 320.0 * np.sin(y * np.pi / 30.0)) * 2.0 / 3.0
    return np.asarray(ret)


def _transform_lon(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    ret = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * np.sqrt(np.abs(x))
    ret += (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
    ret += (20.0 * np.sin(x * np.pi) + 40.0 * np.sin(x / 3.0 * np.pi)) * 2.0 / 3.0
    ret += (150.0 * np.sin(x / 12.0 * np.pi) + 300.0 * np.sin(x / 30.0 * np.pi)) * 2.0 / 3.0
    return np.asarray(ret)


def _wgs_to_gcj(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Forward GCJ-02 offset on arrays; identity outside the China box."""
    dlat = _transform_lat(lon - 105.0, lat - 35.0)
    dlon = _transform_lon(lon - 105.0, lat - 35.0)
    radlat = lat / 180.0 * np.pi
    magic = 1.0 - _GCJ_EE * np.sin(radlat) ** 2
    sqrtmagic = np.sqrt(magic)
    dlat = (dlat * 180.0) / ((_GCJ_A * (1.0 - _GCJ_EE)) / (magic * sqrtmagic) * np.pi)
    dlon = (dlon * 180.0) / (_GCJ_A / sqrtmagic * np.cos(radlat) * np.pi)
    out = _out_of_china(lon, lat)
    return np.where(out, lon, lon + dlon), np.where(out, lat, lat + dlat)


def _gcj_to_bd(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    z = np.sqrt(lon * lon + lat * lat) + 0.00002 * np.sin(lat * _X_PI)
    theta = np.arctan2(lat, lon) + 0.000003 * np.cos(lon * _X_PI)
    return z * np.cos(theta) + 0.0065, z * np.sin(theta) + 0.006


def _bd_to_gcj_approx(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The published one-step BD-09 -> GCJ-02 formula (good to ~1e-6 degrees); seeds the iteration."""
    x = lon - 0.0065
    y = lat - 0.006
    z = np.sqrt(x * x + y * y) - 0.00002 * np.sin(y * _X_PI)
    theta = np.arctan2(y, x) - 0.000003 * np.cos(x * _X_PI)
    return z * np.cos(theta), z * np.sin(theta)


def _invert(
    forward: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]],
    lon: np.ndarray,
    lat: np.ndarray,
    start: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Solve forward(x) = (lon, lat) by fixed-point iteration x <- x - (forward(x) - target)."""
    est_lon, est_lat = (lon.copy(), lat.copy()) if start is None else start
    for _ in range(INVERSE_MAX_ITERATIONS):
        f_lon, f_lat = forward(est_lon, est_lat)
        d_lon = f_lon - lon
        d_lat = f_lat - lat
        est_lon = est_lon - d_lon
        est_lat = est_lat - d_lat
        # NaN inputs stay NaN and must not block convergence.
        err = np.fmax(np.abs(d_lon), np.abs(d_lat))
        if float(np.max(np.nan_to_num(err, nan=0.0), initial=0.0)) < INVERSE_TOLERANCE_DEG:
            break
    else:  # pragma: no cover - the map is a strong contraction; this is a guard only
        LOGGER.warning("datum inversion did not converge in %d iterations", INVERSE_MAX_ITERATIONS)
    return est_lon, est_lat


def _wgs_to_bd(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return _gcj_to_bd(*_wgs_to_gcj(lon, lat))


def _gcj_to_wgs(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return _invert(_wgs_to_gcj, lon, lat)


def _bd_to_gcj(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return _invert(_gcj_to_bd, lon, lat, start=_bd_to_gcj_approx(lon, lat))


def _bd_to_wgs(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return _gcj_to_wgs(*_bd_to_gcj(lon, lat))


def _identity(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return lon, lat


# --------------------------------------------------------------------------------------------------------
# Public conversions
# --------------------------------------------------------------------------------------------------------
@overload
def out_of_china(lon: float, lat: float) -> bool: ...
@overload
def out_of_china(lon: ArrayIn, lat: ArrayIn) -> np.ndarray: ...
def out_of_china(lon: CoordLike, lat: CoordLike) -> bool | np.ndarray:
    """True where a point lies outside the rough mainland-China box (GCJ-02 is then WGS-84)."""
    lon_a, lat_a, scalar = _as_arrays(lon, lat)
    out = _out_of_china(lon_a, lat_a)
    return bool(out) if scalar else out


@overload
def wgs84_to_gcj02(lon: float, lat: float) -> tuple[float, float]: ...
@overload
def wgs84_to_gcj02(lon: ArrayIn, lat: ArrayIn) -> tuple[np.ndarray, np.ndarray]: ...
def wgs84_to_gcj02(lon: CoordLike, lat: CoordLike) -> tuple[Coord, Coord]:
    """Convert WGS-84 to GCJ-02 (identity outside mainland China)."""
    lon_a, lat_a, scalar = _as_arrays(lon, lat)
    return _result(*_wgs_to_gcj(lon_a, lat_a), scalar)


@overload
def gcj02_to_wgs84(lon: float, lat: float) -> tuple[float, float]: ...
@overload
def gcj02_to_wgs84(lon: ArrayIn, lat: ArrayIn) -> tuple[np.ndarray, np.ndarray]: ...
def gcj02_to_wgs84(lon: CoordLike, lat: CoordLike) -> tuple[Coord, Coord]:
    """Convert GCJ-02 to WGS-84 by iterating the forward transform (error far below 0.5 m)."""
    lon_a, lat_a, scalar = _as_arrays(lon, lat)
    return _result(*_invert(_wgs_to_gcj, lon_a, lat_a), scalar)


@overload
def gcj02_to_bd09(lon: float, lat: float) -> tuple[float, float]: ...
@overload
def gcj02_to_bd09(lon: ArrayIn, lat: ArrayIn) -> tuple[np.ndarray, np.ndarray]: ...
def gcj02_to_bd09(lon: CoordLike, lat: CoordLike) -> tuple[Coord, Coord]:
    """Convert GCJ-02 to BD-09 (Baidu)."""
    lon_a, lat_a, scalar = _as_arrays(lon, lat)
    return _result(*_gcj_to_bd(lon_a, lat_a), scalar)


@overload
def bd09_to_gcj02(lon: float, lat: float) -> tuple[float, float]: ...
@overload
def bd09_to_gcj02(lon: ArrayIn, lat: ArrayIn) -> tuple[np.ndarray, np.ndarray]: ...
def bd09_to_gcj02(lon: CoordLike, lat: CoordLike) -> tuple[Coord, Coord]:
    """Convert BD-09 to GCJ-02: the published formula, refined by iterating ``gcj02_to_bd09``."""
    lon_a, lat_a, scalar = _as_arrays(lon, lat)
    return _result(*_bd_to_gcj(lon_a, lat_a), scalar)


@overload
def wgs84_to_bd09(lon: float, lat: float) -> tuple[float, float]: ...
@overload
def wgs84_to_bd09(lon: ArrayIn, lat: ArrayIn) -> tuple[np.ndarray, np.ndarray]: ...
def wgs84_to_bd09(lon: CoordLike, lat: CoordLike) -> tuple[Coord, Coord]:
    """Convert WGS-84 to BD-09 (via GCJ-02)."""
    lon_a, lat_a, scalar = _as_arrays(lon, lat)
    return _result(*_gcj_to_bd(*_wgs_to_gcj(lon_a, lat_a)), scalar)


@overload
def bd09_to_wgs84(lon: float, lat: float) -> tuple[float, float]: ...
@overload
def bd09_to_wgs84(lon: ArrayIn, lat: ArrayIn) -> tuple[np.ndarray, np.ndarray]: ...
def bd09_to_wgs84(lon: CoordLike, lat: CoordLike) -> tuple[Coord, Coord]:
    """Convert BD-09 to WGS-84 (via GCJ-02, both steps iterated)."""
    lon_a, lat_a, scalar = _as_arrays(lon, lat)
    return _result(*_bd_to_wgs(lon_a, lat_a), scalar)


def _check_datum(datum: str) -> str:
    key = str(datum).lower().replace("-", "").replace("_", "")
    if key not in DATUMS:
        raise ValueError(f"unknown datum {datum!r}; allowed: {', '.join(DATUMS)}")
    return key


# (source datum, destination datum) -> array conversion.
_ArrayFn = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]
_ARRAY_CONVERSIONS: dict[tuple[str, str], _ArrayFn] = {
    ("wgs84", "wgs84"): _identity,
    ("gcj02", "gcj02"): _identity,
    ("bd09", "bd09"): _identity,
    ("wgs84", "gcj02"): _wgs_to_gcj,
    ("gcj02", "wgs84"): _gcj_to_wgs,
    ("gcj02", "bd09"): _gcj_to_bd,
    ("bd09", "gcj02"): _bd_to_gcj,
    ("wgs84", "bd09"): _wgs_to_bd,
    ("bd09", "wgs84"): _bd_to_wgs,
}


def _convert_arrays(
    lon: np.ndarray, lat: np.ndarray, src: str, dst: str
) -> tuple[np.ndarray, np.ndarray]:
    return _ARRAY_CONVERSIONS[(_check_datum(src), _check_datum(dst))](lon, lat)


@overload
def to_wgs84(lon: float, lat: float, datum: str) -> tuple[float, float]: ...
@overload
def to_wgs84(lon: ArrayIn, lat: ArrayIn, datum: str) -> tuple[np.ndarray, np.ndarray]: ...
def to_wgs84(lon: CoordLike, lat: CoordLike, datum: str) -> tuple[Coord, Coord]:
    """Convert coordinates in ``datum`` (one of ``DATUMS``) to WGS-84."""
    return _convert(lon, lat, datum, "wgs84")


def point_to_wgs84(lon: float, lat: float, datum: str) -> tuple[float, float]:
    """One point in ``datum`` as a valid WGS-84 point: :func:`to_wgs84`, then latitude clipped to ±90° and
    longitude wrapped into [-180°, 180°). BD-09's offset applies everywhere, so a point at a pole or on the
    antimeridian would otherwise leave the globe (and every distance from it would be NaN)."""
    x, y = to_wgs84(lon, lat, datum)
    return float((float(x) + 180.0) % 360.0 - 180.0), float(min(90.0, max(-90.0, float(y))))


@overload
def from_wgs84(lon: float, lat: float, datum: str) -> tuple[float, float]: ...
@overload
def from_wgs84(lon: ArrayIn, lat: ArrayIn, datum: str) -> tuple[np.ndarray, np.ndarray]: ...
def from_wgs84(lon: CoordLike, lat: CoordLike, datum: str) -> tuple[Coord, Coord]:
    """Convert WGS-84 coordinates to ``datum`` (one of ``DATUMS``)."""
    return _convert(lon, lat, "wgs84", datum)


@overload
def convert(lon: float, lat: float, src_datum: str, dst_datum: str) -> tuple[float, float]: ...
@overload
def convert(
    lon: ArrayIn, lat: ArrayIn, src_datum: str, dst_datum: str
) -> tuple[np.ndarray, np.ndarray]: ...
def convert(lon: CoordLike, lat: CoordLike, src_datum: str, dst_datum: str) -> tuple[Coord, Coord]:
    """Convert coordinates between any two of ``DATUMS``."""
    return _convert(lon, lat, src_datum, dst_datum)


def _convert(lon: CoordLike, lat: CoordLike, src: str, dst: str) -> tuple[Coord, Coord]:
    if src == dst and isinstance(lon, float | int) and isinstance(lat, float | int):
        _check_datum(src)
        return float(lon), float(lat)  # every site of every WGS-84 response: skip the array machinery
    lon_a, lat_a, scalar = _as_arrays(lon, lat)
    return _result(*_convert_arrays(lon_a, lat_a, src, dst), scalar)


def transform_geometry(geom: BaseGeometry, src_datum: str, dst_datum: str) -> BaseGeometry:
    """Convert every vertex of a shapely geometry (any type, incl. (Multi)Polygons) between datums."""
    src = _check_datum(src_datum)
    dst = _check_datum(dst_datum)
    if src == dst:
        return geom

    def _fn(coords: np.ndarray) -> np.ndarray:
        lon, lat = _convert_arrays(coords[:, 0], coords[:, 1], src, dst)
        return np.column_stack([lon, lat])

    return shapely.transform(geom, _fn)


# --------------------------------------------------------------------------------------------------------
# Geodesy on the WGS-84 ellipsoid
# --------------------------------------------------------------------------------------------------------
@overload
def geodesic_distance_m(lon1: float, lat1: float, lon2: float, lat2: float) -> float: ...
@overload
def geodesic_distance_m(lon1: float, lat1: float, lon2: ArrayIn, lat2: ArrayIn) -> np.ndarray: ...
@overload
def geodesic_distance_m(
    lon1: ArrayIn, lat1: ArrayIn, lon2: float | ArrayIn, lat2: float | ArrayIn
) -> np.ndarray: ...
def geodesic_distance_m(lon1: CoordLike, lat1: CoordLike, lon2: CoordLike, lat2: CoordLike) -> Coord:
    """Ellipsoidal (WGS-84) geodesic distance in metres; arrays broadcast (e.g. one point vs many)."""
    arrays = [np.asarray(v, dtype=np.float64) for v in (lon1, lat1, lon2, lat2)]
    scalar = all(a.ndim == 0 for a in arrays)
    b = np.broadcast_arrays(*arrays)
    shape = b[0].shape
    flat = [np.ascontiguousarray(a).ravel() for a in b]
    if flat[0].size == 0:
        return np.zeros(shape, dtype=np.float64)
    _, _, dist = _GEOD.inv(flat[0], flat[1], flat[2], flat[3])
    dist = np.asarray(dist, dtype=np.float64).reshape(shape)
    return float(dist) if scalar else dist


def area_km2(geom_wgs84: BaseGeometry) -> float:
    """Geodesic area in km² of a WGS-84 (Multi)Polygon on the WGS-84 ellipsoid (holes subtracted).

    Geodesic rather than planar in ``METRIC_CRS``: exact for any size and any place, no projection
    distortion. Each polygon is oriented counter-clockwise first so the signed area comes out positive.
    """
    total = 0.0
    for part in shapely.get_parts(geom_wgs84):
        if isinstance(part, shapely.Polygon):
            area, _ = _GEOD.geometry_area_perimeter(shapely.geometry.polygon.orient(part, sign=1.0))
            total += abs(area)
        elif isinstance(part, (shapely.MultiPolygon, shapely.GeometryCollection)):
            total += area_km2(part) * 1e6
    return total / 1e6
