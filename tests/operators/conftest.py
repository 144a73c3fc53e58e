"""Operators' side: a small network around Tiananmen with three accounts and their tokens, over either store.

``world`` builds on the shared ``store`` fixture (embedded AND a real throwaway PostGIS), so every test that
uses it runs on both backends unless it asks for one.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest

from geoservice.hours import TZ, now_local
from geoservice.services import Services
from tests.support.stores import fresh_embedded
from tests.support.world import World, build_world


def tomorrow_at(hour: int) -> dt.datetime:
    """A time inside the materialised window (tomorrow, Beijing)."""
    day = now_local().date() + dt.timedelta(days=1)
    return dt.datetime.combine(day, dt.time(hour), tzinfo=TZ)


@pytest.fixture
def world(store: Services, tmp_path: Path) -> World:
    """The seeded world on each backend."""
    return build_world(store, tmp_path)


@pytest.fixture
def embedded_world(tmp_path: Path) -> Iterator[World]:
    """The seeded world on the embedded store only (API details that do not depend on the backend)."""
    store = fresh_embedded(tmp_path / "ops.sqlite")
    yield build_world(store, tmp_path)
    store.close()
