"""The production store: PostgreSQL + PostGIS through psycopg 3 and a connection pool.

Spatial work stays in the database: KNN ``<->`` on a GiST-indexed ``geography(Point, 4326)`` with the
open-interval check inside the index scan, ``ST_DWithin`` on geography for radii, ``ST_Distance`` (ellipsoid)
on the handful of rows returned. All SQL is in ``sql/postgis/*.sql`` with bound parameters.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
import shapely
from psycopg.conninfo import conninfo_to_dict
from psycopg.types.json import Jsonb
from psycopg.types.range import Range
from psycopg_pool import ConnectionPool, PoolClosed, PoolTimeout

from geoservice.calendar import Calendar, CalendarDay
from geoservice.errors import Conflict, NotFound, StoreUnavailable
from geoservice.hours import TZ
from geoservice.model import Closure, Site
from geoservice.store import sql as sqlfiles
from geoservice.store.base import (
    District,
    NearestHit,
    NearestQuery,
    Operator,
    Report,
    SiteChange,
    SiteFilter,
    SiteWriter,
    Store,
    TokenInfo,
    VersionConflict,
    effective_closures,
    status_closure,
    window_covers,
)

LOGGER = logging.getLogger(__name__)
MIGRATION_LOCK_KEY = 0x6E05E7
IDLE_CHECK_S = 2.0  # pooled connections idle longer than this are pinged before use
CONNECT_TIMEOUT_S = 2  # libpq connect_timeout unless the URL sets one: a silent host must not hang the pool
TCP_USER_TIMEOUT_MS = 10_000  # sent data unacknowledged this long (host or network gone): the connection is dead
PROBE_TIMEOUT_S = 1.0  # how long the breaker's probe waits for the pool
PROBE_BACKOFF_S = (0.5, 1.0, 2.0)  # pauses between probes while the database is down (the last one repeats)


# Shared fragments a named statement can include as ``{name}``.
FRAGMENTS = ("site_columns", "change_columns", "report_columns", "operator_select", "closures_column",
             "unresolved_column")
N_SITE_COLUMNS = 21  # columns of {site_columns}; a query's extra columns follow them
# KNN candidates examined beyond k: enough that the exact re-ranking almost never has to ask again (measured:
# bench/bench_scale.py counts the repeats), few enough that the index scan stops early.
NEAREST_MARGIN = 5


def _q(name: str, **choices: str) -> str:
    """Named statement ``name`` with its shared fragments, and ``{placeholder}`` → fragment ``choices[...]``."""
    queries = sqlfiles.queries("postgis")
    text = queries[name]
    for fragment in FRAGMENTS:
        text = text.replace("{" + fragment + "}", queries[fragment])
    for placeholder, fragment in choices.items():
        text = text.replace("{" + placeholder + "}", queries[fragment])
    return text


def nearest_open_statement(q: NearestQuery) -> str:
    """The ``nearest_open`` variant for ``q``: a single kind and a radius become index conditions, and the
    arrival check is there only when asked for (so the planner estimates each variant on its own)."""
    return _q("nearest_open", kind_condition="kind_is" if len(q.kinds) == 1 else "kind_any_of",
              radius_condition="within_radius" if q.radius_m() is not None else "anywhere",
              arrival_condition="open_on_arrival" if q.arrive_within_s is not None else "anywhere")


def run_nearest_open(conn: psycopg.Connection, statement: str, params: dict[str, Any]
                     ) -> tuple[tuple[dt.datetime, dt.datetime] | None, list[Any]]:
    """The materialised window and the rows of a :func:`nearest_open_statement`, in one round trip."""
    with conn.pipeline():
        window = conn.execute(_q("get_window"))
        cur = conn.execute(statement, params)
    return _window(window.fetchall()), cur.fetchall()


def nearest_rows_proven(rows: Sequence[Sequence[Any]], limit: int, cand: int) -> bool:
    """True when :func:`nearest_open_statement` rows for ``cand`` candidates are the final answer: fewer
    candidates came back than asked for (every eligible site was examined), or the ``limit``-th exact distance
    is safely below the farthest KNN (sphere) distance examined — sphere and ellipsoid disagree by < 0.6 %, so
    no unexamined site can be nearer."""
    if not rows or rows[0][N_SITE_COLUMNS + 2] < cand:
        return True
    return len(rows) >= limit and float(rows[limit - 1][N_SITE_COLUMNS]) <= float(rows[0][N_SITE_COLUMNS + 1]) * 0.994


def _window(rows: Sequence[Sequence[Any]]) -> tuple[dt.datetime, dt.datetime] | None:
    values: dict[str, str] = {str(k): str(v) for k, v in rows}
    if "window_start" not in values or "window_end" not in values:
        return None
    return (dt.datetime.fromisoformat(values["window_start"]).astimezone(TZ),
            dt.datetime.fromisoformat(values["window_end"]).astimezone(TZ))


def nearest_open_params(q: NearestQuery, cand: int) -> dict[str, Any]:
    """Bound parameters of :func:`nearest_open_statement` for ``q``, examining ``cand`` KNN candidates."""
    return {"lon": q.lon, "lat": q.lat, "at": q.at, "amenities": sorted(q.amenities), "radius": q.radius_m(),
            "kind": q.kinds[0] if len(q.kinds) == 1 else None, "kinds": list(q.kinds) or None,
            "detour": q.detour_factor, "speed": q.walk_speed_m_per_s,
            "cand": cand, "limit": q.limit}


def _row_to_site(row: Sequence[Any]) -> Site:
    (sid, source_id, kind, name_zh, name_en, address, adcode, lon, lat, hours, amenities, operator, phone, notes,
     simulated, updated_at, verified_at, version, status, edited_fields, hours_problem) = row[:N_SITE_COLUMNS]
    return Site(
        id=sid, source_id=source_id, kind=kind, name_zh=name_zh, name_en=name_en, address=address,
        district_adcode=adcode, lon=lon, lat=lat, opening_hours=hours, amenities=list(amenities), operator=operator,
        phone=phone, notes=notes, simulated=simulated, updated_at=updated_at, verified_at=verified_at,
        version=version, status=status, edited_fields=dict(edited_fields or {}), hours_problem=hours_problem,
    )


def _closures(site_id: str, items: Sequence[Sequence[Any]]) -> list[Closure]:
    """Closures from the ``closures_column`` fragment's JSON."""
    return [Closure(site_id, dt.date.fromisoformat(a), dt.date.fromisoformat(b), reason, cid)
            for cid, a, b, reason in items]


