"""Mapbox Vector Tiles on the Web Mercator quad (EPSG:3857, XYZ scheme): tile maths, the grouping rule for
sites, and the encoder for the stores and layers that are not encoded by PostGIS's ``ST_AsMVT``.

The rule is one for both stores (PostGIS writes it in SQL, ``site_tile`` in ``store/sql/postgis``): a site is in a
tile when it lies inside the tile's envelope (edges inclusive, no buffer, so counts over a zoom level add up);
below ``CLUSTER_BELOW`` or when a tile would hold more than ``MAX_POINTS`` sites, the sites of one kind in one
``CELL`` × ``CELL`` cell of the tile's 4096 grid become one point at their mean position with ``count`` (and
the site's own properties when the cell holds one site). Properties that are empty are left out.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import math
from collections.abc import Mapping, Sequence
from typing import Any

import mapbox_vector_tile
import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

from geoservice.model import District, Site

EXTENT = 4096  # tile coordinates per side, as ST_AsMVT writes them
CELL = 256  # grouping cell in tile coordinates: 16 × 16 cells per tile, at most 256 points per kind
CLUSTER_BELOW = 13  # zooms 0..12 group sites; from 13 (a tile is ~5 km) every site is its own point
MAX_POINTS = 4096  # more sites than this in one tile are grouped at any zoom
MIN_ZOOM, MAX_ZOOM = 0, 20
POLYGON_BUFFER = 64  # districts are clipped a little outside the tile so that borders join without seams
HALF_WORLD_M = math.pi * 6378137.0  # spherical Mercator's half width (EPSG:3857)
MAX_LAT = math.degrees(math.atan(math.sinh(math.pi)))  # 85.0511…: the quad's edge

SITE_FIELDS = {"id": "String", "kind": "String", "name_zh": "String", "name_en": "String",
               "district_adcode": "String", "simulated": "Boolean", "count": "Number"}
DISTRICT_FIELDS = {"adcode": "String", "name_zh": "String", "name_en": "String", "population_2020": "Number",
                   "area_km2": "Number"}


@dataclasses.dataclass(frozen=True)
class TileQuery:
    """One tile of sites: its address, the layer name it is written under, and the filters."""

    z: int
    x: int
    y: int
    layer: str
    kinds: tuple[str, ...] = ()
    open_at: dt.datetime | None = None

    @property
    def groups_always(self) -> bool:
        """Whether this zoom groups sites whatever their number."""
        return self.z < CLUSTER_BELOW

    def lonlat_bbox(self) -> tuple[float, float, float, float]:
        """The tile's envelope in WGS-84 longitude/latitude (lon_min, lat_min, lon_max, lat_max)."""
        return tile_lonlat_bbox(self.z, self.x, self.y)


def exists(z: int, x: int, y: int) -> bool:
    """Whether (z, x, y) names a tile of the quad within the served zooms."""
    return MIN_ZOOM <= z <= MAX_ZOOM and 0 <= x < 2 ** z and 0 <= y < 2 ** z


def tile_mercator_bounds(z: int, x: int, y: int) -> tuple[float, float, float, float]:
    """The tile's envelope in EPSG:3857 metres, as ``ST_TileEnvelope`` computes it."""
    size = 2 * HALF_WORLD_M / 2 ** z
    x0 = -HALF_WORLD_M + x * size
    y1 = HALF_WORLD_M - y * size
    return x0, y1 - size, x0 + size, y1


def tile_lonlat_bbox(z: int, x: int, y: int) -> tuple[float, float, float, float]:
    """The tile's envelope in WGS-84 degrees."""
    x0, y0, x1, y1 = tile_mercator_bounds(z, x, y)
    lon0, lat0 = _inverse(x0, y0)
    lon1, lat1 = _inverse(x1, y1)
    return lon0, lat0, lon1, lat1


def _inverse(mx: float, my: float) -> tuple[float, float]:
    return math.degrees(mx / 6378137.0), math.degrees(2 * math.atan(math.exp(my / 6378137.0)) - math.pi / 2)


