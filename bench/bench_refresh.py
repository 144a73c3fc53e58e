"""The nightly refresh at 200k sites: what it writes, how long it takes, and what it leaves for nearest queries.

Before (commit ``BEFORE_COMMIT``) a refresh deleted every open interval and inserted them all again in one
transaction: the partitions and their KNN indexes doubled and nearest queries slowed by about a quarter. Now it
writes the difference (geoservice/store/sql/postgis/queries.sql, "writing open intervals"). On one national
database, in this order:

1. as loaded: partition sizes and the nearest statement's p50 / p99 (warm_station + toilet, tomorrow 10:00);
2. today's refresh of the same window, then 3. of the window a day later (what the nightly job does);
4. the ``BEFORE_COMMIT`` refresh of that later window, run from a git worktree against the same database.

After each: seconds, rows inserted and deleted (pg_stat_user_tables), sizes after VACUUM, and the nearest figures.

Run: ``.venv/bin/python bench/bench_refresh.py --url postgresql://…`` on a database holding the national layer
(bench_nearest_plan.py says how to make one). Writes ``bench/results_refresh.md``. Tests never assert timings.
"""
from __future__ import annotations

import argparse
import datetime as dt
import platform
import subprocess
import sys
import time
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_nearest import percentiles
from bench.bench_nearest_plan import query_points, timed
from bench.worktree import worktree
from geoservice.hours import TZ, now_local
from geoservice.model import NearestQuery
from geoservice.store.postgis.store import NEAREST_MARGIN, nearest_open_params, nearest_open_statement

BEFORE_COMMIT = "aedfda0"
REFRESH = """
import sys, time, datetime as dt
from geoservice.hours import TZ
from geoservice.services import open_services
from geoservice.settings import Settings
svc = open_services(Settings(database_url=sys.argv[1], autoload_layers=False))
start = dt.datetime.fromisoformat(sys.argv[2])
window = (start, start + dt.timedelta(days=int(sys.argv[3])))
t0 = time.perf_counter()
result = svc.sites.refresh_intervals(window)
print(time.perf_counter() - t0, result.intervals)
svc.close()
"""
WRITES = ("SELECT coalesce(sum(n_tup_ins), 0), coalesce(sum(n_tup_del), 0) FROM pg_stat_user_tables "
          "WHERE relname LIKE 'site_open_intervals_%'")
SIZES = ("SELECT coalesce(sum(pg_relation_size(c.oid)) FILTER (WHERE c.relkind = 'r'), 0), "
         "coalesce(sum(pg_relation_size(c.oid)) FILTER (WHERE c.relkind = 'i' AND c.relname LIKE '%geog%'), 0) "
         "FROM pg_class c WHERE c.relname LIKE 'site_open_intervals_%'")


def nearest_figures(url: str, points: list[tuple[float, float]], at: dt.datetime) -> tuple[float, float]:
    """p50 and p99 ms of the store's nearest statement over ``points`` on a new session."""
    with psycopg.connect(url, autocommit=True) as conn:
        params = []
        for lon, lat in points:
            q = NearestQuery(lon=lon, lat=lat, at=at, kinds=("warm_station",), amenities=("toilet",))
            params.append(nearest_open_params(q, q.limit + NEAREST_MARGIN))
        sql = nearest_open_statement(NearestQuery(lon=0, lat=0, at=at, kinds=("warm_station",)))
        samples, _ = timed(conn, sql, params)
        p = percentiles(samples)
        return p["p50"], p["p99"]


