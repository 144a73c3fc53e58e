"""Bring a backend to a serving state: schema, calendar, districts, the bundled layers, fresh open intervals."""
from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from pathlib import Path

from geoservice.calendar import bundled_calendar_files, parse_calendar_csv
from geoservice.layers import (
    ServiceArea,
    SiteFile,
    bundled_site_files,
    read_districts,
    read_raw,
    validate_file,
)
from geoservice.model import UpsertResult, site_id_for
from geoservice.servicearea import AreaLayer
from geoservice.services import Services
from geoservice.settings import Settings
from geoservice.validation import Problem, ValidationFailed

LOGGER = logging.getLogger(__name__)


def load_bundled_calendar(services: Services, only_missing: bool = True) -> list[int]:
    """Load the shipped official schedules; returns the years loaded."""
    known = services.calendars.calendar().years if only_missing else set()
    loaded = []
    for name, text in bundled_calendar_files():
        year, days = parse_calendar_csv(text, name)
        if year not in known:
            services.sites.load_calendar(year, days, f"bundled:{name}")
            loaded.append(year)
    return loaded


def load_districts(services: Services, layers_dir: Path) -> int:
    """Load ``districts.geojson`` from the layers folder."""
    districts = read_districts(layers_dir / "districts.geojson")
    services.sites.replace_districts(districts)
    return len(districts)


def load_service_area(services: Services, area: AreaLayer) -> int:
    """Make the store's districts the area's; returns how many were loaded (0: the store already had them).

    A store whose sites lie in districts the area does not have belongs to another service area: it is refused
    (a settings problem naming ``service_area``), not silently mixed."""
    held = {d.adcode for d in services.sites.districts()}
    wanted = {d.adcode for d in area.districts}
    if held == wanted:
        return 0
    used = {code for code, kinds in services.sites.count_sites().items() if code and sum(kinds.values())}
    foreign = sorted(used - wanted)
    if foreign:
        shown = ", ".join(foreign[:5]) + (", …" if len(foreign) > 5 else "")
        why = (f"the store holds sites in district(s) {shown}, which {area.path} ({area.label}) does not have: "
               "serve another service area from a new database (or embedded_path)")
        raise ValidationFailed([Problem("service_area (GEOSERVICE_SERVICE_AREA)", why)], "settings")
    services.sites.replace_districts(area.districts)
    return len(area.districts)


def area_of(services: Services) -> ServiceArea:
    """The loader's inside-the-area check: the store's districts, named after the service area when known."""
    area = services.area
    return ServiceArea(services.sites.districts(), area.name_zh if area else None, area.name_en if area else None)


def load_site_file(services: Services, path: Path, kind: str | None = None, datum: str = "wgs84") -> UpsertResult:
    """Validate a whole site file, then upsert it in one transaction (nothing written on any problem)."""
    return import_site_file(services, path, kind, datum).result


@dataclasses.dataclass(frozen=True)
class FileLoad:
    """What loading one site file did (or, in a dry run, would do): the validated file and the upsert."""

    file: SiteFile
    result: UpsertResult


def import_site_file(services: Services, path: Path, kind: str | None = None, datum: str = "wgs84", *,
                     dry_run: bool = False, skip_invalid: bool = False, overwrite_edits: bool = False,
                     name: str | None = None) -> FileLoad:
    """A user's site file, as ``geoservice load`` and the admins' upload take it: all or nothing
    (``ValidationFailed`` naming every problem), or with ``skip_invalid`` the valid records with the others
    listed and audited as ``load-skipped``. ``name`` is how messages name the file (an upload's own name)."""
    loaded = validate_file(read_raw(path), name or str(path), area_of(services), kind, datum, skip_invalid)
    skipped = [(site_id_for(source), "; ".join(p.line() for p in bad)) for source, bad in loaded.skipped if source]
    return FileLoad(loaded, services.sites.upsert_sites(loaded.sites, overwrite_edits=overwrite_edits,
                                                        dry_run=dry_run, skipped=skipped))


def ensure_ready(services: Services, settings: Settings, progress: Callable[[str], None] | None = None) -> None:
    """Migrate, then fill what is missing from the bundled data, then refresh a stale window."""
    say = progress or LOGGER.info
    applied = services.migrate()
    if applied:
        say(f"schema: applied {', '.join(applied)}")
    years = load_bundled_calendar(services)
    if years:
        say(f"calendar: loaded official schedules for {years[0]}–{years[-1]}")
    area = settings.area()
    loaded = load_service_area(services, area)
    if loaded:
        say(f"districts: loaded {loaded} of {area.label} from {area.path}")
    if settings.autoload_layers and services.health()["sites"] == 0:
        if not settings.area_is_layers_own():  # the folder's demo sites are the folder's districts' (Beijing's)
            say(f"sites: the site layers of {settings.layers_dir} belong to its own districts, not to "
                f"{area.label}: not loaded (load your sites with `geoservice load`)")
            return _refresh(services, say)
        for path in bundled_site_files(settings.layers_dir):
            result = load_site_file(services, path)
            say(f"sites: {path.name}: {len(result.inserted)} loaded")
    _refresh(services, say)


def _refresh(services: Services, say: Callable[[str], None]) -> None:
    """Re-materialise the open intervals when the window is stale."""
    if services.sites.window_is_stale():
        refreshed = services.sites.refresh_intervals()
        say(f"hours: materialised {refreshed.intervals} open intervals")
        for site_id, problem in refreshed.problems.items():
            say(f"hours: site {site_id} skipped (treated as closed): {problem}")