def _row_to_change(row: Sequence[Any]) -> SiteChange:
    cid, site_id, actor, at, action, changes, version = row[:7]
    return SiteChange(cid, site_id, actor, at, action, changes, version)


def _row_to_report(row: Sequence[Any]) -> Report:
    (rid, site_id, rtype, amenity, note, lang, observed_at, received_at, resolved_at, resolved_by,
     resolution_note) = row[:11]
    return Report(site_id=site_id, type=rtype, observed_at=observed_at, amenity=amenity, note=note, lang=lang,
                  id=rid, received_at=received_at, resolved_at=resolved_at, resolved_by=resolved_by,
                  resolution_note=resolution_note)


def _row_to_operator(row: Sequence[Any]) -> Operator:
    oid, name, role, created_at, sites, tokens = row[:6]
    return Operator(oid, name, role, created_at, sites, tokens)


def _site_params(site: Site) -> dict[str, Any]:
    return {
        "id": site.id, "source_id": site.source_id, "kind": site.kind, "name_zh": site.name_zh,
        "name_en": site.name_en, "address": site.address, "district_adcode": site.district_adcode,
        "lon": site.lon, "lat": site.lat, "opening_hours": site.opening_hours,
        "amenities": sorted(site.amenities),
        "operator": site.operator, "phone": site.phone, "notes": site.notes, "simulated": site.simulated,
        "verified_at": site.verified_at, "edited_fields": Jsonb(site.edited_fields),
        "hours_problem": site.hours_problem,
    }


