"""Which server to run the Flask app under: throughput on the nearest endpoint and what slow clients do to it.

Candidates, each over the same PostGIS demo database (11,829 sites) on the same 2 cores:
gunicorn sync workers (the previous production setup), gunicorn gthread, waitress (one process, buffers
requests), granian (Rust HTTP I/O, WSGI) at a few worker × thread shapes, and nginx (the shipped
docs/nginx/geoservice.conf) in front of granian and of gunicorn.

For each: wrk (2 threads, 8 connections, random points, kind + amenity filter) for throughput and latency;
then two slow-client checks with the attack connections kept open throughout:
- *slow heads*: 20 connections each sending one header line every 2 s (slowloris);
- *stalled bodies*: 3 connections that send a POST head announcing 100 bytes of body, then one byte every 2 s;
and meanwhile 5 normal nearest requests, one after the other, each given 5 s: how many got their 200.

Run: ``.venv/bin/python bench/bench_servers.py [--only NAME ...] [--before COMMIT]`` (needs Debian wrk and
nginx; starts its own PostGIS; ``--before`` runs granian 3×1 of that commit next to today's). Writes
``bench/results_servers.md``. Not a test: nothing here asserts anything.
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg

from bench import wrkout
from bench.bench_scale import WRK_SCRIPT, query_points
from bench.worktree import worktree
from geoservice.bootstrap import ensure_ready
from geoservice.hours import TZ
from geoservice.model import SiteFilter
from geoservice.services import open_services
from geoservice.settings import Settings
from tools.pgcluster import ThrowawayCluster
from tools.servers import NginxProcess, ServeProcess, free_port, get, stop_on_sigterm, wait_healthy

BIN = Path(sys.executable).parent
NEAREST = "/api/v1/sites/nearest?lat=39.9289&lon=116.4160&kind=warm_station&amenity=toilet&limit=5"


@contextmanager
def external(cmd: list[str], env: dict[str, str]) -> Iterator[int]:
    """A server started from ``cmd`` (``{port}`` substituted), stopped by its pid."""
    port = free_port()
    proc = subprocess.Popen([c.replace("{port}", str(port)) for c in cmd], env=os.environ | env | {
        "PYTHONPATH": str(ROOT)}, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_healthy(port, proc)  # type: ignore[arg-type]
        yield port
    finally:
        proc.terminate()
        proc.wait(30)


@contextmanager
def granian(env: dict[str, str], workers: int, threads: int, root: Path = ROOT) -> Iterator[int]:
    """``geoservice serve`` (granian) from the checkout ``root``."""
    with ServeProcess(["--workers", str(workers), "--threads", str(threads)], env=env, root=root) as server:
        yield server.port


def no_upstream_keepalive(site: str) -> str:
    """The shipped config with a new connection to the app per request (no ``keepalive`` in the upstream)."""
    upstream_block = site.split("upstream geoservice {", 1)[1].split("}", 1)[0]
    return site.replace(upstream_block, "\n".join(line for line in upstream_block.splitlines()
                                                   if not line.strip().startswith("keepalive")) + "\n")


@contextmanager
def behind_nginx(inner: Callable[[], contextmanager],  # type: ignore[type-arg]
                 edit: Callable[[str], str] | None = None) -> Iterator[int]:
    """nginx with the shipped site config (or ``edit`` of it) in front of the server ``inner`` starts."""
    with inner() as port, NginxProcess(f"127.0.0.1:{port}", edit=edit) as nginx:
        wait_healthy(nginx.port)
        yield nginx.port


def candidates(env: dict[str, str]) -> dict[str, Callable[[], contextmanager]]:  # type: ignore[type-arg]
    gunicorn = [str(BIN / "gunicorn"), "-b", "127.0.0.1:{port}", "--keep-alive", "5", "bench.wsgi_app:create()"]
    return {
        "gunicorn sync 3": lambda: external([*gunicorn, "-w", "3", "-k", "sync"], env),
        "gunicorn gthread 3×4": lambda: external([*gunicorn, "-w", "3", "-k", "gthread", "--threads", "4"], env),
        "waitress 1×8": lambda: external([str(BIN / "waitress-serve"), "--listen=127.0.0.1:{port}", "--threads=8",
                                          "--call", "bench.wsgi_app:create"], env),
        "granian 2×1": lambda: granian(env, 2, 1),
        "granian 3×1": lambda: granian(env, 3, 1),
        "granian 4×1": lambda: granian(env, 4, 1),
        "granian 3×2": lambda: granian(env, 3, 2),
        "nginx → granian 3×1": lambda: behind_nginx(lambda: granian(env, 3, 1)),
        "nginx (no upstream keep-alive) → granian 3×1": lambda: behind_nginx(lambda: granian(env, 3, 1),
                                                                          no_upstream_keepalive),
        "nginx → gunicorn sync 3": lambda: behind_nginx(
            lambda: external([*gunicorn, "-w", "3", "-k", "sync"], env)),
    }


def wrk(port: int, script: str, seconds: int, connections: int = 8) -> dict[str, float]:
    proc = subprocess.run(["wrk", "-t", "2", "-c", str(connections), "-d", f"{seconds}s", "--latency", "-s", script,
                           f"http://127.0.0.1:{port}"], capture_output=True, text=True, timeout=seconds + 60)
    r = wrkout.parse(proc.stdout)
    return {"rps": r["req_per_s"], "p50": r["p50"], "p99": r["p99"], "non2xx": float(r["non_2xx"])}


def _slow_head(port: int, stop: threading.Event) -> None:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: bench\r\n")
            n = 0
            while not stop.wait(2.0):
                s.sendall(b"X-Slow-%d: 1\r\n" % n)
                n += 1
    except OSError:
        pass  # cut by the server


def _stalled_body(port: int, stop: threading.Event) -> None:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(b"POST /api/v1/sites/s0/reports HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
                      b"Content-Length: 100\r\n\r\n")
            while not stop.wait(2.0):
                s.sendall(b" ")
    except OSError:
        pass


def under_attack(port: int, attacker: Callable[[int, threading.Event], None], n: int) -> str:
    """Normal requests answered while ``n`` attack connections stay open."""
    stop = threading.Event()
    threads = [threading.Thread(target=attacker, args=(port, stop), daemon=True) for _ in range(n)]
    for t in threads:
        t.start()
    time.sleep(2.5)
    ok, worst = 0, 0.0
    for _ in range(5):
        t0 = time.monotonic()
        try:
            status, _, body = get(port, NEAREST, timeout=5.0)
            ok += int(status == 200 and b'"features"' in body)
        except OSError:
            pass
        worst = max(worst, time.monotonic() - t0)
    stop.set()
    for t in threads:
        t.join(10)
    return f"{ok}/5" + (f" (slowest {worst:.1f} s)" if ok else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=15, help="wrk duration per candidate")
    parser.add_argument("--only", nargs="*", help="candidate names to run (default: all)")
    parser.add_argument("--rounds", type=int, default=1, help="repeat the whole list (slow-client checks in round 1)")
    parser.add_argument("--before", metavar="COMMIT",
                        help="also run granian 3×1 from this commit (a git worktree), interleaved with today's")
    parser.add_argument("-o", type=Path, default=ROOT / "bench" / "results_servers.md")
    args = parser.parse_args()
    stop_on_sigterm()
    with ExitStack() as stack:  # the database serves both checkouts: their schema must be the same
        before = stack.enter_context(worktree(args.before)) if args.before else None
        run(args, before)


def run(args: argparse.Namespace, before: Path | None) -> None:
    """The candidates over one PostGIS demo database; the table written to ``args.o``."""
    cluster = ThrowawayCluster(fast=False).start()
    rows = []
    try:
        url = cluster.create_database("bench_servers")
        settings = Settings(database_url=url)
        store = open_services(settings)
        ensure_ready(store, settings)
        sites, _ = store.sites.list_sites(SiteFilter(limit=1_000_000))
        store.close()
        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute("VACUUM (ANALYZE)")
        with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
            f.write(WRK_SCRIPT % ",".join(f"{{{lon:.6f},{lat:.6f}}}" for lon, lat in query_points(sites, 200)))
            script = f.name
        env = {"DATABASE_URL": url, "GEOSERVICE_PUBLIC_RATE_PER_MINUTE": "0", "GEOSERVICE_POOL_MAX_SIZE": "4"}
        for rnd in range(1, args.rounds + 1):  # rounds alternate the candidates: the machine's speed drifts
            named = candidates(env)
            if before is not None:
                named[f"granian 3×1 at {args.before}"] = lambda: granian(env, 3, 1, before)
            for name, start in named.items():
                if args.only and name not in args.only and name.split(" at ")[0] not in args.only:
                    continue
                with start() as port:
                    wrk(port, script, 3)  # warm every worker
                    load = wrk(port, script, args.seconds)
                    heads = under_attack(port, _slow_head, 20) if rnd == 1 else "—"
                    bodies = under_attack(port, _stalled_body, 3) if rnd == 1 else "—"
                load["loadavg"] = os.getloadavg()[0]
                rows.append((f"{name} (round {rnd})" if args.rounds > 1 else name, load, heads, bodies))
                print(rows[-1], flush=True)
    finally:
        cluster.stop()
    lines = [
        "## Servers: throughput and slow clients",
        "",
        f"Generated by `bench/bench_servers.py` on {dt.datetime.now(TZ):%Y-%m-%d %H:%M} (Asia/Shanghai); "
        f"{os.cpu_count()} cores shared by wrk, the server and PostgreSQL; Python {platform.python_version()}. "
        f"PostGIS demo database; wrk 2 threads, 8 connections, {args.seconds} s, nearest with kind + amenity "
        "filter at random points (public rate limit off). Slow heads: 20 connections sending a header line every "
        "2 s; stalled bodies: 3 POSTs trickling one body byte every 2 s; meanwhile 5 normal nearest requests with "
        "5 s each — how many got their 200.",
        "",
        "| server (workers × threads) | req/s | p50 ms | p99 ms | non-2xx | normal requests during slow heads "
        "| during stalled bodies | load avg after |",
        "|---|---:|---:|---:|---:|---|---|---:|",
    ]
    for name, load, heads, bodies in rows:
        lines.append(f"| {name} | {load['rps']:.0f} | {load['p50']:.2f} | {load['p99']:.2f} | "
                     f"{load['non2xx']:.0f} | {heads} | {bodies} | {load['loadavg']:.1f} |")
    args.o.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
