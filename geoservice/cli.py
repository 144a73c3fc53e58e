"""The ``geoservice`` command: serve, db, load, export, calendar, network, hours, layers, operators, coverage,
map."""
from __future__ import annotations

import logging
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import click

from geoservice.calendar import read_calendar_file
from geoservice.errors import GeoserviceError
from geoservice.extras import ExtraMissing
from geoservice.geo import DATUMS
from geoservice.model import KINDS, ROLES
from geoservice.settings import Settings
from geoservice.validation import ValidationFailed

if TYPE_CHECKING:
    from geoservice.services import Services


def _settings() -> Settings:
    """The settings from the environment; a bad variable is one line naming it, and exit 1."""
    try:
        return Settings.from_env()
    except ValidationFailed as exc:
        _fail(exc.lines())


def _services(settings: Settings | None = None) -> Services:
    from geoservice.services import open_services
    from geoservice.store.caller import set_account

    set_account("cli")  # one caller: with read replicas, what a command reads follows what it just wrote
    return open_services(settings or _settings())


def _fail(lines: list[str]) -> NoReturn:
    for line in lines:
        click.echo(line, err=True)
    sys.exit(1)


class _Main(click.Group):
    """The top-level group: a feature whose optional extra is missing ends with one line naming the extra; a
    settings problem found while preparing the store, with one line per problem."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except ExtraMissing as exc:
            click.echo(f"error: {exc.detail}", err=True)
            ctx.exit(1)
        except ValidationFailed as exc:  # e.g. a store that belongs to another service area
            for line in exc.lines():
                click.echo(line, err=True)
            ctx.exit(1)


@click.group(cls=_Main, context_settings={"help_option_names": ["-h", "--help"]})
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
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64),
              help="Worker processes, each with its own app and connection pool (production: ~1.5 × cores, "
                   "see docs/scaling.md).")
@click.option("--threads", default=8, show_default=True, type=click.IntRange(1, 256),
              help="Threads per worker that run requests (production on PostGIS: 1).")
@click.option("--header-timeout", default=10, show_default=True, type=click.IntRange(1, 60),
              help="Seconds a client has to send its whole request head; idle keep-alive connections are closed "
                   "after the same time.")
@click.option("--shutdown-timeout", default=30, show_default=True, type=click.IntRange(1, 1800),
              help="On stop or restart, workers still busy after this many seconds are killed.")
@click.option("--access-log/--no-access-log", default=False, help="One JSON line per request on stderr.")
def serve(host: str, port: int, workers: int, threads: int, header_timeout: int, shutdown_timeout: int,
          access_log: bool) -> None:
    """Prepare the store (bundled layers on first run) and serve the API and the pages with granian.

    Public deployments put nginx in front (docs/nginx/geoservice.conf): it buffers request bodies, which
    granian does not time out.
    """
    from geoservice.bootstrap import ensure_ready
    from geoservice.serving import ServeOptions
    from geoservice.serving import serve as run_server

    settings = _settings()
    store = _services(settings)
    try:
        ensure_ready(store, settings, progress=lambda m: click.echo(f"  {m}"))
    except GeoserviceError as exc:
        _fail([f"error: {exc.detail}"])
    finally:
        store.close()  # each worker opens its own store and pool after it starts
    click.echo(f"geoservice ({store.backend} store, {workers} worker(s) × {threads} thread(s)) on "
               f"http://{host}:{port}/  — API: /api/v1/openapi.json")
    run_server(settings, ServeOptions(host=host, port=port, workers=workers, threads=threads,
                                      header_timeout_s=header_timeout, shutdown_timeout_s=shutdown_timeout,
                                      access_log=access_log))


@main.group()
def db() -> None:
    """Schema management."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Apply numbered migrations that are not yet applied."""
    store = _services()
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
    store = _services(settings)
    ensure_ready(store, settings, progress=lambda m: click.echo(m))
    store.close()


@main.command()
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--kind", type=click.Choice(KINDS), help="Kind of every record (else a kind column is required).")
@click.option("--crs", "datum", type=click.Choice(DATUMS), default="wgs84", show_default=True,
              help="Datum of the file's coordinates; converted to WGS-84 on load.")
@click.option("--dry-run", is_flag=True, help="Validate and report what would change; write nothing.")
@click.option("--overwrite-edits", is_flag=True,
              help="Take the file's value even where an operator edited the field since the last load "
                   "(audited as load-overwrite). Without it, operators' edits are kept and listed.")
