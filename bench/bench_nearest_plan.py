"""In-database nearest-open at 200k sites: a plan made per query (before) vs migration 015's plan made once per
session (after), interleaved in one database so both see the same machine.

"Before" is the nearest statement as shipped at commit fc7ae1b (read from git: the migration-014 query with a
variant per kind / radius / arrival, planned by PostgreSQL with each query's values); "after" is the store's
statement now, whose candidates come from a ``nearest_open_*`` function of migration 015. Both are sent the
way the store's pool sends them (psycopg prepares a statement from its fifth run), over loopback, for several
query shapes at 10:00 and 03:00 tomorrow; the answers are compared site by site.

Run: ``.venv/bin/python bench/bench_nearest_plan.py`` (starts its own PostGIS and loads the 200k national
layer, ~10 min), or ``--url postgresql://…`` for a database that already holds it. Writes
``bench/results_nearest_plan.md``. Timings are wall-clock on this machine; tests never assert them.
"""
from __future__ import annotations

import argparse
import datetime as dt
import platform
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_nearest import percentiles
from geoservice.hours import TZ, now_local
from geoservice.model import NearestQuery
from geoservice.store.postgis.store import NEAREST_MARGIN, nearest_open_params, nearest_open_statement

BEFORE_COMMIT = "fc7ae1b"
SHAPES: dict[str, dict[str, Any]] = {
    "warm_station + toilet": {"kinds": ("warm_station",), "amenities": ("toilet",)},
    "any kind": {},
    "two kinds": {"kinds": ("mother_baby_room", "warm_station")},
    "warm_station within 2 km": {"kinds": ("warm_station",), "max_distance_m": 2000.0},
    "warm_station, open on arrival (20 min)": {"kinds": ("warm_station",), "arrive_within_s": 1200.0},
}


def before_statement(q: NearestQuery) -> str:
    """The nearest statement of ``BEFORE_COMMIT`` for ``q``, its fragments filled as that commit's store did."""
    text = subprocess.run(["git", "-C", str(ROOT), "show",
                           f"{BEFORE_COMMIT}:geoservice/store/sql/postgis/queries.sql"],
                          check=True, capture_output=True, text=True).stdout
    parts = re.split(r"^--\s*name:\s*(\w+)\s*$", text, flags=re.MULTILINE)
    named = {parts[i]: parts[i + 1].strip() for i in range(1, len(parts), 2)}
    chosen = {"kind_condition": "kind_is" if len(q.kinds) == 1 else "kind_any_of",
              "radius_condition": "within_radius" if q.radius_m() is not None else "anywhere",
              "arrival_condition": "open_on_arrival" if q.arrive_within_s is not None else "anywhere"}

    def expand(name: str) -> str:
        body = "\n".join(line for line in named[name].splitlines() if not line.lstrip().startswith("--"))
        return re.sub(r"\{(\w+)\}", lambda m: expand(chosen.get(m.group(1), m.group(1))), body)

    return expand("nearest_open")


def before_params(q: NearestQuery, cand: int) -> dict[str, Any]:
    """Bound parameters as ``BEFORE_COMMIT``'s store sent them."""
    return {"lon": q.lon, "lat": q.lat, "at": q.at, "amenities": sorted(q.amenities), "radius": q.radius_m(),
            "kind": q.kinds[0] if len(q.kinds) == 1 else None, "kinds": list(q.kinds) or None,
            "detour": q.walk.detour_factor, "speed": q.walk.speed_m_per_s, "cand": cand, "limit": q.limit}


def query_points(conn: psycopg.Connection, n: int, seed: int = 11) -> list[tuple[float, float]]:
    """Points jittered by up to ~2 km around random sites (as bench_scale.py picks them)."""
    sites = conn.execute("SELECT ST_X(geog::geometry), ST_Y(geog::geometry) FROM sites ORDER BY id").fetchall()
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(sites), n)
    return [(sites[i][0] + float(rng.normal(0, 0.01)), sites[i][1] + float(rng.normal(0, 0.01))) for i in idx]


def timed(conn: psycopg.Connection, sql: str, params: list[dict[str, Any]]) -> tuple[list[float], list[Any]]:
    """Per-query wall-clock seconds after 10 warm-up runs, and the answers (site ids in order)."""
    for p in params[:10]:
        conn.execute(sql, p).fetchall()
    samples, answers = [], []
    for p in params:
        t0 = time.perf_counter()
        rows = conn.execute(sql, p).fetchall()
        samples.append(time.perf_counter() - t0)
        answers.append([r[0] for r in rows if r[0] is not None])  # today's: a row of nulls when none
    return samples, answers


