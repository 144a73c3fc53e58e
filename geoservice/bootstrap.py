"""Bring a backend to a serving state: schema, calendar, districts, the bundled layers, fresh open intervals."""
from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from geoservice.calendar import bundled_calendar_files, parse_calendar_csv
from geoservice.layers import ServiceArea, bundled_site_files, read_districts, read_sites
from geoservice.model import UpsertResult
from geoservice.services import Services
from geoservice.settings import Settings

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


def load_site_file(services: Services, path: Path, kind: str | None = None, datum: str = "wgs84") -> UpsertResult:
    """Validate a whole site file, then upsert it in one transaction (nothing written on any problem)."""
    sites = read_sites(path, ServiceArea(services.sites.districts()), kind, datum)
    return services.sites.upsert_sites(sites)


def ensure_ready(services: Services, settings: Settings, progress: Callable[[str], None] | None = None) -> None:
    """Migrate, then fill what is missing from the bundled data, then refresh a stale window."""
    say = progress or LOGGER.info
    applied = services.migrate()
    if applied:
        say(f"schema: applied {', '.join(applied)}")
    years = load_bundled_calendar(services)
    if years:
        say(f"calendar: loaded official schedules for {years[0]}–{years[-1]}")
    if not services.sites.districts():
        say(f"districts: loaded {load_districts(services, settings.layers_dir)}")
    if settings.autoload_layers and services.health()["sites"] == 0:
        for path in bundled_site_files(settings.layers_dir):
            result = load_site_file(services, path)
            say(f"sites: {path.name}: {len(result.inserted)} loaded")
    if services.sites.window_is_stale():
        refreshed = services.sites.refresh_intervals()
        say(f"hours: materialised {refreshed.intervals} open intervals")
        for site_id, problem in refreshed.problems.items():
            say(f"hours: site {site_id} skipped (treated as closed): {problem}")
