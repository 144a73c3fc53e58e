"""The production backend: PostgreSQL + PostGIS through psycopg 3 and a connection pool.

Spatial work stays in the database: KNN ``<->`` on a GiST-indexed ``geography(Point, 4326)`` with the
open-interval check inside the index scan, ``ST_DWithin`` on geography for radii, ``ST_Distance`` (ellipsoid)
on the handful of rows returned. All SQL is in ``sql/postgis/*.sql`` (and the dialect-neutral
``sql/common/queries.sql`` through :class:`PgDatabase`), every value a bound parameter.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import re
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import psycopg
import shapely
from psycopg.conninfo import conninfo_to_dict
from psycopg.types.json import Jsonb, set_json_loads
from psycopg.types.range import Range
from psycopg_pool import ConnectionPool, PoolClosed, PoolTimeout

from geoservice import tiles
from geoservice.errors import StoreUnavailable, VersionConflict
from geoservice.hours import TZ
from geoservice.limiter import LimiterStateError, open_table
from geoservice.model import (
    KINDS,
    MAY_BE_CLOSED_REPORTS,
    MAY_BE_CLOSED_WINDOW,
    Closure,
    District,
    LiveView,
    MayBeClosed,
    NearestQuery,
    Site,
    SiteChange,
    SiteFilter,
    status_closure,
)
from geoservice.network import Network
from geoservice.store import sql as sqlfiles
from geoservice.store.postgis.breaker import Breaker
from geoservice.store.postgis.replicas import ReplicaRouter, SharedPositions, safe_name
from geoservice.store.relational import Database, PostgresDialect, live_status_of
from geoservice.store.spatial import IntervalRow, NearestRow, SiteWriter, SpatialStore, Window

LOGGER = logging.getLogger(__name__)
BACKEND = "postgis"
MIGRATION_LOCK_KEY = 0x6E05E7
IDLE_CHECK_S = 2.0  # pooled connections idle longer than this are pinged before use
CONNECT_TIMEOUT_S = 2  # libpq connect_timeout unless the URL sets one: a silent host must not hang the pool
TCP_USER_TIMEOUT_MS = 10_000  # sent data unacknowledged this long (host or network gone): the connection is dead
PROBE_TIMEOUT_S = 1.0  # how long the breaker's probe waits for the pool
N_SITE_COLUMNS = 22  # columns of {site_columns}; a query's extra columns follow them
# KNN candidates examined beyond k: enough that the exact re-ranking almost never has to ask again (measured:
# bench/bench_scale.py counts the repeats), few enough that the index scan stops early.
NEAREST_MARGIN = 5


# SQLSTATE class 40: PostgreSQL rolled the transaction back (psycopg does not derive these from one class).
ROLLED_BACK = (psycopg.errors.TransactionRollback, psycopg.errors.DeadlockDetected,
               psycopg.errors.SerializationFailure)


def _bouncer_flag(url: str, flag: bool) -> tuple[str, bool]:
    """``url`` without a ``pgbouncer=1`` query parameter (libpq does not know it), and whether PgBouncer is meant."""
    found = re.search(r"([?&])pgbouncer=(1|true|yes|on)(&|$)", url)
    if not found:
        return url, flag
    rest = url[:found.start()] + (found.group(1) + url[found.end():] if found.group(3) else "")
    return rest.rstrip("?&"), True


# A day's copy of an interval holds that day and the next (migration 016): it answers "still open on arrival"
# exactly for walks up to a day; a longer one (the API allows 3 hours) is left to the hours engine.
LONGEST_STORED_WALK_S = 86_400


_DIALECT = PostgresDialect()


def _q(name: str, **choices: str) -> str:
    return sqlfiles.statement(BACKEND, name, **choices)


def nearest_open_statement(q: NearestQuery) -> str:
    """The ``nearest_open`` variant for ``q``: a single kind and a radius become index conditions inside the
    function that finds the candidates (migration 015)."""
    kinds = "one_kind" if len(q.kinds) == 1 else "kinds"
    return _q("nearest_open", candidates=f"{kinds}_{'within' if q.radius_m() is not None else 'anywhere'}")


def nearest_open_params(q: NearestQuery, cand: int) -> dict[str, Any]:
    """Bound parameters of :func:`nearest_open_statement` for ``q``, examining ``cand`` KNN candidates. No kind
    asked means every kind."""
    return {"lon": q.lon, "lat": q.lat, "at": q.at, "amenities": sorted(q.amenities), "radius": q.radius_m(),
            "kinds": sorted(q.kinds or KINDS), "arrival": q.arrive_within_s is not None,
            "detour": q.walk.detour_factor, "speed": q.walk.speed_m_per_s, "cand": cand, "limit": q.limit,
            "since": q.at - MAY_BE_CLOSED_WINDOW, "min_reports": MAY_BE_CLOSED_REPORTS}


def run_nearest_open(conn: psycopg.Connection, statement: str, params: dict[str, Any]
                     ) -> tuple[Window | None, list[Any]]:
    """The materialised window and the rows of a :func:`nearest_open_statement`, from its one statement: the
    window is on every row (its last two columns, dropped here), and alone on a row of nulls when no site is a
    candidate."""
    rows = conn.execute(statement, params).fetchall()  # at least one: the window's aggregate always has a row
    return _window_of(*rows[0][-2:]), [] if rows[0][0] is None else [r[:-2] for r in rows]


def nearest_rows_proven(rows: Sequence[Sequence[Any]], limit: int, cand: int) -> bool:
    """True when :func:`nearest_open_statement` rows for ``cand`` candidates are the final answer: fewer
    candidates came back than asked for (every eligible site was examined), or the ``limit``-th exact distance
    is safely below the farthest KNN (sphere) distance examined — sphere and ellipsoid disagree by < 0.6 %, so
    no unexamined site can be nearer."""
    if not rows or rows[0][N_SITE_COLUMNS + 2] < cand:
        return True
    return len(rows) >= limit and float(rows[limit - 1][N_SITE_COLUMNS]) <= float(rows[0][N_SITE_COLUMNS + 1]) * 0.994


def _window(rows: Sequence[Sequence[Any]]) -> Window | None:
    values = {str(k): v for k, v in rows}
    return _window_of(values.get("window_start"), values.get("window_end"))


def _window_of(start: str | None, end: str | None) -> Window | None:
    """The window from the ISO texts ``meta`` holds (None unless both are recorded)."""
    if start is None or end is None:
        return None
    return dt.datetime.fromisoformat(str(start)).astimezone(TZ), dt.datetime.fromisoformat(str(end)).astimezone(TZ)


def _live_view(site_id: str, columns: Sequence[Any]) -> LiveView:
    """A nearest row's ``live_view_columns``: the stored status (state first; null when none) and the mark."""
    state, seats, capacity, posted_at, expires_at, posted_by, reports, first_report = columns[:8]
    status = None if state is None else live_status_of(
        (site_id, state, seats, capacity, posted_at, expires_at, posted_by), _DIALECT)
    return LiveView(status, None if reports is None else MayBeClosed(int(reports), first_report))


