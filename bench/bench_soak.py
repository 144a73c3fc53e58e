"""Open-loop soak of the recommended production setup: nginx (docs/nginx/geoservice.conf) → granian
(``geoservice serve --workers 3 --threads 1``) → PostGIS with the demo layers, on one 2-core machine.

Open loop: requests are *scheduled* at a fixed arrival rate, whatever the server does, and each latency is
counted from its scheduled time (so a stalled server cannot hide its queue: no coordinated omission). The mix:
nearest-open 70 %, site listings 15 %, OGC items 15 %, and beside them planners' coverage runs as a slow stream
of their own (one every ``--coverage-every`` seconds, H3 resolution 7): one takes ~1 s of a worker, so as a
share of the couriers' rate it would be the whole load. Many keep-alive connections, opened as needed (like
many phones), through nginx.

First a short step-up ramp (``--step-s`` seconds per rate), which goes on past the rate where p99 first passes
50 ms until p99 passes 200 ms, errors pass 1 % or the achieved rate falls 10 % short (so the table shows the
curve, not one noisy step); then the soak itself (``--minutes`` at ``--rate``; by default 70 % of the highest
ramp rate below the knee — p99 ≤ 200 ms, no errors — and at least 20 per second). Every non-200 answer,
reset or timeout counts as an error. At the end the app's own Prometheus counters (aggregated over the workers
through PROMETHEUS_MULTIPROC_DIR) are compared with what the generator sent.

Run: ``.venv/bin/python bench/bench_soak.py`` (~15 min; needs Debian nginx; starts its own PostGIS). Writes
``bench/results_soak.md``; ``bench/run.py`` folds it into ``bench/results.md``. Not a test.
"""
from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import itertools
import os
import platform
import random
import re
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg

from bench.bench_nearest import percentiles
from bench.bench_scale import query_points
from geoservice.bootstrap import ensure_ready
from geoservice.hours import TZ
from geoservice.model import SiteFilter
from geoservice.services import open_services
from geoservice.settings import Settings
from tools.pgcluster import ThrowawayCluster
from tools.servers import NginxProcess, ServeProcess, get, stop_on_sigterm

P99_LIMIT_MS = 50.0
REQUEST_TIMEOUT_S = 10.0
MAX_CONNECTIONS = 512
MIX = (("nearest", 70), ("listing", 15), ("ogc_items", 15))
KINDS = ("nearest", "listing", "ogc_items", "coverage")
_SEQ = itertools.count()  # position in the request sequence, continued across phases


def make_paths(points: list[tuple[float, float]], seed: int = 5) -> list[tuple[str, str]]:
    """A long shuffled sequence of (kind, path) following MIX."""
    rng = random.Random(seed)
    kinds = [k for k, w in MIX for _ in range(w)]
    out = []
    for i in range(20_000):
        lon, lat = points[i % len(points)]
        kind = rng.choice(kinds)
        if kind == "nearest":
            path = f"/api/v1/sites/nearest?lat={lat:.5f}&lon={lon:.5f}&kind=warm_station&amenity=toilet&limit=5"
        elif kind == "listing":
            path = f"/api/v1/sites?bbox={lon - 0.01:.5f},{lat - 0.01:.5f},{lon + 0.01:.5f},{lat + 0.01:.5f}&limit=20"
        else:
            path = (f"/ogc/collections/warm_stations/items?bbox={lon - 0.01:.5f},{lat - 0.01:.5f},"
                    f"{lon + 0.01:.5f},{lat + 0.01:.5f}&limit=20")
        out.append((kind, path))
    return out


def coverage_path(i: int) -> str:
    """The i-th planners' request: coverage of all kinds at one hour of a week."""
    return f"/api/v1/coverage?at=2026-11-{23 + (i // 24) % 7:02d}T{i % 24:02d}:00&resolution=7"