@click.option("--skip-invalid", is_flag=True,
              help="Load the valid records and leave out the bad ones, each listed (and audited as "
                   "load-skipped). Without it, a file with any bad record loads nothing.")
def load(file: Path, kind: str | None, datum: str, dry_run: bool, overwrite_edits: bool,
         skip_invalid: bool) -> None:
    """Load a site file (GeoJSON, CSV with lon/lat columns, GeoPackage, Excel .xlsx): all records or none.

    Re-loading the same file is idempotent: records are matched by the file's own id. Fields an operator
    changed since the last load are kept, each listed as `FILE:line N: field: kept the operator's value
    (edited DATE by NAME)`, unless --overwrite-edits is given.
    """
    from geoservice.bootstrap import ensure_ready, import_site_file

    settings = _settings()
    settings.autoload_layers = False
    store = _services(settings)
    ensure_ready(store, settings)
    try:
        done = import_site_file(store, file, kind, datum, dry_run=dry_run, skip_invalid=skip_invalid,
                                overwrite_edits=overwrite_edits)
    except ValidationFailed as exc:
        hint = "" if skip_invalid else " (--skip-invalid loads the valid records and lists the rest)"
        _fail(exc.lines() + [f"{file}: {len(exc.items)} problem(s); nothing was loaded{hint}"])
    loaded, result = done.file, done.result
    for _, bad in loaded.skipped:
        for item in bad:
            click.echo(f"{item.line(str(file))} (record skipped)", err=True)
    for conflict in result.conflicts:
        click.echo(f"{loaded.locate(conflict.source_id)}: {conflict.describe()}", err=True)
    for site_id, problem in result.hours_problems.items():
        click.echo(f"{file}: site {site_id}: opening_hours: {problem} (treated as closed)", err=True)
    click.echo(f"{file}: {len(result.inserted)} inserted, {len(result.updated)} updated, "
               f"{len(result.unchanged)} unchanged"
               + (f", {len(result.conflicts)} operator edit(s) "
                  f"{'overwritten' if overwrite_edits else 'kept'}" if result.conflicts else "")
               + (f", {len(loaded.skipped)} skipped" if skip_invalid else "")
               + (" (dry run, nothing written)" if dry_run else ""))
    store.close()


@main.command()
@click.option("-o", "--output", "output", required=True, type=click.Path(path_type=Path, dir_okay=False),
              help="File to write (.geojson, .csv or .gpkg).")
@click.option("--kind", "kinds", multiple=True,
              help=f"Site kind(s): repeat or comma-separate ({', '.join(KINDS)}); default all.")
@click.option("--format", "fmt", type=click.Choice(("geojson", "csv", "gpkg")), default=None,
              help="Output format; default from the file extension.")
@click.option("--crs", "datum", type=click.Choice(DATUMS), default="wgs84", show_default=True,
              help="Datum of the written coordinates (converted from the stored WGS-84).")
@click.option("--district", default=None, help="Only this district (adcode, e.g. 110101).")
@click.option("--bom", is_flag=True, help="CSV: start with a UTF-8 byte-order mark (for Excel).")
def export(output: Path, kinds: tuple[str, ...], fmt: str | None, datum: str, district: str | None,
           bom: bool) -> None:
    """Export sites to GeoJSON, CSV or GeoPackage in WGS-84, GCJ-02 or BD-09.

    The file loads back with `geoservice load FILE --crs SAME` (same source ids, same sites).
    """
    from tqdm import tqdm

    from geoservice.exports import EXTENSIONS, ExportQuery, count_sites, export_sites

    wanted = tuple(dict.fromkeys(k.strip() for raw in kinds for k in raw.split(",") if k.strip()))
    bad = [k for k in wanted if k not in KINDS]
    if bad:
        _fail([f"--kind: {bad[0]!r} is not one of {', '.join(KINDS)}"])
    if fmt is None:
        fmt = {v: k for k, v in EXTENSIONS.items()}.get(output.suffix.lower(), "")
        if not fmt:
            _fail([f"{output}: cannot tell the format from {output.suffix!r}; use --format geojson|csv|gpkg"])
    if bom and fmt != "csv":
        _fail(["--bom applies to CSV only"])
    if not output.parent.exists():
        _fail([f"{output}: directory {output.parent} does not exist"])
    store = _services()
    store.migrate()
    if district is not None and district not in {d.adcode for d in store.sites.districts()}:
        _fail([f"--district: unknown adcode {district!r}"])
    query = ExportQuery(kinds=wanted, district=district)
    total = count_sites(store.sites, query)
    # The bar shows on a terminal only (disable=None), so scripts and logs stay clean.
    with tqdm(total=total, unit="site", desc="export", disable=None, file=sys.stderr) as bar:
        result = export_sites(store.sites, query, fmt, datum, output, bom=bom, progress=bar.update)
    store.close()
    labels = {"wgs84": "WGS-84", "gcj02": "GCJ-02", "bd09": "BD-09"}
    click.echo(f"{output}: {result.count} site(s) ({', '.join(wanted) or 'all kinds'}) as {fmt.upper()}, "
               f"coordinates in {labels[datum]} ({datum}); load back with: "
               f"geoservice load {output}{' --kind ' + wanted[0] if len(wanted) == 1 else ''} --crs {datum}")


