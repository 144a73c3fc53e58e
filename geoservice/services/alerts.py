"""Weather alerts and alert hours (issue 14 item 1).

An admin (or a district admin, for its own districts only) declares an alert of a type and level over districts
for a span of time. A site carrying ``alert_hours`` (``{"hours", "types", "min_level"}``) whose district an alert
of a matching type at or above the minimum level covers is open by those hours INSTEAD of its normal hours during
the alert's span (:func:`site_spans`); outside it the normal hours apply. Everything that tells open from
closed goes through :func:`site_spans` — the materialised intervals (nearest, listings, OGC ``open_at``) and the
engine's answers (states, coverage) — so every answer agrees.

Declaring, moving the end of or deleting an alert re-materialises the covered sites' intervals in the same
transaction as the alert's write, and appends an ``alert_hours`` change-feed entry for every site whose intervals
changed, then an ``alert`` (or ``alert_removed``) entry for the alert itself: no waiting for the nightly refresh.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING

from geoservice import serialize
from geoservice.errors import Forbidden, NotFound, Unprocessable
from geoservice.hours import LOOKAHEAD, HoursEngine, HoursEvaluationError, utc_now
from geoservice.model import ALERT_MAX_LENGTH, Alert, Closure, OpenState, Operator, Site

if TYPE_CHECKING:
    from geoservice.services.sites import SiteService

Span = tuple[dt.datetime, dt.datetime, str]  # start, end, "hours" | "alert_hours"


def _merge(spans: Sequence[tuple[dt.datetime, dt.datetime]]) -> list[tuple[dt.datetime, dt.datetime]]:
    out: list[tuple[dt.datetime, dt.datetime]] = []
    for a, b in sorted(spans):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(b, out[-1][1]))
        elif b > a:
            out.append((a, b))
    return out


def alert_spans(site: Site, alerts: Sequence[Alert], start: dt.datetime,
                end: dt.datetime) -> list[tuple[dt.datetime, dt.datetime]]:
    """When, within ``[start, end)``, an alert triggers ``site``'s alert hours (merged)."""
    return _merge([(max(a.start, start), min(a.end, end)) for a in alerts if a.triggers(site)
                   and a.start < end and a.end > start])


def site_spans(engine: HoursEngine, site: Site, start: dt.datetime, end: dt.datetime,
               closures: Sequence[Closure], alerts: Sequence[Alert]) -> list[Span]:
    """Open spans of ``site`` in ``[start, end)``, each saying why it is open: its normal hours outside the
    alerts that trigger its alert hours, its alert hours inside them (closures apply to both). Sorted; adjacent
    spans may touch. Raises :class:`HoursEvaluationError` as the engine does."""
    hours = str(site.alert_hours.get("hours", "")) if site.alert_hours else ""
    return hours_spans(engine, site.opening_hours, hours, alert_spans(site, alerts, start, end), start, end,
                       closures)


def hours_spans(engine: HoursEngine, opening_hours: str, alert_hours: str,
                cuts: Sequence[tuple[dt.datetime, dt.datetime]], start: dt.datetime, end: dt.datetime,
                closures: Sequence[Closure]) -> list[Span]:
    """As :func:`site_spans`, from the expressions and the (merged) spans in which alert hours replace the
    normal ones: what the planners' week profile evaluates once per distinct combination."""
    normal = engine.intervals(opening_hours, start, end, closures)
    if not cuts or not alert_hours:
        return [(a, b, "hours") for a, b in normal]
    out: list[Span] = []
    for a, b in normal:
        pieces = [(a, b)]
        for c0, c1 in cuts:
            pieces = [p for x, y in pieces for p in ((x, min(y, c0)), (max(x, c1), y)) if p[1] > p[0]]
        out.extend((x, y, "hours") for x, y in pieces)
    for c0, c1 in cuts:
        out.extend((a, b, "alert_hours") for a, b in engine.intervals(alert_hours, c0, c1, closures))
    return sorted(out)


def merged_intervals(spans: Sequence[Span]) -> list[tuple[dt.datetime, dt.datetime]]:
    """The spans as the stores keep them: merged, reasons dropped."""
    return _merge([(a, b) for a, b, _ in spans])


