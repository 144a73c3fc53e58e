"""Embedded store, nearest-open at national size (200,000 simulated sites): committed code vs working tree.

Builds the embedded SQLite file once (generation ~1 min, load a few minutes) and caches it under
``/tmp/embedded200k/``; later runs reuse it. The "before" store is a committed ``geoservice/store/embedded.py``
(``git show REV:…``, default b56b6e5, the commit before the segment cache, loaded as a separate module);
"after" is the working tree. Both answer the same queries over the same file: 500 points jittered around sites (as
``bench_scale.query_points``), k = 5, kind ``warm_station`` + amenity ``toilet``, at 10:00 and 03:00 tomorrow.
Every answer of "after" is compared with "before" (same ids, same distances, same states). Percentiles leave
out the first 10 queries of each case; "first query" is the very first (for "after", a cache miss: it fills the
segment's arrays).

Run: ``.venv/bin/python bench/bench_embedded.py [--impl before|after|both] [-n 500] [--rebuild]``
"""
from __future__ import annotations

import argparse
import datetime as dt
import gc
import importlib.util
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_nearest import percentiles
from bench.bench_scale import nearest_queries, query_points
from geoservice.bootstrap import load_bundled_calendar
from geoservice.hours import TZ, now_local
from geoservice.model import NearestQuery, SiteFilter
from geoservice.services import (
    Services,
    open_services,
)
from geoservice.services import Services as Store
from geoservice.settings import Settings

CACHE = Path("/tmp/embedded200k")


def build(path: Path, total: int) -> None:
    """Generate the national layer and load it into a fresh embedded file at ``path`` (atomically)."""
    from bench.bench_scale import load_national

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".building")
    for p in (tmp, Path(f"{tmp}-wal"), Path(f"{tmp}-shm")):
        p.unlink(missing_ok=True)
    store = open_services(Settings(embedded_path=tmp, autoload_layers=False))
    store.migrate()
    load_bundled_calendar(store)
    t0 = time.perf_counter()
    load_national(store, total)
    print(f"loaded {total:,} sites in {time.perf_counter() - t0:.0f} s", flush=True)
    store.spatial.connection().execute("PRAGMA wal_checkpoint(TRUNCATE)")  # type: ignore[attr-defined]
    store.close()
    os.replace(tmp, path)


BEFORE_REV = "b56b6e5"  # the last commit without the per-segment cache


def committed_module(rev: str = BEFORE_REV) -> ModuleType:
    """The committed ``geoservice/store/embedded.py`` as its own module (``embedded_before``)."""
    src = subprocess.run(["git", "-C", str(ROOT), "show", f"{rev}:geoservice/store/embedded.py"],
                         capture_output=True, text=True, check=True).stdout
    tmp = Path(tempfile.mkdtemp()) / "embedded_before.py"
    tmp.write_text(src, encoding="utf-8")
    spec = importlib.util.spec_from_file_location("embedded_before", tmp)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    sys.modules["embedded_before"] = mod
    spec.loader.exec_module(mod)
    return mod


def make_store(impl: str, path: Path) -> Store:
    if impl == "before":
        return committed_module().EmbeddedStore(path)  # type: ignore[no-any-return]
    from geoservice.store.embedded import EmbeddedStore

    return Services.over(EmbeddedStore(path))


def run(store: Store, qs: list[NearestQuery]) -> tuple[dict[str, float], list]:
    answers, samples = [], []
    for q in qs:
        t0 = time.perf_counter()
        hits = store.sites.nearest(q)
        samples.append(time.perf_counter() - t0)
        answers.append([(h.site.id, h.distance_m, h.state) for h in hits])
    return percentiles(samples[10:]) | {"first": samples[0] * 1000}, answers


def cache_bytes(store: Store) -> int:
    """Bytes held by the snapshot's per-segment caches (0 for the committed code, which has none)."""
    index = store._index  # type: ignore[attr-defined]
    total = getattr(index, "boundaries", np.zeros(0)).nbytes
    for until in getattr(index, "_until", {}).values():
        total += until.nbytes
    for sel in getattr(index, "_eligible", {}).values():
        total += sel.mask.nbytes + (sel.idx.nbytes if sel.idx is not None else 0)
    return int(total)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--impl", choices=("before", "after", "both"), default="both")
    parser.add_argument("--total", type=int, default=200_000)
    parser.add_argument("-n", type=int, default=500, help="queries per case")
    parser.add_argument("--rebuild", action="store_true")
    args = parser.parse_args()
    path = CACHE / f"national{args.total}.sqlite"
    if args.rebuild or not path.exists():
        build(path, args.total)
    day = now_local().date() + dt.timedelta(days=1)
    probe = make_store("after", path)
    window = probe.sites.window()
    assert window is not None
    if not (window[0] <= dt.datetime.combine(day, dt.time(3), tzinfo=TZ) < window[1] - dt.timedelta(days=1)):
        print(f"window {window} no longer covers {day}: rebuild with --rebuild", file=sys.stderr)
        sys.exit(2)
    sites, _ = probe.sites.list_sites(SiteFilter(limit=1_000_000))
    probe.close()
    del probe
    pts = query_points(sites, args.n)
    del sites
    gc.collect()
    impls = ("before", "after") if args.impl == "both" else (args.impl,)
    answers: dict[str, dict[int, list]] = {}
    print(f"{args.total:,} sites, {args.n} queries per case, times on {day}, window {window[0]:%m-%d}"
          f"…{window[1]:%m-%d}")
    print("| impl | case | p50 ms | p95 ms | p99 ms | mean ms | first query ms |\n|---|---|---:|---:|---:|---:|---:|")
    for impl in impls:
        store = make_store(impl, path)
        t0 = time.perf_counter()
        store.spatial.snapshot()  # type: ignore[attr-defined]
        build_s = time.perf_counter() - t0
        answers[impl] = {}
        for hour in (10, 3):
            at = dt.datetime.combine(day, dt.time(hour), tzinfo=TZ)
            stats, got = run(store, nearest_queries(pts, at))
            answers[impl][hour] = got
            print(f"| {impl} | {hour:02d}:00 warm_station + toilet, k=5 | {stats['p50']:.3f} | {stats['p95']:.3f} |"
                  f" {stats['p99']:.3f} | {stats['mean']:.3f} | {stats['first']:.1f} |", flush=True)
        print(f"  [{impl}] index build {build_s:.1f} s; {cache_bytes(store) / 2**20:.1f} MiB in query caches after"
              f" the run; process max RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB",
              flush=True)
        store.close()
        del store
        gc.collect()
    if len(answers) == 2:
        diff = sum(answers["before"][h][i] != answers["after"][h][i] for h in (10, 3) for i in range(len(pts)))
        print(f"answers identical (ids, distances, states): {diff == 0} ({diff} of {2 * len(pts)} differ)")
        if diff:
            sys.exit(1)


if __name__ == "__main__":
    main()
