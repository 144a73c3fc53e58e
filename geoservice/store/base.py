"""The one ``Store`` interface both backends implement, plus the logic they share.

Backends own persistence and the spatial index; this module owns what must not drift between them: how open
intervals are materialised from the hours engine, what "open when the walker arrives" means, and the
engine fallback for times outside the materialised window.
"""
from __future__ import annotations

import abc
import dataclasses
import datetime as dt
import hashlib
import logging
import threading
import time
import unicodedata
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from typing import Any

from shapely.geometry.base import BaseGeometry

from geoservice.calendar import Calendar, CalendarDay
from geoservice.errors import GeoserviceError, NotFound, Unprocessable
from geoservice.hours import TZ, HoursEngine, HoursEvaluationError, OpenState, local_day_window, now_local
from geoservice.model import AMENITIES, EDITABLE_FIELDS, ROLES, Closure, Site
from geoservice.store.reload import OPERATOR_FIELDS, ReloadConflict, field_value, jsonable, plan_reload

LOGGER = logging.getLogger(__name__)

# KNN candidates fetched beyond k before re-ranking by exact ellipsoidal distance: the index orders by
# spherical (PostGIS) or chord (embedded) distance, which can swap near-ties with the ellipsoidal order.
RERANK_MARGIN = 16
ENGINE_BATCH = 256
ANALYZE_AFTER = 500  # changed sites in one write after which the backend's planner statistics are refreshed


def site_id_for(source_id: str) -> str:
    """Stable public id derived from the source's own id, identical in every store."""
    return "s" + hashlib.sha1(source_id.encode("utf-8")).hexdigest()[:12]


def amenity_mask(amenities: Iterable[str]) -> int:
    """Bit mask of amenity codes (bit i = ``AMENITIES[i]``) for cheap filtering in both stores."""
    mask = 0
    for code in amenities:
        mask |= 1 << AMENITIES.index(code)
    return mask


@dataclasses.dataclass(frozen=True)
class District:
    """A district polygon with its census population."""

    adcode: str
    name_zh: str
    name_en: str
    area_km2: float
    population_2020: int
    geometry: BaseGeometry


@dataclasses.dataclass(frozen=True)
class NearestQuery:
    """A nearest-open request, already validated. Coordinates are WGS-84; ``at`` is timezone-aware.

    ``arrive_within_s`` caps the walking time and requires the site to stay open until the walker arrives.
    """

    lon: float
    lat: float
    at: dt.datetime
    kinds: tuple[str, ...] = ()
    amenities: tuple[str, ...] = ()
    limit: int = 5
    max_distance_m: float | None = None
    arrive_within_s: float | None = None
    open_only: bool = True
    detour_factor: float = 1.3
    walk_speed_m_per_s: float = 1.25

    def walk_seconds(self, distance_m: float) -> float:
        """Seconds on foot under the walk model."""
        return distance_m * self.detour_factor / self.walk_speed_m_per_s

    def radius_m(self) -> float | None:
        """The tightest straight-line radius implied by ``max_distance_m`` and ``arrive_within_s``."""
        radii = [r for r in (self.max_distance_m,) if r is not None]
        if self.arrive_within_s is not None:
            radii.append(self.arrive_within_s * self.walk_speed_m_per_s / self.detour_factor)
        return min(radii) if radii else None

    def latest_instant(self) -> dt.datetime:
        """The latest moment the open-check may look at (arrival of the slowest walk allowed)."""
        return self.at + dt.timedelta(seconds=self.arrive_within_s or 0)


@dataclasses.dataclass(frozen=True)
class NearestHit:
    """One result: the site, its ellipsoidal geodesic distance in metres, its state at the query time, and how
    many couriers' problem reports about it are unresolved."""

    site: Site
    distance_m: float
    state: OpenState
    unresolved_reports: int = 0


@dataclasses.dataclass(frozen=True)
class SiteFilter:
    """Listing filter; ``bbox`` is (lon_min, lat_min, lon_max, lat_max) in WGS-84."""

    bbox: tuple[float, float, float, float] | None = None
    kinds: tuple[str, ...] = ()
    district: str | None = None
    open_at: dt.datetime | None = None
    limit: int = 100
    offset: int = 0


