"""Vector tiles on both stores (issue 15 part 4): every site is in exactly one tile of a zoom, street-level tiles
hold exactly the sites inside them (an oracle through pyproj, not the service's own maths), low zooms group
sites without losing any, ``open_at`` keeps exactly the sites the hours engine calls open — inside the
materialised window and outside it — and a site posted ``closed_now`` leaves the open tiles at once.
"""
from __future__ import annotations

import datetime as dt
import math
from collections import Counter
from typing import Any

import mapbox_vector_tile
import pytest
from pyproj import Transformer

from geoservice import tiles
from geoservice.hours import TZ
from geoservice.model import KINDS, Site
from geoservice.services import Services
from geoservice.tiles import TileQuery
from tests.support import TIANANMEN
from tests.support.sites import make_sites, sid

TO_3857 = Transformer.from_crs("EPSG:4326", "EPSG:3857", always_xy=True)
WORLD = 20037508.342789244
NIGHT = dt.datetime(2026, 11, 25, 3, 0, tzinfo=TZ)  # a Wednesday, 03:00, inside the demo's window


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    x, y = TO_3857.transform(lon, lat)
    n = 2 ** z
    return int((x + WORLD) / (2 * WORLD) * n), int((WORLD - y) / (2 * WORLD) * n)


def decoded(data: bytes, layer: str) -> list[dict[str, Any]]:
    if not data:
        return []
    out = mapbox_vector_tile.decode(data, default_options={"y_coord_down": True})
    assert set(out) == {layer}
    assert out[layer]["extent"] == tiles.EXTENT
    features: list[dict[str, Any]] = out[layer]["features"]
    return features


def tiles_covering(sites: list[Site], z: int) -> set[tuple[int, int]]:
    return {tile_of(s.lon, s.lat, z) for s in sites}


def test_every_site_is_counted_once_at_a_low_zoom_and_groups_stay_in_their_cells(demo_store: Services) -> None:
    everything = demo_store.spatial.all_sites()
    counted: Counter[str] = Counter()
    for x, y in tiles_covering(everything, 10):
        features = decoded(demo_store.tiles.site_tile(TileQuery(10, x, y, "sites", KINDS)), "sites")
        assert len(features) <= tiles.MAX_POINTS
        cells = Counter((f["properties"]["kind"], *(int(c) // tiles.CELL for c in f["geometry"]["coordinates"]))
                        for f in features)
        assert max(cells.values()) == 1  # one point per kind and cell
        for f in features:
            counted[f["properties"]["kind"]] += f["properties"]["count"]
    assert counted == Counter(s.kind for s in everything)
    grouped = [f for x, y in tiles_covering(everything, 10)
               for f in decoded(demo_store.tiles.site_tile(TileQuery(10, x, y, "sites", KINDS)),
                                "sites") if f["properties"]["count"] > 1]
    assert grouped and all("id" not in f["properties"] and "name_zh" not in f["properties"] for f in grouped)


def test_a_street_level_tile_holds_exactly_the_sites_inside_it_where_they_are(demo_store: Services) -> None:
    z = 15
    x, y = tile_of(*TIANANMEN, z)
    everything = demo_store.spatial.all_sites()
    inside = {s.id: s for s in everything if tile_of(s.lon, s.lat, z) == (x, y)}
    assert len(inside) >= 5
    features = decoded(demo_store.tiles.site_tile(TileQuery(z, x, y, "sites", KINDS)), "sites")
    assert sorted(f["properties"]["id"] for f in features) == sorted(inside)
    size = 2 * WORLD / 2 ** z
    for f in features:
        site = inside[f["properties"]["id"]]
        mx, my = TO_3857.transform(site.lon, site.lat)
        px, py = f["geometry"]["coordinates"]
        assert math.isclose(px, (mx - (-WORLD + x * size)) / size * tiles.EXTENT, abs_tol=1.0)
        assert math.isclose(py, ((WORLD - y * size) - my) / size * tiles.EXTENT, abs_tol=1.0)
        props = f["properties"]
        assert props["kind"] == site.kind and props["name_zh"] == site.name_zh and props["count"] == 1
        assert props["simulated"] is site.simulated and props.get("name_en") == (site.name_en or None)
    warm = decoded(demo_store.tiles.site_tile(TileQuery(z, x, y, "sites", ("warm_station",))), "sites")
    assert sorted(f["properties"]["id"] for f in warm) == sorted(i for i, s in inside.items()
                                                                  if s.kind == "warm_station")


@pytest.mark.parametrize("at", [NIGHT, dt.datetime(2027, 6, 2, 3, 0, tzinfo=TZ)], ids=["in-window", "engine"])
def test_open_at_keeps_exactly_the_sites_the_hours_engine_calls_open(demo_store: Services, at: dt.datetime) -> None:
    z = 14
    x, y = tile_of(*TIANANMEN, z)
    inside = [s for s in demo_store.spatial.all_sites() if tile_of(s.lon, s.lat, z) == (x, y)]
    open_ids = sorted(s.id for s in inside if demo_store.sites.state(s, at).is_open)
    assert 0 < len(open_ids) < len(inside)  # 03:00 separates the sites
    features = decoded(demo_store.tiles.site_tile(TileQuery(z, x, y, "sites", KINDS, at)), "sites")
    assert sorted(f["properties"]["id"] for f in features) == open_ids


def test_a_site_closed_now_leaves_the_open_tile_and_a_tile_with_nothing_is_empty(store: Services) -> None:
    store.sites.upsert_sites(make_sites(store, [
        ("t1", 100, 0, "24/7", "warm_station", []), ("t2", 120, 30, "24/7", "worker_home", [])]))
    store.sites.refresh_intervals((dt.datetime(2026, 11, 20, tzinfo=TZ), dt.datetime(2026, 12, 10, tzinfo=TZ)))
    z = 16
    t1, t2 = store.spatial.sites_by_id([sid("t1"), sid("t2")])
    x, y = tile_of(t1.lon, t1.lat, z)
    assert tile_of(t2.lon, t2.lat, z) == (x, y)
    at = dt.datetime(2026, 12, 1, 22, 0, tzinfo=TZ)

    def shown() -> set[str]:
        q = TileQuery(z, x, y, "sites", KINDS, at)
        return {f["properties"]["id"] for f in decoded(store.tiles.site_tile(q), "sites")}

    assert shown() == {sid("t1"), sid("t2")}
    store.live.post(sid("t1"), "closed_now", "op", at - dt.timedelta(minutes=5))
    assert shown() == {sid("t2")}
    assert store.tiles.site_tile(TileQuery(z, x, y, "sites", ("mother_baby_room",), at)) == b""
    assert store.tiles.site_tile(TileQuery(z, 0, 0, "sites", KINDS)) == b""
