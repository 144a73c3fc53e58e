"""Latency at a fixed offered rate, from a load generator written in C: the issue's targets as they read.

"1,000 req/s at p99 ≤ 20 ms" and "500 req/s of mixed load at p99 ≤ 50 ms" are latencies *at* a rate. wrk's
closed loop (bench_servers, bench_scale) measures something else: with 8 connections always busy the server
is saturated by construction, and its p99 is the queue of a saturated server. bench_soak sends at a fixed rate,
but from Python asyncio, which takes CPU from the two cores it measures.

Here wrk (C) sends at a fixed rate instead: its Lua ``delay()`` hands each connection the next slot of one
schedule, start + k / rate (LuaJIT's FFI reads the monotonic clock), so a request goes out on time whenever any
of the 64 connections is free. Latency counts from that send. A slot claimed after its time means all 64 were
busy: that is counted ("late sends") and, above 0.1 % of the requests, the row says the rate was not held
(only then could wrk's figures hide a queue).

Runs, each after 5 s of load not counted (every worker plans its statements and fills its caches):
- nearest (kind + amenity filter, random points near sites) to granian 3 × 1 over the PostGIS demo database,
  and over a national one (200,000 simulated sites) unless ``--national 0``;
- bench_soak's mix (nearest 70 %, listings 15 %, OGC items 15 %) through nginx (the shipped config) to granian
  3 × 1, with the planners' coverage stream beside it (one H3-7 coverage request every 10 s from a Python
  thread; as in bench_soak its own latencies are not in the mix's figures).

Run: ``.venv/bin/python bench/bench_rate.py`` (needs Debian wrk and nginx; starts its own PostGIS; ~15 min with
the national database). Writes ``bench/results_rate.md``. Not a test: nothing here asserts anything.
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
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg

from bench import wrkout
from bench.bench_scale import load_national, query_points
from bench.bench_soak import coverage_path, make_paths
from bench.worktree import worktree
from geoservice.bootstrap import ensure_ready, load_bundled_calendar
from geoservice.hours import TZ
from geoservice.model import SiteFilter
from geoservice.services import open_services
from geoservice.settings import Settings
from tools.pgcluster import ThrowawayCluster
from tools.servers import NginxProcess, ServeProcess, get, stop_on_sigterm

CONNECTIONS = 64
LATE_MS = 2.0  # a slot claimed this long after its time: every connection was busy then
LATE_SHARE = 0.001
WARM_UP_S = 5

RATE_SCRIPT = """
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clk_id, bench_timespec *tp);
]]
local ts = ffi.new("bench_timespec")
local function now_ms()
  ffi.C.clock_gettime(1, ts)  -- CLOCK_MONOTONIC
  return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
end

local paths = {%(paths)s}
local per_ms = %(rate)f / 1000
local threads = {}
local start, k, i = nil, 0, 0
late = 0

function setup(thread) table.insert(threads, thread) end

function delay()
  local t = now_ms()
  if start == nil then start = t end
  local slot = start + k / per_ms
  k = k + 1
  if t - slot > %(late_ms)f then late = late + 1 end
  return math.max(0, math.floor(slot - t + 0.5))
end

function request()
  i = i %% #paths + 1
  return wrk.format("GET", paths[i])
end

function done(summary, latency, requests)
  local n = 0
  for _, t in ipairs(threads) do n = n + t:get("late") end
  io.write(string.format("late sends: %%d\\n", n))
end
"""


def wrk_at_rate(port: int, paths: Sequence[str], rate: float, seconds: int) -> dict[str, float]:
    """``paths`` in turn at ``rate`` per second for ``seconds`` (one wrk thread, :data:`CONNECTIONS`
    connections): achieved rate, p50 / p90 / p99 / max ms from the send, non-2xx, socket errors, late sends."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(RATE_SCRIPT % {"paths": ",".join(f'"{p}"' for p in paths), "rate": rate, "late_ms": LATE_MS})
        script = f.name
    try:
        proc = subprocess.run(["wrk", "-t", "1", "-c", str(CONNECTIONS), "-d", f"{seconds}s", "--latency",
                               "--timeout", "10s", "-s", script, f"http://127.0.0.1:{port}"],
                              capture_output=True, text=True, timeout=seconds + 60)
    finally:
        os.unlink(script)
    r = wrkout.parse(proc.stdout)
    late = re.search(r"late sends: (\d+)", proc.stdout)
    return {"rate": rate, "achieved": r["req_per_s"], "requests": float(r["requests"]), "p50": r["p50"],
            "p90": r["p90"], "p99": r["p99"], "max": r["max"], "non2xx": float(r["non_2xx"]),
            "socket_errors": float(r["socket_errors"]), "late": float(late.group(1)) if late else 0.0}