def _row_to_site(row: Sequence[Any]) -> Site:
    (sid, source_id, kind, name_zh, name_en, address, adcode, lon, lat, hours, amenities, operator, phone, notes,
     simulated, updated_at, verified_at, version, status, edited_fields, hours_problem,
     alert_hours) = row[:N_SITE_COLUMNS]
    return Site(
        id=sid, source_id=source_id, kind=kind, name_zh=name_zh, name_en=name_en, address=address,
        district_adcode=adcode, lon=lon, lat=lat, opening_hours=hours, amenities=list(amenities), operator=operator,
        phone=phone, notes=notes, simulated=simulated, updated_at=updated_at, verified_at=verified_at,
        version=version, status=status, edited_fields=dict(edited_fields or {}), hours_problem=hours_problem,
        alert_hours=dict(alert_hours) if alert_hours else None,
    )


def _closures(site_id: str, items: Sequence[Sequence[Any]]) -> list[Closure]:
    """Closures from the ``closures_column`` fragment's JSON, by start date then id."""
    return [Closure(site_id, dt.date.fromisoformat(a), dt.date.fromisoformat(b), reason, cid)
            for cid, a, b, reason in sorted(items, key=lambda c: (c[1], c[0]))]


def _site_params(site: Site) -> dict[str, Any]:
    return {
        "id": site.id, "source_id": site.source_id, "kind": site.kind, "name_zh": site.name_zh,
        "name_en": site.name_en, "address": site.address, "district_adcode": site.district_adcode,
        "lon": site.lon, "lat": site.lat, "opening_hours": site.opening_hours, "amenities": sorted(site.amenities),
        "operator": site.operator, "phone": site.phone, "notes": site.notes, "simulated": site.simulated,
        "verified_at": site.verified_at, "edited_fields": Jsonb(site.edited_fields),
        "hours_problem": site.hours_problem, "alert_hours": Jsonb(site.alert_hours) if site.alert_hours else None,
    }


