"""GDAL's MVT driver — a reader nobody here wrote — opens the service's vector tiles over HTTP, places them from the
z/x/y in their URL, and reads the sites inside the tile with their Chinese names.

Needs Debian's gdal-bin (scripts/setup --test installs it); a missing ogrinfo fails, never skips.
"""
from __future__ import annotations

import re

from pyproj import Transformer

from geoservice.services import Services
from tests.support import TIANANMEN

from .conftest import LiveServer
from .test_ogc_gdal import gdal

WORLD = 20037508.342789244


def test_ogrinfo_reads_a_street_level_tile_with_every_site_in_it(live_server: LiveServer,
                                                                 demo_embedded: Services) -> None:
    to_3857 = Transformer.from_crs("EPSG:4326", "EPSG:3857", always_xy=True)
    z = 14
    mx, my = to_3857.transform(*TIANANMEN)
    size = 2 * WORLD / 2 ** z
    x, y = int((mx + WORLD) / size), int((WORLD - my) / size)
    x0, y1 = -WORLD + x * size, WORLD - y * size
    inside = [s for s in demo_embedded.spatial.all_sites()
              if x0 <= to_3857.transform(s.lon, s.lat)[0] <= x0 + size
              and y1 - size <= to_3857.transform(s.lon, s.lat)[1] <= y1]
    out = gdal("ogrinfo", "-ro", "-al", f"/vsicurl/{live_server.url}/tiles/sites/{z}/{x}/{y}.mvt")
    assert "using driver `MVT' successful" in out and "Layer name: sites" in out
    assert int(re.search(r"Feature Count: (\d+)", out).group(1)) == len(inside)  # type: ignore[union-attr]
    assert sorted(re.findall(r"\bid \(String\) = (\w+)", out)) == sorted(s.id for s in inside)
    assert {s.name_zh for s in inside} <= set(re.findall(r"name_zh \(String\) = (.+)", out))
    ex0, ey0, ex1, ey1 = map(float, re.search(  # type: ignore[union-attr]
        r"Extent: \(([\d.]+), ([\d.]+)\) - \(([\d.]+), ([\d.]+)\)", out).groups())
    assert x0 <= ex0 <= ex1 <= x0 + size and y1 - size <= ey0 <= ey1 <= y1  # placed in the right tile
