"""Do reads scale out on standbys? Nearest-open throughput at 200k sites with each server held to its own core.

This machine has 2 cores and no second machine, so a server "on its own machine" is stood in for by a server
held to its own core (``taskset`` on the postmaster and every process it has forked; backends forked later
inherit it). The load is the store's own nearest statement (warm stations with a toilet, open tomorrow at
10:00, k = 5), sent by ``pgbench`` (C, prepared statements, as the store's pool sends it after five runs) from
500 query points near sites, one per transaction. pgbench runs on either core and takes a few per cent of it.

Runs, 20 s each after 5 s not counted:
- the primary alone on both cores (the figure of one 2-core database machine);
- the primary held to core 0 (one core's worth);
- the standby held to core 1 (the same query on a standby: same speed?);
- primary on core 0 and standby on core 1 together, the clients split between them (reads spread over two
  servers of one core each: does the total double?).

Run: ``.venv/bin/python bench/bench_scaleout.py`` (starts its own PostGIS, loads the national layer, ~10 min).
Writes ``bench/results_scaleout.md``. Not a test.
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg

from bench.bench_scale import load_national, query_points
from geoservice.bootstrap import load_bundled_calendar
from geoservice.hours import TZ, now_local
from geoservice.model import NearestQuery
from geoservice.services import open_services
from geoservice.settings import Settings
from geoservice.store.postgis.store import NEAREST_MARGIN, nearest_open_params, nearest_open_statement
from geoservice.walk import WalkModel
from tools.pgcluster import HotStandby, ThrowawayCluster

SECONDS, WARM_UP_S, CLIENTS = 20, 5, 4
SENTINEL_LON, SENTINEL_LAT = 123.456789, -12.345678  # stand-ins, replaced by the query point's columns


def pgbench_script(url: str, at: dt.datetime) -> str:
    """The store's nearest statement, its values written in, the query point read from ``bench_points``."""
    q = NearestQuery(lon=SENTINEL_LON, lat=SENTINEL_LAT, at=at, kinds=("warm_station",), amenities=("toilet",),
                     limit=5, walk=WalkModel())
    params = nearest_open_params(q, q.limit + NEAREST_MARGIN)
    with psycopg.connect(url, autocommit=True) as conn:  # mogrify only renders: no statement is sent
        text = psycopg.ClientCursor(conn).mogrify(nearest_open_statement(q), params)
    for value, column in ((SENTINEL_LON, "lon"), (SENTINEL_LAT, "lat")):
        text, n = re.subn(re.escape(repr(value)), f"(SELECT {column} FROM bench_points WHERE i = :i)", text)
        if n != 1:
            raise SystemExit(f"the statement should hold {value} once, not {n} times")
    text = re.sub(r"--[^\n]*", "", text)  # pgbench reads a statement as one line: no comments to end it
    return "\\set i random(1, 500)\n" + " ".join(text.split()) + ";\n"


def pin(data_dir: Path, core: str) -> None:
    """Hold the server of ``data_dir`` (its postmaster and every process it forked) to ``core``."""
    postmaster = int((data_dir / "postmaster.pid").read_text().split()[0])
    children = subprocess.run(["ps", "-o", "pid=", "--ppid", str(postmaster)], capture_output=True, text=True)
    for pid in [postmaster, *(int(p) for p in children.stdout.split())]:
        subprocess.run(["taskset", "-a", "-p", "-c", core, str(pid)], check=True, capture_output=True)