def _write_intervals(cur: psycopg.Cursor[Any], rows: list[IntervalRow], site_ids: Sequence[str] | None) -> None:
    """Make the stored open intervals of ``site_ids`` (None: of every site) exactly ``rows``, writing only the
    difference (queries.sql, "writing open intervals"): an interval kept is neither deleted nor inserted again,
    so refreshing an unchanged window leaves the partitions and their indexes as they were."""
    if site_ids is not None and not site_ids and not rows:
        return
    cur.execute(_q("create_interval_staging"))
    cur.execute(_q("create_interval_staging_days"))
    with cur.copy(_q("copy_intervals")) as copy:
        for sid, a, b in rows:
            copy.write_row((sid, Range(a, b, "[)")))
    cur.execute(_q("stage_interval_days"))
    cur.execute(_q("analyze_interval_staging_days"))
    if site_ids is None:
        cur.execute(_q("delete_unstaged_intervals"))
    elif site_ids:
        cur.execute(_q("delete_unstaged_intervals_for"), {"ids": list(site_ids)})
    cur.execute(_q("insert_staged_intervals"))
    cur.execute(_q("empty_interval_staging_days"))


def _shared_positions(directory: Path) -> SharedPositions | None:
    """Write positions shared by the host's processes, or None (this process only) when the folder cannot hold
    the state file: the web app fails at start then (its rate limits need the same file), a CLI run goes on."""
    try:
        return SharedPositions(open_table(directory))
    except LimiterStateError as exc:
        LOGGER.warning("read-your-writes across processes is off: %s", exc)
        return None


