"""GDAL — a client nobody here wrote — reads /ogc with its OAPIF driver (ogrinfo, ogr2ogr).

Needs Debian's gdal-bin (scripts/setup --test installs it). Missing tools FAIL these tests, they never skip.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pyogrio
import pytest

from geoservice.model import SiteFilter
from geoservice.services import Services
from tests.support import demo

from .conftest import LiveServer

EXPECTED = {"warm_stations": ("warm_station", demo.by_kind()["warm_station"]),
            "mother_baby_rooms": ("mother_baby_room", demo.by_kind()["mother_baby_room"]),
            "worker_homes": ("worker_home", demo.by_kind()["worker_home"]), "districts": (None, demo.districts())}


def gdal(tool: str, *args: str, timeout: float = 120) -> str:
    """Run a GDAL command-line tool against the loopback server and return its stdout."""
    exe = shutil.which(tool)
    if exe is None:
        pytest.fail(f"{tool} not found: install Debian's gdal-bin (`apt-get install gdal-bin`, or "
                    "`scripts/setup --test`) — these tests check the OGC API with GDAL and must not be skipped",
                    pytrace=False)
    env = dict(os.environ, NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost",
               GDAL_HTTP_TIMEOUT="60", CPL_DEBUG="OFF")
    proc = subprocess.run([exe, *args], capture_output=True, text=True, timeout=timeout, env=env)
    assert proc.returncode == 0, f"{tool} {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    assert "ERROR" not in proc.stderr, proc.stderr
    return proc.stdout


def store_count(store: Services, kind: str | None) -> int:
    if kind is None:
        return len(store.sites.districts())
    return store.sites.list_sites(SiteFilter(kinds=(kind,), limit=1))[1]


def test_ogrinfo_lists_every_collection_with_its_feature_count(live_server: LiveServer,
                                                                demo_embedded: Services) -> None:
    before = len(live_server.requests)
    out = gdal("ogrinfo", "-ro", "-so", "-al", f"OAPIF:{live_server.url}/ogc")
    layers = dict(re.findall(r"Layer name: (\w+).*?Feature Count: (\d+)", out, re.S))
    assert set(layers) == set(EXPECTED), out[:2000]
    for name, (kind, published) in EXPECTED.items():
        assert int(layers[name]) == store_count(demo_embedded, kind) == published, name
    extents = re.findall(r"Extent: \(([\d.]+), ([\d.]+)\) - \(([\d.]+), ([\d.]+)\)", out)
    assert len(extents) == 4
    for x0, y0, x1, y1 in extents:  # lon/lat order, inside Beijing
        assert 115.3 < float(x0) < float(x1) < 117.6 and 39.4 < float(y0) < float(y1) < 41.1
    assert "Geometry: Point" in out and "Geometry: Multi Polygon" in out
    # GDAL found the counts in numberMatched of the first page; it did not page through 11,845 features.
    assert not any("offset=" in r for r in live_server.requests[before:])


def test_ogr2ogr_copies_a_collection_into_a_geopackage(live_server: LiveServer, demo_embedded: Services,
                                                       tmp_path: Path) -> None:
    out = tmp_path / "worker_homes.gpkg"
    before = len(live_server.requests)
    # Default page size (10): GDAL follows 15 `next` links.
    gdal("ogr2ogr", "-f", "GPKG", str(out), f"OAPIF:{live_server.url}/ogc", "worker_homes")
    pages = [r for r in live_server.requests[before:] if r.startswith("/ogc/collections/worker_homes/items")]
    assert sum("offset=" in r for r in pages) >= 15

    frame = pyogrio.read_dataframe(out, layer="worker_homes")
    sites, total = demo_embedded.sites.list_sites(SiteFilter(kinds=("worker_home",), limit=1000))
    assert len(frame) == total == 159
    by_id = {s.id: s for s in sites}
    assert set(frame["id"]) == set(by_id)
    for row in frame.sample(n=25, random_state=7).itertuples():
        site = by_id[row.id]
        assert row.geometry.x == pytest.approx(site.lon, abs=1e-7)
        assert row.geometry.y == pytest.approx(site.lat, abs=1e-7)
        assert row.source_id == site.source_id and row.name_zh == site.name_zh
        assert row.opening_hours == site.opening_hours and row.district_adcode == site.district_adcode
        assert row.amenities == ";".join(site.amenities) and bool(row.simulated) is site.simulated
        assert (row.name_en or None) == site.name_en and (row.phone or None) == site.phone


def test_ogr2ogr_large_pages_and_server_side_filter(live_server: LiveServer, demo_embedded: Services,
                                                   tmp_path: Path) -> None:
    # All the warm stations (9,650) in pages of 1000.
    out = tmp_path / "warm.gpkg"
    gdal("ogr2ogr", "-f", "GPKG", "-oo", "PAGE_SIZE=1000", str(out), f"OAPIF:{live_server.url}/ogc", "warm_stations")
    assert pyogrio.read_info(out, layer="warm_stations")["features"] == demo.by_kind()["warm_station"]
    # GDAL reads the OpenAPI 3.0 definition, sees district_adcode is a query parameter of this collection and
    # sends the attribute filter to the server instead of downloading everything.
    before = len(live_server.requests)
    info = gdal("ogrinfo", "-ro", "-so", "-where", "district_adcode = '110101'",
                f"OAPIF:{live_server.url}/ogc", "mother_baby_rooms")
    expected = demo_embedded.sites.count_sites()["110101"]["mother_baby_room"]
    assert f"Feature Count: {expected}" in info
    assert any("district_adcode=110101" in r for r in live_server.requests[before:])