@dataclasses.dataclass
class UpsertResult:
    """What a load did: ids inserted, updated, and left unchanged; fields kept (or, with ``overwrite_edits``,
    overwritten) because an operator edited them since the last load; sites whose hours could not be evaluated."""

    inserted: list[str] = dataclasses.field(default_factory=list)
    updated: list[str] = dataclasses.field(default_factory=list)
    unchanged: list[str] = dataclasses.field(default_factory=list)
    conflicts: list[ReloadConflict] = dataclasses.field(default_factory=list)
    hours_problems: dict[str, str] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class Materialised:
    """Open intervals ``(site_id, start, end)`` of some sites, and the sites whose hours failed (skipped)."""

    rows: list[tuple[str, dt.datetime, dt.datetime]] = dataclasses.field(default_factory=list)
    problems: dict[str, str] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class RefreshResult:
    """What a refresh wrote: the number of intervals, the window, and every site skipped with its problem."""

    intervals: int
    window: tuple[dt.datetime, dt.datetime]
    problems: dict[str, str] = dataclasses.field(default_factory=dict)


# ---- operators' side: accounts, edits, audit, reports ---------------------------------------------------
OPERATOR_NAME_MAX = 64
# ``temporarily_closed`` is applied to the hours engine as a closure covering every date it can be asked about.
OPEN_ENDED = (dt.date(2000, 1, 1), dt.date(2100, 12, 31))
STATUS_CLOSURE_REASON = "temporarily closed"


class VersionConflict(GeoserviceError):
    """The site changed since the version the client read (412); ``current`` is the stored version."""

    status = 412
    title = "Precondition failed"

    def __init__(self, site_id: str, expected: int, current: int):
        super().__init__(f"site {site_id} is at version {current}, not {expected}: it was changed meanwhile; "
                         "reload it and apply your change again",
                         [{"field": "If-Match", "reason": f"stale version {expected}; current is {current}"}])
        self.current = current


@dataclasses.dataclass(frozen=True)
class Operator:
    """A station operator (``role='operator'``: only assigned sites) or union staff (``'admin'``: all sites)."""

    id: int
    name: str
    role: str
    created_at: dt.datetime | None = None
    site_count: int = 0
    active_tokens: int = 0

    @property
    def is_admin(self) -> bool:
        """Admins see and edit every site and manage operators."""
        return self.role == "admin"


@dataclasses.dataclass(frozen=True)
class TokenInfo:
    """A token's bookkeeping; the token itself is never stored (only its SHA-256)."""

    id: int
    operator: str
    label: str
    created_at: dt.datetime
    revoked_at: dt.datetime | None = None


@dataclasses.dataclass(frozen=True)
class SiteChange:
    """One audit entry: ``changes`` is ``{field: {"before": x, "after": y}}`` (JSON values)."""

    id: int
    site_id: str
    actor: str
    at: dt.datetime
    action: str
    changes: dict[str, dict[str, Any]]
    version: int | None


@dataclasses.dataclass(frozen=True)
class Report:
    """A courier's report about a site. Nothing about the reporter is kept."""

    site_id: str
    type: str
    observed_at: dt.datetime
    amenity: str | None = None
    note: str | None = None
    lang: str | None = None
    id: int | None = None
    received_at: dt.datetime | None = None
    resolved_at: dt.datetime | None = None
    resolved_by: str | None = None
    resolution_note: str | None = None


@dataclasses.dataclass
class SiteEdit:
    """One site's pending change: field values, closures to add and to remove, a verification stamp.

    ``expected_version`` (from the client's ``If-Match``) makes the write conditional: it happens only if the
    site is still at that version when it is locked for writing.
    """

    site_id: str
    fields: dict[str, Any] = dataclasses.field(default_factory=dict)
    add_closures: list[Closure] = dataclasses.field(default_factory=list)
    remove_closures: list[int] = dataclasses.field(default_factory=list)
    verify_at: dt.datetime | None = None
    expected_version: int | None = None


@dataclasses.dataclass
class EditResult:
    """What an edit did (or, in a dry run, would do) to one site."""

    before: Site
    after: Site
    changes: dict[str, dict[str, Any]]
    closures: list[Closure]
    added: list[Closure] = dataclasses.field(default_factory=list)
    change: SiteChange | None = None


def status_closure(site_id: str) -> Closure:
    """The open-ended closure (``id`` None) that stands for ``status = temporarily_closed``.

    ``Store.closures_for`` includes it for such sites, so every caller that evaluates hours with a site's
    closures (the nearest query's engine fallback, listings outside the window, coverage analysis) treats the
    site as closed without knowing about the status.
    """
    return Closure(site_id, OPEN_ENDED[0], OPEN_ENDED[1], STATUS_CLOSURE_REASON)