def state(url: str) -> tuple[int, int, int, int]:
    """Rows inserted and deleted so far, table and KNN index bytes (after VACUUM, so dead rows are counted free)."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE) site_open_intervals")
        time.sleep(1.0)  # the statistics collector reports asynchronously
        ins, dels = conn.execute(WRITES).fetchone()  # type: ignore[misc]
        table, index = conn.execute(SIZES).fetchone()  # type: ignore[misc]
    return int(ins), int(dels), int(table), int(index)


def refresh(url: str, python_path: Path, start: dt.datetime, days: int) -> tuple[float, int]:
    """Seconds and intervals of a refresh of [start, start + days) by the code at ``python_path``."""
    out = subprocess.run([sys.executable, "-c", REFRESH, url, start.isoformat(), str(days)], check=True,
                         capture_output=True, text=True, cwd=python_path, env={"PYTHONPATH": str(python_path),
                                                                                "PATH": "/usr/bin:/bin"})
    seconds, intervals = out.stdout.split()
    return float(seconds), int(intervals)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True, help="a database holding the national layer")
    parser.add_argument("-n", type=int, default=500, help="query points")
    parser.add_argument("-o", type=Path, default=ROOT / "bench" / "results_refresh.md")
    args = parser.parse_args()
    with psycopg.connect(args.url) as conn:
        points = query_points(conn, args.n)
        start = dt.datetime.fromisoformat(conn.execute("SELECT value FROM meta WHERE key = 'window_start'")
                                          .fetchone()[0]).astimezone(TZ)  # type: ignore[index]
        end = dt.datetime.fromisoformat(conn.execute("SELECT value FROM meta WHERE key = 'window_end'")
                                        .fetchone()[0]).astimezone(TZ)  # type: ignore[index]
    days = (end - start).days
    at = dt.datetime.combine(now_local().date() + dt.timedelta(days=1), dt.time(10), tzinfo=TZ)
    rows: list[tuple[str, str, str, tuple[int, int, int, int], tuple[float, float]]] = []
    last = state(args.url)
    rows.append(("as loaded", "", "", last, nearest_figures(args.url, points, at)))
    with worktree(BEFORE_COMMIT) as before:
        plan = [("today: same window", ROOT, start), ("today: a day later", ROOT, start + dt.timedelta(days=1)),
                (f"{BEFORE_COMMIT}: a day later again", before, start + dt.timedelta(days=2))]
        for label, code, first in plan:
            seconds, intervals = refresh(args.url, code, first, days)
            now = state(args.url)
            delta = (now[0] - last[0], now[1] - last[1], now[2], now[3])
            rows.append((label, f"{seconds:.0f}", f"{intervals:,}", delta, nearest_figures(args.url, points, at)))
            last = now
            print(label, seconds, delta, rows[-1][4], flush=True)
    with psycopg.connect(args.url) as conn:
        version = conn.execute("SELECT version()").fetchone()[0]  # type: ignore[index]
    mib = 1024 * 1024
    lines = [
        "# The nightly refresh at 200k sites (bench/bench_refresh.py)", "",
        f"Generated on {now_local():%Y-%m-%d %H:%M} (Asia/Shanghai); machine {platform.machine()}, "
        f"{platform.platform()}, Python {platform.python_version()}; {version.split(',')[0]}. One national "
        f"database ({days}-day window), the refreshes one after the other; nearest = the store's statement for "
        f"k = 5 warm stations with a toilet at {at:%Y-%m-%d %H:%M}, {args.n} points, a new session each time. "
        "Sizes after VACUUM (dead rows become free space, which PostgreSQL reuses but does not give back).", "",
        "| step | seconds | intervals | rows inserted | rows deleted | table MiB | KNN index MiB "
        "| nearest p50 ms | p99 ms |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for label, seconds, intervals, (ins, dels, table, index), (p50, p99) in rows:
        written = ("", "") if not seconds else (f"{ins:,}", f"{dels:,}")
        lines.append(f"| {label} | {seconds} | {intervals} | {written[0]} | {written[1]} | {table / mib:.0f} "
                     f"| {index / mib:.0f} | {p50:.2f} | {p99:.2f} |")
    args.o.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(args.o.read_text(encoding="utf-8"))


if __name__ == "__main__":
    main()