@contextmanager
def coverage_stream(port: int, every: float) -> Iterator[list[float]]:
    """One planners' coverage request every ``every`` seconds beside the load; yields their latencies."""
    stop = threading.Event()
    seconds: list[float] = []

    def loop() -> None:
        i = 0
        while not stop.wait(every):
            t0 = time.monotonic()
            try:
                status, _, body = get(port, coverage_path(1000 + i), timeout=30.0)
            except OSError as exc:
                status, body = 0, repr(exc).encode()
            seconds.append(time.monotonic() - t0 if status == 200 else float("inf"))  # a failure: inf
            if status != 200:
                print(f"coverage {status}: {body[:300]!r}", flush=True)
            i += 1

    thread = threading.Thread(target=loop, daemon=True)
    if every > 0:
        thread.start()
    try:
        yield seconds
    finally:
        stop.set()
        if every > 0:
            thread.join(60)


PLANNERS = r"^/(api/v1/coverage|maps/)"  # the location docs/nginx/geoservice.conf suggests for a second instance


def planners_apart(port: int) -> Callable[[str], str]:
    """The shipped nginx config with the planners' routes sent to the instance on ``port``, as its comment says."""
    def edit(site: str) -> str:
        site = site.replace("server {", f"upstream geoservice_planners {{ server 127.0.0.1:{port}; keepalive 4; }}"
                                        "\n\nserver {", 1)
        planners = f"    location ~ {PLANNERS} {{ proxy_pass http://geoservice_planners; }}\n\n"
        return site.replace("    location / {", planners + "    location / {", 1)
    return edit


def row(label: str, r: dict[str, float]) -> str:
    held = r["late"] <= LATE_SHARE * max(r["requests"], 1)
    errors = r["non2xx"] + r["socket_errors"]
    return (f"| {label} | {r['rate']:.0f} | {r['achieved']:.0f} | {r['p50']:.2f} | {r['p90']:.2f} | "
            f"{r['p99']:.2f} | {r['max']:.0f} | {errors:.0f} | {r['late']:.0f}{'' if held else ' (rate not held)'} |")