def pgbench(urls: Sequence[str], script: Path, seconds: int) -> list[float]:
    """Transactions per second against each of ``urls`` at once (``CLIENTS`` clients shared between them)."""
    per = max(1, CLIENTS // len(urls))
    env = os.environ | {"PGOPTIONS": "-c jit=off"}  # as the store's pool configures every connection
    procs = [subprocess.Popen(["pgbench", "-n", "-M", "prepared", "-c", str(per), "-j", "1", "-T", str(seconds),
                               "-f", str(script), url], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=env) for url in urls]
    rates = []
    for proc in procs:
        out, err = proc.communicate(timeout=seconds + 60)
        found = re.search(r"tps = ([\d.]+) \(without initial connection time\)", out)
        if proc.returncode != 0 or found is None:
            raise SystemExit(f"pgbench failed: {err[-2000:]}")
        rates.append(float(found.group(1)))
    return rates


def caught_up(primary: str, standby: str) -> None:
    """Wait until the standby has replayed everything the primary wrote so far."""
    with psycopg.connect(primary, autocommit=True) as p, psycopg.connect(standby, autocommit=True) as s:
        target = p.execute("SELECT pg_current_wal_lsn()").fetchone()[0]  # type: ignore[index]
        for _ in range(600):
            if s.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (target,)).fetchone()[0]:  # type: ignore[index]
                return
            time.sleep(0.5)
    raise SystemExit("the standby did not catch up in 5 minutes")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--national", type=int, default=200_000)
    parser.add_argument("-o", type=Path, default=ROOT / "bench" / "results_scaleout.md")
    args = parser.parse_args()
    at = dt.datetime.combine(now_local().date() + dt.timedelta(days=1), dt.time(10), TZ)
    cluster = ThrowawayCluster(fast=False).start()
    standby: HotStandby | None = None
    try:
        url = cluster.create_database("scaleout")
        store = open_services(Settings(database_url=url, autoload_layers=False))
        store.migrate()
        load_bundled_calendar(store)
        sites = load_national(store, args.national)
        store.close()
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE TABLE bench_points (i integer PRIMARY KEY, lon float8 NOT NULL, lat float8 NOT NULL)")
            with conn.cursor() as cur:
                cur.executemany("INSERT INTO bench_points VALUES (%s, %s, %s)",
                                [(i + 1, lon, lat) for i, (lon, lat) in enumerate(query_points(sites, 500))])
            conn.execute("VACUUM (ANALYZE)")
        standby = HotStandby(cluster).start()
        standby_url = standby.url("scaleout")
        caught_up(url, standby_url)
        with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as f:
            f.write(pgbench_script(url, at))
            script = Path(f.name)
        rows = []

        def measure(label: str, urls: Sequence[str]) -> None:
            pgbench(urls, script, WARM_UP_S)
            rates = pgbench(urls, script, SECONDS)
            parts = " + ".join(f"{r:,.0f}" for r in rates) if len(rates) > 1 else ""
            rows.append(f"| {label} | {sum(rates):,.0f} | {parts} |")
            print(rows[-1], flush=True)

        measure("primary alone, both cores", [url])
        pin(cluster.data, "0")
        pin(standby.data, "1")
        measure("primary alone, held to core 0", [url])
        measure("standby alone, held to core 1", [standby_url])
        measure("primary (core 0) + standby (core 1), clients split", [url, standby_url])
        measure("primary alone, held to core 0 (again)", [url])
        script.unlink()
    finally:
        if standby is not None:
            standby.stop()
        cluster.stop()
    lines = [
        "# Reads on standbys: nearest-open throughput, each server held to its own core (`bench/bench_scaleout.py`)",
        "",
        f"Generated on {dt.datetime.now(TZ):%Y-%m-%d %H:%M} (Asia/Shanghai); {platform.machine()}, "
        f"{os.cpu_count()} cores, no second machine: a server held to one core (`taskset`) stands in for a "
        f"server on its own machine. {len(sites):,} simulated sites; the store's nearest statement (warm "
        f"stations with a toilet, open {at:%Y-%m-%d %H:%M}, k = 5) from 500 points near sites, sent by pgbench "
        f"(prepared, {CLIENTS} clients, `jit = off`), {SECONDS} s per run after {WARM_UP_S} s not counted; "
        "pgbench itself runs on either core.",
        "",
        "| reads on | queries/s | per server |",
        "|---|---:|---:|",
        *rows,
    ]
    args.o.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