@dataclass
class Phase:
    """What one fixed-rate phase recorded."""

    rate: float
    seconds: float
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    sent: int = 0
    done: int = 0
    elapsed: float = 0.0
    max_connections: int = 0
    retried: int = 0

    def couriers_latencies(self) -> list[float]:
        """Every request of the couriers' mix (not the planners' coverage stream)."""
        return [x for k, v in self.latencies.items() if k != "coverage" for x in v]

    def summary(self) -> dict[str, float]:
        """Rates over everything sent; errors over everything; percentiles over the couriers' mix."""
        lat = self.couriers_latencies()
        p = percentiles(lat) if lat else {"p50": float("nan"), "p95": float("nan"), "p99": float("nan")}
        return {"rate": self.rate, "achieved": self.done / self.elapsed if self.elapsed else 0.0,
                "errors": float(sum(self.errors.values())), "p50": p["p50"], "p95": p["p95"], "p99": p["p99"]}


class StaleConnection(Exception):
    """A reused keep-alive connection was closed by the server before it read this request."""


IDLE_REUSE_S = 10.0  # reuse an idle connection only this long: nginx closes idle clients after 15 s


class Client:
    """Keep-alive HTTP/1.1 connections to one port, opened on demand; one request at a time per connection.

    Like browsers and HTTP libraries: an idle connection is reused only while the server would still keep it,
    and a request that finds a reused connection closed before any byte of an answer is sent again once on a
    new connection (counted in ``retried``; the server never saw it the first time)."""

    def __init__(self, port: int):
        self.port = port
        self.idle: list[tuple[float, asyncio.StreamReader, asyncio.StreamWriter]] = []
        self.open = 0
        self.retried = 0

    async def request(self, path: str) -> int:
        try:
            return await self._request(path, reuse=True)
        except StaleConnection:
            self.retried += 1
            return await self._request(path, reuse=False)

    async def _connection(self, reuse: bool) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, bool]:
        loop = asyncio.get_running_loop()
        while reuse and self.idle:
            since, reader, writer = self.idle.pop()
            if loop.time() - since < IDLE_REUSE_S:
                return reader, writer, True
            writer.close()
            self.open -= 1
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        self.open += 1
        return reader, writer, False

    async def _request(self, path: str, reuse: bool) -> int:
        reader, writer, reused = await self._connection(reuse)
        reusable = False
        try:
            writer.write(f"GET {path} HTTP/1.1\r\nHost: soak\r\nAccept-Encoding: identity\r\n\r\n".encode())
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, ConnectionResetError) as exc:
                if reused and not getattr(exc, "partial", b""):
                    raise StaleConnection from exc
                raise
            lines = head.decode("latin-1").split("\r\n")
            status = int(lines[0].split(" ", 2)[1])
            headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in lines[1:] if h)}
            if "content-length" in headers:
                await reader.readexactly(int(headers["content-length"]))
            elif headers.get("transfer-encoding", "").lower() == "chunked":
                while True:
                    size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                    await reader.readexactly(size + 2)
                    if size == 0:
                        break
            reusable = headers.get("connection", "").lower() != "close"
            return status
        finally:
            if reusable:
                self.idle.append((asyncio.get_running_loop().time(), reader, writer))
            else:
                writer.close()
                self.open -= 1


