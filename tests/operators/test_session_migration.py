"""Upgrading an embedded store to the sign-in schema keeps every account, its sites and its tokens (SQLite
rebuilds the operators table, with foreign keys off, to widen its role CHECK)."""
from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from geoservice.auth import token_hash
from geoservice.bootstrap import load_districts
from geoservice.services import Services
from geoservice.store import sql as sqlfiles
from geoservice.store.embedded import EmbeddedStore
from geoservice.store.embedded import store as embedded_store
from tests.support import LAYERS
from tests.support.sites import sid
from tests.support.world import operator_sites


def test_upgrading_keeps_accounts_assignments_and_tokens(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "old.sqlite"
    everything = sqlfiles.migrations
    monkeypatch.setattr(embedded_store.sqlfiles, "migrations", lambda backend: [
        m for m in everything(backend) if m[0] < 5])
    old = Services.over(EmbeddedStore(path))
    old.migrate()
    with monkeypatch.context() as before_the_feed:  # the code of that schema had no change feed (006) either
        before_the_feed.setattr(old.sites.feed, "append", lambda *args: [])
        old.sites.upsert_sites(operator_sites(old))
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("INSERT INTO operators (name, role, created_at) VALUES ('alice', 'operator', '2026-01-01'),"
                     " ('carol', 'admin', '2026-01-01')")
        conn.execute("INSERT INTO operator_sites VALUES (1, ?, '2026-01-01'), (1, ?, '2026-01-01')",
                     (sid("op-a"), sid("op-b")))
        conn.execute("INSERT INTO operator_tokens (operator_id, token_sha256, created_at) VALUES (1, ?, '2026-01-01')",
                     (token_hash("gso_old"),))
    conn.close()
    old.close()
    monkeypatch.setattr(embedded_store.sqlfiles, "migrations", everything)

    store = Services.over(EmbeddedStore(path))
    assert store.migrate() == ["005_sessions.sql", "006_change_feed.sql", "007_admin.sql"]
    alice = store.accounts.get("alice")
    assert alice is not None and alice.site_count == 2 and alice.active_tokens == 1 and alice.login is None
    assert store.accounts.for_token(token_hash("gso_old")) == alice
    assert store.accounts.get("carol").is_admin  # type: ignore[union-attr]
    new = store.accounts.create("dora", login="dora")
    assert new.id == 3  # the id sequence carried over
    load_districts(store, LAYERS)
    store.accounts.create("东城", "district_admin", districts=[store.sites.districts()[0].adcode])
    fk = store.spatial.connection()  # type: ignore[attr-defined]
    assert fk.execute("PRAGMA foreign_keys").fetchone()[0] == 1  # back on after the rebuild
    assert fk.execute("PRAGMA foreign_key_check").fetchall() == []
    store.close()
