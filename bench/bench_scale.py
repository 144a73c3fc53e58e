"""Nearest-open at Beijing demo size (11,829) and national size (200,000 simulated sites).

For each size, in PostGIS directly (the SQL the store runs, timed on the client across a loopback connection),
at 10:00 and 03:00 with a kind + amenity filter, side by side with (a) the same query with index scans
disabled (sequential scan) and (b) unfiltered KNN with the same answer columns; then the embedded store;
then HTTP throughput and latency under concurrency with the production server (granian, workers sized for
2 cores) measured by wrk from a second process on loopback.

Run: ``.venv/bin/python bench/bench_scale.py`` (needs Debian ``wrk``; starts its own PostGIS). Writes
``bench/results_scale.md``; ``bench/run.py`` folds it into ``bench/results.md``.
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import wrkout
from bench.bench_nearest import percentiles
from geoservice.bootstrap import ensure_ready, load_bundled_calendar
from geoservice.hours import TZ, now_local
from geoservice.model import (
    NearestQuery,
    Site,
    SiteFilter,
)
from geoservice.services import Services as Store
from geoservice.services import open_services
from geoservice.settings import Settings
from geoservice.store.postgis.store import (
    NEAREST_MARGIN,
    _q,
    nearest_open_params,
    nearest_open_statement,
    nearest_rows_proven,
    run_nearest_open,
)
from tools.pgcluster import ThrowawayCluster


def query_points(sites: list[Site], n: int, seed: int = 11) -> list[tuple[float, float]]:
    """Points near real (simulated) sites, jittered by up to ~2 km: where couriers actually ask from."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(sites), n)
    return [(sites[i].lon + float(rng.normal(0, 0.01)), sites[i].lat + float(rng.normal(0, 0.01))) for i in idx]


def nearest_queries(pts: list[tuple[float, float]], at: dt.datetime) -> list[NearestQuery]:
    """The benchmark's courier queries: k = 5 warm stations with a toilet, open at ``at``."""
    return [NearestQuery(lon=lon, lat=lat, at=at, kinds=("warm_station",), amenities=("toilet",), limit=5)
            for lon, lat in pts]


def time_sql(conn, sql: str, params: list[dict], setup: list[str] = ()) -> dict[str, float]:  # type: ignore[no-untyped-def]
    """Client-side latency of ``sql`` over a loopback connection, after 10 warm-up runs.

    The connection prepares statements the way the store's pool does (psycopg's default), so the figures
    include what PostgreSQL really does per request: bind, plan, execute, send.
    """
    for stmt in setup:
        conn.execute(stmt)
    for p in params[:10]:
        conn.execute(sql, p).fetchall()
    samples = []
    for p in params:
        t0 = time.perf_counter()
        conn.execute(sql, p).fetchall()
        samples.append(time.perf_counter() - t0)
    conn.rollback()
    return percentiles(samples)


def repeats(conn, queries: list[NearestQuery]) -> float:  # type: ignore[no-untyped-def]
    """Share of queries whose first KNN batch could not prove the answer (the store then asks again)."""
    n = 0
    for q in queries:
        cand = q.limit + NEAREST_MARGIN
        _, rows = run_nearest_open(conn, nearest_open_statement(q), nearest_open_params(q, cand))
        n += not nearest_rows_proven(rows, q.limit, cand)
    conn.rollback()
    return n / len(queries)


def bench_postgis_sql(store: Store, pts: list[tuple[float, float]], day: dt.date, seq_n: int) -> tuple[dict, dict]:
    out, repeat = {}, {}
    with store.spatial.connection() as conn:  # type: ignore[attr-defined]
        for hour in (10, 3):
            queries = nearest_queries(pts, dt.datetime.combine(day, dt.time(hour), tzinfo=TZ))
            sql = nearest_open_statement(queries[0])
            params = [nearest_open_params(q, q.limit + NEAREST_MARGIN) for q in queries]
            # The store's one statement (the window comes on its rows); the baseline below reads no window.
            out[f"{hour:02d}:00 filtered (warm_station + toilet, open)"] = time_sql(conn, sql, params)
            # A distinct statement text, so a plan psycopg/PostgreSQL cached for the indexed run is not reused.
            out[f"{hour:02d}:00 same, sequential scan"] = time_sql(
                conn, sql + f"\n-- sequential-scan baseline {hour}", params[:seq_n],
                ["SET LOCAL enable_indexscan = off", "SET LOCAL enable_bitmapscan = off"])
            repeat[f"{hour:02d}:00"] = repeats(conn, queries)
        out["unfiltered KNN (k=5), same answer columns"] = time_sql(
            conn, _q("nearest_any"), [{"lon": lon, "lat": lat, "cand": 5 + NEAREST_MARGIN, "limit": 5}
                                      for lon, lat in pts])
    return out, repeat