def planning_execution(conn: psycopg.Connection, sql: str, params: list[dict[str, Any]]) -> tuple[float, float]:
    """Median planning and execution ms of ``EXPLAIN ANALYZE`` over ``params``."""
    plan, execute = [], []
    for p in params:
        text = "\n".join(r[0] for r in conn.execute("EXPLAIN (ANALYZE, TIMING OFF) " + sql, p, prepare=False))
        plan.append(float(re.search(r"Planning Time: ([\d.]+)", text).group(1)))  # type: ignore[union-attr]
        execute.append(float(re.search(r"Execution Time: ([\d.]+)", text).group(1)))  # type: ignore[union-attr]
    return float(np.median(plan)), float(np.median(execute))


def span(runs: list[dict[str, float]], key: str) -> str:
    """``min–max`` of ``key`` over rounds."""
    values = [r[key] for r in runs]
    return f"{min(values):.2f}–{max(values):.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", help="a database already holding the national layer at today's code")
    parser.add_argument("-n", type=int, default=500, help="query points per case")
    parser.add_argument("--rounds", type=int, default=2, help="before/after rounds, interleaved")
    parser.add_argument("-o", type=Path, default=ROOT / "bench" / "results_nearest_plan.md")
    args = parser.parse_args()
    cluster = None
    url = args.url
    if url is None:
        from bench.bench_scale import load_national
        from geoservice.bootstrap import load_bundled_calendar
        from geoservice.services import open_services
        from geoservice.settings import Settings
        from tools.pgcluster import ThrowawayCluster

        cluster = ThrowawayCluster(fast=False).start()
        url = cluster.create_database("bench_plan")
        pg = open_services(Settings(database_url=url, autoload_layers=False))
        pg.migrate()
        load_bundled_calendar(pg)
        load_national(pg, 200_000)
        pg.close()
        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute("VACUUM (ANALYZE)")
    day = now_local().date() + dt.timedelta(days=1)
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            n_sites = conn.execute("SELECT count(*) FROM sites").fetchone()[0]  # type: ignore[index]
            n_rows = conn.execute("SELECT count(*) FROM site_open_intervals").fetchone()[0]  # type: ignore[index]
            version = conn.execute("SHOW server_version").fetchone()[0]  # type: ignore[index]
            pts = query_points(conn, args.n)
            rows: list[str] = []
            for hour in (10, 3):
                at = dt.datetime.combine(day, dt.time(hour), tzinfo=TZ)
                for shape, fields in SHAPES.items():
                    queries = [NearestQuery(lon=lon, lat=lat, at=at, limit=5, **fields) for lon, lat in pts]
                    cand = 5 + NEAREST_MARGIN
                    old_sql, new_sql = before_statement(queries[0]), nearest_open_statement(queries[0])
                    old_p = [before_params(q, cand) for q in queries]
                    new_p = [nearest_open_params(q, cand) for q in queries]
                    res: dict[str, list[dict[str, float]]] = {"before": [], "after": []}
                    same = True
                    for _ in range(args.rounds):
                        old_t, old_a = timed(conn, old_sql, old_p)
                        new_t, new_a = timed(conn, new_sql, new_p)
                        res["before"].append(percentiles(old_t))
                        res["after"].append(percentiles(new_t))
                        same = same and old_a == new_a
                    plan_ms, exec_ms = planning_execution(conn, old_sql, old_p[:100])
                    _, new_exec = planning_execution(conn, new_sql, new_p[:100])

                    old, new = res["before"], res["after"]
                    rows.append(f"| {hour:02d}:00 | {shape} | {span(old, 'p50')} | {span(new, 'p50')} | "
                                f"{span(old, 'p99')} | {span(new, 'p99')} | {plan_ms:.2f} + {exec_ms:.2f} | "
                                f"{new_exec:.2f} | {'yes' if same else 'NO'} |")
                    print(rows[-1], flush=True)
    finally:
        if cluster is not None:
            cluster.stop()
    text = (
        "## Nearest-open at 200k: a plan per query vs one plan per session (migration 015)\n\n"
        f"Generated by `bench/bench_nearest_plan.py` on {dt.datetime.now(TZ):%Y-%m-%d %H:%M} (Asia/Shanghai), "
        f"{platform.machine()}, 2 cores shared with the client; PostgreSQL {version}; {n_sites:,} sites, "
        f"{n_rows:,} open-interval rows (by day, migration 014); {args.n} query points near sites, k = 5, "
        f"{day} at 10:00 and 03:00; {args.rounds} rounds, before and after interleaved (ranges over rounds). "
        f"Before: the statement of commit {BEFORE_COMMIT}, planned per query by PostgreSQL (its planning + "
        "execution are medians of EXPLAIN ANALYZE over 100 points); after: the store's statement, whose "
        "candidates come from a `nearest_open_*` function of migration 015 (its execution includes the "
        "function's own work, planned once per session). Same answers = the same sites in the same order for "
        "every point.\n\n"
        "| time | query | p50 before | p50 after | p99 before | p99 after | before: plan + execute | "
        "after: execute | same answers |\n|---|---|---:|---:|---:|---:|---:|---:|---|\n" + "\n".join(rows) + "\n")
    args.o.write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