def effective_closures(site: Site, closures: Sequence[Closure]) -> list[Closure]:
    """The closures the hours engine must apply: the site's own, plus the open-ended one while it is
    ``temporarily_closed`` (added once)."""
    out = list(closures)
    if site.status == "temporarily_closed" and not any(c.id is None and c.start == OPEN_ENDED[0] for c in out):
        out.append(status_closure(site.id))
    return out


def closure_json(c: Closure) -> dict[str, Any]:
    """A closure as the API and the audit trail show it (``start``/``end``: inclusive Beijing dates)."""
    return {"id": c.id, "start": c.start.isoformat(), "end": c.end.isoformat(), "reason": c.reason}


def _same_closure(a: Closure, b: Closure) -> bool:
    return (a.start, a.end, a.reason.strip()) == (b.start, b.end, b.reason.strip())


class SiteWriter(abc.ABC):
    """The write primitives one backend offers inside a single transaction (see ``Store._site_writer``).

    Every workflow that writes sites (operators' edits, loads, refreshes) is written once in :class:`Store`
    over these; a backend only says how each primitive is done in its dialect.
    """

    @abc.abstractmethod
    def lock_site(self, site_id: str) -> Site | None:
        """Read a site and lock it against other writers until the transaction ends."""

    @abc.abstractmethod
    def lock_sites_by_source(self, source_ids: Sequence[str]) -> dict[str, Site]:
        """The stored sites with these source ids, by source id, locked (in id order) until the end."""

    @abc.abstractmethod
    def sites_by_id(self, site_ids: Sequence[str]) -> list[Site]:
        """The stored sites with these ids, as seen inside the transaction."""

    @abc.abstractmethod
    def site_versions(self) -> dict[str, int]:
        """Every site's current version, by id, as seen inside the transaction."""

    @abc.abstractmethod
    def closures(self, site_id: str) -> list[Closure]:
        """The site's closures as seen inside the transaction."""

    @abc.abstractmethod
    def save_site(self, site: Site, expected_version: int) -> Site:
        """Write the editable fields, ``verified_at``, ``edited_fields`` and ``hours_problem`` if the stored
        version is ``expected_version``; bump the version and ``updated_at``. Raises :class:`VersionConflict`
        when no row matched."""

    @abc.abstractmethod
    def insert_sites(self, sites: Sequence[Site]) -> None:
        """Insert new sites (version 1)."""

    @abc.abstractmethod
    def update_sites(self, sites: Sequence[Site]) -> None:
        """Write the content fields and ``edited_fields`` of loaded sites; bump version and ``updated_at``."""

    @abc.abstractmethod
    def set_edit_marks(self, sites: Sequence[Site]) -> None:
        """Write only ``edited_fields`` (no new version: the content did not change)."""

    @abc.abstractmethod
    def set_hours_problems(self, problems: dict[str, str | None]) -> None:
        """Set (or, with None, clear) the ``hours_problem`` flag of these sites (no new version)."""

    @abc.abstractmethod
    def insert_closure(self, closure: Closure) -> Closure:
        """Insert a closure; returns it with its id."""

    @abc.abstractmethod
    def delete_closure(self, site_id: str, closure_id: int) -> None:
        """Delete one closure of the site."""

    @abc.abstractmethod
    def replace_intervals(self, site_ids: Sequence[str], rows: list[tuple[str, dt.datetime, dt.datetime]]) -> None:
        """Replace these sites' materialised open intervals with ``rows``."""

    @abc.abstractmethod
    def replace_all_intervals(self, rows: list[tuple[str, dt.datetime, dt.datetime]],
                              window: tuple[dt.datetime, dt.datetime]) -> None:
        """Replace every materialised interval and record the window they cover."""

    @abc.abstractmethod
    def set_window_if_missing(self, window: tuple[dt.datetime, dt.datetime]) -> None:
        """Record the materialised window when none is recorded yet (the first load)."""

    @abc.abstractmethod
    def append_change(self, site_id: str, actor: str, action: str, changes: dict[str, Any],
                      version: int | None) -> SiteChange:
        """Append one audit entry (never updated or deleted afterwards)."""