def site_state(engine: HoursEngine, site: Site, at: dt.datetime, closures: Sequence[Closure],
               alerts: Sequence[Alert]) -> OpenState:
    """As :meth:`HoursEngine.state`, with alert hours applied and the reason the site is open."""
    if not site.alert_hours or not any(a.triggers(site) for a in alerts):
        state = engine.state(site.opening_hours, at, closures)
        return OpenState(state.is_open, state.open_until, state.next_open, state.problem,
                         "hours" if state.is_open else None)
    horizon = at + LOOKAHEAD
    try:
        spans = site_spans(engine, site, at - dt.timedelta(days=1), horizon, closures, alerts)
    except HoursEvaluationError:
        return OpenState(False, None, None, "opening hours cannot be evaluated")
    reason = next((r for a, b, r in spans if a <= at < b), None)
    for a, b in merged_intervals(spans):
        if a <= at < b:
            return OpenState(True, None if b >= horizon else b, None, None, reason)
        if a > at:
            return OpenState(False, None, a)
    return OpenState(False, None, None)


def may_manage(operator: Operator, districts: Sequence[str]) -> list[str]:
    """The districts of ``districts`` ``operator`` may NOT declare or delete alerts for (empty: allowed)."""
    if operator.is_admin:
        return []
    if operator.role != "district_admin":
        return sorted(set(districts))
    return sorted(set(districts) - set(operator.districts))


class AlertService:
    """Declaring, changing and removing alerts, with the covered sites' intervals re-materialised at once."""

    def __init__(self, sites: SiteService):
        self.sites = sites
        self.repo = sites.alerts

    def _check(self, operator: Operator, districts: Sequence[str]) -> None:
        outside = may_manage(operator, districts)
        if outside:
            raise Forbidden(f"not allowed to manage alerts for districts {', '.join(outside)}",
                            [{"field": "districts", "reason": "outside your districts: " + ", ".join(outside)}])

    def _publish(self, alert_id: int, alert: Alert | None) -> None:
        """The alert's feed entry, last in its write transaction (after the sites' ``alert_hours`` entries)."""
        self.sites.feed.append_alert(alert_id, "alert" if alert else "alert_removed", utc_now(),
                                     serialize.alert(alert) if alert else None)

    def active(self, at: dt.datetime | None = None) -> list[Alert]:
        """Alerts in force at ``at`` (default now) or starting later."""
        at = at or utc_now()
        return self.repo.overlapping(at, at + dt.timedelta(days=3650))

    def get(self, alert_id: int) -> Alert:
        """One alert (``NotFound`` when unknown)."""
        alert = self.repo.get(alert_id)
        if alert is None:
            raise NotFound(f"no alert with id {alert_id}")
        return alert

    def declare(self, operator: Operator, atype: str, level: str, districts: Sequence[str], start: dt.datetime,
                end: dt.datetime) -> Alert:
        """Store an alert (already validated) and re-materialise the sites it covers."""
        self._check(operator, districts)
        unknown = sorted(set(districts) - set(self.sites.district_index()))
        if unknown:
            raise NotFound(f"unknown districts {', '.join(unknown)}",
                           [{"field": "districts", "reason": "unknown adcodes: " + ", ".join(unknown)}])
        with self.sites.spatial.writer() as w:
            alert = self.repo.add(atype, level, districts, start, end, operator.name)
            self.sites.rematerialise_for(w, alert)
            self._publish(alert.id, alert)
        return alert

    def change_end(self, operator: Operator, alert_id: int, end: dt.datetime) -> Alert:
        """Move an alert's end (ends it early when ``end`` is now or earlier than planned)."""
        alert = self.get(alert_id)
        self._check(operator, alert.districts)
        if end <= alert.start or end - alert.start > ALERT_MAX_LENGTH:
            raise Unprocessable("the end must be after the alert's start and within its maximum length",
                                [{"field": "end", "reason": "must be after the alert's start and at most "
                                  f"{ALERT_MAX_LENGTH.days} days after it"}])
        with self.sites.spatial.writer() as w:
            changed = self.repo.set_end(alert_id, end)
            if changed is None:
                raise NotFound(f"no alert with id {alert_id}")
            self.sites.rematerialise_for(w, alert)
            self._publish(alert_id, changed)
        return changed

    def delete(self, operator: Operator, alert_id: int) -> None:
        """Remove an alert (needs every one of its districts) and restore the sites' normal hours."""
        alert = self.get(alert_id)
        self._check(operator, alert.districts)
        with self.sites.spatial.writer() as w:
            self.repo.delete(alert_id)
            self.sites.rematerialise_for(w, alert)
            self._publish(alert_id, None)
