"""Live status (issue 14): what a site's operator says about it right now, and couriers' "may be closed" marks.

* A post (:meth:`LiveService.post`) is ``open``, ``full`` or ``closed_now``, optionally with seats free and
  capacity, in force for a time-to-live (default :data:`~geoservice.model.LIVE_DEFAULT_TTL`, at most
  :data:`~geoservice.model.LIVE_MAX_TTL`). Clearing (:meth:`LiveService.clear`) ends it at once. Each post and
  each clear is one write with its audit entry (``action`` ``live_status`` / ``live_status_clear``); neither
  changes the site's version (the status is not part of the edited record, so it needs no ``If-Match``).
* Nothing expires by a job: every read asks what is in force at the query's time (``posted_at <= t <
  expires_at``), so an expired state is no longer there. ``closed_now`` is applied inside each backend's
  open-only search; ``full`` is applied by :meth:`LiveService.rank` (a full site ranks as if it were
  :data:`~geoservice.model.FULL_TOLERANCE_M` farther).
* "May be closed": :data:`~geoservice.model.MAY_BE_CLOSED_REPORTS` unresolved "closed when I arrived" reports
  from different clients within :data:`~geoservice.model.MAY_BE_CLOSED_WINDOW`, all received after the operator
  last posted or cleared a status. Clients are told apart by an HMAC of their address under a key the service
  makes for itself (:meth:`client_hash`); the hash is forgotten after the window, the address never stored.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import hmac
import secrets
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from geoservice.model import (
    FULL_TOLERANCE_M,
    LIVE_DEFAULT_TTL,
    LIVE_MAX_TTL,
    LIVE_STATES,
    MAY_BE_CLOSED_REPORTS,
    MAY_BE_CLOSED_WINDOW,
    LiveStatus,
    LiveView,
    NearestHit,
    Report,
)
from geoservice.serialize import live_status as live_status_json
from geoservice.store.relational import LiveStatuses, Reports

CLIENT_KEY = "report_client_key"
NOTHING = LiveView()  # a site with no status in force and no mark


def is_full(hit: NearestHit) -> bool:
    """True when the hit's live status in force is ``full``."""
    return hit.live.status is not None and hit.live.status.state == "full"


def ranking_m(hit: NearestHit) -> float:
    """The distance a hit ranks by: its own (the walked metres when a network measured them), plus
    :data:`FULL_TOLERANCE_M` when it is full."""
    base = hit.route_m if hit.route_m is not None else hit.distance_m
    return base + (FULL_TOLERANCE_M if is_full(hit) else 0.0)