def bench_store(store: Store, pts: list[tuple[float, float]], day: dt.date) -> dict:
    out = {}
    for hour in (10, 3):
        samples = []
        for q in nearest_queries(pts, dt.datetime.combine(day, dt.time(hour), tzinfo=TZ)):
            t0 = time.perf_counter()
            store.sites.nearest(q)
            samples.append(time.perf_counter() - t0)
        out[f"{hour:02d}:00 filtered, Store.nearest"] = percentiles(samples[10:])
    return out


WRK_SCRIPT = """
local pts = {%s}
local i = 0
request = function()
  i = i %% #pts + 1
  local p = pts[i]
  return wrk.format("GET", "/api/v1/sites/nearest?lat=" .. p[2] .. "&lon=" .. p[1] ..
                    "&kind=warm_station&amenity=toilet&limit=5")
end
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def bench_http(env: dict[str, str], pts: list[tuple[float, float]], workers: int, threads: int,
               connections: int, seconds: int) -> dict:
    port = free_port()
    server = subprocess.Popen([str(ROOT / ".venv/bin/geoservice"), "serve", "--port", str(port),
                               "--workers", str(workers), "--threads", str(threads)],
                              env=os.environ | env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(120):
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                time.sleep(0.5)
        time.sleep(3)  # workers warm up after binding
        with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
            f.write(WRK_SCRIPT % ",".join(f"{{{lon:.6f},{lat:.6f}}}" for lon, lat in pts))
            script = f.name
        # 3 s not counted first, as bench_servers does: each worker's first requests plan its session's
        # statements and fill its hours cache, which a worker serving for hours has long done.
        for duration in (3, seconds):
            proc = subprocess.run(["wrk", "-t", "2", "-c", str(connections), "-d", f"{duration}s", "--latency",
                                   "-s", script, f"http://127.0.0.1:{port}"],
                                  capture_output=True, text=True, timeout=duration + 60)
        text = proc.stdout
    finally:
        server.terminate()
        server.wait(30)

    return dict(wrkout.parse(text))


def table(rows: dict[str, dict[str, float]]) -> str:
    lines = ["| case | p50 ms | p95 ms | p99 ms |",
             "|---|---:|---:|---:|"]
    for name, r in rows.items():
        line = f"| {name} | {r['p50']:.3f} | {r['p95']:.3f} | {r['p99']:.3f} |"
        lines.append(line)
    return "\n".join(lines) + "\n"


def ratios(rows: dict[str, dict[str, float]]) -> str:
    f10 = rows["10:00 filtered (warm_station + toilet, open)"]
    f03 = rows["03:00 filtered (warm_station + toilet, open)"]
    s10, s03 = rows["10:00 same, sequential scan"], rows["03:00 same, sequential scan"]
    knn = rows["unfiltered KNN (k=5), same answer columns"]
    return (f"- sequential scan / indexed: {s10['p50'] / f10['p50']:.0f}× at 10:00, {s03['p50'] / f03['p50']:.0f}× "
            f"at 03:00 (p50)\n"
            f"- filtered / unfiltered KNN: {f10['p50'] / knn['p50']:.1f}× at 10:00, {f03['p50'] / knn['p50']:.1f}× "
            "at 03:00 (p50; target ≤ 3× at 03:00)\n")


def load_national(store: Store, total: int) -> list[Site]:
    from tqdm import tqdm

    from tools.layers.national import generate_national_sites, load_counties

    with tqdm(total=2875, desc="counties", unit="county") as bar:
        counties = load_counties(progress=bar.update)
    with tqdm(total=len(counties), desc="national sites", unit="county") as bar:
        sites = generate_national_sites(total, counties=counties, progress=bar.update)
    for i in tqdm(range(0, len(sites), 20000), desc="loading", unit="batch"):
        store.sites.upsert_sites(sites[i:i + 20000])
    return sites


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--national", type=int, default=200_000)
    parser.add_argument("-n", type=int, default=500, help="queries per case")
    parser.add_argument("--seconds", type=int, default=15, help="wrk duration per run")
    parser.add_argument("-o", type=Path, default=ROOT / "bench" / "results_scale.md")
    args = parser.parse_args()
    day = now_local().date() + dt.timedelta(days=1)
    cluster = ThrowawayCluster(fast=False).start()
    sections = []
    try:
        for label, size in (("Beijing demo", None), ("national", args.national)):
            url = cluster.create_database("bench_" + ("demo" if size is None else "national"))
            settings = Settings(database_url=url, autoload_layers=size is None)
            pg = open_services(settings)
            t0 = time.perf_counter()
            if size is None:
                ensure_ready(pg, settings)
                sites, _ = pg.sites.list_sites(SiteFilter(limit=1_000_000))
            else:
                pg.migrate()
                load_bundled_calendar(pg)
                sites = load_national(pg, size)
            load_s = time.perf_counter() - t0
            # Settle the freshly loaded tables first, so autovacuum does not run in the middle of a measurement.
            with psycopg.connect(url, autocommit=True) as admin:
                admin.execute("VACUUM (ANALYZE)")
            pts = query_points(sites, args.n)
            sql_rows, repeat = bench_postgis_sql(pg, pts, day, seq_n=max(20, args.n // 10))
            store_rows = bench_store(pg, pts, day)
            pg.close()
            with tempfile.TemporaryDirectory() as tmp:
                emb_settings = Settings(embedded_path=Path(tmp) / "e.sqlite", autoload_layers=size is None)
                emb = open_services(emb_settings)
                t1 = time.perf_counter()
                if size is None:
                    ensure_ready(emb, emb_settings)
                else:
                    emb.migrate()
                    load_bundled_calendar(emb)
                    for i in range(0, len(sites), 20000):
                        emb.sites.upsert_sites(sites[i:i + 20000])
                emb_load = time.perf_counter() - t1
                emb_rows = bench_store(emb, pts, day)
                emb.close()
            # wrk is one client address: the public rate limit is off for the load runs.
            env = {"DATABASE_URL": url, "GEOSERVICE_PUBLIC_RATE_PER_MINUTE": "0"}
            http = {c: bench_http(env, pts[:200], workers=3, threads=1, connections=c, seconds=args.seconds)
                    for c in (8, 32)}
            sections.append(
                f"### {label}: {len(sites):,} sites\n\n"
                f"Loaded into PostGIS in {load_s:.0f} s, into the embedded store in {emb_load:.0f} s "
                "(validation skipped for the national layer: it lies outside Beijing's service area).\n\n"
                "#### PostGIS, in-database (k = 5)\n\n" + table(sql_rows) + "\n" + ratios(sql_rows)
                + "- first KNN batch not enough to prove the answer (store asks again): "
                + ", ".join(f"{100 * v:.1f} % at {k}" for k, v in repeat.items()) + "\n\n"
                "#### Store.nearest, whole call (PostGIS / embedded)\n\n" + table(store_rows | {
                    f"embedded: {k}": v for k, v in emb_rows.items()}) + "\n"
                "#### HTTP under load: granian 3 workers × 1 thread (PostGIS, no proxy), wrk 2 threads, "
                f"{args.seconds} s after 3 s not counted, random points, kind + amenity filter, time = now (public "
                "rate limit off)\n\n"
                "| connections | req/s | p50 ms | p90 ms | p99 ms | non-2xx |\n|---:|---:|---:|---:|---:|---:|\n"
                + "".join(f"| {c} | {h['req_per_s']:.0f} | {h['p50']:.2f} | {h['p90']:.2f} | {h['p99']:.2f} | "
                          f"{h['non_2xx']} |\n" for c, h in http.items()))
            print(sections[-1], flush=True)
    finally:
        cluster.stop()
    text = ("## Scale: demo vs national\n\n"
            f"Generated by `bench/bench_scale.py` on {dt.datetime.now(TZ):%Y-%m-%d %H:%M} (Asia/Shanghai); "
            f"times on {day}. Query points are jittered around site locations (where couriers ask from). "
            "Client and server share the machine's 2 cores.\n\n" + "\n".join(sections))
    args.o.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