async def run_phase(port: int, paths: list[tuple[str, str]], rate: float, seconds: float,
                    coverage_every: float) -> Phase:
    """Send the mix at ``rate`` per second for ``seconds``, each request scheduled at start + i / rate, and one
    coverage request every ``coverage_every`` seconds beside it (0 = none)."""
    phase = Phase(rate, seconds)
    client = Client(port)
    tasks: set[asyncio.Task[None]] = set()
    loop = asyncio.get_running_loop()
    start = loop.time()
    total = int(rate * seconds)
    gate = asyncio.Semaphore(MAX_CONNECTIONS)

    async def one(kind: str, path: str, scheduled: float) -> None:
        async with gate:
            try:
                status = await asyncio.wait_for(client.request(path), REQUEST_TIMEOUT_S)
                if status != 200:
                    phase.errors[f"{kind} {status}"] += 1
            except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError) as exc:
                phase.errors[f"{kind} {type(exc).__name__}"] += 1
            else:
                phase.latencies[kind].append(loop.time() - scheduled)
            phase.done += 1
            phase.max_connections = max(phase.max_connections, client.open)

    planned = [(start + i / rate, *paths[next(_SEQ) % len(paths)]) for i in range(total)]
    if coverage_every > 0:
        planned += [(start + coverage_every * (j + 0.5), "coverage", coverage_path(next(_SEQ)))
                    for j in range(int(seconds / coverage_every))]
    for scheduled, kind, path in sorted(planned):
        delay = scheduled - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(one(kind, path, scheduled))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        phase.sent += 1
    if tasks:
        await asyncio.wait(tasks)
    phase.elapsed = loop.time() - start
    for _, _, writer in client.idle:
        writer.close()
    phase.retried = client.retried
    return phase


def metrics_total(port: int) -> float:
    """Sum of geoservice_http_requests_total over every label set, from /metrics (route labels hold braces:
    ``/ogc/collections/{collection_id}/items``)."""
    _, _, body = get(port, "/metrics")
    return sum(float(m.group(1)) for m in re.finditer(r"^geoservice_http_requests_total\{.*\} ([0-9.e+]+)$",
                                                         body.decode(), re.M))


