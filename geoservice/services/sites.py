"""The site workflows, written once over a backend's :class:`~geoservice.store.spatial.SpatialStore`.

* **Edits** (:meth:`SiteService.apply_edits`): lock, check the version the client read (412 on a mismatch),
  change, re-materialise the site's open intervals and append the audit entry in one transaction, so the
  public nearest query sees the change as soon as the call returns.
* **Loads** (:meth:`SiteService.upsert_sites`): insert or update by source id, keeping what operators edited
  since the last load (:mod:`geoservice.services.reload`).
* **Refreshes** (:meth:`SiteService.refresh_intervals`): the rolling window of materialised open intervals,
  never putting back a state older than what is stored, skipping (and flagging) a site whose hours fail.
* **The change feed** (:mod:`geoservice.services.feed`): loads, edits, refreshes that flag hours and live-status
  posts append their public changes in their own transaction (:meth:`SiteService._publish`).
* **Nearest** (:meth:`SiteService.nearest`): the materialised intervals inside the window, the hours engine
  outside it, one state per answer; listings likewise. When nothing matches, :meth:`SiteService.alternatives`
  says what a courier can do instead: the matching site nearby that opens soonest, the nearest open one of any kind.

The hours engine is built from the stored calendar and re-read at most once a minute.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from geoservice.calendar import CalendarDay
from geoservice.errors import NotFound, VersionConflict
from geoservice.hours import HoursEngine, HoursEvaluationError, Interval, local_day_window, now_local, utc_now
from geoservice.model import (
    ALTERNATIVE_CANDIDATES,
    ALTERNATIVE_RADIUS_M,
    EDITABLE_FIELDS,
    Alert,
    Alternatives,
    Closure,
    District,
    EditResult,
    NearestHit,
    NearestQuery,
    OpenState,
    Operator,
    RefreshResult,
    Site,
    SiteEdit,
    SiteFilter,
    UpsertResult,
    effective_closures,
)
from geoservice.serialize import closure as closure_json
from geoservice.serialize import feed_feature
from geoservice.services.alerts import merged_intervals, site_spans, site_state
from geoservice.services.live import LiveService, is_full, ranking_m
from geoservice.services.reload import OPERATOR_FIELDS, field_value, jsonable, plan_reload
from geoservice.store.relational import Accounts, Alerts, Calendars, Feed, LiveStatuses, Reports
from geoservice.store.spatial import IntervalRow, SiteWriter, SpatialStore, Window

LOGGER = logging.getLogger(__name__)

ENGINE_BATCH = 256  # candidates asked for at a time when the engine decides who is open (outside the window)
ANALYZE_AFTER = 500  # changed sites in one write after which the backend refreshes its planner statistics
CACHE_S = 60.0  # how long the hours engine (calendar) and the districts are reused before being read again
ALL = 100_000_000  # "no limit" for listings filtered by the engine
# When nothing matches (SiteService.alternatives), "open now, any kind" outside the materialised window lets the
# engine examine at most this many candidates (the bounds of "opens soonest" are the model's, as the API says them).
ALTERNATIVE_ENGINE_BUDGET = 8 * ENGINE_BATCH
# A full site gives its place to non-full sites up to FULL_TOLERANCE_M farther: the nearest search looks at
# most this many results beyond the limit to find them.
FULL_LOOKAHEAD_MAX = 64
# With a walking network, nearest measures this many straight-line candidates per result on the network (at most
# NETWORK_CANDIDATES_MAX): a site much farther in a straight line than the limit-th is rarely nearer on foot.
NETWORK_CANDIDATES = 4
NETWORK_CANDIDATES_MAX = 200


@dataclasses.dataclass
class Materialised:
    """Open intervals of some sites, and the sites whose hours failed (skipped, i.e. closed)."""

    rows: list[IntervalRow] = dataclasses.field(default_factory=list)
    problems: dict[str, str] = dataclasses.field(default_factory=dict)


def _same_closure(a: Closure, b: Closure) -> bool:
    return (a.start, a.end, a.reason.strip()) == (b.start, b.end, b.reason.strip())


class SiteService:
    """Every workflow on sites over one spatial store and the calendar and report repositories."""

    def __init__(self, spatial: SpatialStore, calendars: Calendars, reports: Reports, accounts: Accounts,
                 window_days: tuple[int, int] = (1, 14), live: LiveService | None = None):
        self.spatial = spatial
        self.calendars = calendars
        self.reports = reports
        self.accounts = accounts
        self.live = live or LiveService(LiveStatuses(spatial.database), reports)
        self.feed = Feed(spatial.database)
        self.alerts = Alerts(spatial.database)
        self.live.on_change = self._live_changed  # a post or clear appends its feed entry in its transaction
        self.window_days = window_days
        self._engine: tuple[float, HoursEngine] | None = None
        self._engine_lock = threading.Lock()
        self._districts: tuple[float, list[District], dict[str, District]] | None = None

    # ---- the hours engine and the districts (cached) -----------------------------------------------
    @property
    def engine(self) -> HoursEngine:
        """The hours engine over the stored calendar (re-read at most once a minute)."""
        with self._engine_lock:
            if self._engine is None or time.monotonic() - self._engine[0] > CACHE_S:
                self._engine = (time.monotonic(), HoursEngine(self.calendars.calendar()))
            return self._engine[1]

    def calendar_changed(self) -> None:
        """Forget the cached engine (the calendar was just loaded here)."""
        with self._engine_lock:
            self._engine = None

    def load_calendar(self, year: int, days: Sequence[CalendarDay], source: str) -> None:
        """Load or replace one year's official schedule; answers use it at once (call
        :meth:`refresh_intervals` to re-materialise the window with it)."""
        self.calendars.load_year(year, days, source)
        self.calendar_changed()

    def districts(self) -> list[District]:
        """The districts, re-read at most once a minute (answers name each site's district; the boundaries
        are ~800 KB to read and parse)."""
        return self._cached_districts()[1]

    def district_index(self) -> dict[str, District]:
        """:meth:`districts` by adcode (shared and read-only: do not modify)."""
        return self._cached_districts()[2]

    def _cached_districts(self) -> tuple[float, list[District], dict[str, District]]:
        cached = self._districts
        if cached is None or time.monotonic() - cached[0] > CACHE_S:
            districts = self.spatial.districts()
            cached = (time.monotonic(), districts, {d.adcode: d for d in districts})
            self._districts = cached
        return cached

    def replace_districts(self, districts: Sequence[District]) -> None:
        """Replace the district layer (this process sees the new one at once)."""
        self.spatial.replace_districts(districts)
        self._districts = None

    # ---- the change feed ---------------------------------------------------------------------------
    def _publish(self, changes: Sequence[tuple[str, str]], at: dt.datetime,
                 read: Callable[[Sequence[str]], list[Site]]) -> None:
        """Append feed entries ``(site id, kind)`` in the current write transaction, each with the site's
        resulting public feature as ``read`` (inside the transaction) gives it. Call after the transaction's
        other writes and locks: the feed's head lock must be the last one taken (:mod:`geoservice.services.feed`).
        """
        def render(ids: list[str]) -> dict[str, dict[str, Any] | None]:
            sites = read(ids)
            closures = self.spatial.closures_for(ids)
            live = self.live.in_force(ids, at)
            districts = self.district_index()
            return {s.id: feed_feature(s, districts.get(s.district_adcode or ""), closures.get(s.id, []),
                                       live.get(s.id)) for s in sites}

        self.feed.append(changes, at, render)

    def _live_changed(self, site_id: str, at: dt.datetime) -> None:
        """A live status was posted or cleared (inside its transaction): its feed entry."""
        self._publish([(site_id, "live_status")], at, self.spatial.sites_by_id)

    # ---- reads -------------------------------------------------------------------------------------
    def get_site(self, site_id: str) -> Site | None:
        """One site by id."""
        return self.spatial.get_site(site_id)

    def closures_for(self, site_ids: Sequence[str]) -> dict[str, list[Closure]]:
        """Closures per site id (with the open-ended one standing for ``temporarily_closed``)."""
        return self.spatial.closures_for(site_ids)

    def count_sites(self) -> dict[str, dict[str, int]]:
        """Sites per district and kind."""
        return self.spatial.count_sites()

    def window(self) -> Window | None:
        """The materialised window."""
        return self.spatial.window()

    def default_window(self, today: dt.date | None = None) -> Window:
        """The rolling window around ``today`` (Asia/Shanghai)."""
        before, after = self.window_days
        return local_day_window(today or now_local().date(), before, after)

    def window_is_stale(self) -> bool:
        """True when the rolling window no longer starts where today's would."""
        current = self.spatial.window()
        return current is None or current[0] != self.default_window()[0]

    def state(self, site: Site, at: dt.datetime, closures: Sequence[Closure] | None = None) -> OpenState:
        """Open state of one site at ``at``, its closures and status applied (never raises for bad hours)."""
        if closures is None:
            closures = self.spatial.closures_for([site.id]).get(site.id, [])
        return self.site_state(site, at, closures)

    def alerts_in_force(self, at: dt.datetime) -> list[Alert]:
        """The weather alerts in force at ``at``."""
        return [a for a in self.alerts.overlapping(at, at + dt.timedelta(seconds=1)) if a.start <= at < a.end]

    def alerts_around(self, at: dt.datetime) -> list[Alert]:
        """The weather alerts that can change an open state asked at ``at`` (in force in the engine's look-ahead)."""
        return self.alerts.overlapping(at - dt.timedelta(days=1), at + dt.timedelta(days=8))

    def alerts_for(self, sites: Sequence[Site], at: dt.datetime) -> list[Alert]:
        """:meth:`alerts_around`, asked only when one of ``sites`` has alert hours: alerts change no other
        site's state (most answers need not ask)."""
        return self.alerts_around(at) if any(s.alert_hours for s in sites) else []

    def site_state(self, site: Site, at: dt.datetime, closures: Sequence[Closure],
                   alerts: Sequence[Alert] | None = None) -> OpenState:
        """Open state of ``site`` at ``at`` with its closures, status and alert hours applied, and why it is open."""
        if alerts is None:
            alerts = self.alerts_for([site], at)
        return site_state(self.engine, site, at, effective_closures(site, list(closures)), alerts)

    def list_sites(self, flt: SiteFilter) -> tuple[list[Site], int]:
        """A page of matching sites by id and the total; ``open_at`` outside the window asks the engine."""
        window = self.spatial.window() if flt.open_at is not None else None
        if flt.open_at is None or (window is not None and window[0] <= flt.open_at < window[1]):
            return self.spatial.list_sites(flt)
        assert flt.open_at is not None
        everything, _ = self.spatial.list_sites(dataclasses.replace(flt, open_at=None, limit=ALL, offset=0))
        closures = self.spatial.closures_for([s.id for s in everything])
        alerts = self.alerts_for(everything, flt.open_at)
        closed_now = self._closed_now([s.id for s in everything], flt.open_at)
        open_sites = [s for s in everything if s.id not in closed_now
                      and self.site_state(s, flt.open_at, closures.get(s.id, []), alerts).is_open]
        return open_sites[flt.offset:flt.offset + flt.limit], len(open_sites)

    def operator_sites(self, operator: Operator, limit: int = 100, offset: int = 0) -> tuple[list[Site], int]:
        """A page of the operator's sites by id (an admin's: every site), and their total."""
        ids, total = self.accounts.site_ids_page(operator, limit, offset)
        return self.spatial.sites_by_id(ids), total

    # ---- nearest -----------------------------------------------------------------------------------
    def _closed_now(self, site_ids: Sequence[str], at: dt.datetime) -> set[str]:
        """Which of these sites have the live status ``closed_now`` in force at ``at``."""
        return {sid for sid, s in self.live.in_force(site_ids, at).items() if s.state == "closed_now"}

    def nearest(self, q: NearestQuery) -> list[NearestHit]:
        """Nearest sites to ``q`` by distance, each with its open state at ``q.at``, its open report count and its
        live view; a site whose live status is ``full`` ranks as if it were ``FULL_TOLERANCE_M`` farther.

        Open-only queries inside the materialised window are answered by the backend's interval search (one
        round trip on PostGIS), which leaves out sites ``closed_now``; outside it the hours engine decides,
        walking candidates by distance.
        """
        if q.walk.routes_by_network:
            return self._nearest_by_network(q)
        with self.spatial.database.reading():  # one pooled connection for the answer and its live views
            hits = self._nearest(q)
            fetch = q.limit
            while True:
                ranked = self.live.rank(hits)[:q.limit]
                if (not any(is_full(h) for h in ranked) or len(hits) < fetch
                        or fetch >= q.limit + FULL_LOOKAHEAD_MAX):
                    return ranked
                # Every site not fetched is at least as far as the farthest fetched: once the last place's ranking
                # distance is no farther than that, no unfetched site can take it.
                if ranking_m(ranked[-1]) <= max(h.distance_m for h in hits):
                    return ranked
                fetch = min(2 * fetch + 8, q.limit + FULL_LOOKAHEAD_MAX)
                hits = self._nearest(dataclasses.replace(q, limit=fetch))

    def _nearest_by_network(self, q: NearestQuery) -> list[NearestHit]:
        """:meth:`nearest` with a walking network: the :data:`NETWORK_CANDIDATES` × limit nearest candidates by
        straight line (found under the straight-line lower bound, so every site the network reaches in time is
        among them), measured on the network, filtered by ``arrive_within`` and "open when I arrive" on network
        time, ranked by walked metres. A site (or the start) off the network keeps its straight-line walk."""
        walk = q.walk
        wide = dataclasses.replace(q, limit=min(q.limit * NETWORK_CANDIDATES, NETWORK_CANDIDATES_MAX),
                                   walk=walk.lower_bound())
        hits = self._nearest(wide)
        routes = walk.route_m(q.lon, q.lat, [(h.site.lon, h.site.lat) for h in hits])
        kept: list[NearestHit] = []
        for hit, metres, reason in zip(hits, routes.metres, routes.reasons, strict=True):
            if metres is None:
                hit = dataclasses.replace(hit, route_m=hit.distance_m * walk.detour_factor,
                                          walk_model="straight_line", walk_reason=reason)
            else:
                hit = dataclasses.replace(hit, route_m=metres, walk_model="network")
            assert hit.route_m is not None
            seconds = hit.route_m / walk.speed_m_per_s
            if q.arrive_within_s is not None:
                if seconds > q.arrive_within_s:
                    continue
                until = hit.state.open_until
                if q.open_only and until is not None and q.at + dt.timedelta(seconds=seconds) >= until:
                    continue
            kept.append(hit)
        return self.live.rank(kept)[:q.limit]

    def _nearest(self, q: NearestQuery, engine_budget: int | None = None) -> list[NearestHit]:
        """:meth:`nearest` before ranking, each hit with its live view; outside the window the engine examines at
        most ``engine_budget`` candidates."""
        with self.spatial.database.reading():  # one pooled connection for the whole answer
            rows = self.spatial.nearest_open(q) if q.open_only else None
            if rows is not None:
                found = [(r.site, r.distance_m, r.closures, r.unresolved_reports) for r in rows]
                live = {r.site.id: r.live for r in rows if r.live is not None}
            else:
                pairs = (self.spatial.candidates(q, 0, q.limit) if not q.open_only
                         else self._open_by_engine(q, engine_budget))
                found = [(s, d, None, None) for s, d in pairs]
                live = {}
            missing_closures = [s.id for s, _, c, _ in found if c is None]
            closures = self.spatial.closures_for(missing_closures) if missing_closures else {}
            missing_reports = [s.id for s, _, _, n in found if n is None]
            reports = self.reports.unresolved_counts(missing_reports) if missing_reports else {}
            alerts = self.alerts_for([s for s, _, _, _ in found], q.at)
            hits = [NearestHit(s, d, self.site_state(s, q.at, c if c is not None else closures.get(s.id, []),
                                                     alerts), n if n is not None else reports.get(s.id, 0))
                    for s, d, c, n in found]
            return self.live.annotate(hits, q.at, live)

    def _open_for_walker(self, state: OpenState, q: NearestQuery, distance_m: float) -> bool:
        if not state.is_open:
            return False
        if q.arrive_within_s is None:
            return True
        arrival = q.at + dt.timedelta(seconds=q.walk_seconds(distance_m))
        return state.open_until is None or arrival < state.open_until

    def _open_by_engine(self, q: NearestQuery, budget: int | None = None) -> list[tuple[Site, float]]:
        """Outside the materialised window: walk candidates by distance and ask the engine directly (at most
        ``budget`` candidates when given)."""
        alerts = self.alerts_around(q.at)
        found: list[tuple[Site, float]] = []
        offset = 0
        while len(found) < q.limit and (budget is None or offset < budget):
            count = ENGINE_BATCH if budget is None else min(ENGINE_BATCH, budget - offset)
            batch = self.spatial.candidates(q, offset, count)
            if not batch:
                break
            closures = self.spatial.closures_for([s.id for s, _ in batch])
            closed_now = self._closed_now([s.id for s, _ in batch], q.at)
            for site, dist in batch:
                if site.id in closed_now:
                    continue
                state = self.site_state(site, q.at, closures.get(site.id, []), alerts)
                if self._open_for_walker(state, q, dist):
                    found.append((site, dist))
                    if len(found) == q.limit:
                        break
            offset += len(batch)
        return found

    def nearest_with_alternatives(self, q: NearestQuery) -> tuple[list[NearestHit], Alternatives | None]:
        """:meth:`nearest`, and when it finds nothing, :meth:`alternatives` (None when there are results)."""
        hits = self.nearest(q)
        if hits:
            return hits, None
        return hits, self.alternatives(q)

    def alternatives(self, q: NearestQuery) -> Alternatives:
        """What a courier can do when ``q`` finds nothing (the API asks only then).

        ``opens_soonest``: among the :data:`ALTERNATIVE_CANDIDATES` nearest sites matching ``q``'s kinds and
        amenities within its radius (``max_distance_m``, or the walk ``arrive_within`` allows), never farther
        than :data:`ALTERNATIVE_RADIUS_M`, the one closed at ``q.at`` whose ``next_open`` is earliest (ties: the
        nearer). ``nearest_open_any``: the nearest site open at ``q.at`` of any kind and amenities at any
        distance (the backend's open-only search without filters; outside the materialised window the engine
        examines at most :data:`ALTERNATIVE_ENGINE_BUDGET` candidates). Both carry their live views. The same on
        both stores: it is built on the primitives every store has.
        """
        radius = q.radius_m()
        near = dataclasses.replace(q, max_distance_m=min(radius if radius is not None else ALTERNATIVE_RADIUS_M,
                                                         ALTERNATIVE_RADIUS_M), arrive_within_s=None)
        anywhere = dataclasses.replace(q, kinds=(), amenities=(), max_distance_m=None, arrive_within_s=None,
                                       limit=1, open_only=True)
        alerts = self.alerts_around(q.at)
        with self.spatial.database.reading():  # one pooled connection for the whole answer
            pairs = self.spatial.candidates(near, 0, ALTERNATIVE_CANDIDATES)
            closures = self.spatial.closures_for([s.id for s, _ in pairs]) if pairs else {}
            soonest: tuple[dt.datetime, Site, float, OpenState] | None = None
            for site, dist in pairs:  # by distance: a later site must open strictly sooner to win
                state = self.site_state(site, q.at, closures.get(site.id, []), alerts)
                if state.is_open or state.next_open is None:
                    continue
                if soonest is None or state.next_open < soonest[0]:
                    soonest = (state.next_open, site, dist, state)
            opens_soonest = None
            if soonest is not None:
                _, site, dist, state = soonest
                reports = self.reports.unresolved_counts([site.id]).get(site.id, 0)
                opens_soonest = self.live.annotate([NearestHit(site, dist, state, reports)], q.at)[0]
            open_any = self._nearest(anywhere, engine_budget=ALTERNATIVE_ENGINE_BUDGET)
        return Alternatives(opens_soonest, open_any[0] if open_any else None)

    # ---- materialising open intervals --------------------------------------------------------------
    def materialise(self, sites: Iterable[Site], closures: dict[str, list[Closure]], window: Window) -> Materialised:
        """Open intervals of ``sites`` within ``window`` from the hours engine; a site whose hours cannot be
        evaluated gets none (closed) and is listed in ``problems``: one bad record never stops the rest."""
        engine = self.engine
        out = Materialised()
        alerts: list[Alert] | None = None
        for site in sites:
            if site.status == "temporarily_closed":
                continue  # an open-ended closure: no open interval at all
            try:
                if site.alert_hours:
                    alerts = self.alerts.overlapping(window[0], window[1]) if alerts is None else alerts
                    spans = merged_intervals(site_spans(engine, site, window[0], window[1],
                                                        closures.get(site.id, ()), alerts))
                else:
                    spans = engine.intervals(site.opening_hours, window[0], window[1], closures.get(site.id, ()))
            except HoursEvaluationError as exc:
                out.problems[site.id] = str(exc)
                continue
            out.rows.extend((site.id, a, b) for a, b in spans)
        return out

    def rematerialise_for(self, w: SiteWriter, alert: Alert) -> list[str]:
        """Inside an alert's write transaction (the alert already written, changed or deleted): re-materialise the
        intervals of every site ``alert`` triggers (as it was before the write) and append their ``alert_hours``
        feed entries; the sites' ids."""
        window = self.spatial.window() or self.default_window()
        affected = [s for s in w.lock_sites([s.id for s in self.spatial.all_sites()
                                             if s.district_adcode in alert.districts and s.alert_hours])
                    if alert.triggers(s)]
        if not affected:
            return []
        ids = [s.id for s in affected]
        mat = self.materialise(affected, self.spatial.closures_for(ids), window)
        w.replace_intervals(ids, mat.rows)
        self._publish([(sid, "alert_hours") for sid in ids], utc_now(), w.sites_by_id)
        return ids

    def upcoming_intervals(self, sites: Sequence[Site], at: dt.datetime, hours: int) -> dict[str, list[Interval]]:
        """Each site's open intervals from ``at`` for ``hours`` (clipped to that span), for clients that must tell
        open from closed later without asking again (the couriers' page offline). A site whose hours cannot be
        evaluated, or that is temporarily closed, has none: it is closed for every query too. An operator's
        ``closed_now`` in force at ``at`` cuts the intervals until it expires, as it does the answers."""
        unique = list({s.id: s for s in sites}.values())
        ids = [s.id for s in unique]
        mat = self.materialise(unique, self.closures_for(ids), (at, at + dt.timedelta(hours=hours)))
        shut = {sid: st.expires_at for sid, st in self.live.in_force(ids, at).items() if st.state == "closed_now"}
        out: dict[str, list[Interval]] = {sid: [] for sid in ids}
        for site_id, start, end in mat.rows:
            if site_id in shut:
                start = max(start, shut[site_id])
            if start < end:
                out[site_id].append((start, end))
        return out

    def refresh_intervals(self, window: Window | None = None) -> RefreshResult:
        """Re-materialise all sites' open intervals for ``window`` (default: the rolling window).

        The expensive part (evaluating every site's hours) runs outside the write transaction; inside it,
        every site whose version changed meanwhile (an operator's save, a load) is read and evaluated again,
        so the refresh never puts back a state older than what is stored. A site whose hours cannot be
        evaluated is skipped, flagged (``hours_problem``) and reported; the rest goes on.
        """
        self.calendar_changed()
        window = window or self.default_window()
        sites = self.spatial.all_sites()
        mat = self.materialise(sites, self.spatial.closures_for([s.id for s in sites]), window)
        seen = {s.id: s.version for s in sites}
        flags = {s.id: s.hours_problem for s in sites}
        with self.spatial.writer("refresh") as w:
            now = w.site_versions()
            stale = {sid for sid, version in now.items() if seen.get(sid) != version}
            rows = [r for r in mat.rows if r[0] in now and r[0] not in stale]
            problems = {sid: p for sid, p in mat.problems.items() if sid in now and sid not in stale}
            if stale:
                again = w.sites_by_id(sorted(stale))
                fresh = self.materialise(again, self.spatial.closures_for(sorted(stale)), window)
                rows.extend(fresh.rows)
                problems.update(fresh.problems)
                flags.update({s.id: s.hours_problem for s in again})
            w.replace_all_intervals(rows, window)
            flagged = {sid: problems.get(sid) for sid in now if flags.get(sid) != problems.get(sid)}
            w.set_hours_problems(flagged)
            self._publish([(sid, "changed") for sid in sorted(flagged)], utc_now(), w.sites_by_id)
        self.spatial.after_bulk_write()
        for sid, problem in problems.items():
            LOGGER.warning("site %s skipped by the refresh: %s", sid, problem)
        return RefreshResult(len(rows), window, problems)

    # ---- loads -------------------------------------------------------------------------------------
    def upsert_sites(self, sites: Sequence[Site], overwrite_edits: bool = False, dry_run: bool = False,
                     skipped: Sequence[tuple[str, str]] = ()) -> UpsertResult:
        """Insert or update by ``source_id`` in one transaction, refreshing the changed sites' intervals.

        Fields an operator edited since the last load are kept and reported as conflicts (see
        :mod:`geoservice.services.reload`); ``overwrite_edits`` takes the file's values instead (audited as
        ``load-overwrite``). The existing sites are read and locked inside the write transaction, so an edit
        committed meanwhile is seen, never overwritten. ``dry_run`` reports the same and writes nothing.
        ``skipped`` — ``(site id, why)`` of records the caller chose to leave out of a file with bad records —
        goes into the audit trail (``load-skipped``) in the same transaction.
        """
        with self.spatial.writer("bulk") as w:
            window = self.spatial.window() or self.default_window()
            plan = plan_reload(sites, w.lock_sites_by_source([s.source_id or "" for s in sites]), overwrite_edits)
            updated = [site for site, _, _ in plan.updates]
            changed = plan.inserts + updated
            mat = self.materialise(changed, self.spatial.closures_for([s.id for s in updated]), window)
            for site in changed:
                site.hours_problem = mat.problems.get(site.id)
            if not dry_run:
                w.insert_sites(plan.inserts)
                w.update_sites(updated)
                w.set_edit_marks(plan.marks_cleared)
                for site, changes, action in plan.updates:
                    w.append_change(site.id, "load", action, changes, site.version + 1)
                for site_id, why in skipped:
                    w.append_change(site_id, "load", "load-skipped", {"skipped": {"before": None, "after": why}},
                                    None)
                w.replace_intervals([s.id for s in changed], mat.rows)
                w.set_window_if_missing(window)
                self._publish([(s.id, "added") for s in plan.inserts] + [(s.id, "changed") for s in updated],
                              utc_now(), w.sites_by_id)
        if not dry_run and len(changed) >= ANALYZE_AFTER:
            self.spatial.after_bulk_write()
        return UpsertResult(inserted=[s.id for s in plan.inserts], updated=[s.id for s in updated],
                            unchanged=plan.unchanged + [s.id for s in plan.marks_cleared], conflicts=plan.conflicts,
                            hours_problems=mat.problems)

    # ---- edits -------------------------------------------------------------------------------------
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
        with self.spatial.writer() as writer:
            window = self.spatial.window() or self.default_window()  # inside: a refresh may have just moved it
            results = {e.site_id: self._apply_edit(writer, e, actor, action, window, dry_run) for e in ordered}
            if not dry_run:
                self._publish([(i, "changed") for i in sorted(results) if results[i].change is not None],
                              utc_now(), writer.sites_by_id)
        return [results[i] for i in ids]

    def _apply_edit(  # noqa: C901 - one edit: lock, version check, each field, closures, intervals, audit
        self, w: SiteWriter, e: SiteEdit, actor: str, action: str, window: Window,
        dry_run: bool) -> EditResult:
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
                    marks[name] = stamp  # a reload keeps it (geoservice.services.reload)
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

    def add_closure(self, closure: Closure, actor: str, expected_version: int | None = None) -> EditResult:
        """Add a closure to a site (dates already validated); the new closure is ``result.added[0]`` (none if
        an equal one was already there)."""
        return self.apply_edits([SiteEdit(closure.site_id, add_closures=[closure],
                                          expected_version=expected_version)], actor, "add_closure")[0]

    def delete_closure(self, site_id: str, closure_id: int, actor: str,
                       expected_version: int | None = None) -> EditResult:
        """Remove one closure of a site."""
        return self.apply_edits([SiteEdit(site_id, remove_closures=[closure_id],
                                          expected_version=expected_version)], actor, "delete_closure")[0]

    def verify(self, site_id: str, actor: str, expected_version: int | None = None,
               at: dt.datetime | None = None) -> EditResult:
        """Stamp ``verified_at`` (the operator confirms the record is current)."""
        result = self.apply_edits([SiteEdit(site_id, verify_at=at or utc_now(), expected_version=expected_version)],
                                  actor, "verify")[0]
        self.accounts.clear_verify_request(site_id)  # union staff's "please verify" is answered
        return result
