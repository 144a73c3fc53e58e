"""The operators' small network around Tiananmen with three accounts and their tokens, over any store."""
from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path
from typing import Any

from geoservice.auth import new_token, token_hash
from geoservice.model import Site
from geoservice.services import Services
from geoservice.settings import Settings
from tests.support import LAYERS, TIANANMEN
from tests.support.sites import Spec, make_sites, sid

# (source_id, metres east, metres north, hours, kind, amenities)
OPERATOR_SITES: list[Spec] = [
    ("op-a", 100, 0, "24/7", "warm_station", ["drinking_water", "toilet"]),
    ("op-b", 300, 0, "Mo-Su 06:00-22:00", "warm_station", ["drinking_water", "heating"]),
    ("op-c", 0, 500, "Mo-Su 08:00-20:00", "warm_station", ["wifi"]),
    ("op-d", -800, 0, "24/7", "warm_station", ["charging"]),
]


def operator_sites(store: Services) -> list[Site]:
    """The operators' small network: alice runs op-a and op-b, bob op-c, nobody op-d."""
    return make_sites(store, OPERATOR_SITES, name=lambda source_id: f"测试驿站{source_id[-1].upper()}")


def rows_of_every_table(store: Services) -> str:
    """Every row of every table of the store as one text (to look for secrets in it)."""
    out: list[str] = []
    if store.backend == "embedded":
        import sqlite3

        conn = sqlite3.connect(store.spatial.path)  # type: ignore[attr-defined]
        try:
            for (table,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall():
                out.extend(repr(r) for r in conn.execute(f'SELECT * FROM "{table}"'))
        finally:
            conn.close()
    else:
        import psycopg
        from psycopg import sql

        with psycopg.connect(store.spatial.url) as pg:  # type: ignore[attr-defined]
            tables = [r[0] for r in pg.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'spatial_ref_sys'")]
            for table in tables:
                out.extend(repr(r) for r in pg.execute(sql.SQL("SELECT * FROM {}").format(sql.Identifier(table))))
    return "\n".join(out)


@dataclasses.dataclass
class World:
    """A seeded store, an app over it, and a token per account: alice (a, b), bob (c), carol (admin)."""

    store: Services
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


def build_world(store: Services, tmp_path: Path) -> World:
    from geoservice import create_app

    store.sites.upsert_sites(operator_sites(store))
    store.accounts.create("alice")
    store.accounts.create("bob")
    store.accounts.create("carol", "admin")
    store.accounts.assign("alice", [sid("op-a"), sid("op-b")])
    store.accounts.assign("bob", [sid("op-c")])
    tokens = {}
    for name in ("alice", "bob", "carol"):
        tokens[name] = new_token()
        store.accounts.add_token(name, token_hash(tokens[name]), "test")
    app = create_app(Settings(embedded_path=tmp_path / "unused.sqlite", layers_dir=LAYERS), services=store,
                     prepare=False)
    app.config["TESTING"] = True
    return World(store, app, tokens)


