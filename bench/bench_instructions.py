"""CPU instructions per nearest request, app side, counted by valgrind: a figure the machine's speed does not move.

Wall-clock and CPU-time figures of this machine swing by more than a trim of the request path is worth (the same
code, back to back: p99 94 ms then 22 ms at 1,000 req/s; 0.80 to 1.03 ms of CPU per request in process), so a
change of a few per cent cannot be seen in them. valgrind's cachegrind counts the instructions the process
executes instead; between two runs of the same code the count moves by under 0.5 %.

Each count is one child process that builds a worker's app (``geoservice.serving.build_worker_app``, as granian's
workers do) over PostGIS and calls it, as WSGI, with bench_rate's nearest requests: once ``n`` times and once
``2 n`` times, so start-up cancels out and the difference over ``n`` is the cost of one request. The database's
own work is not in the figure (another process); nor is the HTTP server's.

Run: ``.venv/bin/python bench/bench_instructions.py [--before COMMIT] [--url URL]`` (needs Debian valgrind;
without ``--url`` it starts its own PostGIS with the demo layers; ~1 min per count). Not a test.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# A child counts the app of the checkout it is started in (a past commit's worktree, or this one).
sys.path.insert(0, os.environ.get("BENCH_APP_ROOT", str(ROOT)))

WARM_UP = 200


def child(url: str, paths: Sequence[str], n: int) -> None:
    """Build the app on ``url`` and answer ``WARM_UP + n`` of the requests ``paths`` (run under valgrind)."""
    from werkzeug.test import EnvironBuilder

    from geoservice.serving import build_worker_app
    from geoservice.settings import Settings

    os.environ |= {"DATABASE_URL": url, "GEOSERVICE_PUBLIC_RATE_PER_MINUTE": "0"}
    app = build_worker_app("bench", Settings.from_env())

    environs = [EnvironBuilder(path=p, headers={"Accept": "*/*"}).get_environ() for p in paths]

    def call(environ: dict[str, Any]) -> None:
        status: list[str] = []
        b"".join(app(dict(environ), lambda s, h, e=None: status.append(s)))  # a copy: the app writes into it
        if not status[0].startswith("200"):
            raise SystemExit(f"{environ['PATH_INFO']}?{environ['QUERY_STRING']}: {status[0]}")

    for i in range(WARM_UP + n):
        call(environs[i % len(environs)])


def count(root: Path, spec: Path, n: int) -> int:
    """Instructions of one child run from the checkout ``root``."""
    proc = subprocess.run(["valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null",
                           sys.executable, str(ROOT / "bench" / "bench_instructions.py"), "--child", str(spec),
                           "-n", str(n)], capture_output=True, text=True, cwd=root,
                          env=os.environ | {"BENCH_APP_ROOT": str(root)}, check=True)
    m = re.search(r"I\s+refs:\s+([\d,]+)", proc.stderr)
    if not m:
        raise SystemExit(proc.stderr[-2000:])
    return int(m.group(1).replace(",", ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", help="a PostGIS database holding the layers (default: a throwaway demo one)")
    parser.add_argument("--before", metavar="COMMIT", help="also count the app of this commit (a git worktree)")
    parser.add_argument("-n", type=int, default=1000, help="requests per count")
    parser.add_argument("--rounds", type=int, default=2, help="counts per checkout, interleaved")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        spec: dict[str, Any] = json.loads(args.child.read_text())
        child(spec["url"], spec["paths"], args.n)
        return

    from bench.bench_rate import nearest_paths
    from bench.bench_scale import query_points
    from bench.worktree import worktree
    from geoservice.bootstrap import ensure_ready
    from geoservice.model import SiteFilter
    from geoservice.services import open_services
    from geoservice.settings import Settings
    from tools.pgcluster import ThrowawayCluster

    with ExitStack() as stack:
        url = args.url
        if url is None:
            cluster = ThrowawayCluster(fast=False).start()
            stack.callback(cluster.stop)
            url = cluster.create_database("bench_instructions")
        settings = Settings(database_url=url, autoload_layers=args.url is None)
        store = open_services(settings)
        if args.url is None:
            ensure_ready(store, settings)
        sites, _ = store.sites.list_sites(SiteFilter(limit=1_000_000))
        store.close()
        spec_file = Path(stack.enter_context(tempfile.TemporaryDirectory())) / "spec.json"
        spec_file.write_text(json.dumps({"url": url, "paths": nearest_paths(query_points(sites, 500))}))
        trees = [("today", ROOT)]
        if args.before:
            trees.append((args.before, stack.enter_context(worktree(args.before))))
        lines = [f"{len(sites):,} sites; {args.n} requests per count; instructions per request (thousands):"]
        for r in range(args.rounds):
            for label, root in trees:
                per = (count(root, spec_file, 2 * args.n) - count(root, spec_file, args.n)) / args.n
                lines.append(f"- round {r + 1}, {label}: {per / 1000:,.0f}")
                print(lines[-1], flush=True)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