@main.group()
def calendar() -> None:
    """China's official holiday schedule (days off and make-up working days), kept as data."""


@calendar.command("load")
@click.argument("file", type=click.Path(path_type=Path))
def calendar_load(file: Path) -> None:
    """Load or replace one year's schedule from a CSV (date,type,name_en,name_zh)."""
    try:
        year, days = read_calendar_file(file)
    except ValidationFailed as exc:
        _fail(exc.lines() + [f"{file}: nothing was loaded"])
    store = _services()
    store.migrate()
    store.sites.load_calendar(year, days, f"file:{file.name}")
    refreshed = store.sites.refresh_intervals(store.sites.window())
    click.echo(f"{file}: {year} loaded ({sum(d.type == 'holiday' for d in days)} days off, "
               f"{sum(d.type == 'workday' for d in days)} make-up workdays); {refreshed.intervals} open intervals "
               "refreshed")
    _report_skipped(refreshed.problems)
    store.close()


@main.group()
def network() -> None:
    """The walking network from OpenStreetMap: nearest and coverage walk on it once loaded."""


@network.command("load")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--bbox", default=None, help="Keep only W,S,E,N (WGS-84 degrees), e.g. 115.4,39.4,117.5,41.1.")
def network_load(file: Path, bbox: str | None) -> None:
    """Read an OSM PBF extract, keep what a pedestrian can use and replace the stored walking network."""
    from geoservice.network import NetworkError, read_pbf
    from geoservice.validation import parse_bbox

    try:
        box = parse_bbox(bbox) if bbox is not None else None
    except ValidationFailed as exc:
        _fail(exc.lines())
    try:
        net = read_pbf(file, box, progress=lambda line: click.echo(f"network: {line}", err=True))
    except NetworkError as exc:
        _fail([f"error: {exc}; nothing was changed (the stored network, if any, stays)"])
    store = _services()
    try:
        store.migrate()
        store.spatial.save_network(net)
    finally:
        store.close()
    km = float(net.length_m.sum()) / 1000
    click.echo(f"{file}: walking network loaded ({net.nodes} nodes, {net.edges} edges, {km:.1f} km); nearest "
               "and coverage walk on it from the next start")


@network.command("coverage")
@click.option("--minutes", default=10.0, show_default=True, type=click.FloatRange(1, 60),
              help="Walking time (the 15-minute living circle uses 5, 10 and 15).")