def row(name: str, s: dict[str, float]) -> str:
    return (f"| {name} | {s['rate']:.0f} | {s['achieved']:.1f} | {s['errors']:.0f} | {s['p50']:.1f} | "
            f"{s['p95']:.1f} | {s['p99']:.1f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=0.0, help="soak rate (default: from the ramp)")
    parser.add_argument("--ramp", default="25,50,75,100,150,200,300,400,500,600,800,1000", help="ramp rates per second")
    parser.add_argument("--step-s", type=float, default=30.0)
    parser.add_argument("--coverage-every", type=float, default=10.0, help="seconds between coverage requests")
    parser.add_argument("-o", type=Path, default=ROOT / "bench" / "results_soak.md")
    args = parser.parse_args()
    stop_on_sigterm()
    cluster = ThrowawayCluster(fast=False).start()
    try:
        url = cluster.create_database("bench_soak")
        settings = Settings(database_url=url)
        store = open_services(settings)
        ensure_ready(store, settings)
        sites, _ = store.sites.list_sites(SiteFilter(limit=1_000_000))
        store.close()
        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute("VACUUM (ANALYZE)")
        paths = make_paths(query_points(sites, 2000))
        env = {"DATABASE_URL": url, "GEOSERVICE_PUBLIC_RATE_PER_MINUTE": "0", "GEOSERVICE_PROXY_HOPS": "1",
               "GEOSERVICE_METRICS_PUBLIC": "1",  # the counter cross-check below reads /metrics
               "GEOSERVICE_POOL_MAX_SIZE": "2"}
        with ServeProcess(["--workers", "3", "--threads", "1"], env=env) as app, \
                NginxProcess(f"127.0.0.1:{app.port}") as proxy:
            # Warm every worker: its coverage grid (seconds, once per process), plans, connections.
            asyncio.run(run_phase(proxy.port, [("coverage", coverage_path(i)) for i in range(6)], 3, 2, 0))
            asyncio.run(run_phase(proxy.port, paths, 50, 8, 0))
            load_before = os.getloadavg()
            ramp = []
            for rate in (float(r) for r in args.ramp.split(",")):
                phase = asyncio.run(run_phase(proxy.port, paths, rate, args.step_s, args.coverage_every))
                ramp.append(phase)
                print(row("ramp", phase.summary()), dict(phase.errors), flush=True)
                s = phase.summary()
                if s["p99"] > 4 * P99_LIMIT_MS or s["errors"] > 0.01 * phase.sent or s["achieved"] < 0.9 * rate:
                    break
            good = [p.rate for p in ramp if p.summary()["p99"] <= P99_LIMIT_MS and not p.summary()["errors"]]
            # Below the knee: the highest step that kept p99 within 4 × the limit without errors.
            knee = [p.rate for p in ramp if p.summary()["p99"] <= 4 * P99_LIMIT_MS and not p.summary()["errors"]]
            soak_rate = args.rate or max(20.0, 0.7 * (max(knee) if knee else ramp[0].rate))
            counted_before = metrics_total(app.port)
            soak = asyncio.run(run_phase(proxy.port, paths, soak_rate, args.minutes * 60, args.coverage_every))
            counted = metrics_total(app.port) - counted_before - 1  # minus the first /metrics scrape itself
            print(row("soak", soak.summary()), flush=True)
            load_after = os.getloadavg()
    finally:
        cluster.stop()
    crossing = next((p.rate for p in ramp if p.summary()["p99"] > P99_LIMIT_MS), None)
    s = soak.summary()
    lines = [
        "## Soak: open-loop mixed load on the production setup",
        "",
        f"Generated by `bench/bench_soak.py` on {dt.datetime.now(TZ):%Y-%m-%d %H:%M} (Asia/Shanghai): nginx "
        "(docs/nginx/geoservice.conf) → granian 3 workers × 1 thread → PostGIS (demo layers, 11,829 sites), "
        f"{os.cpu_count()} cores shared with the load generator (Python asyncio, open loop) and PostgreSQL; Python "
        f"{platform.python_version()}. Couriers' mix: " + ", ".join(f"{k} {w} %" for k, w in MIX) + f"; beside it one "
        f"planners' coverage request (H3 resolution 7) every {args.coverage_every:g} s. Latency counted from each "
        "request's scheduled time; errors = any non-200, reset or 10 s timeout, over everything sent; the phase "
        "percentiles are over the couriers' mix (coverage has its own row). Load average (1 min) before the ramp "
        f"{load_before[0]:.1f}, after the soak {load_after[0]:.1f} (other work on the machine shows here).",
        "",
        f"### Soak: {args.minutes:g} min at {soak_rate:.0f} requests/s",
        "",
        "| phase | target req/s | achieved req/s | errors | p50 ms | p95 ms | p99 ms |",
        "|---|---:|---:|---:|---:|---:|---:|",
        row("soak", s),
        "",
        "| endpoint | requests | p50 ms | p95 ms | p99 ms |",
        "|---|---:|---:|---:|---:|",
    ]
    for kind in KINDS:
        lat = soak.latencies.get(kind, [])
        if lat:
            p = percentiles(lat)
            lines.append(f"| {kind} | {len(lat)} | {p['p50']:.1f} | {p['p95']:.1f} | {p['p99']:.1f} |")
    lines += [
        "",
        f"Errors: {dict(soak.errors) or 'none'}. Requests sent {soak.sent}, answered {soak.done}; the app's "
        f"Prometheus counter (all workers) counted {counted:.0f} requests in the same time. Connections open at most: "
        f"{soak.max_connections}; requests sent again because a reused idle connection had been closed: "
        f"{soak.retried}.",
        "",
        f"### Step-up ramp ({args.step_s:g} s per step)",
        "",
        "| phase | target req/s | achieved req/s | errors | p50 ms | p95 ms | p99 ms |",
        "|---|---:|---:|---:|---:|---:|---:|",
        *[row("ramp", p.summary()) for p in ramp],
        "",
        (f"p99 first passed {P99_LIMIT_MS:.0f} ms at **{crossing:.0f} requests/s** (highest step that stayed at or "
         f"below it without errors: {max(good):.0f} requests/s)." if crossing and good else
         f"p99 stayed at or below {P99_LIMIT_MS:.0f} ms up to the highest step." if not crossing else
         f"p99 passed {P99_LIMIT_MS:.0f} ms already at the first step ({crossing:.0f} requests/s)."),
    ]
    args.o.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
