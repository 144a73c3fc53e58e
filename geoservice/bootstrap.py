"""Bring a store to a serving state: schema, calendar, districts, the bundled layers, fresh open intervals."""
from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from geoservice.calendar import bundled_calendar_files, parse_calendar_csv
from geoservice.layers import ServiceArea, bundled_site_files, read_districts, read_sites
from geoservice.settings import Settings
from geoservice.store.base import Store, UpsertResult

LOGGER = logging.getLogger(__name__)


def load_bundled_calendar(store: Store, only_missing: bool = True) -> list[int]:
    """Load the shipped official schedules; returns the years loaded."""
    known = store.calendar().years if only_missing else set()
    loaded = []
    for name, text in bundled_calendar_files():
        year, days = parse_calendar_csv(text, name)
        if year not in known:
            store.load_calendar_year(year, days, f"bundled:{name}")
            loaded.append(year)
    return loaded


def load_districts(store: Store, layers_dir: Path) -> int:
    """Load ``districts.geojson`` from the layers folder."""
    districts = read_districts(layers_dir / "districts.geojson")
    store.replace_districts(districts)
    return len(districts)


def load_site_file(store: Store, path: Path, kind: str | None = None, datum: str = "wgs84") -> UpsertResult:
    """Validate a whole site file, then upsert it in one transaction (nothing written on any problem)."""
    sites = read_sites(path, ServiceArea(store.districts()), kind, datum)
    return store.upsert_sites(sites)


def ensure_ready(store: Store, settings: Settings, progress: Callable[[str], None] | None = None) -> None:
    """Migrate, then fill what is missing from the bundled data, then refresh a stale window."""
    say = progress or LOGGER.info
    applied = store.migrate()
    if applied:
        say(f"schema: applied {', '.join(applied)}")
    years = load_bundled_calendar(store)
    if years:
        say(f"calendar: loaded official schedules for {years[0]}–{years[-1]}")
    if not store.districts():
        say(f"districts: loaded {load_districts(store, settings.layers_dir)}")
    if settings.autoload_layers and store.health()["sites"] == 0:
        for path in bundled_site_files(settings.layers_dir):
            result = load_site_file(store, path)
            say(f"sites: {path.name}: {len(result.inserted)} loaded")
    if store.window_is_stale():
        refreshed = store.refresh_intervals()
        say(f"hours: materialised {refreshed.intervals} open intervals")
        for site_id, problem in refreshed.problems.items():
            say(f"hours: site {site_id} skipped (treated as closed): {problem}")