@click.option("--district", "adcode", default=None, help="Only this district (its code, e.g. 110101).")
@click.option("--at", "at_text", default=None, help="Sites open at this local time (ISO 8601; default now).")
def network_coverage(minutes: float, adcode: str | None, at_text: str | None) -> None:
    """Share of each district's streets within MINUTES on foot of a site open at --at, by the walking network
    (isochrones), beside the straight-line share (an upper bound the network can only lower)."""
    import datetime as dt

    from geoservice.analysis.isochrone import isochrone_coverage
    from geoservice.hours import TZ, now_local
    from geoservice.model import SiteFilter

    try:
        at = dt.datetime.fromisoformat(at_text) if at_text else now_local()
    except ValueError:
        _fail([f"--at: {at_text[:40]!r} is not an ISO 8601 time such as 2026-12-02T23:00" if at_text else ""])
    at = at if at.tzinfo else at.replace(tzinfo=TZ)
    store = _services()
    click.get_current_context().call_on_close(store.close)
    store.migrate()
    net = store.spatial.load_network()
    if net is None:
        _fail(["error: no walking network is loaded; run `geoservice network load FILE.osm.pbf` first"])
    districts = [d for d in store.sites.districts() if adcode is None or d.adcode == adcode]
    if not districts:
        _fail([f"--district: no district {adcode!r}" if adcode else "error: no districts are loaded"])
    sites, offset = [], 0
    while True:
        page, total = store.sites.list_sites(SiteFilter(open_at=at, limit=1000, offset=offset))
        sites += [(s.lon, s.lat) for s in page]
        offset += len(page)
        if not page or offset >= total:
            break
    click.echo(f"# open at {at.isoformat(timespec='minutes')}: {len(sites)} site(s); within {minutes:g} min on foot "
               f"at {store.walk.speed_m_per_min:g} m/min")
    click.echo("district\tname_zh\tname_en\tnetwork_share\tstraight_line_share\tnetwork_km\tsites_off_network")
    for d in districts:
        c = isochrone_coverage(net, d.geometry, sites, minutes, store.walk.speed_m_per_min)
        click.echo(f"{d.adcode}\t{d.name_zh}\t{d.name_en}\t{c.covered_share:.4f}\t{c.straight_line_share:.4f}\t"
                   f"{c.network_km:.1f}\t{c.sites_off_network}")


@calendar.command("list")
def calendar_list() -> None:
    """Years with an official schedule loaded."""
    store = _services()
    store.migrate()
    cal = store.calendars.calendar()
    click.echo(" ".join(str(y) for y in sorted(cal.years)) or "no years loaded")
    store.close()


@main.group()
def hours() -> None:
    """Opening-hours tools."""


@hours.command("refresh")
def hours_refresh() -> None:
    """Re-materialise open intervals for the rolling window (run daily, e.g. from cron at 00:05)."""
    store = _services()
    store.migrate()
    refreshed = store.sites.refresh_intervals()
    window = refreshed.window
    click.echo(f"{refreshed.intervals} open intervals for {window[0]:%Y-%m-%d} .. {window[1]:%Y-%m-%d}")
    _report_skipped(refreshed.problems)
    store.close()


def _report_skipped(problems: dict[str, str]) -> None:
    """One stderr line per site a refresh skipped; the refresh itself went on for every other site."""
    for site_id, problem in problems.items():
        click.echo(f"site {site_id}: opening_hours: {problem}; skipped (treated as closed) and flagged", err=True)
    if problems:
        click.echo(f"{len(problems)} site(s) skipped; every other site was refreshed", err=True)


@hours.command("check")
@click.argument("expression")
@click.option("--at", "at_text", default=None,
              help="ISO 8601 time; without an offset it is Beijing time (Asia/Shanghai); default now.")
def hours_check(expression: str, at_text: str | None) -> None:
    """Parse an opening_hours expression and show its state and the next 7 days."""
    import datetime as dt

    from geoservice.hours import TZ, HoursEngine, HoursSyntaxError, now_local, validate_hours

    try:
        validate_hours(expression)
    except HoursSyntaxError as exc:
        _fail([f"opening_hours: {exc}"])
    try:
        at = dt.datetime.fromisoformat(at_text.strip().replace("Z", "+00:00")) if at_text else now_local()
    except ValueError:
        _fail([f"--at: {at_text!r} is not an ISO 8601 time such as 2026-11-23T10:00 or 2026-11-23T10:00+08:00"])
    # A time without an offset is Beijing time; one with an offset is converted to Beijing time.
    at = at.replace(tzinfo=TZ) if at.tzinfo is None else at.astimezone(TZ)
    store = _services()
    store.migrate()
    engine = HoursEngine(store.calendars.calendar())
    store.close()
    state = engine.state(expression, at)
    click.echo(f"{at:%Y-%m-%d %a %H:%M}: {'open' if state.is_open else 'closed'}"
               + (f" until {state.open_until:%a %H:%M}" if state.open_until else "")
               + (f", opens {state.next_open:%a %H:%M}" if state.next_open else ""))
    for a, b in engine.intervals(expression, at, at + dt.timedelta(days=7)):
        click.echo(f"  {a:%Y-%m-%d %a %H:%M} – {b:%Y-%m-%d %a %H:%M}")


