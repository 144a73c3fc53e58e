"""A fresh embedded store with the bundled districts and calendar, as ``geoservice serve`` prepares one."""
from __future__ import annotations

from pathlib import Path

from geoservice.bootstrap import load_bundled_calendar, load_districts
from geoservice.services import Services
from geoservice.store.embedded import EmbeddedStore
from tests.support import LAYERS


def fresh_embedded(path: Path) -> Services:
    """Migrated, with districts and the holiday calendar; no sites."""
    path.parent.mkdir(parents=True, exist_ok=True)
    store = Services.over(EmbeddedStore(path))
    store.migrate()
    load_districts(store, LAYERS)
    load_bundled_calendar(store)
    return store