HEADER = ["| load | offered req/s | achieved | p50 ms | p90 ms | p99 ms | max ms | errors | late sends |",
          "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]


def nearest_paths(points: Sequence[tuple[float, float]]) -> list[str]:
    """bench_scale's nearest request (kind + amenity filter, limit 5) at each point."""
    return [f"/api/v1/sites/nearest?lat={lat:.6f}&lon={lon:.6f}&kind=warm_station&amenity=toilet&limit=5"
            for lon, lat in points]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--national", type=int, default=200_000, help="sites of the national database (0: none)")
    parser.add_argument("--seconds", type=int, default=20, help="duration of each rate")
    parser.add_argument("--nearest-rates", default="800,1000,1200")
    parser.add_argument("--mix-rates", default="400,500,600")
    parser.add_argument("--coverage-every", type=float, default=10.0, help="seconds between coverage runs (0: none)")
    parser.add_argument("--only", choices=("nearest", "mix"), help="run one of the two loads only")
    parser.add_argument("--workers", default="3",
                        help="granian worker processes of the app (1 thread each); a list (3,2,3,2) runs nearest "
                             "with each in turn, interleaved")
    parser.add_argument("--planners-apart", action="store_true",
                        help="the mix with coverage and maps on a second instance (1 × 2), as nginx's config suggests")
    parser.add_argument("--before", metavar="COMMIT",
                        help="also run nearest with the app of this commit (a git worktree), interleaved with "
                             "today's: before/after on the same minutes of the machine")
    parser.add_argument("--national-url", metavar="URL",
                        help="a PostGIS database already holding the national layer at today's schema: used "
                             "instead of loading one (saves ~5 min; it is not vacuumed or changed)")
    parser.add_argument("-o", type=Path, default=ROOT / "bench" / "results_rate.md")
    args = parser.parse_args()
    stop_on_sigterm()
    nearest_rates = [float(r) for r in args.nearest_rates.split(",")]
    workers = [int(w) for w in args.workers.split(",")]
    mix_rates = [float(r) for r in args.mix_rates.split(",")]
    rows: list[str] = []
    mix_label = ", planners on their own instance" if args.planners_apart else ""
    coverage: list[float] = []
    checkouts = ExitStack()
    trees = [("", ROOT)]
    if args.before:
        trees.append((f", app of {args.before}", checkouts.enter_context(worktree(args.before))))
    cluster = ThrowawayCluster(fast=False).start()
    try:
        national = args.national and args.only != "mix"
        databases = [("demo", None)] + ([("national", args.national)] if national else [])
        for label, size in databases:
            given = args.national_url if size is not None else None
            url = given or cluster.create_database(f"bench_rate_{label}")
            settings = Settings(database_url=url, autoload_layers=size is None)
            store = open_services(settings)
            if size is None:
                ensure_ready(store, settings)
            if size is not None and given is None:
                store.migrate()
                load_bundled_calendar(store)
                sites = load_national(store, size)
            else:
                sites, _ = store.sites.list_sites(SiteFilter(limit=1_000_000))
            store.close()
            if given is None:
                with psycopg.connect(url, autocommit=True) as admin:
                    admin.execute("VACUUM (ANALYZE)")
            env = {"DATABASE_URL": url, "GEOSERVICE_PUBLIC_RATE_PER_MINUTE": "0"}
            near = nearest_paths(query_points(sites, 500))
            for w, (tree, root) in ((w, t) for w in (workers if args.only != "mix" else []) for t in trees):
                name = f"nearest, {label} ({len(sites):,} sites), granian {w} × 1{tree}"
                with ServeProcess(["--workers", str(w), "--threads", "1"], env=env, root=root) as app:
                    wrk_at_rate(app.port, near, nearest_rates[0], WARM_UP_S)
                    for rate in nearest_rates:
                        rows.append(row(name, wrk_at_rate(app.port, near, rate, args.seconds)))
                        print(rows[-1], flush=True)
            if size is None and args.only != "nearest":  # the mix, as bench_soak sends it, on the demo database
                mix = [p for _, p in make_paths(query_points(sites, 2000))[:3000]]
                env |= {"GEOSERVICE_PROXY_HOPS": "1", "GEOSERVICE_POOL_MAX_SIZE": "2"}
                with ExitStack() as stack:
                    app = stack.enter_context(ServeProcess(["--workers", "3", "--threads", "1"], env=env))
                    edit = None
                    if args.planners_apart:
                        planners = stack.enter_context(ServeProcess(["--workers", "1", "--threads", "2"], env=env))
                        edit = planners_apart(planners.port)
                    proxy = stack.enter_context(NginxProcess(f"127.0.0.1:{app.port}", edit=edit))
                    for i in range(6):  # every worker builds (maps) its coverage grid once
                        get(proxy.port, coverage_path(i), timeout=60.0)
                    wrk_at_rate(proxy.port, mix, mix_rates[0], WARM_UP_S)
                    for rate in mix_rates:
                        with coverage_stream(proxy.port, args.coverage_every) as seconds:
                            load = wrk_at_rate(proxy.port, mix, rate, args.seconds)
                        rows.append(row(f"mix via nginx{mix_label}, demo", load))
                        coverage += seconds
                        print(rows[-1], flush=True)
    finally:
        cluster.stop()
        checkouts.close()
    cov = sorted(coverage)
    lines = [
        "## Latency at a fixed offered rate (wrk, C, one thread)",
        "",
        f"Generated by `bench/bench_rate.py` on {dt.datetime.now(TZ):%Y-%m-%d %H:%M} (Asia/Shanghai); "
        f"{os.cpu_count()} cores shared by wrk, nginx, granian and PostgreSQL; Python {platform.python_version()}. "
        f"granian 3 × 1 for the mix; wrk sends on a fixed schedule over {CONNECTIONS} keep-alive connections, "
        f"{args.seconds} s per rate after {WARM_UP_S} s not counted; latency from each send. A late send is a "
        f"slot claimed over {LATE_MS:g} ms after its time (all connections busy); above "
        f"{LATE_SHARE:.1%} of the requests the rate was not held. Errors: non-2xx answers and socket errors.",
        "",
        *HEADER,
        *rows,
        "",
        f"Planners' coverage beside the mix (one every {args.coverage_every:g} s, not in the rows above): "
        + (f"{len(cov)} requests, p50 {cov[len(cov) // 2]:.2f} s, max {cov[-1]:.2f} s (inf: failed)." if cov
           else "none."),
    ]
    args.o.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