def _checkout_layer_builders() -> click.Group | None:
    """The layer builders' command group from ``tools/`` of the checkout this package runs from, if any.

    ``tools/`` is not installed (it is not in the wheel): from a checkout (editable install or ``python -m``)
    its folder sits beside the ``geoservice`` package and is put on ``sys.path`` here.
    """
    checkout = Path(__file__).resolve().parent.parent  # not package data: looks for a checkout around the code
    if (checkout / "tools" / "layers" / "commands.py").is_file() and str(checkout) not in sys.path:
        sys.path.append(str(checkout))
    try:
        from tools.layers.commands import layers_group
    except ModuleNotFoundError as exc:
        if exc.name not in ("tools", "tools.layers", "tools.layers.commands"):
            raise
        return None
    return layers_group


class _LayersGroup(click.Group):
    """``geoservice layers …``: the same commands as ``python -m tools.layers …``, in a checkout only."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        group = _checkout_layer_builders()
        return group.list_commands(ctx) if group else []

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        group = _checkout_layer_builders()
        if group is None:
            ctx.fail("图层构建工具不在安装包中，请在源码检出目录中运行 `python -m tools.layers …`（需要 "
                     "pip install -e '.[build]'）。 / The layer builders are not part of the installed package: "
                     "run `python -m tools.layers …` from a checkout (with pip install -e '.[build]').")
        return group.get_command(ctx, cmd_name)


@main.group(cls=_LayersGroup)
def layers() -> None:
    """Rebuild the bundled data layers (from a checkout: same as `python -m tools.layers`)."""


@main.group()
def webhooks() -> None:
    """Partners' webhooks: the change feed pushed to their HTTPS endpoints, signed, retried, dead-lettered.

    Register and inspect them here or in the admin API (/api/v1/admin/webhooks); `webhooks deliver` is the
    worker that sends (run one or more beside the service, or `--once` from cron).
    """


@webhooks.command("add")
@click.argument("url")
@click.option("--since", default=None, metavar="CURSOR",
              help="Send the feed entries after this cursor (0: the whole history); default: from now on.")
def webhooks_add(url: str, since: str | None) -> None:
    """Register URL; prints its id and its signing secret (shown only now)."""
    from geoservice.model import CURSOR_PATTERN, decode_cursor

    if since is not None and not re.fullmatch(CURSOR_PATTERN, since):
        _fail([f"error: --since: {since[:20]!r} is not a cursor of this feed"])
    store = _operators_store()
    try:
        hook, secret = store.webhooks.register(url, "cli", None if since is None else decode_cursor(since))
    except ValidationFailed as exc:
        _fail([f"error: {line}" for line in exc.lines()])
    click.echo(f"webhook {hook.id}: {hook.url}")
    click.echo(f"secret (shown once; verify each delivery's Geoservice-Signature with it): {secret}")


@webhooks.command("list")
def webhooks_list() -> None:
    """Every webhook: delivered through which cursor, retries, last error, dead letters."""
    from geoservice import serialize as S

    for hook in _operators_store().webhooks.all():
        w = S.webhook(hook)
        state = f"retrying (attempt {w['attempts']}, next {w['next_attempt_at']})" if w["attempts"] else "ok"
        error = f"\tlast error: {w['last_error']}" if w["last_error"] else ""
        click.echo(f"{w['id']}\t{w['url']}\tthrough {w['delivered_through']}\t{state}\t"
                   f"dead letters {w['dead_letters']}{error}")


@webhooks.command("remove")
@click.argument("webhook_id", type=int)
def webhooks_remove(webhook_id: int) -> None:
    """Stop deliveries to WEBHOOK_ID and forget it."""
    try:
        _operators_store().webhooks.remove(webhook_id)
    except GeoserviceError as exc:
        _fail([f"error: {exc.detail}"])
    click.echo(f"removed webhook {webhook_id}")


@webhooks.command("replay")
@click.argument("webhook_id", type=int)
@click.argument("letter_id", type=int, required=False)
def webhooks_replay(webhook_id: int, letter_id: int | None) -> None:
    """Queue dead letter LETTER_ID of WEBHOOK_ID to be sent again (without it: list the dead letters)."""
    from geoservice import serialize as S

    store = _operators_store()
    try:
        if letter_id is None:
            for d in store.webhooks.dead_letters(webhook_id):
                row = S.dead_letter(d)
                click.echo(f"{row['id']}\tcursors {row['first']}..{row['last']} ({row['entries']})\t"
                           f"failed {row['failed_at']}: {row['last_error']}"
                           + ("\treplayed " + row["replayed_at"] if row["replayed_at"] else ""))
            return
        store.webhooks.replay(webhook_id, letter_id)
    except GeoserviceError as exc:
        _fail([f"error: {exc.detail}"])
    click.echo(f"queued dead letter {letter_id} of webhook {webhook_id}: the next `webhooks deliver` sends it")


@webhooks.command("deliver")
@click.option("--once", is_flag=True, help="One pass, then exit (for cron).")
@click.option("--interval", default=5.0, show_default=True, type=click.FloatRange(0.1, 3600),
              help="Seconds between passes.")
def webhooks_deliver(once: bool, interval: float) -> None:
    """Send what is due: new changes, retries whose time has come, replays an admin asked for."""
    store = _operators_store()
    if not once:
        click.echo(f"delivering every {interval:g} s; Ctrl-C stops", err=True)
        try:
            store.webhooks.run(interval)
        except KeyboardInterrupt:
            return
    done = store.webhooks.deliver_due()
    click.echo(f"delivered {done.delivered} batch(es), {done.entries} change(s); {done.failed} failed (will "
               f"retry); {done.dead} given up (dead letters); {done.replayed} replayed")


@main.group()
def operators() -> None:
    """Station operators' accounts, sites and tokens; bulk updates of hours and closures.

    Roles: 'operator' (edits only the sites assigned to it), 'district_admin' (with its districts) and 'admin'
    (union staff: every site). Tokens and setup codes are shown once; only their SHA-256 is stored. Passwords
    (for the operators' page) are stored as scrypt hashes.
    """


def _operators_store() -> Services:
    """The store for an ``operators`` command, closed when the command ends however it ends (an error's exit
    included: an open PostgreSQL pool would keep the process alive)."""
    store = _services()
    click.get_current_context().call_on_close(store.close)
    try:
        store.migrate()
    except GeoserviceError as exc:
        _fail([f"error: {exc.detail}"])
    return store


@operators.command("create")
@click.argument("name")
@click.option("--login", default=None, help="Login name for the operators' page (3-64 of A-Z a-z 0-9 _ . @ -; "
                                            "not case-sensitive); set a password with `operators password NAME`.")
@click.option("--role", type=click.Choice(ROLES), default=None,
              help="operator (assigned sites), district_admin (with --district) or admin (union staff, the city).")
@click.option("--district", "districts", multiple=True, metavar="ADCODE",
              help="A district_admin's district (6-digit adcode); repeat for several.")
@click.option("--admin", is_flag=True, help="Same as --role admin.")
def operators_create(name: str, login: str | None, role: str | None, districts: tuple[str, ...],
                     admin: bool) -> None:
    """Create an account NAME: the name people see, in any script (e.g. 某银行东城支行), 1-64 characters."""
    import shlex

    if admin and role not in (None, "admin"):
        _fail([f"error: --admin contradicts --role {role}"])
    store = _operators_store()
    try:
        op = store.accounts.create(name, "admin" if admin else role or "operator", login, districts)
    except GeoserviceError as exc:
        store.close()
        _fail([f"error: {exc.detail}"])
    step = "password" if op.login else "token issue"
    login_note = f" (login {op.login})" if op.login else ""
    click.echo(f"created {op.role} {op.name}{login_note}; next: geoservice operators {step} {shlex.quote(op.name)}")
    store.close()


@operators.command("login")
@click.argument("name")
@click.argument("login")
def operators_login(name: str, login: str) -> None:
    """Give account NAME the login name LOGIN (for an account made without one)."""
    store = _operators_store()
    try:
        op = store.accounts.give_login(name, login)
    except GeoserviceError as exc:
        store.close()
        _fail([f"error: {exc.detail}"])
    click.echo(f"{op.name}: login {op.login}")
    store.close()


def _new_password() -> str:
    """The new password: the first line of standard input when it is not a terminal (scripts), else typed twice
    without echo."""
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\r\n")
    import getpass

    first = getpass.getpass("new password: ")
    if getpass.getpass("again: ") != first:
        _fail(["error: the two passwords differ; nothing was changed"])
    return first


@operators.command("password")
@click.argument("name")
def operators_password(name: str) -> None:
    """Set NAME's password (at least 10 characters, not the login name). Read from standard input when it is not
    a terminal (`printf '%s\\n' "$PW" | geoservice operators password NAME`), else asked twice. Ends NAME's
    sessions and clears a lockout."""
    store = _operators_store()
    try:
        op = store.accounts.get(name)
        if op is None:
            _fail([f"error: no operator named {name!r}"])
        if not op.login:
            _fail([f"error: {name} has no login name; give it one: geoservice operators login NAME LOGIN"])
        try:
            store.accounts.set_password(op, _new_password())
        except ValidationFailed as exc:
            _fail([f"error: {p.reason}" for p in exc.items])
        click.echo(f"{op.name}: password set; sign in as {op.login} at /operator")
    finally:
        store.close()


@operators.command("unlock")
@click.argument("name")
def operators_unlock(name: str) -> None:
    """Unlock NAME after too many wrong passwords (the failure count starts again from zero)."""
    store = _operators_store()
    try:
        op = store.accounts.unlock(name)
    except GeoserviceError as exc:
        store.close()
        _fail([f"error: {exc.detail}"])
    click.echo(f"{op.name}: unlocked")
    store.close()


@operators.command("reset")
@click.argument("name")
def operators_reset(name: str) -> None:
    """Reset NAME's password: prints a one-time setup code ONCE on stdout (only its hash is stored); NAME sets a
    new password with it on the operators' page. The old password and NAME's sessions stop working."""
    import datetime as dt

    store = _operators_store()
    try:
        code, op, expires = store.accounts.reset_password(name, dt.timedelta(hours=_settings().setup_code_hours))
    except GeoserviceError as exc:
        store.close()
        _fail([f"error: {exc.detail}"])
    click.echo(f"setup code for {op.login}, shown once, valid until {expires:%Y-%m-%d %H:%M} UTC", err=True)
    click.echo(code)
    store.close()


@operators.command("assign")
@click.argument("name")
@click.argument("site_ids", nargs=-1, required=True)
def operators_assign(name: str, site_ids: tuple[str, ...]) -> None:
    """Give operator NAME these sites (all or none)."""
    store = _operators_store()
    try:
        n = store.accounts.assign(name, site_ids)
    except GeoserviceError as exc:
        _fail([f"error: {exc.detail}; nothing was assigned"])
    click.echo(f"{name}: {n} site(s) newly assigned ({len(set(site_ids)) - n} already were)")
    store.close()


@operators.command("unassign")
@click.argument("name")
@click.argument("site_ids", nargs=-1, required=True)
def operators_unassign(name: str, site_ids: tuple[str, ...]) -> None:
    """Take these sites away from operator NAME."""
    store = _operators_store()
    try:
        n = store.accounts.unassign(name, site_ids)
    except GeoserviceError as exc:
        _fail([f"error: {exc.detail}"])
    click.echo(f"{name}: {n} site(s) unassigned")
    store.close()


@operators.command("list")
def operators_list() -> None:
    """Every account: role, number of sites, active tokens."""
    store = _operators_store()
    rows = store.accounts.all()
    if not rows:
        click.echo("no operators; create one with: geoservice operators create NAME")
    for op in rows:
        sites = "all sites" if op.is_admin else f"{op.site_count} site(s)"
        click.echo(f"{op.name}\t{op.role}\t{sites}\t{op.active_tokens} active token(s)")
    store.close()


@operators.group("token")
def operators_token() -> None:
    """Issue, list and revoke bearer tokens."""


@operators_token.command("issue")
@click.argument("name")
@click.option("--label", default="", help="A note to tell tokens apart (e.g. 'front desk tablet').")
@click.option("--site", "site_id", default=None, metavar="ID",
              help="Limit the token to one of NAME's sites: it may only post or clear that site's live status "
                   "(a device at the door).")
def operators_token_issue(name: str, label: str, site_id: str | None) -> None:
    """Issue a token for NAME and print it ONCE on stdout (only its hash is stored)."""
    store = _operators_store()
    try:
        token, info = store.accounts.issue_token(name, label, site_id)
    except GeoserviceError as exc:
        _fail([f"error: {exc.detail}"])
    click.echo(f"token {info.id} for {name}: shown once, store it now; revoke with "
               f"`geoservice operators token revoke {name} {info.id}`", err=True)
    click.echo(token)
    store.close()


@operators_token.command("list")
@click.argument("name")
def operators_token_list(name: str) -> None:
    """NAME's tokens (ids, labels, dates; never the tokens themselves)."""
    store = _operators_store()
    try:
        tokens = store.accounts.tokens(name)
    except GeoserviceError as exc:
        _fail([f"error: {exc.detail}"])
    for t in tokens:
        state = f"revoked {t.revoked_at:%Y-%m-%d %H:%M}" if t.revoked_at else "active"
        scope = f"\tsite {t.site_id} (live status only)" if t.site_id else ""
        click.echo(f"{t.id}\t{t.created_at:%Y-%m-%d %H:%M}\t{state}\t{t.label}{scope}")
    store.close()


@operators_token.command("revoke")
@click.argument("name")
@click.argument("token_ids", nargs=-1, type=int)
@click.option("--all", "revoke_all", is_flag=True, help="Revoke every active token of NAME.")
def operators_token_revoke(name: str, token_ids: tuple[int, ...], revoke_all: bool) -> None:
    """Revoke tokens of NAME by id (see `token list`), or --all. Takes effect on the next request."""
    if bool(token_ids) == revoke_all:
        _fail(["give token ids or --all (not both)"])
    store = _operators_store()
    try:
        n = store.accounts.revoke(name, None if revoke_all else list(token_ids))
    except GeoserviceError as exc:
        _fail([f"error: {exc.detail}"])
    click.echo(f"{name}: {n} token(s) revoked")
    store.close()


@operators.command("bulk")
@click.argument("name")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--dry-run", is_flag=True, help="Validate and show what would change; write nothing.")
def operators_bulk(name: str, file: Path, dry_run: bool) -> None:
    """Apply a CSV (site_id,opening_hours,closed_from,closed_to,reason) as operator NAME: all lines or none.

    Every bad line is reported as `FILE:line N: field: reason` on stderr and nothing is written.
    """
    from geoservice.hours import now_local
    from geoservice.services.bulk import describe, parse_bulk_csv

    try:
        text = file.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        _fail([f"{file}: file: cannot be read as UTF-8 text ({exc})"])
    store = _operators_store()
    op = store.accounts.get(name)
    if op is None:
        _fail([f"error: no operator named {name!r}"])
    try:
        plan = parse_bulk_csv(text, store, op, now_local().date())
    except (ValidationFailed, GeoserviceError) as exc:
        lines = [f"{file}:{p.get('where', '?')}: {p['field']}: {p['reason']}" for p in exc.problems] or [
            f"{file}: {exc.detail}"]
        _fail(lines + [f"{file}: {len(lines)} problem(s); nothing was changed"])
    try:
        results = store.sites.apply_edits(plan.edits, actor=name, action="bulk", dry_run=dry_run)
    except GeoserviceError as exc:
        _fail([f"{file}: error: {exc.detail}; nothing was changed"])
    for item in describe(results, plan):
        click.echo(f"{item['site_id']} {item['name_zh']} (line {', '.join(map(str, item['lines']))}):")
        if not item["changes"]:
            click.echo("  no change")
        for field, change in item["changes"].items():
            if field == "closures":
                before = {(c["start"], c["end"], c["reason"]) for c in change["before"]}
                after = {(c["start"], c["end"], c["reason"]) for c in change["after"]}
                for a, b, reason in sorted(after - before):
                    click.echo(f"  closures: + {a} .. {b}" + (f" ({reason})" if reason else ""))
                for a, b, reason in sorted(before - after):
                    click.echo(f"  closures: - {a} .. {b}" + (f" ({reason})" if reason else ""))
            else:
                click.echo(f"  {field}: {change['before']!r} -> {change['after']!r}")
    changed = sum(1 for r in results if r.changes)
    click.echo(f"{file}: {changed} site(s) {'would change (dry run, nothing written)' if dry_run else 'changed'}")
    store.close()


def _register_planner_commands() -> None:
    """The planners' groups live in geoservice.analysis.commands: `geoservice coverage …`, `geoservice map …`."""
    from geoservice.analysis.commands import coverage_group, map_group

    main.add_command(coverage_group)
    main.add_command(map_group)


_register_planner_commands()


if __name__ == "__main__":  # pragma: no cover
    main()
