"""The embedded default store: a SQLite file (WAL) plus an in-memory spatial index.

No server is needed. Every write is one SQLite transaction and bumps a generation counter; any process or
thread that sees a new generation rebuilds its in-memory index (a KD-tree over unit-sphere vectors, and the
materialised open intervals as numpy arrays), so several workers over one file stay consistent.

The open-at-``t`` state of every site only changes at an interval's start or end, so each snapshot caches it
per *segment* between consecutive boundaries (and the kind/amenity/open filter masks per segment): queries
at any instant inside a cached segment reuse the arrays a query at that segment's first instant would compute.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from scipy.spatial import cKDTree

from geoservice.calendar import Calendar, CalendarDay
from geoservice.errors import Conflict, NotFound, StoreUnavailable
from geoservice.geo import geodesic_distance_m
from geoservice.hours import TZ
from geoservice.model import KINDS, Closure, Site
from geoservice.store import sql as sqlfiles
from geoservice.store.base import (
    RERANK_MARGIN,
    District,
    NearestQuery,
    Operator,
    Report,
    SiteChange,
    SiteFilter,
    SiteWriter,
    Store,
    TokenInfo,
    VersionConflict,
    amenity_mask,
    effective_closures,
    status_closure,
    utc_now,
    window_covers,
)

LOGGER = logging.getLogger(__name__)

EARTH_RADIUS_M = 6371008.8
# Below this many eligible sites a vectorised scan beats growing KD-tree queries.
BRUTE_FORCE_MAX = 20000
# Per snapshot: open-state arrays kept for this many segments between interval boundaries (8 bytes a site
# each), and filter masks for this many (segment, kinds, amenities) combinations (1 byte a site each, plus the
# eligible positions when few enough for the vectorised scan).
OPEN_SEGMENTS_CACHED = 8
FILTERS_CACHED = 32

SITE_COLUMNS = (
    "id, source_id, kind, name_zh, name_en, address, district_adcode, lon, lat, opening_hours, amenities, "
    "operator, phone, notes, simulated, updated_at, verified_at, version, status, edited_fields, hours_problem"
)
SELECT_SITES = f"SELECT {SITE_COLUMNS} FROM sites"
SELECT_GENERATION = "SELECT value FROM meta WHERE key = 'generation'"
BUMP_GENERATION = (
    "INSERT INTO meta (key, value) VALUES ('generation', '1') "
    "ON CONFLICT (key) DO UPDATE SET value = CAST(value AS INTEGER) + 1"
)
SET_META = "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value"
GET_META = "SELECT value FROM meta WHERE key = ?"
INSERT_SITE = (
    "INSERT INTO sites (kind, name_zh, name_en, address, district_adcode, lon, lat, opening_hours,"
    " amenities, amenity_mask, operator, phone, notes, simulated, updated_at, edited_fields, hours_problem,"
    " id, source_id, verified_at, version)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1)"
)
UPDATE_SITE = (
    "UPDATE sites SET kind = ?, name_zh = ?, name_en = ?, address = ?, district_adcode = ?, lon = ?, lat = ?,"
    " opening_hours = ?, amenities = ?, amenity_mask = ?, operator = ?, phone = ?, notes = ?, simulated = ?,"
    " updated_at = ?, edited_fields = ?, hours_problem = ?, version = version + 1 WHERE id = ?"
)
# Operators' edits: only the editable fields, and only if the version is still the one read (no lost update).
SAVE_EDIT = (
    "UPDATE sites SET opening_hours = ?, amenities = ?, amenity_mask = ?, phone = ?, notes = ?, status = ?,"
    " name_zh = ?, name_en = ?, verified_at = ?, edited_fields = ?, hours_problem = ?, updated_at = ?,"
    " version = version + 1 WHERE id = ? AND version = ?"
)
INSERT_CHANGE = "INSERT INTO site_changes (site_id, actor, at, action, changes, version) VALUES (?, ?, ?, ?, ?, ?)"
CHANGE_COLUMNS = "id, site_id, actor, at, action, changes, version"
REPORT_COLUMNS = ("id, site_id, type, amenity, note, lang, observed_at, received_at, resolved_at, resolved_by,"
                  " resolution_note")
OPERATOR_SELECT = (
    "SELECT o.id, o.name, o.role, o.created_at,"
    " (SELECT count(*) FROM operator_sites s WHERE s.operator_id = o.id),"
    " (SELECT count(*) FROM operator_tokens t WHERE t.operator_id = o.id AND t.revoked_at IS NULL)"
    " FROM operators o"
)
DELETE_INTERVALS_FOR = "DELETE FROM site_open_intervals WHERE site_id = ?"
INSERT_INTERVAL = "INSERT INTO site_open_intervals (site_id, start_s, end_s) VALUES (?, ?, ?)"


def _unit_vectors(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    lam, phi = np.radians(lon), np.radians(lat)
    return np.column_stack((np.cos(phi) * np.cos(lam), np.cos(phi) * np.sin(lam), np.sin(phi)))


def _chord(distance_m: float) -> float:
    return 2.0 * np.sin(min(distance_m / EARTH_RADIUS_M, np.pi) / 2.0)


def _ts(t: dt.datetime | None) -> str | None:
    return t.isoformat() if t else None


def _row_to_site(row: sqlite3.Row | tuple) -> Site:
    (sid, source_id, kind, name_zh, name_en, address, adcode, lon, lat, hours, amenities, operator, phone, notes,
     simulated, updated_at, verified_at, version, status, edited_fields, hours_problem) = row
    return Site(
        id=sid, source_id=source_id, kind=kind, name_zh=name_zh, name_en=name_en, address=address,
        district_adcode=adcode, lon=lon, lat=lat, opening_hours=hours, amenities=json.loads(amenities),
        operator=operator, phone=phone, notes=notes, simulated=bool(simulated),
        updated_at=dt.datetime.fromisoformat(updated_at) if updated_at else None,
        verified_at=dt.datetime.fromisoformat(verified_at) if verified_at else None, version=version,
        status=status, edited_fields=json.loads(edited_fields or "{}"), hours_problem=hours_problem,
    )


def _content_values(site: Site, now: dt.datetime) -> tuple[Any, ...]:
    """The values shared by INSERT_SITE and UPDATE_SITE, in their order."""
    return (site.kind, site.name_zh, site.name_en, site.address, site.district_adcode, site.lon, site.lat,
            site.opening_hours, json.dumps(sorted(site.amenities)), amenity_mask(site.amenities), site.operator,
            site.phone, site.notes, int(site.simulated), _ts(now), json.dumps(site.edited_fields, ensure_ascii=False),
            site.hours_problem)


def _dt(value: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(value) if value else None


def _row_to_change(row: Sequence[Any]) -> SiteChange:
    cid, site_id, actor, at, action, changes, version = row
    return SiteChange(cid, site_id, actor, dt.datetime.fromisoformat(at), action, json.loads(changes), version)


def _row_to_report(row: Sequence[Any]) -> Report:
    (rid, site_id, rtype, amenity, note, lang, observed_at, received_at, resolved_at, resolved_by,
     resolution_note) = row
    return Report(site_id=site_id, type=rtype, observed_at=dt.datetime.fromisoformat(observed_at), amenity=amenity,
                  note=note, lang=lang, id=rid, received_at=_dt(received_at), resolved_at=_dt(resolved_at),
                  resolved_by=resolved_by, resolution_note=resolution_note)


def _row_to_operator(row: Sequence[Any]) -> Operator:
    oid, name, role, created_at, sites, tokens = row
    return Operator(oid, name, role, _dt(created_at), sites, tokens)


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


class _Eligible:
    """A read-only eligibility mask with its count, and its positions when the vectorised scan will use them."""

    __slots__ = ("mask", "count", "idx")

    def __init__(self, mask: np.ndarray):
        self.mask = mask
        self.count = int(np.count_nonzero(mask))
        self.idx: np.ndarray | None = None
        if self.count <= BRUTE_FORCE_MAX:
            self.idx = np.flatnonzero(mask)
            self.idx.flags.writeable = False


class _Index:
    """Immutable snapshot of all sites and intervals for one generation."""

    def __init__(self, generation: str | None, sites: list[Site], intervals: np.ndarray,
                 window: tuple[dt.datetime, dt.datetime] | None):
        self.generation = generation
        self.sites = sites
        self.pos = {s.id: i for i, s in enumerate(sites)}
        n = len(sites)
        self.lon = np.fromiter((s.lon for s in sites), float, n)
        self.lat = np.fromiter((s.lat for s in sites), float, n)
        self.kind = np.fromiter((KINDS.index(s.kind) for s in sites), np.int8, n)
        self.mask = np.fromiter((amenity_mask(s.amenities) for s in sites), np.int64, n)
        self.xyz = _unit_vectors(self.lon, self.lat) if n else np.zeros((0, 3))
        self.tree = cKDTree(self.xyz) if n else None
        self.window = window
        if len(intervals):
            self.iv_site = np.array([self.pos.get(s, -1) for s in intervals[:, 0]], dtype=np.int64)
            self.iv_start = intervals[:, 1].astype(float)
            self.iv_end = intervals[:, 2].astype(float)
        else:
            self.iv_site = np.zeros(0, np.int64)
            self.iv_start = self.iv_end = np.zeros(0)
        # Every instant at which some interval starts or ends, sorted: the hit set of ``open_until`` (hence its
        # result) is the same for all ``t`` between two consecutive boundaries.
        self.boundaries = np.unique(np.concatenate((self.iv_start, self.iv_end)))
        self._cache_lock = threading.Lock()
        self._until: OrderedDict[int, np.ndarray] = OrderedDict()
        self._eligible: OrderedDict[tuple[int, frozenset[str], int], _Eligible] = OrderedDict()

    def segment(self, t: float) -> int:
        """Number of boundaries ``<= t``: ``t`` lies in ``[boundaries[j-1], boundaries[j])`` (open-ended at the
        ends), where ``open_until`` is constant."""
        return int(np.searchsorted(self.boundaries, t, side="right"))

    def until_at(self, t: float) -> np.ndarray:
        """``open_until(t)``, computed once per segment and shared (read-only)."""
        return self._until_in(self.segment(t), t)

    def _until_in(self, seg: int, t: float) -> np.ndarray:
        with self._cache_lock:
            until = self._until.get(seg)
            if until is None:
                until = self.open_until(t)
                until.flags.writeable = False
                self._until[seg] = until
                while len(self._until) > OPEN_SEGMENTS_CACHED:
                    self._until.popitem(last=False)
            else:
                self._until.move_to_end(seg)
            return until

    def open_eligible(self, t: float, kinds: Sequence[str], amenities_mask: int) -> tuple[np.ndarray, _Eligible]:
        """``open_until(t)`` and the sites passing the kind and amenity filters that are open at ``t``.

        Keyed by segment and the filter as a set (``base_mask`` ignores order and repeats), so the arrays are
        exactly those an uncached ``base_mask(...) & (open_until(t) > t)`` gives: ``open_until(t)`` is
        constant within the segment, and there ``open_until(t) > t`` holds exactly where it is not ``-inf``
        (the containing interval ends after ``t``), i.e. it is the same mask for every ``t`` of the segment.
        """
        seg = self.segment(t)
        until = self._until_in(seg, t)
        key = (seg, frozenset(kinds), amenities_mask)
        with self._cache_lock:
            hit = self._eligible.get(key)
            if hit is not None:
                self._eligible.move_to_end(key)
                return until, hit
        mask = self.base_mask(kinds, amenities_mask) & (until > t)
        mask.flags.writeable = False
        sel = _Eligible(mask)
        with self._cache_lock:
            self._eligible[key] = sel
            while len(self._eligible) > FILTERS_CACHED:
                self._eligible.popitem(last=False)
        return until, sel

    def base_mask(self, kinds: Sequence[str], amenities_mask: int) -> np.ndarray:
        ok = np.ones(len(self.sites), bool)
        if kinds:
            ok &= np.isin(self.kind, [KINDS.index(k) for k in kinds])
        if amenities_mask:
            ok &= (self.mask & amenities_mask) == amenities_mask
        return ok

    def open_until(self, t: float) -> np.ndarray:
        """Per site: end of the materialised interval containing ``t`` (epoch s), or -inf when closed."""
        out = np.full(len(self.sites), -np.inf)
        hit = (self.iv_start <= t) & (self.iv_end > t)
        out[self.iv_site[hit]] = self.iv_end[hit]
        return out


class EmbeddedStore(Store):
    """SQLite-backed store for single-machine use and development."""

    backend = "embedded"

    def __init__(self, path: Path | str, **kwargs: Any):
        super().__init__(**kwargs)
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._index: _Index | None = None
        self._index_lock = threading.Lock()
        self._write_lock = threading.Lock()

    # ---- connections -----------------------------------------------------------------------------
    def _conn(self) -> sqlite3.Connection:
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

    def _write(self) -> _Txn:
        return _Txn(self._conn(), self._write_lock)

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def migrate(self) -> list[str]:
        conn = self._conn()
        conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT)")
        done = {r[0] for r in conn.execute("SELECT version FROM schema_migrations")}
        applied = []
        for version, name, script in sqlfiles.migrations("embedded"):
            if version in done:
                continue
            with self._write() as cur:
                for statement in _statements(script):
                    cur.execute(statement)
                cur.execute("INSERT INTO schema_migrations VALUES (?, ?)", (version, _ts(utc_now())))
                cur.execute(BUMP_GENERATION)
            applied.append(name)
        return applied

    def health(self) -> dict[str, Any]:
        try:
            n = self._conn().execute("SELECT count(*) FROM sites").fetchone()[0]
        except sqlite3.Error as exc:
            raise StoreUnavailable("embedded store is not readable") from exc
        return {"backend": self.backend, "sites": n}

    # ---- index -----------------------------------------------------------------------------------
    def _generation(self) -> str | None:
        row = self._conn().execute(SELECT_GENERATION).fetchone()
        return row[0] if row else None

    def _snapshot(self) -> _Index:
        generation = self._generation()
        index = self._index
        if index is not None and index.generation == generation:
            return index
        with self._index_lock:
            if self._index is not None and self._index.generation == generation:
                return self._index
            conn = self._conn()
            conn.execute("BEGIN")
            try:
                generation = self._generation()
                sites = [_row_to_site(r) for r in conn.execute(SELECT_SITES + " ORDER BY id")]
                rows = conn.execute("SELECT site_id, start_s, end_s FROM site_open_intervals").fetchall()
                window = self.window()
            finally:
                conn.execute("COMMIT")
            intervals = np.array(rows, dtype=object) if rows else np.zeros((0, 3), dtype=object)
            self._index = _Index(generation, sites, intervals, window)
            LOGGER.info("embedded index rebuilt: %d sites, %d intervals", len(sites), len(rows))
            return self._index

    # ---- districts -------------------------------------------------------------------------------
    def replace_districts(self, districts: Sequence[District]) -> None:
        self._invalidate_districts()
        with self._write() as cur:
            cur.execute("DELETE FROM districts WHERE adcode NOT IN (SELECT DISTINCT district_adcode FROM sites"
                        " WHERE district_adcode IS NOT NULL)")
            for d in districts:
                cur.execute(
                    "INSERT INTO districts VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (adcode) DO UPDATE SET"
                    " name_zh = excluded.name_zh, name_en = excluded.name_en, area_km2 = excluded.area_km2,"
                    " population_2020 = excluded.population_2020, geom_wkb = excluded.geom_wkb",
                    (d.adcode, d.name_zh, d.name_en, d.area_km2, d.population_2020, shapely.to_wkb(d.geometry)),
                )
            cur.execute(BUMP_GENERATION)
        self._invalidate_districts()  # again once committed: a reader meanwhile may have cached the old ones

    def districts(self) -> list[District]:
        rows = self._conn().execute("SELECT * FROM districts ORDER BY adcode").fetchall()
        return [District(r[0], r[1], r[2], r[3], r[4], shapely.from_wkb(r[5])) for r in rows]

    # ---- sites -----------------------------------------------------------------------------------
    def _all_sites(self) -> list[Site]:
        return [_row_to_site(r) for r in self._conn().execute(SELECT_SITES)]

    def get_site(self, site_id: str) -> Site | None:
        row = self._conn().execute(SELECT_SITES + " WHERE id = ?", (site_id,)).fetchone()
        return _row_to_site(row) if row else None

    def list_sites(self, flt: SiteFilter) -> tuple[list[Site], int]:
        index = self._snapshot()
        ok = index.base_mask(flt.kinds, 0)
        if flt.bbox:
            x0, y0, x1, y1 = flt.bbox
            ok &= (index.lon >= x0) & (index.lon <= x1) & (index.lat >= y0) & (index.lat <= y1)
        if flt.district:
            ok &= np.array([s.district_adcode == flt.district for s in index.sites], bool)
        if flt.open_at is not None:
            ok &= self._open_mask(index, flt.open_at, ok)
        matched = np.flatnonzero(ok)
        page = matched[flt.offset:flt.offset + flt.limit]
        return [index.sites[i] for i in page], int(len(matched))

    def _open_mask(self, index: _Index, at: dt.datetime, candidates: np.ndarray) -> np.ndarray:
        if index.window and index.window[0] <= at < index.window[1]:
            return index.until_at(at.timestamp()) > -np.inf
        engine = self.engine
        ids = [index.sites[i].id for i in np.flatnonzero(candidates)]
        closures = self.closures_for(ids)
        out = np.zeros(len(index.sites), bool)
        for i in np.flatnonzero(candidates):
            site = index.sites[i]
            out[i] = engine.is_open(site.opening_hours, at, effective_closures(site, closures.get(site.id, ())))
        return out

    def count_sites(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        rows = self._conn().execute("SELECT district_adcode, kind, count(*) FROM sites GROUP BY 1, 2")
        for adcode, kind, n in rows:
            out.setdefault(adcode or "", {})[kind] = n
        return out

    # ---- closures and calendar -------------------------------------------------------------------
    def closures_for(self, site_ids: Sequence[str]) -> dict[str, list[Closure]]:
        out: dict[str, list[Closure]] = {}
        conn = self._conn()
        ids = list(site_ids)
        for i in range(0, len(ids), 500):
            chunk = ids[i:i + 500]
            marks = ",".join("?" * len(chunk))
            for cid, sid, a, b, reason in conn.execute(
                f"SELECT id, site_id, start_date, end_date, reason FROM closures WHERE site_id IN ({marks})", chunk
            ):
                out.setdefault(sid, []).append(
                    Closure(sid, dt.date.fromisoformat(a), dt.date.fromisoformat(b), reason, cid))
            for (sid,) in conn.execute(f"SELECT id FROM sites WHERE status = 'temporarily_closed' AND id IN ({marks})",
                                       chunk):
                out.setdefault(sid, []).append(status_closure(sid))
        return out

    def load_calendar_year(self, year: int, days: Sequence[CalendarDay], source: str) -> None:
        with self._write() as cur:
            cur.execute("DELETE FROM calendar_days WHERE day >= ? AND day < ?", (f"{year}-01-01", f"{year + 1}-01-01"))
            cur.executemany("INSERT INTO calendar_days VALUES (?, ?, ?, ?)",
                            [(d.day.isoformat(), d.type, d.name_en, d.name_zh) for d in days])
            cur.execute("INSERT INTO calendar_years VALUES (?, ?, ?) ON CONFLICT (year) DO UPDATE SET"
                        " source = excluded.source, loaded_at = excluded.loaded_at", (year, source, _ts(utc_now())))
            cur.execute(BUMP_GENERATION)
        self._invalidate_engine()

    def calendar(self) -> Calendar:
        conn = self._conn()
        years = [r[0] for r in conn.execute("SELECT year FROM calendar_years")]
        days = [CalendarDay(dt.date.fromisoformat(d), t, en, zh)
                for d, t, en, zh in conn.execute("SELECT day, type, name_en, name_zh FROM calendar_days")]
        return Calendar.from_days(years, days)

    # ---- intervals -------------------------------------------------------------------------------
    def window(self) -> tuple[dt.datetime, dt.datetime] | None:
        conn = self._conn()
        a = conn.execute(GET_META, ("window_start",)).fetchone()
        b = conn.execute(GET_META, ("window_end",)).fetchone()
        if not a or not b:
            return None
        return dt.datetime.fromisoformat(a[0]).astimezone(TZ), dt.datetime.fromisoformat(b[0]).astimezone(TZ)

    # ---- nearest ---------------------------------------------------------------------------------
    def _rank(self, index: _Index, q: NearestQuery, eligible: np.ndarray | _Eligible, want: int,
              accept: Callable[[int, float], bool] | None = None) -> list[tuple[Site, float]]:
        """The ``want`` nearest eligible sites by exact ellipsoidal distance; ``accept(i, d)`` filters further.

        Candidates come in chord order (unit sphere); the answer is final once the ``want``-th accepted
        distance is below the sphere distance of the farthest chord examined, less the worst
        sphere-vs-ellipsoid disagreement (under 0.6 %), so no unexamined site can be nearer.
        ``eligible`` is a boolean mask, or a cached :class:`_Eligible` (same mask, count and positions
        precomputed; the search is the same).
        """
        sel = eligible if isinstance(eligible, _Eligible) else _Eligible(eligible)
        eligible, n_eligible = sel.mask, sel.count
        point = _unit_vectors(np.array([q.lon]), np.array([q.lat]))[0]
        radius = q.radius_m()
        chord_cap = _chord(radius * 1.01) if radius is not None else np.inf
        if n_eligible == 0 or want <= 0:
            return []
        m = want + RERANK_MARGIN
        while True:
            if n_eligible <= BRUTE_FORCE_MAX or index.tree is None:
                eligible_idx = sel.idx if sel.idx is not None else np.flatnonzero(eligible)
                chords = np.linalg.norm(index.xyz[eligible_idx] - point, axis=1)
                take = min(m, len(chords))
                part = np.argpartition(chords, take - 1)[:take] if take < len(chords) else np.arange(len(chords))
                cand, cand_chords = eligible_idx[part], chords[part]
                exhausted = take >= len(chords)
                examined = float(cand_chords.max())
            else:
                k = min(len(index.sites), m * max(2, 2 * len(index.sites) // n_eligible))
                chords, idx = index.tree.query(point, k=k)
                chords, idx = np.atleast_1d(chords), np.atleast_1d(idx)
                keep = eligible[idx]
                cand, cand_chords = idx[keep], chords[keep]
                exhausted = k >= len(index.sites)
                examined = float(chords.max())
            beyond_radius = examined > chord_cap
            cand = cand[cand_chords <= chord_cap]
            dists = np.atleast_1d(geodesic_distance_m(q.lon, q.lat, index.lon[cand], index.lat[cand])) \
                if len(cand) else np.zeros(0)
            out: list[tuple[Site, float]] = []
            for j in np.argsort(dists, kind="stable"):
                i, d = int(cand[j]), float(dists[j])
                if radius is not None and d > radius:
                    continue
                if accept is not None and not accept(i, d):
                    continue
                out.append((index.sites[i], d))
                if len(out) == want:
                    break  # nothing below reads past out[want - 1]
            bound = 2 * EARTH_RADIUS_M * np.arcsin(min(examined / 2, 1.0)) * 0.994
            if exhausted or beyond_radius or (len(out) >= want and out[want - 1][1] <= bound):
                return out[:want]
            m *= 4

    def _nearest_materialised(self, q: NearestQuery) -> list[tuple[Site, float]]:
        index = self._snapshot()
        if not window_covers(index.window, q):
            return self._nearest_by_engine(q)
        t = q.at.timestamp()
        until, eligible = index.open_eligible(t, q.kinds, amenity_mask(q.amenities))
        if q.arrive_within_s is None:
            return self._rank(index, q, eligible, q.limit)
        return self._rank(index, q, eligible, q.limit, lambda i, d: until[i] > t + q.walk_seconds(d))

    def _candidates(self, q: NearestQuery, offset: int, count: int) -> list[tuple[Site, float]]:
        index = self._snapshot()
        eligible = index.base_mask(q.kinds, amenity_mask(q.amenities))
        return self._rank(index, q, eligible, offset + count)[offset:]


    # ---- operators and tokens --------------------------------------------------------------------
    def create_operator(self, name: str, role: str = "operator") -> Operator:
        name = self.check_operator_name(name, role)
        try:
            with self._write() as cur:
                cur.execute("INSERT INTO operators (name, role, created_at) VALUES (?, ?, ?)",
                            (name, role, _ts(utc_now())))
        except sqlite3.IntegrityError:
            raise Conflict(f"an operator named {name!r} already exists") from None
        operator = self.get_operator(name)
        assert operator is not None
        return operator

    def get_operator(self, name: str) -> Operator | None:
        row = self._conn().execute(OPERATOR_SELECT + " WHERE o.name = ?", (name,)).fetchone()
        return _row_to_operator(row) if row else None

    def list_operators(self) -> list[Operator]:
        return [_row_to_operator(r) for r in self._conn().execute(OPERATOR_SELECT + " ORDER BY o.name")]

    def _operator_id(self, name: str) -> int:
        row = self._conn().execute("SELECT id FROM operators WHERE name = ?", (name,)).fetchone()
        if row is None:
            raise NotFound(f"no operator named {name!r}")
        return int(row[0])

    def assign_sites(self, name: str, site_ids: Sequence[str]) -> int:
        oid = self._operator_id(name)
        ids = list(dict.fromkeys(site_ids))
        with self._write() as cur:
            marks = ",".join("?" * len(ids))
            known = {r[0] for r in cur.execute(f"SELECT id FROM sites WHERE id IN ({marks})", ids)} if ids else set()
            unknown = [i for i in ids if i not in known]
            if unknown:
                raise NotFound(f"no site with id {', '.join(unknown)}")
            before = cur.execute("SELECT count(*) FROM operator_sites WHERE operator_id = ?", (oid,)).fetchone()[0]
            cur.executemany("INSERT OR IGNORE INTO operator_sites (operator_id, site_id, assigned_at) VALUES (?, ?, ?)",
                            [(oid, i, _ts(utc_now())) for i in ids])
            after = cur.execute("SELECT count(*) FROM operator_sites WHERE operator_id = ?", (oid,)).fetchone()[0]
        return int(after - before)

    def unassign_sites(self, name: str, site_ids: Sequence[str]) -> int:
        oid = self._operator_id(name)
        n = 0
        with self._write() as cur:
            for site_id in dict.fromkeys(site_ids):
                cur.execute("DELETE FROM operator_sites WHERE operator_id = ? AND site_id = ?", (oid, site_id))
                n += cur.rowcount
        return n

    def owned_site_ids(self, operator: Operator, site_ids: Sequence[str]) -> set[str]:
        ids = list(dict.fromkeys(site_ids))
        out: set[str] = set()
        conn = self._conn()
        for i in range(0, len(ids), 500):
            chunk = ids[i:i + 500]
            marks = ",".join("?" * len(chunk))
            if operator.is_admin:
                rows = conn.execute(f"SELECT id FROM sites WHERE id IN ({marks})", chunk)
            else:
                rows = conn.execute("SELECT site_id FROM operator_sites WHERE operator_id = ?"
                                    f" AND site_id IN ({marks})", [operator.id, *chunk])
            out.update(r[0] for r in rows)
        return out

    def list_operator_sites(self, operator: Operator, limit: int = 100, offset: int = 0) -> tuple[list[Site], int]:
        conn = self._conn()
        if operator.is_admin:
            total = conn.execute("SELECT count(*) FROM sites").fetchone()[0]
            rows = conn.execute(SELECT_SITES + " ORDER BY id LIMIT ? OFFSET ?", (limit, offset))
        else:
            where = " WHERE id IN (SELECT site_id FROM operator_sites WHERE operator_id = ?)"
            total = conn.execute("SELECT count(*) FROM operator_sites WHERE operator_id = ?",
                                 (operator.id,)).fetchone()[0]
            rows = conn.execute(SELECT_SITES + where + " ORDER BY id LIMIT ? OFFSET ?", (operator.id, limit, offset))
        return [_row_to_site(r) for r in rows], int(total)

    def add_token(self, name: str, token_sha256: str, label: str = "") -> TokenInfo:
        oid = self._operator_id(name)
        now = utc_now()
        with self._write() as cur:
            cur.execute("INSERT INTO operator_tokens (operator_id, token_sha256, label, created_at)"
                        " VALUES (?, ?, ?, ?)", (oid, token_sha256, label, _ts(now)))
            tid = cur.lastrowid
        assert tid is not None
        return TokenInfo(tid, name, label, now)

    def list_tokens(self, name: str) -> list[TokenInfo]:
        oid = self._operator_id(name)
        rows = self._conn().execute("SELECT id, label, created_at, revoked_at FROM operator_tokens"
                                    " WHERE operator_id = ? ORDER BY id DESC", (oid,))
        return [TokenInfo(r[0], name, r[1], dt.datetime.fromisoformat(r[2]), _dt(r[3])) for r in rows]

    def revoke_tokens(self, name: str, token_ids: Sequence[int] | None = None) -> int:
        oid = self._operator_id(name)
        now = _ts(utc_now())
        with self._write() as cur:
            if token_ids is None:
                cur.execute("UPDATE operator_tokens SET revoked_at = ? WHERE operator_id = ? AND revoked_at IS NULL",
                            (now, oid))
                return int(cur.rowcount)
            n = 0
            for tid in dict.fromkeys(token_ids):
                cur.execute("UPDATE operator_tokens SET revoked_at = ? WHERE id = ? AND operator_id = ?"
                            " AND revoked_at IS NULL", (now, int(tid), oid))
                n += cur.rowcount
            return n

    def operator_for_token(self, token_sha256: str) -> Operator | None:
        row = self._conn().execute(
            OPERATOR_SELECT + " WHERE o.id = (SELECT operator_id FROM operator_tokens"
            " WHERE token_sha256 = ? AND revoked_at IS NULL)", (token_sha256,)).fetchone()
        return _row_to_operator(row) if row else None

    # ---- audit -----------------------------------------------------------------------------------
    def site_history(self, site_id: str, limit: int = 50, offset: int = 0) -> tuple[list[SiteChange], int]:
        conn = self._conn()
        total = conn.execute("SELECT count(*) FROM site_changes WHERE site_id = ?", (site_id,)).fetchone()[0]
        rows = conn.execute(f"SELECT {CHANGE_COLUMNS} FROM site_changes WHERE site_id = ? ORDER BY id DESC"
                            " LIMIT ? OFFSET ?", (site_id, limit, offset))
        return [_row_to_change(r) for r in rows], int(total)

    def recent_changes(self, limit: int = 50, offset: int = 0) -> tuple[list[SiteChange], int]:
        conn = self._conn()
        total = conn.execute("SELECT count(*) FROM site_changes").fetchone()[0]
        rows = conn.execute(f"SELECT {CHANGE_COLUMNS} FROM site_changes ORDER BY id DESC LIMIT ? OFFSET ?",
                            (limit, offset))
        return [_row_to_change(r) for r in rows], int(total)

    # ---- couriers' reports -----------------------------------------------------------------------
    def add_report(self, report: Report) -> Report:
        now = utc_now()
        with self._write() as cur:
            cur.execute("INSERT INTO site_reports (site_id, type, amenity, note, lang, observed_at, received_at)"
                        " VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (report.site_id, report.type, report.amenity, report.note, report.lang,
                         _ts(report.observed_at), _ts(now)))
            rid = cur.lastrowid
        assert rid is not None
        got = self.get_report(rid)
        assert got is not None
        return got

    def get_report(self, report_id: int) -> Report | None:
        row = self._conn().execute(f"SELECT {REPORT_COLUMNS} FROM site_reports WHERE id = ?",
                                   (int(report_id),)).fetchone()
        return _row_to_report(row) if row else None

    def list_reports(self, operator: Operator, include_resolved: bool = False, limit: int = 50,
                     offset: int = 0) -> tuple[list[Report], int]:
        where, args = [], []
        if not operator.is_admin:
            where.append("site_id IN (SELECT site_id FROM operator_sites WHERE operator_id = ?)")
            args.append(operator.id)
        if not include_resolved:
            where.append("resolved_at IS NULL")
        clause = (" WHERE " + " AND ".join(where)) if where else ""
        conn = self._conn()
        total = conn.execute("SELECT count(*) FROM site_reports" + clause, args).fetchone()[0]
        rows = conn.execute(f"SELECT {REPORT_COLUMNS} FROM site_reports{clause} ORDER BY id DESC LIMIT ? OFFSET ?",
                            [*args, limit, offset])
        return [_row_to_report(r) for r in rows], int(total)

    def resolve_report(self, report_id: int, actor: str, note: str | None = None) -> Report:
        with self._write() as cur:
            row = cur.execute("SELECT resolved_at FROM site_reports WHERE id = ?", (int(report_id),)).fetchone()
            if row is None:
                raise NotFound(f"no report {report_id}")
            if row[0] is not None:
                raise Conflict(f"report {report_id} is already resolved")
            cur.execute("UPDATE site_reports SET resolved_at = ?, resolved_by = ?, resolution_note = ? WHERE id = ?",
                        (_ts(utc_now()), actor, note, int(report_id)))
        got = self.get_report(report_id)
        assert got is not None
        return got

    def unresolved_report_counts(self, site_ids: Sequence[str]) -> dict[str, int]:
        out: dict[str, int] = {}
        ids = list(dict.fromkeys(site_ids))
        conn = self._conn()
        for i in range(0, len(ids), 500):
            chunk = ids[i:i + 500]
            marks = ",".join("?" * len(chunk))
            for sid, n in conn.execute(f"SELECT site_id, count(*) FROM site_reports WHERE resolved_at IS NULL"
                                       f" AND site_id IN ({marks}) GROUP BY site_id", chunk):
                out[sid] = int(n)
        return out

    # ---- site edits ------------------------------------------------------------------------------
    @contextmanager
    def _site_writer(self, mode: str = "edit") -> Iterator[SiteWriter]:
        """``BEGIN IMMEDIATE`` holds SQLite's write lock from the first read, so the version check and the
        write cannot interleave with another writer (thread or process), whatever the ``mode``; the generation
        bump makes every reader rebuild its index from the committed state."""
        with self._write() as cur:
            writer = _SqliteWriter(cur)
            yield writer
            if writer.wrote:
                cur.execute(BUMP_GENERATION)

class _Txn:
    """``BEGIN IMMEDIATE`` … ``COMMIT`` (or ``ROLLBACK``) on one connection, serialised within the process."""

    def __init__(self, conn: sqlite3.Connection, lock: threading.Lock):
        self.conn = conn
        self.lock = lock

    def __enter__(self) -> sqlite3.Cursor:
        self.lock.acquire()
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except BaseException:
            self.lock.release()
            raise
        return self.conn.cursor()

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        try:
            self.conn.execute("ROLLBACK" if exc_type else "COMMIT")
        finally:
            self.lock.release()


class _SqliteWriter(SiteWriter):
    """Write primitives on a cursor inside an open ``BEGIN IMMEDIATE`` transaction."""

    def __init__(self, cur: sqlite3.Cursor):
        self.cur = cur
        self.wrote = False

    def lock_site(self, site_id: str) -> Site | None:
        row = self.cur.execute(SELECT_SITES + " WHERE id = ?", (site_id,)).fetchone()
        return _row_to_site(row) if row else None

    def lock_sites_by_source(self, source_ids: Sequence[str]) -> dict[str, Site]:
        out: dict[str, Site] = {}
        ids = list(dict.fromkeys(source_ids))
        for i in range(0, len(ids), 500):
            chunk = ids[i:i + 500]
            marks = ",".join("?" * len(chunk))
            for row in self.cur.execute(f"{SELECT_SITES} WHERE source_id IN ({marks})", chunk).fetchall():
                site = _row_to_site(row)
                out[site.source_id or ""] = site
        return out

    def sites_by_id(self, site_ids: Sequence[str]) -> list[Site]:
        out: list[Site] = []
        ids = list(dict.fromkeys(site_ids))
        for i in range(0, len(ids), 500):
            chunk = ids[i:i + 500]
            marks = ",".join("?" * len(chunk))
            out.extend(_row_to_site(r) for r in self.cur.execute(f"{SELECT_SITES} WHERE id IN ({marks})", chunk))
        return out

    def site_versions(self) -> dict[str, int]:
        return {sid: int(v) for sid, v in self.cur.execute("SELECT id, version FROM sites").fetchall()}

    def closures(self, site_id: str) -> list[Closure]:
        rows = self.cur.execute("SELECT id, start_date, end_date, reason FROM closures WHERE site_id = ?"
                                " ORDER BY start_date, id", (site_id,)).fetchall()
        return [Closure(site_id, dt.date.fromisoformat(a), dt.date.fromisoformat(b), reason, cid)
                for cid, a, b, reason in rows]

    def save_site(self, site: Site, expected_version: int) -> Site:
        now = utc_now()
        self.cur.execute(SAVE_EDIT, (site.opening_hours, json.dumps(sorted(site.amenities)),
                                     amenity_mask(site.amenities), site.phone, site.notes, site.status, site.name_zh,
                                     site.name_en, _ts(site.verified_at),
                                     json.dumps(site.edited_fields, ensure_ascii=False), site.hours_problem,
                                     _ts(now), site.id, expected_version))
        if self.cur.rowcount != 1:
            row = self.cur.execute("SELECT version FROM sites WHERE id = ?", (site.id,)).fetchone()
            raise VersionConflict(site.id, expected_version, row[0] if row else -1)
        self.wrote = True
        return dataclasses.replace(site, version=expected_version + 1, updated_at=now)

    def insert_sites(self, sites: Sequence[Site]) -> None:
        now = utc_now()
        self.cur.executemany(INSERT_SITE, [_content_values(s, now) + (s.id, s.source_id, _ts(s.verified_at))
                                           for s in sites])
        self.wrote = self.wrote or bool(sites)

    def update_sites(self, sites: Sequence[Site]) -> None:
        now = utc_now()
        self.cur.executemany(UPDATE_SITE, [_content_values(s, now) + (s.id,) for s in sites])
        self.wrote = self.wrote or bool(sites)

    def set_edit_marks(self, sites: Sequence[Site]) -> None:
        self.cur.executemany("UPDATE sites SET edited_fields = ? WHERE id = ?",
                             [(json.dumps(s.edited_fields, ensure_ascii=False), s.id) for s in sites])
        self.wrote = self.wrote or bool(sites)

    def set_hours_problems(self, problems: dict[str, str | None]) -> None:
        self.cur.executemany("UPDATE sites SET hours_problem = ? WHERE id = ?",
                             [(p, sid) for sid, p in problems.items()])
        self.wrote = self.wrote or bool(problems)

    def insert_closure(self, closure: Closure) -> Closure:
        self.cur.execute("INSERT INTO closures (site_id, start_date, end_date, reason, created_at)"
                         " VALUES (?, ?, ?, ?, ?)", (closure.site_id, closure.start.isoformat(),
                                                     closure.end.isoformat(), closure.reason, _ts(utc_now())))
        self.wrote = True
        return dataclasses.replace(closure, id=self.cur.lastrowid)

    def delete_closure(self, site_id: str, closure_id: int) -> None:
        self.cur.execute("DELETE FROM closures WHERE site_id = ? AND id = ?", (site_id, int(closure_id)))
        self.wrote = True

    def replace_intervals(self, site_ids: Sequence[str], rows: list[tuple[str, dt.datetime, dt.datetime]]) -> None:
        self.cur.executemany(DELETE_INTERVALS_FOR, [(sid,) for sid in site_ids])
        self.cur.executemany(INSERT_INTERVAL, [(sid, a.timestamp(), b.timestamp()) for sid, a, b in rows])
        self.wrote = self.wrote or bool(site_ids) or bool(rows)

    def replace_all_intervals(self, rows: list[tuple[str, dt.datetime, dt.datetime]],
                              window: tuple[dt.datetime, dt.datetime]) -> None:
        self.cur.execute("DELETE FROM site_open_intervals")
        self.cur.executemany(INSERT_INTERVAL, [(sid, a.timestamp(), b.timestamp()) for sid, a, b in rows])
        self._set_window(window)
        self.wrote = True

    def set_window_if_missing(self, window: tuple[dt.datetime, dt.datetime]) -> None:
        if self.cur.execute(GET_META, ("window_start",)).fetchone() is None:
            self._set_window(window)
            self.wrote = True

    def _set_window(self, window: tuple[dt.datetime, dt.datetime]) -> None:
        self.cur.execute(SET_META, ("window_start", window[0].isoformat()))
        self.cur.execute(SET_META, ("window_end", window[1].isoformat()))

    def append_change(self, site_id: str, actor: str, action: str, changes: dict[str, Any],
                      version: int | None) -> SiteChange:
        at = utc_now()
        self.cur.execute(INSERT_CHANGE, (site_id, actor, _ts(at), action, json.dumps(changes, ensure_ascii=False),
                                         version))
        self.wrote = True
        cid = self.cur.lastrowid
        assert cid is not None
        return SiteChange(cid, site_id, actor, at, action, changes, version)