class Breaker:
    """Circuit breaker in front of the pool: after the pool could not hand out a working connection in time,
    every request fails at once (``StoreUnavailable``, 503) instead of each waiting for the pool in turn, and
    threads never pile up behind a dead database. One background probe at a time checks whether the database is
    back (``probe`` is called after each pause of ``backoff``); the first success closes the breaker.
    """

    def __init__(self, probe: Callable[[], None], backoff: Sequence[float] = PROBE_BACKOFF_S):
        self._probe = probe
        self._backoff = tuple(backoff)
        self._lock = threading.Lock()
        self._down_since: float | None = None  # monotonic time the breaker opened; None while closed
        self._reason = ""
        self._prober: threading.Thread | None = None
        self._stopped = threading.Event()

    def check(self) -> None:
        """Raise ``StoreUnavailable`` at once while the database is known to be down."""
        since = self._down_since
        if since is not None:
            raise StoreUnavailable(f"the database is not reachable (for {time.monotonic() - since:.0f} s); "
                                   "try again shortly")

    def state(self) -> dict[str, Any]:
        """``{"state": "up"}`` or ``{"state": "down", "down_for_s": …, "reason": …}``, without any I/O."""
        since = self._down_since
        if since is None:
            return {"state": "up"}
        return {"state": "down", "down_for_s": round(time.monotonic() - since, 1), "reason": self._reason}

    def trip(self, reason: str) -> None:
        """Open the breaker (if it is not already) and make sure one probe is running."""
        with self._lock:
            if self._stopped.is_set():
                return
            if self._down_since is None:
                self._down_since = time.monotonic()
                LOGGER.warning("PostGIS down, failing fast until it answers again: %s", reason)
            self._reason = reason
            if self._prober is None:
                self._prober = threading.Thread(target=self._probe_loop, name="postgis-probe", daemon=True)
                self._prober.start()

    def _probe_loop(self) -> None:
        attempt = 0
        while not self._stopped.wait(self._backoff[min(attempt, len(self._backoff) - 1)]):
            attempt += 1
            try:
                self._probe()
            except Exception as exc:  # noqa: BLE001 - any failure means "still down"
                self._reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                continue
            with self._lock:
                down_for = time.monotonic() - (self._down_since or time.monotonic())
                self._down_since = None
                self._prober = None  # under the lock: a trip() from now on starts a new probe
            LOGGER.warning("PostGIS answers again after %.1f s", down_for)
            return
        with self._lock:
            self._prober = None

    def stop(self) -> None:
        """No more probes (the store is closing)."""
        self._stopped.set()