class Store(abc.ABC):
    """Persistence and spatial queries for sites, districts, closures and the holiday calendar."""

    backend: str = "abstract"

    def __init__(self, detour_factor: float = 1.3, walk_speed_m_per_s: float = 1.25,
                 window_days: tuple[int, int] = (1, 14)):
        self.window_days = window_days
        self._engine: HoursEngine | None = None
        self._engine_loaded_at = 0.0
        self._engine_lock = threading.Lock()
        # (read at, districts, by adcode) for cached_districts / cached_district_index
        self._districts: tuple[float, list[District], dict[str, District]] | None = None

    # ---- lifecycle -------------------------------------------------------------------------------
    @abc.abstractmethod
    def migrate(self) -> list[str]:
        """Create or upgrade the schema; returns the migrations applied."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release connections."""

    @abc.abstractmethod
    def health(self) -> dict[str, Any]:
        """Check the store answers; raises ``StoreUnavailable`` when it does not."""

    # ---- districts -------------------------------------------------------------------------------
    @abc.abstractmethod
    def replace_districts(self, districts: Sequence[District]) -> None:
        """Replace the district layer in one transaction."""

    @abc.abstractmethod
    def districts(self) -> list[District]:
        """All districts, ordered by adcode."""

    # ---- sites -----------------------------------------------------------------------------------
    def upsert_sites(self, sites: Sequence[Site], overwrite_edits: bool = False, dry_run: bool = False
                     ) -> UpsertResult:
        """Insert or update by ``source_id`` in one transaction, refreshing the changed sites' intervals.

        Fields an operator edited since the last load are kept and reported as conflicts (see
        :mod:`geoservice.store.reload`); ``overwrite_edits`` takes the file's values instead (audited as
        ``load-overwrite``). The existing sites are read and locked inside the write transaction, so an edit
        committed meanwhile is seen, never overwritten. ``dry_run`` reports the same and writes nothing.
        """
        with self._site_writer("bulk") as w:
            window = self.window() or self.default_window()
            plan = plan_reload(sites, w.lock_sites_by_source([s.source_id or "" for s in sites]), overwrite_edits)
            updated = [site for site, _, _ in plan.updates]
            changed = plan.inserts + updated
            mat = self.materialise(changed, self.closures_for([s.id for s in updated]), window)
            for site in changed:
                site.hours_problem = mat.problems.get(site.id)
            if not dry_run:
                w.insert_sites(plan.inserts)
                w.update_sites(updated)
                w.set_edit_marks(plan.marks_cleared)
                for site, changes, action in plan.updates:
                    w.append_change(site.id, "load", action, changes, site.version + 1)
                w.replace_intervals([s.id for s in changed], mat.rows)
                w.set_window_if_missing(window)
        if not dry_run and len(changed) >= ANALYZE_AFTER:
            self._after_bulk_write()
        return UpsertResult(inserted=[s.id for s in plan.inserts], updated=[s.id for s in updated],
                            unchanged=plan.unchanged + [s.id for s in plan.marks_cleared], conflicts=plan.conflicts,
                            hours_problems=mat.problems)

    def _after_bulk_write(self) -> None:  # noqa: B027 - an optional hook, not an abstract method
        """Hook after large writes (PostGIS refreshes planner statistics)."""

    @abc.abstractmethod
    def get_site(self, site_id: str) -> Site | None:
        """One site by public id."""

    @abc.abstractmethod
    def list_sites(self, flt: SiteFilter) -> tuple[list[Site], int]:
        """A page of sites ordered by id, and the total number matching."""

    @abc.abstractmethod
    def count_sites(self) -> dict[str, dict[str, int]]:
        """Counts per district adcode and kind: ``{adcode: {kind: n}}``."""

    # ---- closures and calendar -------------------------------------------------------------------
    def add_closure(self, closure: Closure) -> Closure:
        """Record a closure and refresh that site's intervals in the same transaction (audited as ``system``).

        Raises ``KeyError`` for an unknown site.
        """
        if self.get_site(closure.site_id) is None:
            raise KeyError(closure.site_id)
        result = self.add_site_closure(closure, actor="system")
        return result.added[0]

    @abc.abstractmethod
    def closures_for(self, site_ids: Sequence[str]) -> dict[str, list[Closure]]:
        """Closures per site id (only ids that have some), including :func:`status_closure` for a site whose
        status is ``temporarily_closed``."""

    @abc.abstractmethod
    def load_calendar_year(self, year: int, days: Sequence[CalendarDay], source: str) -> None:
        """Replace one year's official schedule and re-materialise every site's intervals."""

    @abc.abstractmethod
    def calendar(self) -> Calendar:
        """The loaded official schedule."""

    # ---- open intervals --------------------------------------------------------------------------
    def refresh_intervals(self, window: tuple[dt.datetime, dt.datetime] | None = None) -> RefreshResult:
        """Re-materialise all sites' open intervals for ``window`` (default: the rolling window).

        The expensive part (evaluating every site's hours) runs outside the write transaction; inside it,
        every site whose version changed meanwhile (an operator's save, a load) is read and evaluated again,
        so the refresh never puts back a state older than what is stored. A site whose hours cannot be
        evaluated is skipped, flagged (``hours_problem``) and reported; the rest goes on.
        """
        self._invalidate_engine()
        window = window or self.default_window()
        sites = self._all_sites()
        mat = self.materialise(sites, self.closures_for([s.id for s in sites]), window)
        seen = {s.id: s.version for s in sites}
        flags = {s.id: s.hours_problem for s in sites}
        with self._site_writer("refresh") as w:
            now = w.site_versions()
            stale = [sid for sid, version in now.items() if seen.get(sid) != version]
            rows = [r for r in mat.rows if r[0] in now and r[0] not in set(stale)]
            problems = {sid: p for sid, p in mat.problems.items() if sid in now and sid not in set(stale)}
            if stale:
                again = w.sites_by_id(stale)
                fresh = self.materialise(again, self.closures_for(stale), window)
                rows.extend(fresh.rows)
                problems.update(fresh.problems)
                flags.update({s.id: s.hours_problem for s in again})
            w.replace_all_intervals(rows, window)
            w.set_hours_problems({sid: problems.get(sid) for sid in now if flags.get(sid) != problems.get(sid)})
        self._after_bulk_write()
        for sid, problem in problems.items():
            LOGGER.warning("site %s skipped by the refresh: %s", sid, problem)
        return RefreshResult(len(rows), window, problems)

    @abc.abstractmethod
    def _all_sites(self) -> list[Site]:
        """Every site (outside any transaction)."""

    @abc.abstractmethod
    def window(self) -> tuple[dt.datetime, dt.datetime] | None:
        """The materialised window, or None before the first refresh."""

    # ---- the nearest query -----------------------------------------------------------------------
    @abc.abstractmethod
    def _nearest_materialised(self, q: NearestQuery) -> list[tuple[Site, float]]:
        """Nearest sites passing every filter, using the materialised intervals for the open check."""

    @abc.abstractmethod
    def _candidates(self, q: NearestQuery, offset: int, count: int) -> list[tuple[Site, float]]:
        """Sites by ascending exact distance passing kind/amenity/radius filters only (no hours)."""

    # ---- operators and tokens --------------------------------------------------------------------
    @abc.abstractmethod
    def create_operator(self, name: str, role: str = "operator") -> Operator:
        """Create an account; ``Conflict`` when the name is taken."""

    @abc.abstractmethod
    def get_operator(self, name: str) -> Operator | None:
        """One account by name."""

    @abc.abstractmethod
    def list_operators(self) -> list[Operator]:
        """Every account with its site and active-token counts, by name."""

    @abc.abstractmethod
    def assign_sites(self, name: str, site_ids: Sequence[str]) -> int:
        """Give an operator these sites (all or none: ``NotFound`` names unknown ids); returns how many were new."""

    @abc.abstractmethod
    def unassign_sites(self, name: str, site_ids: Sequence[str]) -> int:
        """Take sites away from an operator; returns how many were removed."""

    @abc.abstractmethod
    def owned_site_ids(self, operator: Operator, site_ids: Sequence[str]) -> set[str]:
        """Which of ``site_ids`` exist and are the operator's (an admin's: every existing site)."""

    @abc.abstractmethod
    def list_operator_sites(self, operator: Operator, limit: int = 100, offset: int = 0) -> tuple[list[Site], int]:
        """A page of the operator's sites by id (an admin's: every site), and their total."""

    @abc.abstractmethod
    def add_token(self, name: str, token_sha256: str, label: str = "") -> TokenInfo:
        """Record a new token's hash for an operator."""

    @abc.abstractmethod
    def list_tokens(self, name: str) -> list[TokenInfo]:
        """An operator's tokens (active and revoked), newest first."""

    @abc.abstractmethod
    def revoke_tokens(self, name: str, token_ids: Sequence[int] | None = None) -> int:
        """Revoke some (or, with None, all) of an operator's active tokens; returns how many."""

    @abc.abstractmethod
    def operator_for_token(self, token_sha256: str) -> Operator | None:
        """The account of an active (not revoked) token, by the token's hash."""

    # ---- audit -----------------------------------------------------------------------------------
    @abc.abstractmethod
    def site_history(self, site_id: str, limit: int = 50, offset: int = 0) -> tuple[list[SiteChange], int]:
        """A site's changes, newest first, and their total."""

    @abc.abstractmethod
    def recent_changes(self, limit: int = 50, offset: int = 0) -> tuple[list[SiteChange], int]:
        """Changes across the network, newest first, and their total."""

    # ---- couriers' reports -----------------------------------------------------------------------
    @abc.abstractmethod
    def add_report(self, report: Report) -> Report:
        """Store a report; returns it with id and received time."""

    @abc.abstractmethod
    def get_report(self, report_id: int) -> Report | None:
        """One report by id."""

    @abc.abstractmethod
    def list_reports(self, operator: Operator, include_resolved: bool = False, limit: int = 50,
                     offset: int = 0) -> tuple[list[Report], int]:
        """Reports on the operator's sites (an admin's: all), newest first, and their total."""

    @abc.abstractmethod
    def resolve_report(self, report_id: int, actor: str, note: str | None = None) -> Report:
        """Mark a report resolved (``NotFound`` if unknown, ``Conflict`` if already resolved)."""

    @abc.abstractmethod
    def unresolved_report_counts(self, site_ids: Sequence[str]) -> dict[str, int]:
        """Open reports per site id (only ids that have some)."""

    # ---- site edits (shared logic over the backend's SiteWriter) --------------------------------
    @abc.abstractmethod
    def _site_writer(self, mode: str = "edit") -> AbstractContextManager[SiteWriter]:
        """One write transaction; commits on success, rolls back on any exception.

        ``mode`` is ``edit`` (operators' edits), ``bulk`` (loads: no statement timeout) or ``refresh`` (replaces
        every interval: excludes other site writers until it commits, readers go on). Reads made through the
        store meanwhile in the same thread (window, closures, calendar) share the transaction.
        """

    def apply_edits(self, edits: Sequence[SiteEdit], actor: str, action: str = "update",
                    dry_run: bool = False) -> list[EditResult]:
        """Apply edits to several sites in ONE transaction: all or nothing.

        Each site is locked, its version checked against ``expected_version`` (412 on a mismatch), changed,
        its open intervals re-materialised and the change appended to the audit trail, all before the commit,
        so the public nearest query sees the change as soon as this returns. A ``dry_run`` computes the same
        results and writes nothing. An edit that changes nothing writes nothing (no new version, no audit).
        """
        ids = [e.site_id for e in edits]
        if len(set(ids)) != len(ids):
            raise ValueError("one edit per site")
        ordered = sorted(edits, key=lambda e: e.site_id)  # a fixed lock order: concurrent bulks cannot deadlock
        with self._site_writer() as writer:
            window = self.window() or self.default_window()  # inside: a refresh may have just moved it
            results = {e.site_id: self._apply_edit(writer, e, actor, action, window, dry_run) for e in ordered}
        return [results[i] for i in ids]

    def _apply_edit(self, w: SiteWriter, e: SiteEdit, actor: str, action: str,
                    window: tuple[dt.datetime, dt.datetime], dry_run: bool) -> EditResult:
        site = w.lock_site(e.site_id)
        if site is None:
            raise NotFound(f"no site with id {e.site_id!r}")
        if e.expected_version is not None and site.version != e.expected_version:
            raise VersionConflict(site.id, e.expected_version, site.version)
        closures = w.closures(site.id)
        changes: dict[str, dict[str, Any]] = {}
        updates: dict[str, Any] = {}
        marks = dict(site.edited_fields)
        stamp = {"by": actor, "at": utc_now().isoformat(timespec="seconds")}
        for name, value in e.fields.items():
            if name not in EDITABLE_FIELDS:
                raise ValueError(f"{name} is not an editable field")
            if name == "amenities":
                value = sorted(dict.fromkeys(value or []))
            if field_value(site, name) != (value or None if isinstance(value, str) else value):
                changes[name] = {"before": jsonable(field_value(site, name)), "after": jsonable(value)}
                updates[name] = value
                if name in OPERATOR_FIELDS:
                    marks[name] = stamp  # a reload keeps it (geoservice.store.reload)
        if marks != site.edited_fields:
            updates["edited_fields"] = marks
        if e.verify_at is not None:
            changes["verified_at"] = {"before": jsonable(site.verified_at), "after": jsonable(e.verify_at)}
            updates["verified_at"] = e.verify_at
        by_id = {c.id: c for c in closures}
        for cid in e.remove_closures:
            if cid not in by_id:
                raise NotFound(f"site {site.id} has no closure {cid}")
        kept = [c for c in closures if c.id not in set(e.remove_closures)]
        # Idempotent by content: a closure equal to one the site keeps (a retried request) is not added twice.
        new_closures: list[Closure] = []
        for c in e.add_closures:
            if not any(_same_closure(c, k) for k in kept + new_closures):
                new_closures.append(c)
        after = dataclasses.replace(site, **updates)
        if not changes and not new_closures and not e.remove_closures:
            return EditResult(site, site, {}, closures)
        if dry_run:
            added = list(new_closures)
            final = kept + added
        else:
            mat = self.materialise([after], {site.id: kept + new_closures}, window)
            after.hours_problem = mat.problems.get(site.id)
            after = w.save_site(after, site.version)
            added = [w.insert_closure(dataclasses.replace(c, site_id=site.id)) for c in new_closures]
            for cid in e.remove_closures:
                w.delete_closure(site.id, cid)
            final = kept + added
            w.replace_intervals([site.id], mat.rows)
        if new_closures or e.remove_closures:
            changes["closures"] = {"before": [closure_json(c) for c in closures],
                                   "after": [closure_json(c) for c in final]}
        change = None if dry_run else w.append_change(site.id, actor, action, changes, after.version)
        return EditResult(site, after, changes, final, added, change)

    def update_site(self, site_id: str, fields: dict[str, Any], actor: str,
                    expected_version: int | None = None) -> EditResult:
        """Change editable fields (already validated) of one site; see :meth:`apply_edits`."""
        return self.apply_edits([SiteEdit(site_id, fields=dict(fields), expected_version=expected_version)],
                                actor, "update")[0]

    def add_site_closure(self, closure: Closure, actor: str, expected_version: int | None = None) -> EditResult:
        """Add a closure to a site (dates already validated); the new closure is ``result.added[0]``."""
        return self.apply_edits([SiteEdit(closure.site_id, add_closures=[closure],
                                          expected_version=expected_version)], actor, "add_closure")[0]

    def delete_site_closure(self, site_id: str, closure_id: int, actor: str,
                            expected_version: int | None = None) -> EditResult:
        """Remove one closure of a site."""
        return self.apply_edits([SiteEdit(site_id, remove_closures=[closure_id],
                                          expected_version=expected_version)], actor, "delete_closure")[0]

    def verify_site(self, site_id: str, actor: str, expected_version: int | None = None,
                    at: dt.datetime | None = None) -> EditResult:
        """Stamp ``verified_at`` (the operator confirms the record is current)."""
        return self.apply_edits([SiteEdit(site_id, verify_at=at or utc_now(), expected_version=expected_version)],
                                actor, "verify")[0]

    @staticmethod
    def check_operator_name(name: str, role: str = "operator") -> str:
        """The account name as stored: NFC, trimmed, 1–64 characters of any script (a bank branch is
        ``某银行东城支行``), no control or invisible formatting characters (they would spoof or break logs and
        the audit trail). Raises ``Unprocessable`` naming the problem."""
        text = unicodedata.normalize("NFC", name or "").strip()
        if not 1 <= len(text) <= OPERATOR_NAME_MAX:
            raise Unprocessable(f"operator name must be 1-{OPERATOR_NAME_MAX} characters",
                                [{"field": "name", "reason": f"must be 1-{OPERATOR_NAME_MAX} characters"}])
        bad = [ch for ch in text if unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp")
               or (ch.isspace() and ch != " ")]
        if bad:
            reason = f"contains a control or invisible character (U+{ord(bad[0]):04X})"
            raise Unprocessable(f"operator name {reason}", [{"field": "name", "reason": reason}])
        if role not in ROLES:
            raise Unprocessable(f"role must be one of {', '.join(ROLES)}",
                                [{"field": "role", "reason": f"must be one of {', '.join(ROLES)}"}])
        return text

    # ---- shared behaviour ------------------------------------------------------------------------
    @property
    def engine(self) -> HoursEngine:
        """The hours engine over the stored calendar (re-read at most once a minute)."""
        with self._engine_lock:
            if self._engine is None or time.monotonic() - self._engine_loaded_at > 60:
                self._engine = HoursEngine(self.calendar())
                self._engine_loaded_at = time.monotonic()
            return self._engine

    def cached_districts(self) -> list[District]:
        """``districts()``, re-read at most once a minute (and at once after this process replaces them):
        responses name each site's district, and the boundaries are ~800 KB to read and parse."""
        return self._cached_districts()[1]

    def cached_district_index(self) -> dict[str, District]:
        """:meth:`cached_districts` by adcode (shared and read-only: do not modify)."""
        return self._cached_districts()[2]

    def _cached_districts(self) -> tuple[float, list[District], dict[str, District]]:
        cached = self._districts
        if cached is None or time.monotonic() - cached[0] > 60:
            districts = self.districts()
            cached = (time.monotonic(), districts, {d.adcode: d for d in districts})
            self._districts = cached
        return cached

    def _invalidate_districts(self) -> None:
        self._districts = None

    def _invalidate_engine(self) -> None:
        with self._engine_lock:
            self._engine = None

    def default_window(self, today: dt.date | None = None) -> tuple[dt.datetime, dt.datetime]:
        """The rolling window around ``today`` (Asia/Shanghai)."""
        before, after = self.window_days
        return local_day_window(today or now_local().date(), before, after)

    def materialise(self, sites: Iterable[Site], closures: dict[str, list[Closure]],
                    window: tuple[dt.datetime, dt.datetime]) -> Materialised:
        """Open intervals of ``sites`` within ``window`` from the hours engine; a site whose hours cannot be
        evaluated gets none (closed) and is listed in ``problems``: one bad record never stops the rest."""
        engine = self.engine
        out = Materialised()
        for site in sites:
            if site.status == "temporarily_closed":
                continue  # an open-ended closure: no open interval at all
            try:
                spans = engine.intervals(site.opening_hours, window[0], window[1], closures.get(site.id, ()))
            except HoursEvaluationError as exc:
                out.problems[site.id] = str(exc)
                continue
            out.rows.extend((site.id, a, b) for a, b in spans)
        return out

    def window_is_stale(self) -> bool:
        """True when the rolling window no longer starts where today's would."""
        current = self.window()
        return current is None or current[0] != self.default_window()[0]

    def _in_window(self, q: NearestQuery) -> bool:
        return window_covers(self.window(), q)

    def _open_for_walker(self, state: OpenState, q: NearestQuery, distance_m: float) -> bool:
        if not state.is_open:
            return False
        if q.arrive_within_s is None:
            return True
        arrival = q.at + dt.timedelta(seconds=q.walk_seconds(distance_m))
        return state.open_until is None or arrival < state.open_until

    def nearest(self, q: NearestQuery) -> list[NearestHit]:
        """Nearest sites to ``q`` ordered by distance, each with its open state at ``q.at``."""
        if not q.open_only:
            pairs = self._candidates(q, 0, q.limit)
        elif self._in_window(q):
            pairs = self._nearest_materialised(q)
        else:
            pairs = self._nearest_by_engine(q)
        ids = [s.id for s, _ in pairs]
        closures, reports = self.closures_for(ids), self.unresolved_report_counts(ids)
        engine = self.engine
        return [NearestHit(s, d, engine.state(s.opening_hours, q.at, effective_closures(s, closures.get(s.id, ()))),
                           reports.get(s.id, 0))
                for s, d in pairs]

    def site_state(self, site: Site, at: dt.datetime) -> OpenState:
        """Open state of one site at ``at``, its closures and its status applied."""
        closures = self.closures_for([site.id]).get(site.id, [])
        return self.engine.state(site.opening_hours, at, effective_closures(site, closures))

    def _nearest_by_engine(self, q: NearestQuery) -> list[tuple[Site, float]]:
        """Outside the materialised window: walk candidates by distance and ask the engine directly."""
        engine = self.engine
        found: list[tuple[Site, float]] = []
        offset = 0
        while len(found) < q.limit:
            batch = self._candidates(q, offset, ENGINE_BATCH)
            if not batch:
                break
            closures = self.closures_for([s.id for s, _ in batch])
            for site, dist in batch:
                state = engine.state(site.opening_hours, q.at, effective_closures(site, closures.get(site.id, ())))
                if self._open_for_walker(state, q, dist):
                    found.append((site, dist))
                    if len(found) == q.limit:
                        break
            offset += len(batch)
        return found


def window_covers(window: tuple[dt.datetime, dt.datetime] | None, q: NearestQuery) -> bool:
    """True when the materialised ``window`` answers ``q``: from ``q.at`` to the slowest arrival it allows."""
    return window is not None and window[0] <= q.at and q.latest_instant() < window[1]


def utc_now() -> dt.datetime:
    """Aware current time (UTC) for ``updated_at`` stamps."""
    return dt.datetime.now(dt.UTC)


def as_local(t: dt.datetime) -> dt.datetime:
    """Aware datetime in Asia/Shanghai."""
    return t.astimezone(TZ)
