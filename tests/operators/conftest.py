"""Operators' side: a small network around Tiananmen with three accounts and their tokens, over either store.

``world`` builds on the shared ``store`` fixture (embedded AND a real throwaway PostGIS), so every test that
uses it runs on both backends unless it asks for one.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from geoservice.auth import new_token, token_hash
from geoservice.hours import TZ, now_local
from geoservice.layers import ServiceArea
from geoservice.model import Site
from geoservice.packagedata import layers_dir
from geoservice.settings import Settings
from geoservice.store.base import Store, site_id_for

ROOT = Path(__file__).resolve().parent.parent.parent
LAYERS = layers_dir()  # the bundled layers, as the package ships them
TIANANMEN = (116.3975, 39.9087)

# (source_id, metres east, metres north, hours, amenities)
SITES = [
    ("op-a", 100, 0, "24/7", ["drinking_water", "toilet"]),
    ("op-b", 300, 0, "Mo-Su 06:00-22:00", ["drinking_water", "heating"]),
    ("op-c", 0, 500, "Mo-Su 08:00-20:00", ["wifi"]),
    ("op-d", -800, 0, "24/7", ["charging"]),
]


def make_sites(store: Store) -> list[Site]:
    """The small network, with districts looked up as the loader does."""
    area = ServiceArea(store.districts())
    out = []
    for source_id, dx, dy, hours, amenities in SITES:
        lon = TIANANMEN[0] + dx / 85_300.0
        lat = TIANANMEN[1] + dy / 111_000.0
        out.append(Site(id=site_id_for(source_id), source_id=source_id, kind="warm_station",
                        name_zh=f"测试驿站{source_id[-1].upper()}", lon=lon, lat=lat, opening_hours=hours,
                        amenities=list(amenities), district_adcode=area.lookup([lon], [lat])[0]))
    return out


def sid(source_id: str) -> str:
    """Public id of a test site."""
    return site_id_for(source_id)


def tomorrow_at(hour: int) -> dt.datetime:
    """A time inside the materialised window (tomorrow, Beijing)."""
    day = now_local().date() + dt.timedelta(days=1)
    return dt.datetime.combine(day, dt.time(hour), tzinfo=TZ)


def rows_of_every_table(store: Store) -> str:
    """Every row of every table of the store as one text (to look for secrets in it)."""
    out: list[str] = []
    if store.backend == "embedded":
        import sqlite3

        conn = sqlite3.connect(store.path)  # type: ignore[attr-defined]
        try:
            for (table,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall():
                out.extend(repr(r) for r in conn.execute(f'SELECT * FROM "{table}"'))
        finally:
            conn.close()
    else:
        import psycopg
        from psycopg import sql

        with psycopg.connect(store.url) as pg:  # type: ignore[attr-defined]
            tables = [r[0] for r in pg.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'spatial_ref_sys'")]
            for table in tables:
                out.extend(repr(r) for r in pg.execute(sql.SQL("SELECT * FROM {}").format(sql.Identifier(table))))
    return "\n".join(out)


@dataclasses.dataclass
class World:
    """A seeded store, an app over it, and a token per account: alice (a, b), bob (c), carol (admin)."""

    store: Store
    app: Any
    tokens: dict[str, str]

    @property
    def client(self) -> Any:
        return self.app.test_client()

    def auth(self, name: str, **headers: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[name]}", **headers}

    def nearest_ids(self, at: dt.datetime, **params: Any) -> list[str]:
        resp = self.client.get("/api/v1/sites/nearest", query_string={
            "lat": TIANANMEN[1], "lon": TIANANMEN[0], "at": at.isoformat(), "limit": 10, **params})
        assert resp.status_code == 200, resp.get_json()
        return [f["id"] for f in resp.get_json()["features"]]


def build_world(store: Store, tmp_path: Path) -> World:
    from geoservice import create_app

    store.upsert_sites(make_sites(store))
    store.create_operator("alice")
    store.create_operator("bob")
    store.create_operator("carol", "admin")
    store.assign_sites("alice", [sid("op-a"), sid("op-b")])
    store.assign_sites("bob", [sid("op-c")])
    tokens = {}
    for name in ("alice", "bob", "carol"):
        tokens[name] = new_token()
        store.add_token(name, token_hash(tokens[name]), "test")
    app = create_app(Settings(embedded_path=tmp_path / "unused.sqlite", layers_dir=LAYERS), store=store,
                     prepare=False)
    app.config["TESTING"] = True
    return World(store, app, tokens)


@pytest.fixture
def world(store: Store, tmp_path: Path) -> World:
    """The seeded world on each backend."""
    return build_world(store, tmp_path)


@pytest.fixture
def embedded_world(tmp_path: Path) -> Iterator[World]:
    """The seeded world on the embedded store only (API details that do not depend on the backend)."""
    from geoservice.bootstrap import load_bundled_calendar, load_districts
    from geoservice.store.embedded import EmbeddedStore

    store = EmbeddedStore(tmp_path / "ops.sqlite")
    store.migrate()
    load_districts(store, LAYERS)
    load_bundled_calendar(store)
    yield build_world(store, tmp_path)
    store.close()