class _NotingPool(ConnectionPool):
    """A connection pool that notes, in ``returned``, when each connection last came back (for the idle check).

    Noted in the returning thread, not by the pool's ``reset`` callback: with any ``reset`` set, every return
    becomes a task for the pool's worker threads (a queue put, a thread woken, the GIL handed over and back) on
    every request.
    """

    def __init__(self, returned: dict[int, float], *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.returned = returned

    def putconn(self, conn: psycopg.Connection) -> None:
        self.returned[id(conn)] = time.monotonic()
        super().putconn(conn)


class PostgisStore(SpatialStore):
    """Store over a PostGIS database named by a libpq URL."""

    backend = BACKEND

    def __init__(self, url: str, min_size: int = 1, max_size: int = 8, timeout: float = 1.0,
                 statement_timeout_ms: int = 5000, read_urls: Sequence[str] = (), replica_max_lag_s: float = 10.0,
                 pgbouncer: bool = False, shared_state_dir: Path | None = None):
        """``timeout``: how long a request waits for a pooled connection. A pool with at least as many
        connections as the worker has threads hands one out at once, so a wait means the database cannot be
        reached: keep it short (it bounds the first requests of an outage; the breaker answers the rest).

        ``read_urls``: hot standbys for public reads (:mod:`.replicas`); ``pgbouncer`` (or ``pgbouncer=1`` in a
        URL): no server-side prepared statements, as PgBouncer in transaction mode cannot keep them.
        ``shared_state_dir``: where every process of the host shares each account's last write position (else
        this process alone remembers it)."""
        url, pgbouncer = _bouncer_flag(url, pgbouncer)
        self.url = url
        self.timeout = timeout
        # The dialect-neutral repositories share the pool: reads on a read-only transaction, writes on one each.
        self.database = Database(_DIALECT, lambda: self.connection(read_only=True), self.connection)
        self.primary_database = Database(_DIALECT, lambda: self.connection(read_only=True, primary=True),
                                         self.connection)
        self._in_use = 0  # connections handed out by connection() (pool exhaustion is not an outage)
        self._in_use_lock = threading.Lock()

        def configure(conn: psycopg.Connection) -> None:
            conn.execute(f"SET statement_timeout = {int(statement_timeout_ms)}")
            conn.execute("SET TIME ZONE 'Asia/Shanghai'")
            # JIT compiles a query the planner thinks expensive; for the short queries here the compiling is the
            # cost: a zoom-7 tile of Beijing took 490 ms, 430 ms of them JIT (EXPLAIN ANALYZE), 60 ms without.
            conn.execute("SET jit = off")
            conn.commit()
            # jsonb columns (edits, alert hours, closures: two or three per site answered) read with orjson:
            # under 1 µs per small document instead of ~5.7 µs with the standard library's json (timeit here).
            set_json_loads(orjson.loads, conn)

        returned: dict[int, float] = {}  # id(connection) -> when it last went back to the pool

        def check(conn: psycopg.Connection) -> None:
            # A connection that was idle may have been cut (server restart, network): ping it before a request
            # gets it. One in steady use was just proven alive; pinging it too would add a round trip to every
            # request. If it broke meanwhile the request fails with 503 and the pool drops it.
            if time.monotonic() - returned.get(id(conn), 0.0) > IDLE_CHECK_S:
                ConnectionPool.check_connection(conn)

        def make_pool(pool_url: str) -> ConnectionPool:
            pool_url, bouncer = _bouncer_flag(pool_url, pgbouncer)
            given = conninfo_to_dict(pool_url)
            libpq: dict[str, Any] = {k: v for k, v in (("connect_timeout", CONNECT_TIMEOUT_S),
                                                       ("tcp_user_timeout", TCP_USER_TIMEOUT_MS)) if k not in given}
            if bouncer:
                libpq["prepare_threshold"] = None
            # reconnect_timeout: the pool's own background retries give up after a few seconds; while the
            # database is down the breaker's probe asks the pool for a connection, which starts a fresh attempt at
            # once, so recovery is not left waiting for the pool's next (exponentially delayed) retry.
            pool = _NotingPool(returned, pool_url, min_size=min_size, max_size=max_size, timeout=timeout,
                               open=False, kwargs=libpq, configure=configure, check=check, reconnect_timeout=5)
            pool.open(wait=False)
            return pool

        self.pool = make_pool(url)
        self.breaker = Breaker(self._probe)
        self.replicas: ReplicaRouter | None = None
        if read_urls:
            positions = _shared_positions(shared_state_dir) if shared_state_dir is not None else None
            self.replicas = ReplicaRouter([_bouncer_flag(u, pgbouncer)[0] for u in read_urls], replica_max_lag_s,
                                          make_pool, {"prepare_threshold": None} if pgbouncer else {}, positions)
        self._local = threading.local()

    def _probe(self) -> None:
        """The breaker's probe: a pooled connection that answers ``SELECT 1``."""
        with self.pool.connection(timeout=PROBE_TIMEOUT_S) as conn:
            conn.execute("SELECT 1")

    @contextmanager
    def connection(self, bulk: bool = False, read_only: bool = False,
                   primary: bool = False) -> Iterator[psycopg.Connection]:
        """A pooled connection in a transaction; connection failures become ``StoreUnavailable``.

        Nested use in one thread shares the outer connection and its transaction. ``bulk`` takes a connection of
        its own and lifts the per-request statement timeout (loads, refreshes). ``read_only`` runs each
        statement in its own implicit transaction (autocommit): for reads that need no snapshot across
        statements it saves the COMMIT round trip (bench/README.md, "Before / after"); such reads go to a
        standby when one is healthy, unless ``primary``.
        """
        current = getattr(self._local, "conn", None)
        # Nested use shares the outer connection, except that a primary read never rides on a standby's.
        if current is not None and not bulk and not (primary and getattr(self._local, "standby", None) is not None):
            yield current
            return
        if read_only and not bulk and not primary and self.replicas is not None:
            standby = self.replicas.choose()
            if standby is not None:
                with ExitStack() as stack:
                    try:
                        conn = stack.enter_context(standby.pool.connection(timeout=min(self.timeout, 0.5)))
                    except (PoolTimeout, PoolClosed, psycopg.OperationalError) as exc:
                        standby.reachable = False  # skipped until its next check; this read uses the primary
                        LOGGER.warning("standby pool failed, reading from the primary: %s", exc)
                    else:
                        conn.autocommit = True
                        self._local.conn = conn
                        self._local.standby = standby
                        try:
                            yield conn
                        except psycopg.OperationalError as exc:  # the standby went away or timed out mid-read
                            standby.reachable = False
                            LOGGER.warning("standby failed during a read: %s", exc)
                            raise StoreUnavailable("the database is not reachable; try again shortly") from exc
                        finally:
                            self._local.conn = current
                            self._local.standby = None
                        return
        self.breaker.check()  # known to be down: fail now, do not wait for the pool
        try:
            with self.pool.connection(timeout=self.timeout) as conn:
                conn.autocommit = read_only  # connections come back from the pool idle, so this is free
                if bulk:
                    conn.execute(_q("statement_timeout_off"))
                self._local.conn = conn
                with self._in_use_lock:
                    self._in_use += 1
                try:
                    yield conn
                    if not read_only and self.replicas is not None and self.replicas.wants_lsn():
                        conn.commit()  # the LSN past this write's commit record (insert, not write, position:
                        # with asynchronous commit the record may not be written yet): read-your-writes
                        row = conn.execute("SELECT pg_current_wal_insert_lsn()::text").fetchone()
                        if row:
                            self.replicas.wrote(str(row[0]))
                finally:
                    self._local.conn = current
                    with self._in_use_lock:
                        self._in_use -= 1
        except psycopg.errors.QueryCanceled as exc:
            LOGGER.warning("PostGIS statement timed out: %s", exc)
            raise StoreUnavailable("the database took too long to answer; try again shortly") from exc
        except PoolTimeout as exc:
            if self._in_use >= self.pool.max_size:  # every connection busy: overload, not an outage
                LOGGER.warning("PostGIS pool exhausted (%d connections in use)", self._in_use)
                raise StoreUnavailable("the service is busy; try again shortly") from exc
            self.breaker.trip(f"no connection within {self.timeout:g} s")
            raise StoreUnavailable("the database is not reachable; try again shortly") from exc
        except ROLLED_BACK as exc:
            LOGGER.warning("PostGIS rolled a transaction back (%s): %s", exc.sqlstate, exc)
            raise StoreUnavailable("another change to the same sites was being saved at the same moment; nothing "
                                   "was written, try again") from exc
        except (PoolClosed, psycopg.OperationalError) as exc:
            # A connection that broke under this request (server gone or restarted): this request fails, the pool
            # drops the connection, and the next request gets another one, or times out and trips the breaker.
            LOGGER.warning("PostGIS unavailable: %s", exc)
            raise StoreUnavailable("the database is not reachable; try again shortly") from exc

    def close(self) -> None:
        self.breaker.stop()
        self.pool.close()
        if self.replicas is not None:
            self.replicas.close()

    def routed_to_standby(self) -> bool:
        """True inside a ``connection()`` block that a standby answers (tests, diagnostics)."""
        return getattr(self._local, "standby", None) is not None

    def servers(self) -> list[dict[str, Any]]:
        """The primary and each standby: role, reachable, replay lag (standby), in use — for /healthz."""
        primary = {"role": "primary", "server": safe_name(self.url), "reachable": self.breaker.state()["state"] == "up",
                   "replay_lag_s": None, "in_use": True}
        return [primary, *(self.replicas.status() if self.replicas is not None else [])]

    def migrate(self) -> list[str]:
        applied: list[str] = []
        with self.connection(bulk=True) as conn:
            conn.execute(_q("migration_lock"), {"key": MIGRATION_LOCK_KEY})
            conn.execute(_q("create_migrations_table"))
            done = {r[0] for r in conn.execute(_q("applied_migrations"))}
            for version, name, script in sqlfiles.migrations(BACKEND):
                if version in done:
                    continue
                conn.execute(script)  # trusted file shipped with the package
                conn.execute(_q("record_migration"), {"version": version, "name": name})
                applied.append(name)
        return applied

    def health(self) -> dict[str, Any]:
        """Counts sites through the pool; while the breaker is open, raises at once (no waiting on the pool)."""
        with self.connection() as conn:
            n = conn.execute(_q("site_count")).fetchone()
            postgis = conn.execute(_q("postgis_version")).fetchone()
        stats = self.pool.get_stats()
        return {"backend": self.backend, "sites": n[0] if n else 0, "postgis": postgis[0] if postgis else None,
                "store": self.breaker.state(),
                "pool": {"size": stats.get("pool_size", 0), "available": stats.get("pool_available", 0),
                         "max": self.pool.max_size},
                "servers": self.servers()}

    def _rows(self, name: str, params: dict[str, Any] | None = None, **choices: str) -> list[Any]:
        with self.connection() as conn:
            return conn.execute(_q(name, **choices), params or {}).fetchall()

    # ---- districts -------------------------------------------------------------------------------
    def replace_districts(self, districts: Sequence[District]) -> None:
        with self.connection() as conn, conn.cursor() as cur:  # one transaction: the old layer goes, the new comes
            cur.execute(_q("delete_unused_districts"))
            cur.executemany(_q("upsert_district"), [
                {"adcode": d.adcode, "name_zh": d.name_zh, "name_en": d.name_en, "area_km2": d.area_km2,
                 "population_2020": d.population_2020, "wkb": shapely.to_wkb(d.geometry)} for d in districts])

    def districts(self) -> list[District]:
        return [District(r[0], r[1], r[2], r[3], r[4], shapely.from_wkb(bytes(r[5]))) for r in self._rows("districts")]

    # ---- the walking network (pgRouting's edge table) -------------------------------------------------
    def save_network(self, network: Network) -> None:
        with self.connection() as conn, conn.cursor() as cur:  # one transaction: the old network stays on failure
            cur.execute(_q("delete_walk_network"))
            with cur.copy(_q("copy_walk_nodes")) as copy:
                for i, (x, y) in enumerate(zip(network.lon.tolist(), network.lat.tolist(), strict=True)):
                    copy.write_row((i, f"SRID=4326;POINT({x!r} {y!r})"))
            with cur.copy(_q("copy_walk_edges")) as copy:
                for i, (a, b, w) in enumerate(zip(network.src.tolist(), network.dst.tolist(),
                                                  network.length_m.tolist(), strict=True)):
                    copy.write_row((i, a, b, w, w))
            cur.execute(_q("insert_walk_network"), {"source": network.source, "loaded_at": dt.datetime.now(dt.UTC),
                                                    "nodes": network.nodes, "edges": network.edges})

    def load_network(self) -> Network | None:
        meta = self._rows("walk_network")
        if not meta:
            return None
        nodes = np.asarray(self._rows("walk_nodes"), dtype=float).reshape(-1, 2)
        edges = self._rows("walk_edges")
        src = np.asarray([e[0] for e in edges], dtype=np.int32)
        dst = np.asarray([e[1] for e in edges], dtype=np.int32)
        cost = np.asarray([e[2] for e in edges], dtype=float)
        return Network(nodes[:, 0].copy(), nodes[:, 1].copy(), src, dst, cost, str(meta[0][0]))

    def pgrouting_metres(self, source: int, targets: Sequence[int]) -> dict[int, float]:
        """pgRouting's shortest walk from node ``source`` to each of ``targets`` (metres; unreachable: absent)."""
        rows = self._rows("walk_cost_pgrouting", {"source": source, "targets": list(targets)})
        return {int(r[0]): float(r[1]) for r in rows}

    # ---- sites -----------------------------------------------------------------------------------
    def get_site(self, site_id: str) -> Site | None:
        rows = self._rows("get_site", {"id": site_id})
        return _row_to_site(rows[0]) if rows else None

    def sites_by_id(self, site_ids: Sequence[str]) -> list[Site]:
        return [_row_to_site(r) for r in self._rows("sites_by_id", {"ids": list(dict.fromkeys(site_ids))})]

    def all_sites(self) -> list[Site]:
        with self.connection(read_only=True):
            return [_row_to_site(r) for r in self._rows("all_sites")]

    def list_sites(self, flt: SiteFilter) -> tuple[list[Site], int]:
        params: dict[str, Any] = {
            "kinds": list(flt.kinds) or None, "district": flt.district, "open_at": flt.open_at,
            "bbox": list(flt.bbox) if flt.bbox else None, "offset": flt.offset, "limit": flt.limit,
        }
        with self.connection(read_only=True):
            rows = self._rows("list_sites", params)
            if not rows and flt.offset:  # past the end: count the matches
                probe = self._rows("list_sites", params | {"offset": 0, "limit": 1})
                return [], int(probe[0][-1]) if probe else 0
        return [_row_to_site(r) for r in rows], int(rows[0][-1]) if rows else 0

    def site_tile(self, q: tiles.TileQuery) -> bytes:
        params = {"z": q.z, "x": q.x, "y": q.y, "layer": q.layer, "kinds": list(q.kinds) or None,
                  "open_at": q.open_at, "group_always": q.groups_always, "max_points": tiles.MAX_POINTS,
                  "cell": tiles.CELL}
        # Never prepared: PostgreSQL's generic plan for it, chosen after five runs, was 3x slower (118 vs 37 ms
        # for a zoom-7 tile of Beijing); planning each tile costs far less than that.
        with self.connection(read_only=True) as conn:
            row = conn.execute(_q("site_tile"), params, prepare=False).fetchone()
        return bytes(row[0]) if row and row[0] else b""

    def count_sites(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for adcode, kind, n in self._rows("count_sites"):
            out.setdefault(adcode or "", {})[kind] = n
        return out

    def closures_for(self, site_ids: Sequence[str]) -> dict[str, list[Closure]]:
        if not site_ids:
            return {}
        out: dict[str, list[Closure]] = {}
        ids = {"ids": list(dict.fromkeys(site_ids))}
        with self.connection(read_only=True):
            for cid, sid, a, b, reason in self._rows("closures_for", ids):
                out.setdefault(sid, []).append(Closure(sid, a, b, reason, cid))
            for (sid,) in self._rows("temporarily_closed_ids", ids):
                out.setdefault(sid, []).append(status_closure(sid))
        return out

    # ---- the window and the nearest search --------------------------------------------------------
    def window(self) -> Window | None:
        return _window(self._rows("get_window"))

    def nearest_open(self, q: NearestQuery) -> list[NearestRow] | None:
        """One round trip in the common case: the window, the candidates, their closures and report counts."""
        statement = nearest_open_statement(q)
        cand = q.limit + NEAREST_MARGIN
        while True:
            with self.connection(read_only=True) as conn:
                window, rows = run_nearest_open(conn, statement, nearest_open_params(q, cand))
            if not q.answered_by(window) or (q.arrive_within_s or 0) > LONGEST_STORED_WALK_S:
                return None
            if nearest_rows_proven(rows, q.limit, cand):
                return [NearestRow(_row_to_site(r), float(r[N_SITE_COLUMNS]), _closures(r[0], r[N_SITE_COLUMNS + 3]),
                                   int(r[N_SITE_COLUMNS + 4]), _live_view(r[0], r[N_SITE_COLUMNS + 5:])) for r in rows]
            cand *= 4

    def candidates(self, q: NearestQuery, offset: int, count: int) -> list[tuple[Site, float]]:
        params = {"lon": q.lon, "lat": q.lat, "kinds": list(q.kinds) or None, "amenities": sorted(q.amenities),
                  "radius": q.radius_m(), "offset": offset, "count": count}
        return [(_row_to_site(r), float(r[N_SITE_COLUMNS])) for r in self._rows("candidates", params)]

    # ---- writes ----------------------------------------------------------------------------------
    @contextmanager
    def writer(self, mode: str = "edit") -> Iterator[SiteWriter]:
        """One transaction on one pooled connection; rows are locked with ``SELECT … FOR UPDATE`` and written
        with ``UPDATE … WHERE id = … AND version = …``. Reads made meanwhile through this store share it.

        The first statement locks ``site_open_intervals``: edits and loads in ``ROW EXCLUSIVE`` mode (they
        run side by side), a refresh in ``EXCLUSIVE`` mode, so a refresh and a save never interleave: the
        refresh waits for saves in progress, then sees them; a save that comes later waits, then reads the
        refreshed window. Readers are never blocked."""
        lock = "lock_intervals_exclusive" if mode == "refresh" else "lock_intervals_shared"
        with self.connection(bulk=mode != "edit") as conn, conn.cursor() as cur:
            cur.execute(_q(lock))
            yield _PgWriter(cur)

    def after_bulk_write(self) -> None:
        """Fresh planner statistics after bulk writes: without them the KNN + interval plan goes bad."""
        with self.connection(bulk=True) as conn:
            conn.execute(_q("analyze_sites"))
            conn.execute(_q("analyze_intervals"))


class _PgWriter(SiteWriter):
    """Write primitives on a cursor inside one PostgreSQL transaction."""

    def __init__(self, cur: psycopg.Cursor[Any]):
        self.cur = cur

    def _exec(self, name: str, params: dict[str, Any] | None = None) -> psycopg.Cursor[Any]:
        return self.cur.execute(_q(name), params or {})

    def lock_site(self, site_id: str) -> Site | None:
        row = self._exec("lock_site", {"id": site_id}).fetchone()
        return _row_to_site(row) if row else None

    def lock_sites_by_source(self, source_ids: Sequence[str]) -> dict[str, Site]:
        rows = self._exec("lock_sites_by_source", {"source_ids": list(source_ids)}).fetchall()
        return {site.source_id or "": site for site in map(_row_to_site, rows)}

    def lock_sites(self, site_ids: Sequence[str]) -> list[Site]:
        return [_row_to_site(r) for r in self._exec("lock_sites", {"ids": list(site_ids)}).fetchall()]

    def sites_by_id(self, site_ids: Sequence[str]) -> list[Site]:
        return [_row_to_site(r) for r in self._exec("sites_by_id", {"ids": list(site_ids)}).fetchall()]

    def site_versions(self) -> dict[str, int]:
        return {sid: int(v) for sid, v in self._exec("site_versions").fetchall()}

    def closures(self, site_id: str) -> list[Closure]:
        return [Closure(sid, a, b, reason, cid)
                for cid, sid, a, b, reason in self._exec("closures_of", {"id": site_id}).fetchall()]

    def save_site(self, site: Site, expected_version: int) -> Site:
        row = self._exec("save_edit", {
            "id": site.id, "expected": expected_version, "opening_hours": site.opening_hours,
            "amenities": sorted(site.amenities), "phone": site.phone, "notes": site.notes, "status": site.status,
            "name_zh": site.name_zh, "name_en": site.name_en, "verified_at": site.verified_at,
            "edited_fields": Jsonb(site.edited_fields), "hours_problem": site.hours_problem,
            "alert_hours": Jsonb(site.alert_hours) if site.alert_hours else None}).fetchone()
        if row is None:
            current = self._exec("site_version", {"id": site.id}).fetchone()
            raise VersionConflict(site.id, expected_version, current[0] if current else -1)
        return dataclasses.replace(site, version=row[0], updated_at=row[1])

    def insert_sites(self, sites: Sequence[Site]) -> None:
        if sites:
            self.cur.executemany(_q("insert_site"), [_site_params(s) for s in sites])

    def update_sites(self, sites: Sequence[Site]) -> None:
        if sites:
            self.cur.executemany(_q("update_site"), [_site_params(s) for s in sites])

    def set_edit_marks(self, sites: Sequence[Site]) -> None:
        if sites:
            self.cur.executemany(_q("set_edit_marks"), [
                {"id": s.id, "edited_fields": Jsonb(s.edited_fields)} for s in sites])

    def set_hours_problems(self, problems: dict[str, str | None]) -> None:
        if problems:
            self.cur.executemany(_q("set_hours_problem"), [
                {"id": sid, "problem": p} for sid, p in problems.items()])

    def insert_closure(self, closure: Closure) -> Closure:
        row = self._exec("insert_closure", {"site_id": closure.site_id, "start": closure.start, "end": closure.end,
                                            "reason": closure.reason}).fetchone()
        assert row is not None
        return dataclasses.replace(closure, id=row[0])

    def delete_closure(self, site_id: str, closure_id: int) -> None:
        self._exec("delete_closure", {"site_id": site_id, "id": int(closure_id)})

    def replace_intervals(self, site_ids: Sequence[str], rows: list[IntervalRow]) -> None:
        _write_intervals(self.cur, rows, site_ids)

    def replace_all_intervals(self, rows: list[IntervalRow], window: Window) -> None:
        _write_intervals(self.cur, rows, None)
        self._exec("set_meta", {"key": "window_start", "value": window[0].isoformat()})
        self._exec("set_meta", {"key": "window_end", "value": window[1].isoformat()})

    def set_window_if_missing(self, window: Window) -> None:
        for key, value in (("window_start", window[0]), ("window_end", window[1])):
            self._exec("set_meta_if_missing", {"key": key, "value": value.isoformat()})

    def append_change(self, site_id: str, actor: str, action: str, changes: dict[str, Any],
                      version: int | None) -> SiteChange:
        row = self._exec("insert_change", {"site_id": site_id, "actor": actor, "action": action,
                                           "changes": Jsonb(changes), "version": version}).fetchone()
        assert row is not None
        return SiteChange(row[0], site_id, actor, row[1], action, changes, version)