class PostgisStore(Store):
    """Store over a PostGIS database named by a libpq URL."""

    backend = "postgis"

    def __init__(self, url: str, min_size: int = 1, max_size: int = 8, timeout: float = 1.0,
                 statement_timeout_ms: int = 5000, **kwargs: Any):
        """``timeout``: how long a request waits for a pooled connection. A pool with at least as many
        connections as the worker has threads hands one out at once, so a wait means the database cannot be
        reached: keep it short (it bounds the first requests of an outage; the breaker answers the rest)."""
        super().__init__(**kwargs)
        self.url = url
        self.timeout = timeout
        self._in_use = 0  # connections handed out by _conn (pool exhaustion is not an outage)
        self._in_use_lock = threading.Lock()

        def configure(conn: psycopg.Connection) -> None:
            conn.execute(f"SET statement_timeout = {int(statement_timeout_ms)}")
            conn.execute("SET TIME ZONE 'Asia/Shanghai'")
            conn.commit()

        returned: dict[int, float] = {}  # id(connection) -> when it last went back to the pool

        def reset(conn: psycopg.Connection) -> None:
            returned[id(conn)] = time.monotonic()

        def check(conn: psycopg.Connection) -> None:
            # A connection that was idle may have been cut (server restart, network): ping it before a request
            # gets it. One in steady use was just proven alive; pinging it too would add a round trip to every
            # request. If it broke meanwhile the request fails with 503 and the pool drops it.
            if time.monotonic() - returned.get(id(conn), 0.0) > IDLE_CHECK_S:
                ConnectionPool.check_connection(conn)

        given = conninfo_to_dict(url)
        libpq = {k: v for k, v in (("connect_timeout", CONNECT_TIMEOUT_S),
                                   ("tcp_user_timeout", TCP_USER_TIMEOUT_MS)) if k not in given}
        # reconnect_timeout: the pool's own background retries give up after a few seconds; while the database
        # is down the breaker's probe asks the pool for a connection, which starts a fresh attempt at once, so
        # recovery is not left waiting for the pool's next (exponentially delayed) retry.
        self.pool = ConnectionPool(url, min_size=min_size, max_size=max_size, timeout=timeout, open=False,
                                   kwargs=libpq, configure=configure, reset=reset, check=check,
                                   reconnect_timeout=5)
        self.breaker = Breaker(self._probe)
        self.pool.open(wait=False)
        self._local = threading.local()

    def _probe(self) -> None:
        """The breaker's probe: a pooled connection that answers ``SELECT 1``."""
        with self.pool.connection(timeout=PROBE_TIMEOUT_S) as conn:
            conn.execute("SELECT 1")

    @contextmanager
    def _conn(self, bulk: bool = False, read_only: bool = False) -> Iterator[psycopg.Connection]:
        """A pooled connection in a transaction; connection failures become ``StoreUnavailable``.

        ``bulk`` lifts the per-request statement timeout for admin writes (loads, refreshes). ``read_only``
        runs each statement in its own implicit transaction (autocommit) instead: for reads that need no
        snapshot across statements it saves the COMMIT round trip (bench/README.md, "Before / after").
        """
        current = getattr(self._local, "conn", None)
        if current is not None and not bulk:
            yield current  # nested use within one request shares its connection and transaction
            return
        self.breaker.check()  # known to be down: fail now, do not wait for the pool
        try:
            with self.pool.connection(timeout=self.timeout) as conn:
                conn.autocommit = read_only  # connections come back from the pool idle, so this is free
                if bulk:
                    conn.execute("SET LOCAL statement_timeout = 0")
                self._local.conn = conn
                with self._in_use_lock:
                    self._in_use += 1
                try:
                    yield conn
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
        except (PoolClosed, psycopg.OperationalError) as exc:
            # A connection that broke under this request (server gone or restarted): this request fails, the pool
            # drops the connection, and the next request gets another one, or times out and trips the breaker.
            LOGGER.warning("PostGIS unavailable: %s", exc)
            raise StoreUnavailable("the database is not reachable; try again shortly") from exc

    def close(self) -> None:
        self.breaker.stop()
        self.pool.close()

    def migrate(self) -> list[str]:
        applied: list[str] = []
        with self._conn(bulk=True) as conn:
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK_KEY,))
            conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations"
                         " (version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz DEFAULT now())")
            done = {r[0] for r in conn.execute("SELECT version FROM schema_migrations")}
            for version, name, script in sqlfiles.migrations("postgis"):
                if version in done:
                    continue
                conn.execute(script)  # type: ignore[arg-type]  # trusted file shipped with the package
                conn.execute("INSERT INTO schema_migrations (version, name) VALUES (%s, %s)", (version, name))
                applied.append(name)
        return applied

    def health(self) -> dict[str, Any]:
        """Counts sites through the pool; while the breaker is open, raises at once (no waiting on the pool)."""
        with self._conn() as conn:
            n = conn.execute("SELECT count(*) FROM sites").fetchone()
            postgis = conn.execute("SELECT postgis_lib_version()").fetchone()
        stats = self.pool.get_stats()
        return {"backend": self.backend, "sites": n[0] if n else 0, "postgis": postgis[0] if postgis else None,
                "store": self.breaker.state(),
                "pool": {"size": stats.get("pool_size", 0), "available": stats.get("pool_available", 0),
                         "max": self.pool.max_size}}

    # ---- districts -------------------------------------------------------------------------------
    def replace_districts(self, districts: Sequence[District]) -> None:
        self._invalidate_districts()
        with self._conn() as conn, conn.cursor() as cur:
            cur.executemany(_q("upsert_district"), [
                {"adcode": d.adcode, "name_zh": d.name_zh, "name_en": d.name_en, "area_km2": d.area_km2,
                 "population_2020": d.population_2020, "wkb": shapely.to_wkb(d.geometry)} for d in districts])
        self._invalidate_districts()  # again once committed: a reader meanwhile may have cached the old ones

    def districts(self) -> list[District]:
        with self._conn() as conn:
            rows = conn.execute(_q("districts")).fetchall()
        return [District(r[0], r[1], r[2], r[3], r[4], shapely.from_wkb(bytes(r[5]))) for r in rows]

    # ---- sites -----------------------------------------------------------------------------------
    def _all_sites(self) -> list[Site]:
        with self._conn(read_only=True) as conn:
            return [_row_to_site(r) for r in conn.execute(_q("all_sites"))]

    def _after_bulk_write(self) -> None:
        """Fresh planner statistics after bulk writes: without them the KNN + interval plan goes bad."""
        with self._conn(bulk=True) as conn:
            conn.execute("ANALYZE sites")
            conn.execute("ANALYZE site_open_intervals")

    @staticmethod
    def _copy_intervals(cur: psycopg.Cursor, rows: list[tuple[str, dt.datetime, dt.datetime]]) -> None:
        with cur.copy("COPY site_open_intervals (site_id, during) FROM STDIN") as copy:
            for sid, a, b in rows:
                copy.write_row((sid, Range(a, b, "[)")))

    def get_site(self, site_id: str) -> Site | None:
        with self._conn() as conn:
            row = conn.execute(_q("get_site"), {"id": site_id}).fetchone()
        return _row_to_site(row) if row else None

    def list_sites(self, flt: SiteFilter) -> tuple[list[Site], int]:
        params: dict[str, Any] = {
            "kinds": list(flt.kinds) or None, "district": flt.district,
            "bbox": list(flt.bbox) if flt.bbox else None, "offset": flt.offset, "limit": flt.limit,
        }
        current = self.window() if flt.open_at is not None else None
        in_window = flt.open_at is None or (current is not None and current[0] <= flt.open_at < current[1])
        if in_window:
            params["open_at"] = flt.open_at
            with self._conn() as conn:
                rows = conn.execute(_q("list_sites"), params).fetchall()
            if not rows and flt.offset:
                params.update(offset=0, limit=1)
                with self._conn() as conn:
                    probe = conn.execute(_q("list_sites"), params).fetchall()
                return [], int(probe[0][-1]) if probe else 0
            return [_row_to_site(r) for r in rows], int(rows[0][-1]) if rows else 0
        # Outside the window: evaluate the engine over the filtered ids, then fetch the page.
        with self._conn() as conn:
            id_hours = conn.execute(_q("list_site_ids_hours"), params).fetchall()
        closures = self.closures_for([r[0] for r in id_hours])
        engine = self.engine
        assert flt.open_at is not None
        open_ids = [sid for sid, hours, status in id_hours
                    if status != "temporarily_closed" and engine.is_open(hours, flt.open_at, closures.get(sid, ()))]
        page_ids = open_ids[flt.offset:flt.offset + flt.limit]
        page = [s for s in (self.get_site(i) for i in page_ids) if s is not None]
        return page, len(open_ids)

    def count_sites(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        with self._conn() as conn:
            for adcode, kind, n in conn.execute(_q("count_sites")):
                out.setdefault(adcode or "", {})[kind] = n
        return out

    # ---- closures and calendar -------------------------------------------------------------------
    def closures_for(self, site_ids: Sequence[str]) -> dict[str, list[Closure]]:
        if not site_ids:
            return {}
        out: dict[str, list[Closure]] = {}
        with self._conn() as conn:
            for cid, sid, a, b, reason in conn.execute(_q("closures_for"), {"ids": list(site_ids)}):
                out.setdefault(sid, []).append(Closure(sid, a, b, reason, cid))
            for (sid,) in conn.execute(_q("temporarily_closed_ids"), {"ids": list(site_ids)}):
                out.setdefault(sid, []).append(status_closure(sid))
        return out

    def load_calendar_year(self, year: int, days: Sequence[CalendarDay], source: str) -> None:
        with self._conn(bulk=True) as conn, conn.cursor() as cur:
            cur.execute("DELETE FROM calendar_days WHERE day >= %s AND day < %s",
                        (dt.date(year, 1, 1), dt.date(year + 1, 1, 1)))
            cur.executemany("INSERT INTO calendar_days (day, type, name_en, name_zh) VALUES (%s, %s, %s, %s)",
                            [(d.day, d.type, d.name_en, d.name_zh) for d in days])
            cur.execute("INSERT INTO calendar_years (year, source) VALUES (%s, %s) ON CONFLICT (year)"
                        " DO UPDATE SET source = EXCLUDED.source, loaded_at = now()", (year, source))
        self._invalidate_engine()

    def calendar(self) -> Calendar:
        with self._conn() as conn:
            years = [r[0] for r in conn.execute(_q("calendar_years"))]
            days = [CalendarDay(*r) for r in conn.execute(_q("calendar_days"))]
        return Calendar.from_days(years, days)

    # ---- intervals -------------------------------------------------------------------------------
    def window(self) -> tuple[dt.datetime, dt.datetime] | None:
        with self._conn() as conn:
            return _window(conn.execute(_q("get_window")).fetchall())

    # ---- nearest ---------------------------------------------------------------------------------
    def nearest(self, q: NearestQuery) -> list[NearestHit]:
        """As the base class, on one pooled connection; the common case (open at a time inside the window) is
        one round trip: window, candidates and their closures together."""
        with self._conn(read_only=True):
            found = self._nearest_open_in_window(q) if q.open_only else None
            if found is None:
                return super().nearest(q)
            engine = self.engine
            return [NearestHit(site, d, engine.state(site.opening_hours, q.at, effective_closures(site, closures)),
                               reports)
                    for site, d, closures, reports in found]

    def _params(self, q: NearestQuery) -> dict[str, Any]:
        return {"lon": q.lon, "lat": q.lat, "kinds": list(q.kinds) or None, "amenities": sorted(q.amenities),
                "radius": q.radius_m()}

    def _nearest_open_in_window(self, q: NearestQuery) -> list[tuple[Site, float, list[Closure], int]] | None:
        """Nearest open sites with their closures and unresolved report counts from the materialised intervals;
        None if ``q`` falls outside the window (the caller then asks the engine)."""
        statement = nearest_open_statement(q)
        cand = q.limit + NEAREST_MARGIN
        while True:
            with self._conn() as conn:
                window, rows = run_nearest_open(conn, statement, nearest_open_params(q, cand))
            if not window_covers(window, q):
                return None
            if nearest_rows_proven(rows, q.limit, cand):
                return [(_row_to_site(r), float(r[N_SITE_COLUMNS]), _closures(r[0], r[N_SITE_COLUMNS + 3]),
                         int(r[N_SITE_COLUMNS + 4])) for r in rows]
            cand *= 4

    def _nearest_materialised(self, q: NearestQuery) -> list[tuple[Site, float]]:
        found = self._nearest_open_in_window(q)
        if found is None:  # the window moved since the caller looked (a refresh in between)
            return self._nearest_by_engine(q)
        return [(site, d) for site, d, _, _ in found]

    def _candidates(self, q: NearestQuery, offset: int, count: int) -> list[tuple[Site, float]]:
        params = self._params(q) | {"offset": offset, "count": count}
        with self._conn() as conn:
            rows = conn.execute(_q("candidates"), params).fetchall()
        return [(_row_to_site(r), float(r[N_SITE_COLUMNS])) for r in rows]

    # ---- operators and tokens --------------------------------------------------------------------
    def create_operator(self, name: str, role: str = "operator") -> Operator:
        name = self.check_operator_name(name, role)
        with self._conn() as conn:
            row = conn.execute(_q("insert_operator"), {"name": name, "role": role}).fetchone()
        if row is None:
            raise Conflict(f"an operator named {name!r} already exists")
        operator = self.get_operator(name)
        assert operator is not None
        return operator

    def get_operator(self, name: str) -> Operator | None:
        with self._conn() as conn:
            row = conn.execute(_q("operator_by_name"), {"name": name}).fetchone()
        return _row_to_operator(row) if row else None

    def list_operators(self) -> list[Operator]:
        with self._conn() as conn:
            return [_row_to_operator(r) for r in conn.execute(_q("all_operators"))]

    def _operator_id(self, name: str) -> int:
        operator = self.get_operator(name)
        if operator is None:
            raise NotFound(f"no operator named {name!r}")
        return operator.id

    def assign_sites(self, name: str, site_ids: Sequence[str]) -> int:
        oid = self._operator_id(name)
        ids = list(dict.fromkeys(site_ids))
        with self._conn() as conn, conn.cursor() as cur:
            known = {r[0] for r in cur.execute(_q("existing_site_ids"), {"ids": ids})}
            unknown = [i for i in ids if i not in known]
            if unknown:
                raise NotFound(f"no site with id {', '.join(unknown)}")
            cur.execute(_q("assign_sites"), {"operator_id": oid, "ids": ids})
            return cur.rowcount

    def unassign_sites(self, name: str, site_ids: Sequence[str]) -> int:
        oid = self._operator_id(name)
        with self._conn() as conn, conn.cursor() as cur:
            cur.execute(_q("unassign_sites"), {"operator_id": oid, "ids": list(dict.fromkeys(site_ids))})
            return cur.rowcount

    def owned_site_ids(self, operator: Operator, site_ids: Sequence[str]) -> set[str]:
        ids = list(dict.fromkeys(site_ids))
        with self._conn() as conn:
            if operator.is_admin:
                return {r[0] for r in conn.execute(_q("existing_site_ids"), {"ids": ids})}
            return {r[0] for r in conn.execute(_q("owned_site_ids"), {"operator_id": operator.id, "ids": ids})}

    def list_operator_sites(self, operator: Operator, limit: int = 100, offset: int = 0) -> tuple[list[Site], int]:
        params = {"all": operator.is_admin, "operator_id": operator.id, "limit": limit, "offset": offset}
        with self._conn() as conn:
            rows = conn.execute(_q("operator_sites"), params).fetchall()
            if rows:
                return [_row_to_site(r) for r in rows], int(rows[0][-1])
            total = conn.execute(_q("operator_sites_count"), params).fetchone()
        return [], int(total[0]) if total else 0

    def add_token(self, name: str, token_sha256: str, label: str = "") -> TokenInfo:
        oid = self._operator_id(name)
        with self._conn() as conn:
            row = conn.execute(_q("insert_token"), {"operator_id": oid, "hash": token_sha256,
                                                    "label": label}).fetchone()
        assert row is not None
        return TokenInfo(row[0], name, label, row[1])

    def list_tokens(self, name: str) -> list[TokenInfo]:
        oid = self._operator_id(name)
        with self._conn() as conn:
            return [TokenInfo(r[0], name, r[1], r[2], r[3])
                    for r in conn.execute(_q("list_tokens"), {"operator_id": oid})]

    def revoke_tokens(self, name: str, token_ids: Sequence[int] | None = None) -> int:
        oid = self._operator_id(name)
        ids = None if token_ids is None else [int(i) for i in token_ids]
        with self._conn() as conn, conn.cursor() as cur:
            cur.execute(_q("revoke_tokens"), {"operator_id": oid, "ids": ids})
            return cur.rowcount

    def operator_for_token(self, token_sha256: str) -> Operator | None:
        with self._conn() as conn:
            row = conn.execute(_q("operator_by_token"), {"hash": token_sha256}).fetchone()
        return _row_to_operator(row) if row else None

    # ---- audit -----------------------------------------------------------------------------------
    def site_history(self, site_id: str, limit: int = 50, offset: int = 0) -> tuple[list[SiteChange], int]:
        params = {"site_id": site_id, "limit": limit, "offset": offset}
        with self._conn() as conn:
            rows = conn.execute(_q("site_history"), params).fetchall()
            if rows:
                return [_row_to_change(r) for r in rows], int(rows[0][-1])
            total = conn.execute(_q("site_history_count"), params).fetchone()
        return [], int(total[0]) if total else 0

    def recent_changes(self, limit: int = 50, offset: int = 0) -> tuple[list[SiteChange], int]:
        with self._conn() as conn:
            rows = conn.execute(_q("recent_changes"), {"limit": limit, "offset": offset}).fetchall()
            if rows:
                return [_row_to_change(r) for r in rows], int(rows[0][-1])
            total = conn.execute(_q("changes_count")).fetchone()
        return [], int(total[0]) if total else 0

    # ---- couriers' reports -----------------------------------------------------------------------
    def add_report(self, report: Report) -> Report:
        with self._conn() as conn:
            row = conn.execute(_q("insert_report"), {
                "site_id": report.site_id, "type": report.type, "amenity": report.amenity, "note": report.note,
                "lang": report.lang, "observed_at": report.observed_at}).fetchone()
        assert row is not None
        return _row_to_report(row)

    def get_report(self, report_id: int) -> Report | None:
        with self._conn() as conn:
            row = conn.execute(_q("get_report"), {"id": int(report_id)}).fetchone()
        return _row_to_report(row) if row else None

    def list_reports(self, operator: Operator, include_resolved: bool = False, limit: int = 50,
                     offset: int = 0) -> tuple[list[Report], int]:
        params = {"all": operator.is_admin, "operator_id": operator.id, "include_resolved": include_resolved,
                  "limit": limit, "offset": offset}
        with self._conn() as conn:
            rows = conn.execute(_q("list_reports"), params).fetchall()
            if rows:
                return [_row_to_report(r) for r in rows], int(rows[0][-1])
            total = conn.execute(_q("count_reports"), params).fetchone()
        return [], int(total[0]) if total else 0

    def resolve_report(self, report_id: int, actor: str, note: str | None = None) -> Report:
        with self._conn() as conn:
            row = conn.execute(_q("resolve_report"), {"id": int(report_id), "actor": actor, "note": note}).fetchone()
        if row is None:
            if self.get_report(report_id) is None:
                raise NotFound(f"no report {report_id}")
            raise Conflict(f"report {report_id} is already resolved")
        return _row_to_report(row)

    def unresolved_report_counts(self, site_ids: Sequence[str]) -> dict[str, int]:
        if not site_ids:
            return {}
        with self._conn() as conn:
            return {sid: int(n) for sid, n in conn.execute(_q("unresolved_report_counts"),
                                                           {"ids": list(dict.fromkeys(site_ids))})}

    # ---- site edits ------------------------------------------------------------------------------
    @contextmanager
    def _site_writer(self, mode: str = "edit") -> Iterator[SiteWriter]:
        """One transaction on one pooled connection; rows are locked with ``SELECT … FOR UPDATE`` and written
        with ``UPDATE … WHERE id = … AND version = …``. Reads made meanwhile through ``_conn`` (calendar,
        window) share the transaction.

        The first statement locks ``site_open_intervals``: edits and loads in ``ROW EXCLUSIVE`` mode (they
        run side by side), a refresh in ``EXCLUSIVE`` mode, so a refresh and a save never interleave: the
        refresh waits for saves in progress, then sees them; a save that comes later waits, then reads the
        refreshed window. Readers are never blocked."""
        lock = "lock_intervals_exclusive" if mode == "refresh" else "lock_intervals_shared"
        with self._conn(bulk=mode != "edit") as conn, conn.cursor() as cur:
            cur.execute(_q(lock))
            yield _PgWriter(cur)


class _PgWriter(SiteWriter):
    """Write primitives on a cursor inside one PostgreSQL transaction."""

    def __init__(self, cur: psycopg.Cursor):
        self.cur = cur

    def lock_site(self, site_id: str) -> Site | None:
        row = self.cur.execute(_q("lock_site"), {"id": site_id}).fetchone()
        return _row_to_site(row) if row else None

    def lock_sites_by_source(self, source_ids: Sequence[str]) -> dict[str, Site]:
        rows = self.cur.execute(_q("lock_sites_by_source"), {"source_ids": list(source_ids)}).fetchall()
        return {site.source_id or "": site for site in map(_row_to_site, rows)}

    def sites_by_id(self, site_ids: Sequence[str]) -> list[Site]:
        return [_row_to_site(r) for r in self.cur.execute(_q("sites_by_id"), {"ids": list(site_ids)}).fetchall()]

    def site_versions(self) -> dict[str, int]:
        return {sid: int(v) for sid, v in self.cur.execute(_q("site_versions")).fetchall()}

    def closures(self, site_id: str) -> list[Closure]:
        return [Closure(sid, a, b, reason, cid)
                for cid, sid, a, b, reason in self.cur.execute(_q("closures_of"), {"id": site_id}).fetchall()]

    def save_site(self, site: Site, expected_version: int) -> Site:
        row = self.cur.execute(_q("save_edit"), {
            "id": site.id, "expected": expected_version, "opening_hours": site.opening_hours,
            "amenities": sorted(site.amenities), "phone": site.phone, "notes": site.notes, "status": site.status,
            "name_zh": site.name_zh, "name_en": site.name_en, "verified_at": site.verified_at,
            "edited_fields": Jsonb(site.edited_fields), "hours_problem": site.hours_problem}).fetchone()
        if row is None:
            current = self.cur.execute(_q("site_version"), {"id": site.id}).fetchone()
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
            self.cur.executemany(_q("set_edit_marks"), [{"id": s.id, "edited_fields": Jsonb(s.edited_fields)}
                                                        for s in sites])

    def set_hours_problems(self, problems: dict[str, str | None]) -> None:
        if problems:
            self.cur.executemany(_q("set_hours_problem"), [{"id": sid, "problem": p} for sid, p in problems.items()])

    def insert_closure(self, closure: Closure) -> Closure:
        row = self.cur.execute(_q("insert_closure"), {"site_id": closure.site_id, "start": closure.start,
                                                      "end": closure.end, "reason": closure.reason}).fetchone()
        assert row is not None
        return dataclasses.replace(closure, id=row[0])

    def delete_closure(self, site_id: str, closure_id: int) -> None:
        self.cur.execute(_q("delete_closure"), {"site_id": site_id, "id": int(closure_id)})

    def replace_intervals(self, site_ids: Sequence[str], rows: list[tuple[str, dt.datetime, dt.datetime]]) -> None:
        if site_ids:
            self.cur.execute(_q("delete_intervals_for"), {"ids": list(site_ids)})
        PostgisStore._copy_intervals(self.cur, rows)

    def replace_all_intervals(self, rows: list[tuple[str, dt.datetime, dt.datetime]],
                              window: tuple[dt.datetime, dt.datetime]) -> None:
        self.cur.execute("DELETE FROM site_open_intervals")
        PostgisStore._copy_intervals(self.cur, rows)
        self.cur.execute(_q("set_meta"), {"key": "window_start", "value": window[0].isoformat()})
        self.cur.execute(_q("set_meta"), {"key": "window_end", "value": window[1].isoformat()})

    def set_window_if_missing(self, window: tuple[dt.datetime, dt.datetime]) -> None:
        for key, value in (("window_start", window[0]), ("window_end", window[1])):
            self.cur.execute(_q("set_meta_if_missing"), {"key": key, "value": value.isoformat()})

    def append_change(self, site_id: str, actor: str, action: str, changes: dict[str, Any],
                      version: int | None) -> SiteChange:
        row = self.cur.execute(_q("insert_change"), {"site_id": site_id, "actor": actor, "action": action,
                                                     "changes": Jsonb(changes), "version": version}).fetchone()
        assert row is not None
        return SiteChange(row[0], site_id, actor, row[1], action, changes, version)