class LiveService:
    """Posting, clearing and reading sites' live status; couriers' reports with their client hash."""

    def __init__(self, statuses: LiveStatuses, reports: Reports):
        self.statuses = statuses
        self.reports = reports
        self._key: bytes | None = None
        # Called inside each post's or clear's transaction, after its writes (the site service appends the
        # change-feed entry there, so a post and its feed entry commit together).
        self.on_change: Callable[[str, dt.datetime], None] | None = None

    # ---- operators' side ---------------------------------------------------------------------------
    def post(self, site_id: str, state: str, actor: str, now: dt.datetime, ttl: dt.timedelta | None = None,
             seats_free: int | None = None, capacity: int | None = None) -> LiveStatus:
        """Put a status in force from ``now`` for ``ttl`` (checked by the caller: 0 < ttl <= 12 h)."""
        if state not in LIVE_STATES:
            raise ValueError(f"unknown live state {state!r}")
        ttl = LIVE_DEFAULT_TTL if ttl is None else ttl
        if not dt.timedelta(0) < ttl <= LIVE_MAX_TTL:
            raise ValueError("the time-to-live must be more than 0 and at most 12 hours")
        status = LiveStatus(site_id, state, now, now + ttl, seats_free, capacity, actor)
        self._write(status, "live_status")
        return status

    def clear(self, site_id: str, actor: str, now: dt.datetime) -> LiveStatus:
        """End the site's status now; it also confirms the site (couriers' earlier marks stop counting)."""
        status = LiveStatus(site_id, "open", now, now, None, None, actor)
        self._write(status, "live_status_clear")
        return status

    def _write(self, status: LiveStatus, action: str) -> None:
        before = self.statuses.for_sites([status.site_id]).get(status.site_id)
        in_force = before if before is not None and before.active_at(status.posted_at) else None
        after = status if status.expires_at > status.posted_at else None
        changes: dict[str, Any] = {"live_status": {"before": live_status_json(in_force),
                                                   "after": live_status_json(after)}}
        with self.statuses.db.writing():
            self.statuses.put(status, action, changes)
            if self.on_change is not None:
                self.on_change(status.site_id, status.posted_at)

    # ---- reads -------------------------------------------------------------------------------------
    def in_force(self, site_ids: Sequence[str], at: dt.datetime) -> dict[str, LiveStatus]:
        """The status in force at ``at`` of each of these sites that has one."""
        if not site_ids:
            return {}
        return {sid: s for sid, s in self.statuses.for_sites(site_ids).items() if s.active_at(at)}

    def views(self, site_ids: Sequence[str], at: dt.datetime) -> dict[str, LiveView]:
        """What the public answers say about each of these sites at ``at`` (sites with nothing are left out)."""
        if not site_ids:
            return {}
        stored, marks = self.statuses.views_for(site_ids, at, MAY_BE_CLOSED_WINDOW, MAY_BE_CLOSED_REPORTS)
        read = {sid: LiveView(stored.get(sid), marks.get(sid)) for sid in set(stored) | set(marks)}
        return {sid: view for sid, view in ((sid, self.at(v, at)) for sid, v in read.items()) if view != NOTHING}

    @staticmethod
    def at(stored: LiveView, at: dt.datetime) -> LiveView:
        """A view as stored (its status in force or not) as the public answers give it at ``at``."""
        if stored.status is None or stored.status.active_at(at):
            return stored
        return LiveView(None, stored.may_be_closed)

    def view(self, site_id: str, at: dt.datetime) -> LiveView:
        """:meth:`views` of one site."""
        return self.views([site_id], at).get(site_id, LiveView())

    def annotate(self, hits: Sequence[NearestHit], at: dt.datetime,
                 read: Mapping[str, LiveView] | None = None) -> list[NearestHit]:
        """The hits with their live view at ``at``: the stored views already ``read`` with them (by site id,
        in the same statement) as they are, the others read now."""
        read = read or {}
        views = self.views([h.site.id for h in hits if h.site.id not in read], at)
        views.update((sid, view) for sid, view in ((sid, self.at(v, at)) for sid, v in read.items())
                     if view != NOTHING)
        return [dataclasses.replace(h, live=views[h.site.id]) if h.site.id in views else h for h in hits]

    @staticmethod
    def rank(hits: Sequence[NearestHit]) -> list[NearestHit]:
        """Full sites after non-full ones within the tolerance: ordered by :func:`ranking_m` (ties keep the
        given distance order). Hits must carry their live view."""
        return [h for _, h in sorted(enumerate(hits), key=lambda pair: (ranking_m(pair[1]), pair[0]))]

    # ---- couriers' reports -------------------------------------------------------------------------
    def client_hash(self, address: str) -> str:
        """A keyed hash of a client's address: tells clients apart, cannot be turned back without the key."""
        if self._key is None:
            self._key = bytes.fromhex(self.reports.secret(CLIENT_KEY, lambda: secrets.token_hex(32)))
        return hmac.new(self._key, address.encode("utf-8"), hashlib.sha256).hexdigest()[:32]

    def add_report(self, report: Report, address: str | None, now: dt.datetime | None = None) -> Report:
        """Store a courier's report with its client hash (none without an address); older hashes are dropped."""
        digest = self.client_hash(address) if address else None
        return self.reports.add(report, digest, MAY_BE_CLOSED_WINDOW, now)
