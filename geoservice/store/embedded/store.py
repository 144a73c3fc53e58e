"""The embedded default backend: a SQLite file (WAL) plus an in-memory spatial index (:mod:`.index`).

No server is needed. Every write is one SQLite transaction (``BEGIN IMMEDIATE``, so writers queue, whatever the
thread or process) and bumps a generation counter when it changes sites or intervals; any process or thread
that sees a new generation rebuilds its index, so several workers over one file stay consistent. All SQL is in
``sql/embedded/queries.sql`` (and the dialect-neutral ``sql/common/queries.sql`` through :class:`SqliteDatabase`).
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import sqlite3
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import shapely

from geoservice import tiles
from geoservice.errors import StoreUnavailable, VersionConflict
from geoservice.hours import TZ, utc_now
from geoservice.model import Closure, District, NearestQuery, Site, SiteChange, SiteFilter, status_closure
from geoservice.network import Network
from geoservice.store import sql as sqlfiles
from geoservice.store.embedded.index import Eligible, SiteIndex, amenity_mask, rank
from geoservice.store.relational import Database, SqliteDialect
from geoservice.store.spatial import IntervalRow, NearestRow, SiteWriter, SpatialStore, Window

LOGGER = logging.getLogger(__name__)
BACKEND = "embedded"
# The line a migration carries when it must run with foreign keys off (a table rebuild).
FOREIGN_KEYS_OFF = "-- foreign_keys: off"


def _q(name: str) -> str:
    return sqlfiles.statement(BACKEND, name)


def _ts(t: dt.datetime | None) -> str | None:
    return t.isoformat() if t else None


def _row_to_site(row: Sequence[Any]) -> Site:
    (sid, source_id, kind, name_zh, name_en, address, adcode, lon, lat, hours, amenities, operator, phone, notes,
     simulated, updated_at, verified_at, version, status, edited_fields, hours_problem, alert_hours) = row
    return Site(
        id=sid, source_id=source_id, kind=kind, name_zh=name_zh, name_en=name_en, address=address,
        district_adcode=adcode, lon=lon, lat=lat, opening_hours=hours, amenities=json.loads(amenities),
        operator=operator, phone=phone, notes=notes, simulated=bool(simulated),
        updated_at=dt.datetime.fromisoformat(updated_at) if updated_at else None,
        verified_at=dt.datetime.fromisoformat(verified_at) if verified_at else None, version=version,
        status=status, edited_fields=json.loads(edited_fields or "{}"), hours_problem=hours_problem,
        alert_hours=json.loads(alert_hours) if alert_hours else None,
    )


def _site_values(site: Site, now: dt.datetime) -> dict[str, Any]:
    """The named values of ``insert_site`` / ``update_site``."""
    return {"id": site.id, "source_id": site.source_id, "kind": site.kind, "name_zh": site.name_zh,
            "name_en": site.name_en, "address": site.address, "district_adcode": site.district_adcode,
            "lon": site.lon, "lat": site.lat, "opening_hours": site.opening_hours,
            "amenities": json.dumps(sorted(site.amenities)), "amenity_mask": amenity_mask(site.amenities),
            "operator": site.operator, "phone": site.phone, "notes": site.notes, "simulated": int(site.simulated),
            "now": _ts(now), "verified_at": _ts(site.verified_at),
            "edited_fields": json.dumps(site.edited_fields, ensure_ascii=False), "hours_problem": site.hours_problem,
            "alert_hours": json.dumps(site.alert_hours, ensure_ascii=False) if site.alert_hours else None}


def _ids(values: Sequence[str]) -> str:
    """A list parameter (read with ``json_each``)."""
    return json.dumps(list(dict.fromkeys(values)), ensure_ascii=False)


def _statements(script: str) -> Iterator[str]:
    """Split a migration into statements (``CREATE TRIGGER … BEGIN …; END;`` stays whole)."""
    buf = ""
    for line in script.splitlines(keepends=True):
        if line.lstrip().startswith("--"):
            continue
        buf += line
        if sqlite3.complete_statement(buf):
            if buf.strip():
                yield buf
            buf = ""
    if buf.strip():
        yield buf


class _Txn:
    """``BEGIN IMMEDIATE`` … ``COMMIT`` (or ``ROLLBACK``) on one connection, serialised within the process."""

    def __init__(self, conn: sqlite3.Connection, lock: threading.RLock):
        self.conn = conn
        self.lock = lock
        self.nested = False

    def __enter__(self) -> sqlite3.Cursor:
        self.lock.acquire()
        self.nested = self.conn.in_transaction  # a repository call inside a site writer shares its transaction
        if not self.nested:
            try:
                self.conn.execute("BEGIN IMMEDIATE")
            except BaseException:
                self.lock.release()
                raise
        return self.conn.cursor()

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        try:
            if not self.nested:
                self.conn.execute("ROLLBACK" if exc_type else "COMMIT")
        finally:
            self.lock.release()


class EmbeddedStore(SpatialStore):
    """SQLite-backed store for single-machine use and development."""

    backend = BACKEND

    def __init__(self, path: Path | str):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._index: SiteIndex | None = None
        self._index_lock = threading.Lock()
        self._write_lock = threading.RLock()
        # The dialect-neutral repositories read on this thread's connection and write in its transactions.
        self.database = Database(SqliteDialect(), lambda: nullcontext(self.connection()), self.transaction)
        self.primary_database = self.database  # one file: every read sees every write

    # ---- connections -----------------------------------------------------------------------------
    def connection(self) -> sqlite3.Connection:
        """This thread's connection (autocommit reads; writes go through :meth:`transaction`)."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            try:
                conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA foreign_keys=ON")
                conn.execute("PRAGMA synchronous=NORMAL")
            except sqlite3.Error as exc:
                raise StoreUnavailable(f"embedded store at {self.path} cannot be opened") from exc
            self._local.conn = conn
        return conn

    def transaction(self) -> _Txn:
        """One write transaction on this thread's connection."""
        return _Txn(self.connection(), self._write_lock)

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def migrate(self) -> list[str]:
        conn = self.connection()
        conn.execute(_q("create_migrations_table"))
        done = {r[0] for r in conn.execute(_q("applied_migrations"))}
        applied = []
        for version, name, script in sqlfiles.migrations(BACKEND):
            if version in done:
                continue
            # A migration that rebuilds a referenced table (SQLite cannot alter a CHECK) says so; foreign keys
            # are off around its transaction (they cannot change inside one) and checked before it commits.
            rebuild = FOREIGN_KEYS_OFF in script
            if rebuild:
                conn.execute("PRAGMA foreign_keys=OFF")
            try:
                with self.transaction() as cur:
                    for statement in _statements(script):
                        cur.execute(statement)
                    if rebuild and cur.execute("PRAGMA foreign_key_check").fetchone() is not None:
                        raise sqlite3.IntegrityError(f"{name} left rows whose foreign keys point nowhere")
                    cur.execute(_q("record_migration"), {"version": version, "now": _ts(utc_now())})
                    cur.execute(_q("bump_generation"))
            finally:
                if rebuild:
                    conn.execute("PRAGMA foreign_keys=ON")
            applied.append(name)
        return applied

    def health(self) -> dict[str, Any]:
        try:
            n = self.connection().execute(_q("site_count")).fetchone()[0]
        except sqlite3.Error as exc:
            raise StoreUnavailable("embedded store is not readable") from exc
        return {"backend": self.backend, "sites": n}

    # ---- the index -------------------------------------------------------------------------------
    def _generation(self) -> str | None:
        row = self.connection().execute(_q("generation")).fetchone()
        return row[0] if row else None

    def snapshot(self) -> SiteIndex:
        """The index of the committed state (rebuilt when another writer moved the generation)."""
        generation = self._generation()
        index = self._index
        if index is not None and index.generation == generation:
            return index
        with self._index_lock:
            if self._index is not None and self._index.generation == generation:
                return self._index
            conn = self.connection()
            conn.execute("BEGIN")
            try:
                generation = self._generation()
                sites = [_row_to_site(r) for r in conn.execute(_q("all_sites"))]
                rows = conn.execute(_q("all_intervals")).fetchall()
                window = self.window()
            finally:
                conn.execute("COMMIT")
            intervals = np.array(rows, dtype=object) if rows else np.zeros((0, 3), dtype=object)
            self._index = SiteIndex(generation, sites, intervals, window)
            LOGGER.info("embedded index rebuilt: %d sites, %d intervals", len(sites), len(rows))
            return self._index

    # ---- districts -------------------------------------------------------------------------------
    def replace_districts(self, districts: Sequence[District]) -> None:
        with self.transaction() as cur:
            cur.execute(_q("delete_unused_districts"))
            cur.executemany(_q("upsert_district"), [
                {"adcode": d.adcode, "name_zh": d.name_zh, "name_en": d.name_en, "area_km2": d.area_km2,
                 "population_2020": d.population_2020, "wkb": shapely.to_wkb(d.geometry)} for d in districts])
            cur.execute(_q("bump_generation"))

    def districts(self) -> list[District]:
        rows = self.connection().execute(_q("districts")).fetchall()
        return [District(r[0], r[1], r[2], r[3], r[4], shapely.from_wkb(r[5])) for r in rows]

    # ---- the walking network -----------------------------------------------------------------------
    def save_network(self, network: Network) -> None:
        with self.transaction() as cur:
            cur.execute(_q("delete_walk_network"))
            cur.execute(_q("insert_walk_network"), {
                "source": network.source, "loaded_at": utc_now().isoformat(), "nodes": network.nodes,
                "edges": network.edges, "graph": network.to_bytes()})

    def load_network(self) -> Network | None:
        row = self.connection().execute(_q("walk_network")).fetchone()
        return None if row is None else Network.from_bytes(bytes(row[0]))

    # ---- sites -----------------------------------------------------------------------------------
    def get_site(self, site_id: str) -> Site | None:
        row = self.connection().execute(_q("get_site"), {"id": site_id}).fetchone()
        return _row_to_site(row) if row else None

    def sites_by_id(self, site_ids: Sequence[str]) -> list[Site]:
        return [_row_to_site(r) for r in self.connection().execute(_q("sites_by_id"), {"ids": _ids(site_ids)})]

    def all_sites(self) -> list[Site]:
        return [_row_to_site(r) for r in self.connection().execute(_q("all_sites"))]

    def list_sites(self, flt: SiteFilter) -> tuple[list[Site], int]:
        index = self.snapshot()
        ok = index.base_mask(flt.kinds, 0)
        if flt.bbox:
            ok &= index.in_bbox(flt.bbox)
        if flt.district:
            ok &= index.district == flt.district
        if flt.open_at is not None:
            if not (index.window and index.window[0] <= flt.open_at < index.window[1]):
                raise ValueError("open_at outside the materialised window")  # the service asks the engine
            ok &= index.until_at(flt.open_at.timestamp()) > -np.inf
            closed = self._closed_now(index, flt.open_at)
            if closed is not None:
                ok &= ~closed
        matched = np.flatnonzero(ok)
        page = matched[flt.offset:flt.offset + flt.limit]
        return [index.sites[i] for i in page], len(matched)

    def site_tile(self, q: tiles.TileQuery) -> bytes:
        found, _ = self.list_sites(SiteFilter(q.lonlat_bbox(), q.kinds, None, q.open_at, limit=sys.maxsize))
        return tiles.encode_sites(q, found)

    def count_sites(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for adcode, kind, n in self.connection().execute(_q("count_sites")):
            out.setdefault(adcode or "", {})[kind] = n
        return out

    def closures_for(self, site_ids: Sequence[str]) -> dict[str, list[Closure]]:
        out: dict[str, list[Closure]] = {}
        conn = self.connection()
        for cid, sid, a, b, reason in conn.execute(_q("closures_for"), {"ids": _ids(site_ids)}):
            out.setdefault(sid, []).append(Closure(sid, dt.date.fromisoformat(a), dt.date.fromisoformat(b), reason,
                                                   cid))
        for (sid,) in conn.execute(_q("temporarily_closed_ids"), {"ids": _ids(site_ids)}):
            out.setdefault(sid, []).append(status_closure(sid))
        return out

    # ---- the window and the nearest search --------------------------------------------------------
    def window(self) -> Window | None:
        conn = self.connection()
        a = conn.execute(_q("get_meta"), {"key": "window_start"}).fetchone()
        b = conn.execute(_q("get_meta"), {"key": "window_end"}).fetchone()
        if not a or not b:
            return None
        return dt.datetime.fromisoformat(a[0]).astimezone(TZ), dt.datetime.fromisoformat(b[0]).astimezone(TZ)

    def nearest_open(self, q: NearestQuery) -> list[NearestRow] | None:
        index = self.snapshot()
        if not q.answered_by(index.window):
            return None
        t = q.at.timestamp()
        until, eligible = index.open_eligible(t, q.kinds, amenity_mask(q.amenities))
        closed = self._closed_now(index, q.at)
        if closed is not None:  # out of the eligible set before the search: a page never comes back short
            eligible = Eligible(eligible.mask & ~closed)
        if q.arrive_within_s is None:
            found = rank(index, q, eligible, q.limit)
        else:
            found = rank(index, q, eligible, q.limit, lambda i, d: bool(until[i] > t + q.walk_seconds(d)))
        return [NearestRow(site, d) for site, d in found]

    def _closed_now(self, index: SiteIndex, at: dt.datetime) -> np.ndarray | None:
        """Mask of the sites whose live status ``closed_now`` is in force at ``at`` (None when there is none).

        Read from SQLite per query (a handful of rows, through a partial index), not folded into the index
        snapshot: a status post is not a site change and rebuilds nothing."""
        rows = self.connection().execute(_q("closed_now_ids"), {"at": at.astimezone(dt.UTC).isoformat()}).fetchall()
        positions = [index.pos[sid] for (sid,) in rows if sid in index.pos]
        if not positions:
            return None
        mask = np.zeros(len(index.sites), bool)
        mask[positions] = True
        return mask

    def candidates(self, q: NearestQuery, offset: int, count: int) -> list[tuple[Site, float]]:
        index = self.snapshot()
        return rank(index, q, index.base_mask(q.kinds, amenity_mask(q.amenities)), offset + count)[offset:]

    # ---- writes ----------------------------------------------------------------------------------
    @contextmanager
    def writer(self, mode: str = "edit") -> Iterator[SiteWriter]:
        """``BEGIN IMMEDIATE`` holds SQLite's write lock from the first read, so the version check and the
        write cannot interleave with another writer (thread or process), whatever the ``mode``; the generation
        bump makes every reader rebuild its index from the committed state."""
        with self.transaction() as cur:
            writer = _SqliteWriter(cur)
            yield writer
            if writer.wrote:
                cur.execute(_q("bump_generation"))


class _SqliteWriter(SiteWriter):
    """Write primitives on a cursor inside an open ``BEGIN IMMEDIATE`` transaction."""

    def __init__(self, cur: sqlite3.Cursor):
        self.cur = cur
        self.wrote = False

    def lock_site(self, site_id: str) -> Site | None:
        row = self.cur.execute(_q("get_site"), {"id": site_id}).fetchone()
        return _row_to_site(row) if row else None

    def lock_sites_by_source(self, source_ids: Sequence[str]) -> dict[str, Site]:
        rows = self.cur.execute(_q("sites_by_source"), {"source_ids": _ids(source_ids)}).fetchall()
        return {site.source_id or "": site for site in map(_row_to_site, rows)}

    def lock_sites(self, site_ids: Sequence[str]) -> list[Site]:
        return self.sites_by_id(site_ids)  # the transaction already holds SQLite's one write lock

    def sites_by_id(self, site_ids: Sequence[str]) -> list[Site]:
        return [_row_to_site(r) for r in self.cur.execute(_q("sites_by_id"), {"ids": _ids(site_ids)}).fetchall()]

    def site_versions(self) -> dict[str, int]:
        return {sid: int(v) for sid, v in self.cur.execute(_q("site_versions")).fetchall()}

    def closures(self, site_id: str) -> list[Closure]:
        rows = self.cur.execute(_q("closures_of"), {"id": site_id}).fetchall()
        return [Closure(site_id, dt.date.fromisoformat(a), dt.date.fromisoformat(b), reason, cid)
                for cid, _, a, b, reason in rows]

    def save_site(self, site: Site, expected_version: int) -> Site:
        now = utc_now()
        values = _site_values(site, now) | {"status": site.status, "expected": expected_version}
        self.cur.execute(_q("save_edit"), values)
        if self.cur.rowcount != 1:
            row = self.cur.execute(_q("site_version"), {"id": site.id}).fetchone()
            raise VersionConflict(site.id, expected_version, row[0] if row else -1)
        self.wrote = True
        return dataclasses.replace(site, version=expected_version + 1, updated_at=now)

    def insert_sites(self, sites: Sequence[Site]) -> None:
        now = utc_now()
        self.cur.executemany(_q("insert_site"), [_site_values(s, now) for s in sites])
        self.wrote = self.wrote or bool(sites)

    def update_sites(self, sites: Sequence[Site]) -> None:
        now = utc_now()
        self.cur.executemany(_q("update_site"), [_site_values(s, now) for s in sites])
        self.wrote = self.wrote or bool(sites)

    def set_edit_marks(self, sites: Sequence[Site]) -> None:
        self.cur.executemany(_q("set_edit_marks"), [
            {"id": s.id, "edited_fields": json.dumps(s.edited_fields, ensure_ascii=False)} for s in sites])
        self.wrote = self.wrote or bool(sites)

    def set_hours_problems(self, problems: dict[str, str | None]) -> None:
        self.cur.executemany(_q("set_hours_problem"), [{"id": sid, "problem": p} for sid, p in problems.items()])
        self.wrote = self.wrote or bool(problems)

    def insert_closure(self, closure: Closure) -> Closure:
        self.cur.execute(_q("insert_closure"), {"site_id": closure.site_id, "start": closure.start.isoformat(),
                                                 "end": closure.end.isoformat(), "reason": closure.reason,
                                                 "now": _ts(utc_now())})
        self.wrote = True
        return dataclasses.replace(closure, id=self.cur.lastrowid)

    def delete_closure(self, site_id: str, closure_id: int) -> None:
        self.cur.execute(_q("delete_closure"), {"site_id": site_id, "id": int(closure_id)})
        self.wrote = True

    def _insert_intervals(self, rows: list[IntervalRow]) -> None:
        self.cur.executemany(_q("insert_interval"), [{"site_id": sid, "start_s": a.timestamp(), "end_s": b.timestamp()}
                                                     for sid, a, b in rows])

    def replace_intervals(self, site_ids: Sequence[str], rows: list[IntervalRow]) -> None:
        self.cur.executemany(_q("delete_intervals_for"), [{"id": sid} for sid in site_ids])
        self._insert_intervals(rows)
        self.wrote = self.wrote or bool(site_ids) or bool(rows)

    def replace_all_intervals(self, rows: list[IntervalRow], window: Window) -> None:
        self.cur.execute(_q("delete_all_intervals"))
        self._insert_intervals(rows)
        for key, value in (("window_start", window[0]), ("window_end", window[1])):
            self.cur.execute(_q("set_meta"), {"key": key, "value": value.isoformat()})
        self.wrote = True

    def set_window_if_missing(self, window: Window) -> None:
        for key, value in (("window_start", window[0]), ("window_end", window[1])):
            self.cur.execute(_q("set_meta_if_missing"), {"key": key, "value": value.isoformat()})
            self.wrote = self.wrote or self.cur.rowcount > 0

    def append_change(self, site_id: str, actor: str, action: str, changes: dict[str, Any],
                      version: int | None) -> SiteChange:
        at = utc_now()
        self.cur.execute(_q("insert_change"), {"site_id": site_id, "actor": actor, "at": _ts(at), "action": action,
                                                "changes": json.dumps(changes, ensure_ascii=False),
                                                "version": version})
        self.wrote = True
        cid = self.cur.lastrowid
        assert cid is not None
        return SiteChange(cid, site_id, actor, at, action, changes, version)