def to_mercator(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """WGS-84 degrees to EPSG:3857 metres (spherical Mercator; latitudes clamped to the quad's edge)."""
    lat = np.clip(lat, -MAX_LAT, MAX_LAT)
    return np.radians(lon) * 6378137.0, np.log(np.tan(np.pi / 4 + np.radians(lat) / 2)) * 6378137.0


def to_tile(z: int, x: int, y: int, lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """WGS-84 degrees to the tile's grid (0..EXTENT, y down), not rounded."""
    x0, y0, x1, y1 = tile_mercator_bounds(z, x, y)
    mx, my = to_mercator(lon, lat)
    return (mx - x0) * EXTENT / (x1 - x0), (y1 - my) * EXTENT / (y1 - y0)


def site_points(q: TileQuery, sites: Sequence[Site]) -> list[dict[str, Any]]:
    """The point features of ``sites`` in tile ``q`` (grouped by the module's rule), in tile coordinates."""
    if not sites:
        return []
    px, py = to_tile(q.z, q.x, q.y, np.array([s.lon for s in sites], dtype=float),
                     np.array([s.lat for s in sites], dtype=float))
    inside = [int(i) for i in np.flatnonzero((px >= 0) & (px <= EXTENT) & (py >= 0) & (py <= EXTENT))]  # unrounded
    px, py = np.floor(px + 0.5), np.floor(py + 0.5)  # as the SQL rounds
    if not (q.groups_always or len(inside) > MAX_POINTS):
        return [_point(px[i], py[i], _site_properties(sites[i])) for i in sorted(inside, key=lambda i: sites[i].id)]
    groups: dict[tuple[str, int, int], list[int]] = {}
    for i in inside:
        groups.setdefault((sites[i].kind, int(px[i] // CELL), int(py[i] // CELL)), []).append(i)
    out = []
    for key in sorted(groups):
        members = groups[key]
        props = _site_properties(sites[members[0]]) if len(members) == 1 else {"kind": key[0],
                                                                               "count": len(members)}
        out.append(_point(np.floor(px[members].mean() + 0.5), np.floor(py[members].mean() + 0.5), props))
    return out


def encode_sites(q: TileQuery, sites: Sequence[Site]) -> bytes:
    """Tile ``q`` of ``sites`` (the sites in or around it), encoded: the Python side of the stores' one rule."""
    return encode({q.layer: site_points(q, sites)})


def _site_properties(site: Site) -> dict[str, Any]:
    props: dict[str, Any] = {"id": site.id, "kind": site.kind, "name_zh": site.name_zh, "name_en": site.name_en,
                             "district_adcode": site.district_adcode, "simulated": site.simulated, "count": 1}
    return {k: v for k, v in props.items() if v is not None and v != ""}


def _point(x: float, y: float, properties: dict[str, Any]) -> dict[str, Any]:
    return {"geometry": shapely.Point(int(x), int(y)), "properties": properties}


def district_polygons(z: int, x: int, y: int, districts: Sequence[District]) -> list[dict[str, Any]]:
    """The districts' polygons clipped to tile (z, x, y) (with a small buffer), in tile coordinates."""
    x0, y0, x1, y1 = tile_lonlat_bbox(z, x, y)
    out = []
    for d in sorted(districts, key=lambda d: d.adcode):
        minx, miny, maxx, maxy = d.geometry.bounds
        if maxx < x0 or minx > x1 or maxy < y0 or miny > y1:
            continue
        shape = _clip(_project(z, x, y, d.geometry))
        if shape.is_empty:
            continue
        out.append({"geometry": shape, "properties": {
            "adcode": d.adcode, "name_zh": d.name_zh, "name_en": d.name_en,
            "population_2020": d.population_2020, "area_km2": round(d.area_km2, 2)}})
    return out


def _project(z: int, x: int, y: int, geometry: BaseGeometry) -> BaseGeometry:
    def move(coords: np.ndarray) -> np.ndarray:
        tx, ty = to_tile(z, x, y, coords[:, 0], coords[:, 1])
        return np.column_stack([tx, ty])

    return shapely.transform(geometry, move)


def _clip(shape: BaseGeometry) -> BaseGeometry:
    b = POLYGON_BUFFER
    return shapely.clip_by_rect(shapely.make_valid(shape), -b, -b, EXTENT + b, EXTENT + b)


def encode(layers: Mapping[str, list[dict[str, Any]]]) -> bytes:
    """One tile of these named layers (features in tile coordinates, y down); an empty tile is empty bytes."""
    present = [{"name": name, "features": features} for name, features in layers.items() if features]
    if not present:
        return b""
    data: bytes = mapbox_vector_tile.encode(present, default_options={
        "extents": EXTENT, "y_coord_down": True,
        "on_invalid_geometry": mapbox_vector_tile.encoder.on_invalid_geometry_make_valid})
    return data
