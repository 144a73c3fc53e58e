"""Vector tiles at Beijing demo size (11,829 sites) and national size (200,000 simulated sites), both stores.

For each zoom, tiles at the locations of random sites (where there is something to draw), all kinds, with and
without ``open_at`` (03:00 tomorrow, inside the materialised window): the whole ``TileService.site_tile`` call
(PostGIS: one ``ST_AsMVT`` query over a loopback connection; embedded: the index's selection encoded with
mapbox-vector-tile), the tile's size and its number of features. Also the served coverage map's size with the
sites embedded and drawn from tiles (Beijing).

Run: ``.venv/bin/python bench/bench_tiles.py`` (starts its own PostGIS; the national load takes ~4 min).
Writes ``bench/results_tiles.md``.
"""
from __future__ import annotations

import argparse
import datetime as dt
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import mapbox_vector_tile
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_nearest import percentiles
from bench.bench_scale import load_national
from geoservice import create_app, tiles
from geoservice.bootstrap import ensure_ready, load_bundled_calendar
from geoservice.hours import TZ, now_local
from geoservice.model import KINDS, Site, SiteFilter
from geoservice.services import Services, open_services
from geoservice.settings import Settings
from geoservice.tiles import TileQuery
from tools.pgcluster import ThrowawayCluster

ZOOMS = (4, 7, 10, 13, 16)


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    mx, my = tiles.to_mercator(np.array([lon]), np.array([lat]))
    size = 2 * tiles.HALF_WORLD_M / 2 ** z
    return int((mx[0] + tiles.HALF_WORLD_M) // size), int((tiles.HALF_WORLD_M - my[0]) // size)


def bench_tiles(store: Services, sites: list[Site], n: int, at: dt.datetime) -> list[dict[str, Any]]:
    rng = np.random.default_rng(7)
    picks = [sites[i] for i in rng.integers(0, len(sites), n)]
    rows = []
    for z in ZOOMS:
        for label, open_at in (("all", None), ("open 03:00", at)):
            times, sizes, feats = [], [], []
            for s in picks:
                x, y = tile_of(s.lon, s.lat, z)
                t0 = time.perf_counter()
                body = store.tiles.site_tile(TileQuery(z, x, y, "sites", KINDS, open_at))
                times.append(time.perf_counter() - t0)  # seconds: percentiles() reports ms
                sizes.append(len(body))
                feats.append(len(mapbox_vector_tile.decode(body)["sites"]["features"]) if body else 0)
            rows.append({"zoom": z, "filter": label, **percentiles(times), "kb": float(np.mean(sizes)) / 1024,
                         "max_kb": max(sizes) / 1024, "features": float(np.mean(feats)), "max_features": max(feats)})
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    out = ["| zoom | sites | p50 ms | p95 ms | p99 ms | mean KB | max KB | mean features | max features |",
           "|---:|---|---:|---:|---:|---:|---:|---:|---:|"]
    out += [f"| {r['zoom']} | {r['filter']} | {r['p50']:.2f} | {r['p95']:.2f} | {r['p99']:.2f} | {r['kb']:.1f} | "
            f"{r['max_kb']:.1f} | {r['features']:.0f} | {r['max_features']} |" for r in rows]
    return "\n".join(out) + "\n"


def map_sizes(store: Services, folder: Path) -> dict[str, int]:
    app = create_app(Settings(embedded_path=folder / "unused", public_rate_per_minute=0), services=store,
                     prepare=False)
    client = app.test_client()
    at = (now_local() + dt.timedelta(days=1)).replace(hour=22, minute=0, second=0, microsecond=0)
    return {mode: len(client.get(f"/maps/coverage?at={at:%Y-%m-%dT%H:%M}&sites={mode}").get_data())
            for mode in ("embedded", "tiles")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--national", type=int, default=200_000)
    parser.add_argument("-n", type=int, default=200, help="tiles per zoom and filter")
    parser.add_argument("-o", type=Path, default=ROOT / "bench" / "results_tiles.md")
    args = parser.parse_args()
    at = (now_local() + dt.timedelta(days=1)).replace(hour=3, minute=0, second=0, microsecond=0)
    cluster = ThrowawayCluster(fast=False).start()
    sections, sizes = [], {}
    try:
        for label, size in (("Beijing demo", None), ("national", args.national)):
            url = cluster.create_database("tiles_" + ("demo" if size is None else "national"))
            with tempfile.TemporaryDirectory() as tmp:
                for backend in ("postgis", "embedded"):
                    settings = (Settings(database_url=url, autoload_layers=size is None) if backend == "postgis"
                                else Settings(embedded_path=Path(tmp) / "e.sqlite", autoload_layers=size is None))
                    store = open_services(settings)
                    if size is None:
                        ensure_ready(store, settings)
                        sites, _ = store.sites.list_sites(SiteFilter(limit=1_000_000))
                        if backend == "embedded":
                            sizes = map_sizes(store, Path(tmp))
                    else:
                        store.migrate()
                        load_bundled_calendar(store)
                        sites = load_national(store, size)
                    rows = bench_tiles(store, sites, args.n, at)
                    store.close()
                    sections.append(f"### {label}: {len(sites):,} sites, {backend}\n\n" + table(rows))
                    print(sections[-1], flush=True)
    finally:
        cluster.stop()
    text = ("## Vector tiles\n\n"
            f"Generated by `bench/bench_tiles.py` on {dt.datetime.now(TZ):%Y-%m-%d %H:%M} (Asia/Shanghai) on "
            f"{platform.machine()}, 2 cores, {platform.platform()}. {args.n} tiles per row at the locations of "
            f"random sites; `open 03:00` = `open_at={at:%Y-%m-%dT%H:%M}` (inside the window). Times are the whole "
            "`TileService.site_tile` call (query + encoding), one client, no HTTP.\n\n" + "\n".join(sections)
            + "\n### The served coverage map, Beijing (11,829 sites)\n\n"
            + "| sites | bytes |\n|---|---:|\n"
            + "".join(f"| {k} | {v:,} |\n" for k, v in sizes.items()))
    args.o.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
