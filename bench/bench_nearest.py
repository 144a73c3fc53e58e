"""Benchmark nearest-open at the demo size on both stores, in-store and over HTTP.

Run: ``.venv/bin/python bench/bench_nearest.py`` (starts its own throwaway PostGIS; writes bench/results.md).
Timings are wall-clock per request on this machine; tests never assert them.
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import http.client
import json
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlencode

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from geoservice import create_app
from geoservice.bootstrap import ensure_ready
from geoservice.hours import TZ, now_local
from geoservice.model import NearestQuery
from geoservice.services import Services as Store
from geoservice.services import open_services
from geoservice.settings import Settings
from tools.pgcluster import ThrowawayCluster

SCENARIOS = {
    "10:00, any kind": {"hour": 10, "kinds": (), "amenities": ()},
    "10:00, warm_station + toilet": {"hour": 10, "kinds": ("warm_station",), "amenities": ("toilet",)},
    "03:00, any kind": {"hour": 3, "kinds": (), "amenities": ()},
    "03:00, warm_station + toilet": {"hour": 3, "kinds": ("warm_station",), "amenities": ("toilet",)},
    "03:00, mother_baby_room + nursing_chair": {"hour": 3, "kinds": ("mother_baby_room",),
                                                "amenities": ("nursing_chair",)},
}


def points(n: int, seed: int = 7) -> list[tuple[float, float]]:
    rng = np.random.default_rng(seed)
    return [(float(rng.uniform(116.20, 116.60)), float(rng.uniform(39.78, 40.05))) for _ in range(n)]


def percentiles(samples: list[float]) -> dict[str, float]:
    ms = sorted(s * 1000 for s in samples)
    pick = lambda p: ms[min(len(ms) - 1, round(p / 100 * (len(ms) - 1)))]  # noqa: E731
    return {"p50": pick(50), "p95": pick(95), "p99": pick(99), "mean": statistics.fmean(ms)}


def time_calls(fn: Callable[[], object], n: int) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def bench_store(store: Store, pts: list[tuple[float, float]], day: dt.date) -> dict[str, dict[str, float]]:
    results = {}
    for name, sc in SCENARIOS.items():
        at = dt.datetime.combine(day, dt.time(sc["hour"]), tzinfo=TZ)
        queries = [NearestQuery(lon=lon, lat=lat, at=at, kinds=sc["kinds"], amenities=sc["amenities"], limit=5)
                   for lon, lat in pts]
        for q in queries[:20]:
            store.sites.nearest(q)  # warm up
        it = iter(queries)
        results[name] = percentiles(time_calls(lambda it=it: store.sites.nearest(next(it)), len(queries)))
    return results


def bench_http(store: Store, settings: Settings, pts: list[tuple[float, float]], day: dt.date) -> dict:
    import waitress.server

    # One client address asks hundreds of times a second: the public rate limit would answer 429.
    app = create_app(dataclasses.replace(settings, public_rate_per_minute=0), services=store, prepare=False)
    server = waitress.server.create_server(app, host="127.0.0.1", port=0, threads=4)
    port = server.effective_port  # type: ignore[union-attr]
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    results = {}
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port)
        for name, sc in SCENARIOS.items():
            at = dt.datetime.combine(day, dt.time(sc["hour"]), tzinfo=TZ).isoformat()

            def call(lon: float, lat: float, at: str = at, sc: dict = sc) -> None:
                params = [("lat", lat), ("lon", lon), ("at", at), ("limit", 5)]
                params += [("kind", k) for k in sc["kinds"]] + [("amenity", a) for a in sc["amenities"]]
                conn.request("GET", "/api/v1/sites/nearest?" + urlencode(params))
                resp = conn.getresponse()
                body = resp.read()
                assert resp.status == 200, body[:200]

            for lon, lat in pts[:20]:
                call(lon, lat)
            it = iter(pts)
            results[name] = percentiles(time_calls(lambda it=it: call(*next(it)), len(pts)))
    finally:
        server.close()
    return results


def table(title: str, rows: dict[str, dict[str, float]]) -> str:
    lines = [f"#### {title}", "", "| scenario | p50 ms | p95 ms | p99 ms | mean ms |", "|---|---:|---:|---:|---:|"]
    for name, r in rows.items():
        lines.append(f"| {name} | {r['p50']:.2f} | {r['p95']:.2f} | {r['p99']:.2f} | {r['mean']:.2f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-n", type=int, default=500, help="queries per scenario")
    parser.add_argument("-o", type=Path, default=ROOT / "bench" / "results.md")
    args = parser.parse_args()
    pts = points(args.n)
    day = now_local().date() + dt.timedelta(days=1)
    out: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        emb_settings = Settings(embedded_path=Path(tmp) / "bench.sqlite")
        emb = open_services(emb_settings)
        ensure_ready(emb, emb_settings)
        out["embedded"] = {"store": bench_store(emb, pts, day), "http": bench_http(emb, emb_settings, pts, day)}
        emb.close()
    cluster = ThrowawayCluster(fast=False).start()
    try:
        url = cluster.create_database("bench")
        pg_settings = Settings(database_url=url)
        pg = open_services(pg_settings)
        ensure_ready(pg, pg_settings)
        out["postgis"] = {"store": bench_store(pg, pts, day), "http": bench_http(pg, pg_settings, pts, day)}
        with pg.spatial.connection() as conn:  # type: ignore[attr-defined]
            pg_version = conn.execute("SELECT version(), postgis_lib_version()").fetchone()
        pg.close()
    finally:
        cluster.stop()
    import psycopg
    import scipy

    header = [
        "# Benchmark results", "",
        f"Generated by `bench/bench_nearest.py` on {dt.datetime.now(TZ):%Y-%m-%d %H:%M} (Asia/Shanghai).", "",
        f"- Machine: {platform.machine()}, {os.cpu_count()} cores, {platform.platform()}",
        f"- Python {platform.python_version()}, psycopg {psycopg.__version__}, scipy {scipy.__version__}",
        f"- PostgreSQL: {pg_version[0].split(',')[0] if pg_version else '?'}; "
        f"PostGIS: {pg_version[1] if pg_version else '?'}",
        "- Data: the bundled simulated demo network (11,829 sites), k = 5, "
        f"{args.n} random points in urban Beijing per scenario, times on {day} (inside the materialised window).",
        "- In-store: `Store.nearest` (Python API incl. hours state for results). HTTP: one keep-alive client on "
        "loopback against waitress (4 threads), full JSON response.", "",
        "## Nearest-open, demo size", "",
    ]
    body = []
    for backend in ("embedded", "postgis"):
        body.append(f"### {backend}\n")
        body.append(table("in-store", out[backend]["store"]))
        body.append(table("over HTTP", out[backend]["http"]))
    text = "\n".join(header) + "\n".join(body)
    args.o.write_text(text, encoding="utf-8")
    print(text)
    (args.o.with_suffix(".json")).write_text(json.dumps(out, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
