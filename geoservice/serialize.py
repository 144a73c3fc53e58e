"""Every outward shape of the service, written once, each next to the JSON Schema that documents it.

A site becomes a public GeoJSON feature (couriers, partners), a flat OGC feature (GIS), an export record
(GeoJSON/GeoPackage/CSV) or an operator's view (the public feature plus closures and ETag); closures, audit
entries, reports and districts have one shape each. The OpenAPI documents take their response schemas from
here (``SCHEMAS``), so what is documented is what is written. Times are ISO 8601 in Beijing time (+08:00) to the
second; ``None`` stays ``null``.
"""
from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from geoservice.basemap import BaseMap
from geoservice.hours import TZ
from geoservice.model import (
    ALERT_LEVEL_LABELS,
    ALERT_LEVELS,
    ALERT_TYPE_LABELS,
    ALERT_TYPES,
    ALTERNATIVE_CANDIDATES,
    ALTERNATIVE_RADIUS_M,
    AMENITIES,
    AMENITY_LABELS,
    FEED_KINDS,
    FULL_TOLERANCE_M,
    KIND_LABELS,
    KINDS,
    LIVE_MAX_TTL,
    LIVE_STATE_LABELS,
    LIVE_STATES,
    MAY_BE_CLOSED_REPORTS,
    MAY_BE_CLOSED_WINDOW,
    OPEN_REASON_LABELS,
    REPORT_TYPES,
    ROLES,
    SITE_STATUSES,
    Alert,
    Closure,
    DeadLetter,
    District,
    FeedEntry,
    LiveStatus,
    LiveView,
    MayBeClosed,
    OpenState,
    Operator,
    Report,
    Site,
    SiteChange,
    Webhook,
    encode_cursor,
)
from geoservice.servicearea import AreaLayer

COORD_DECIMALS = 7  # ~1 cm, as stored


def iso(t: dt.datetime | None) -> str | None:
    """An aware time as ISO 8601 in Beijing time to the second (naive times are taken as Beijing time)."""
    if t is None:
        return None
    aware = t.replace(tzinfo=TZ) if t.tzinfo is None else t.astimezone(TZ)
    return aware.isoformat(timespec="seconds")


def stamp(t: dt.datetime | None) -> str | None:
    """When a record was written (updated, verified, received, resolved): ISO 8601 in UTC to the second.

    Record times are instants for machines (GeoPackage and most GIS want them in UTC); times a courier reads
    (open until, next open, the query's time) are Beijing time (:func:`iso`)."""
    if t is None:
        return None
    aware = t.replace(tzinfo=TZ) if t.tzinfo is None else t
    return aware.astimezone(dt.UTC).isoformat(timespec="seconds")


def point(lon: float, lat: float, decimals: int = COORD_DECIMALS) -> dict[str, Any]:
    """A GeoJSON Point."""
    return {"type": "Point", "coordinates": [round(float(lon), decimals), round(float(lat), decimals)]}


# ---- small shapes ---------------------------------------------------------------------------------------------
def closure(c: Closure) -> dict[str, Any]:
    """A closure: whole days ``start``..``end`` inclusive (Beijing dates), with its reason."""
    return {"id": c.id, "start": c.start.isoformat(), "end": c.end.isoformat(), "reason": c.reason}


def change(c: SiteChange) -> dict[str, Any]:
    """One audit entry: who changed what (``{field: {before, after}}``), when, producing which version."""
    return {"id": c.id, "site_id": c.site_id, "actor": c.actor, "at": stamp(c.at), "action": c.action,
            "changes": c.changes, "version": c.version}


def report(r: Report) -> dict[str, Any]:
    """A courier's report (nothing about the reporter is kept)."""
    return {"id": r.id, "site_id": r.site_id, "type": r.type, "amenity": r.amenity, "note": r.note,
            "lang": r.lang, "observed_at": stamp(r.observed_at), "received_at": stamp(r.received_at),
            "status": "resolved" if r.resolved_at else "open", "resolved_at": stamp(r.resolved_at),
            "resolved_by": r.resolved_by, "resolution_note": r.resolution_note}


def live_status(s: LiveStatus | None) -> dict[str, Any] | None:
    """A site's live status in force (null when none): state with its labels, seats, when posted and until when."""
    if s is None:
        return None
    return {"state": s.state, "label": LIVE_STATE_LABELS[s.state], "seats_free": s.seats_free,
            "capacity": s.capacity, "posted_at": iso(s.posted_at), "expires_at": iso(s.expires_at)}


def may_be_closed(m: MayBeClosed | None) -> dict[str, Any] | None:
    """Couriers' "closed when I arrived" marks on a site (null when too few): how many clients, since when."""
    return None if m is None else {"reports": m.reports, "since": iso(m.since)}


def account(op: Operator) -> dict[str, Any]:
    """An account as its holder and admins see it (never a password, hash, token or session id)."""
    return {"name": op.name, "login": op.login, "role": op.role, "districts": list(op.districts),
            "has_password": op.has_password, "locked": op.locked, "disabled": op.disabled,
            "home_district": op.home_district}


def session(op: Operator | None, via: str | None = None, csrf_token: str | None = None,
            expires_at: dt.datetime | None = None) -> dict[str, Any]:
    """Who is signed in: the account, how (``session`` cookie or bearer ``token``) and, for a cookie session,
    the CSRF token its writes need and when it ends at the latest."""
    if op is None:
        return {"signed_in": False, "account": None, "via": None, "csrf_token": None, "expires_at": None}
    return {"signed_in": True, "account": account(op), "via": via, "csrf_token": csrf_token,
            "expires_at": iso(expires_at)}


def district_ref(d: District | None) -> dict[str, str] | None:
    """A site's district, named in both languages."""
    return {"adcode": d.adcode, "name_zh": d.name_zh, "name_en": d.name_en} if d else None


# ---- sites ----------------------------------------------------------------------------------------------------
def site_properties(site: Site, district: District | None) -> dict[str, Any]:
    """What every public view of a site says about it (couriers' API, operators' view)."""
    return {
        "id": site.id, "source_id": site.source_id, "kind": site.kind, "kind_label": KIND_LABELS[site.kind],
        "name_zh": site.name_zh, "name_en": site.name_en, "address": site.address,
        "district": district_ref(district), "opening_hours": site.opening_hours, "amenities": list(site.amenities),
        "amenity_labels": [{"code": a, **AMENITY_LABELS.get(a, {"zh": a, "en": a})} for a in site.amenities],
        "operator": site.operator, "phone": site.phone, "notes": site.notes, "simulated": bool(site.simulated),
        "updated_at": stamp(site.updated_at), "verified_at": stamp(site.verified_at), "version": site.version,
        "status": site.status, "hours_problem": site.hours_problem, "alert_hours": site.alert_hours,
    }


def state_properties(state: OpenState, at: dt.datetime) -> dict[str, Any]:
    """A site's open state at ``at`` (see :class:`geoservice.hours.OpenState`)."""
    return {"is_open": state.is_open, "open_until": iso(state.open_until), "next_open": iso(state.next_open),
            "open_all_week": state.is_open and state.open_until is None, "state_at": iso(at),
            "open_reason": state.reason if state.is_open else None,
            "open_reason_label": OPEN_REASON_LABELS.get(state.reason or "") if state.is_open else None}


def alert(a: Alert) -> dict[str, Any]:
    """A weather alert with its bilingual type and level labels."""
    return {"id": a.id, "type": a.type, "type_label": ALERT_TYPE_LABELS[a.type], "level": a.level,
            "level_label": ALERT_LEVEL_LABELS[a.level], "districts": list(a.districts), "start": iso(a.start),
            "end": iso(a.end), "created_by": a.created_by, "created_at": iso(a.created_at)}


def site_feature(site: Site, district: District | None, lonlat: tuple[float, float], *,
                 state: OpenState | None = None, at: dt.datetime | None = None, distance_m: float | None = None,
                 walk_minutes: int | None = None, unresolved_reports: int | None = None,
                 closures: Sequence[Closure] | None = None, etag: str | None = None, stale: bool | None = None,
                 open_intervals: Sequence[tuple[dt.datetime, dt.datetime]] | None = None,
                 live: LiveView | None = None, walk_model: str | None = None, walk_reason: str | None = None,
                 verify_request: tuple[str, dt.datetime] | bool | None = False) -> dict[str, Any]:
    """A site as a public GeoJSON Feature; ``lonlat`` is already in the answer's datum. ``live`` (its live
    status and couriers' marks, both null when absent) is always there; optional parts appear only when given:
    distance and walk (nearest), state (with ``at``), report count, closures, ETag, staleness and the open
    intervals ahead."""
    props = site_properties(site, district)
    props["live_status"] = live_status(live.status if live else None)
    props["may_be_closed"] = may_be_closed(live.may_be_closed if live else None)
    if unresolved_reports is not None:
        props["unresolved_reports"] = unresolved_reports
    if distance_m is not None:
        props["distance_m"] = round(distance_m, 1)
        props["walk_minutes"] = walk_minutes
        if walk_model is not None:
            props["walk_model"] = walk_model
            props["walk_model_reason"] = walk_reason
    if state is not None and at is not None:
        props.update(state_properties(state, at))
        props["hours_problem"] = state.problem or site.hours_problem
    if closures is not None:
        props["closures"] = [closure(c) for c in closures if c.id is not None]
    if etag is not None:
        props["etag"] = etag
    if stale is not None:
        props["stale"] = stale
    if open_intervals is not None:
        props["open_intervals"] = [{"start": iso(a), "end": iso(b)} for a, b in open_intervals]
    if verify_request is not False:  # operators' views: union staff asked for a verification (or null)
        props["verify_request"] = ({"requested_by": verify_request[0], "requested_at": iso(verify_request[1])}
                                   if isinstance(verify_request, tuple) else None)
    return {"type": "Feature", "id": site.id, "geometry": point(*lonlat), "properties": props}


def feed_feature(site: Site, district: District | None, closures: Sequence[Closure],
                 status: LiveStatus | None) -> dict[str, Any]:
    """A site as the change feed carries it: its public feature in WGS-84 with its closures and the live status in
    force when the change was made (``may_be_closed`` is always null: couriers' marks are not partners' data)."""
    return site_feature(site, district, (site.lon, site.lat), closures=closures, live=LiveView(status, None))


def feed_entry(e: FeedEntry, cursor: str) -> dict[str, Any]:
    """One change-feed entry (``cursor`` is the entry's own, opaque): about a site (``feature``) or a weather alert
    (``alert``), the other null."""
    about_alert = e.alert_id is not None
    return {"cursor": cursor, "site_id": e.site_id, "alert_id": e.alert_id, "kind": e.kind, "at": iso(e.at),
            "feature": None if about_alert else e.feature, "alert": e.feature if about_alert else None}


def webhook_body(hook_id: int, key: str, entries: Sequence[FeedEntry], next_cursor: str) -> bytes:
    """The body of one webhook delivery: the batch's feed entries as ``GET /api/v1/changes`` gives them, its
    idempotency key and the cursor after it. Canonical JSON (sorted keys, no spaces), so every retry and replay of
    a batch sends the same bytes."""
    body = {"webhook_id": hook_id, "idempotency_key": key,
            "entries": [feed_entry(e, encode_cursor(e.seq)) for e in entries], "next": next_cursor,
            "license": DATA_LICENSE}
    return json.dumps(body, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode("utf-8")


def webhook(h: Webhook) -> dict[str, Any]:
    """A webhook for admins (never its secret)."""
    return {"id": h.id, "url": h.url, "created_by": h.created_by, "created_at": iso(h.created_at),
            "delivered_through": encode_cursor(h.delivered_through),
            "pending_through": None if h.batch_through is None else encode_cursor(h.batch_through),
            "attempts": h.attempts, "next_attempt_at": iso(h.next_attempt_at) if h.next_attempt_at else None,
            "last_error": h.last_error, "last_success_at": iso(h.last_success_at) if h.last_success_at else None,
            "dead_letters": h.dead_letters}


def dead_letter(d: DeadLetter) -> dict[str, Any]:
    """A batch a webhook gave up on."""
    return {"id": d.id, "webhook_id": d.webhook_id, "first": encode_cursor(d.first_seq),
            "last": encode_cursor(d.last_seq), "entries": d.last_seq - d.first_seq + 1, "attempts": d.attempts,
            "last_error": d.last_error, "failed_at": iso(d.failed_at),
            "replay_requested_at": iso(d.replay_requested_at) if d.replay_requested_at else None,
            "replayed_at": iso(d.replayed_at) if d.replayed_at else None}


def ogc_site_feature(site: Site, district: District | None, distance_m: float | None = None,
                     live: LiveView | None = None) -> dict[str, Any]:
    """A site as a flat OGC API feature in CRS84: scalar properties only (``amenities`` ``;``-separated, as in the
    CSV export), so GIS clients get plain columns and a saved copy loads back with ``geoservice load``. The live
    status and couriers' marks are flat columns too (``live_*``, ``may_be_closed_reports``; null when none)."""
    label = KIND_LABELS[site.kind]
    props: dict[str, Any] = {
        "source_id": site.source_id, "kind": site.kind, "kind_zh": label["zh"], "kind_en": label["en"],
        "name_zh": site.name_zh, "name_en": site.name_en, "address": site.address,
        "district_adcode": site.district_adcode, "district_zh": district.name_zh if district else None,
        "district_en": district.name_en if district else None, "opening_hours": site.opening_hours,
        "amenities": ";".join(site.amenities), "operator": site.operator, "phone": site.phone, "notes": site.notes,
        "simulated": bool(site.simulated), "updated_at": stamp(site.updated_at), "verified_at": stamp(site.verified_at),
        "version": site.version,
    }
    status = live.status if live else None
    marks = live.may_be_closed if live else None
    props.update({
        "live_state": status.state if status else None, "live_seats_free": status.seats_free if status else None,
        "live_capacity": status.capacity if status else None,
        "live_posted_at": iso(status.posted_at) if status else None,
        "live_expires_at": iso(status.expires_at) if status else None,
        "may_be_closed_reports": marks.reports if marks else None})
    if distance_m is not None:
        props["distance_m"] = round(float(distance_m), 1)
    return {"type": "Feature", "id": site.id, "geometry": point(site.lon, site.lat), "properties": props}


# Export columns, in order: what `geoservice load` reads back. `crs` names the datum of the coordinates on every
# record (a CSV cannot carry a header comment that spreadsheet tools and the loader would both accept).
EXPORT_COLUMNS: tuple[str, ...] = (
    "id", "source_id", "kind", "name_zh", "name_en", "address", "district_adcode", "lon", "lat",
    "opening_hours", "amenities", "operator", "phone", "notes", "simulated", "updated_at", "verified_at", "crs",
)
EXPORT_ATTRIBUTES: tuple[str, ...] = tuple(c for c in EXPORT_COLUMNS if c not in ("lon", "lat"))


def export_attributes(site: Site, datum: str) -> dict[str, Any]:
    """Typed export attributes of a site (GeoJSON / GeoPackage): amenities a list, simulated a bool."""
    return {
        "id": site.id, "source_id": site.source_id or site.id, "kind": site.kind, "name_zh": site.name_zh,
        "name_en": site.name_en, "address": site.address, "district_adcode": site.district_adcode,
        "opening_hours": site.opening_hours, "amenities": list(site.amenities), "operator": site.operator,
        "phone": site.phone, "notes": site.notes, "simulated": bool(site.simulated),
        "updated_at": stamp(site.updated_at), "verified_at": stamp(site.verified_at), "crs": datum,
    }


def district_counts(d: District, counts: Mapping[str, Mapping[str, int]]) -> dict[str, int]:
    """Sites of each kind in a district."""
    return {k: counts.get(d.adcode, {}).get(k, 0) for k in KINDS}


def basemap(spec: BaseMap | None) -> dict[str, Any]:
    """The base map a page draws on: its URL template, datum and attribution (``tiles`` null for none)."""
    if spec is None:
        return {"tiles": None}
    return {"tiles": {"url": spec.url, "datum": spec.datum, "subdomains": spec.subdomains, "max_zoom": spec.max_zoom,
                      "name": spec.name, "attribution": {"zh": spec.attribution_zh, "en": spec.attribution_en},
                      "attribution_url": spec.attribution_url or None}}


def service_area(a: AreaLayer) -> dict[str, Any]:
    """The service area as the pages and clients see it: code, names, extent and where maps open (WGS-84)."""
    return {"code": a.code, "name_zh": a.name_zh, "name_en": a.name_en,
            "bbox": [round(v, 6) for v in a.bounds], "centre": [round(v, 6) for v in a.centre]}


def finite(value: float) -> float | None:
    """A float for JSON (NaN and infinities become null)."""
    return value if math.isfinite(value) else None


# ---- JSON Schemas of the shapes above (for the OpenAPI documents) -----------------------------------------------
def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    kind = schema.get("type", "string")
    types = kind if isinstance(kind, list) else [kind]
    return {**schema, "type": [*types, "null"]}


STRING = {"type": "string"}
NULLABLE_STRING = {"type": ["string", "null"]}
TIME = {"type": ["string", "null"], "format": "date-time", "description": "ISO 8601, Beijing time (+08:00)"}
INSTANT = {"type": "string", "format": "date-time", "description": "ISO 8601, Beijing time (+08:00)"}
LABELS = {"type": "object", "required": ["zh", "en"], "properties": {"zh": STRING, "en": STRING},
          "additionalProperties": False}
POINT = {"type": "object", "required": ["type", "coordinates"], "properties": {
    "type": {"const": "Point"},
    "coordinates": {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2}}}

CLOSURE_SCHEMA = {"type": "object", "required": ["id", "start", "end", "reason"], "additionalProperties": False,
                  "properties": {"id": {"type": "integer"}, "start": {"type": "string", "format": "date"},
                                 "end": {"type": "string", "format": "date"}, "reason": STRING}}
CHANGE_SCHEMA = {
    "type": "object", "required": ["id", "site_id", "actor", "at", "action", "changes", "version"],
    "additionalProperties": False,
    "properties": {"id": {"type": "integer"}, "site_id": STRING, "actor": STRING, "at": TIME,
                   "action": {"type": "string", "description": "update, add_closure, delete_closure, verify, bulk, "
                                                               "load or load-overwrite"},
                   "changes": {"type": "object", "description": "{field: {before, after}}"},
                   "version": {"type": ["integer", "null"], "description": "The site version it produced"}}}
REPORT_SCHEMA = {
    "type": "object", "additionalProperties": False,
    "required": ["id", "site_id", "type", "amenity", "note", "lang", "observed_at", "received_at", "status",
                 "resolved_at", "resolved_by", "resolution_note"],
    "properties": {"id": {"type": "integer"}, "site_id": STRING, "type": {"type": "string", "enum": list(REPORT_TYPES)},
                   "amenity": {"type": ["string", "null"], "enum": [*AMENITIES, None]}, "note": NULLABLE_STRING,
                   "lang": {"type": ["string", "null"], "enum": ["zh", "en", None]}, "observed_at": TIME,
                   "received_at": TIME, "status": {"type": "string", "enum": ["open", "resolved"]},
                   "resolved_at": TIME, "resolved_by": NULLABLE_STRING, "resolution_note": NULLABLE_STRING}}
SITE_PROPERTIES_SCHEMA: dict[str, Any] = {
    "id": STRING, "source_id": NULLABLE_STRING, "kind": {"type": "string", "enum": list(KINDS)},
    "kind_label": LABELS, "name_zh": STRING, "name_en": NULLABLE_STRING, "address": NULLABLE_STRING,
    "district": {"type": ["object", "null"], "required": ["adcode", "name_zh", "name_en"],
                 "properties": {"adcode": STRING, "name_zh": STRING, "name_en": STRING}},
    "opening_hours": {"type": "string", "description": "OpenStreetMap opening_hours syntax"},
    "amenities": {"type": "array", "items": {"type": "string", "enum": list(AMENITIES)}},
    "amenity_labels": {"type": "array", "items": {"type": "object", "required": ["code", "zh", "en"],
                                                  "properties": {"code": STRING, "zh": STRING, "en": STRING}}},
    "operator": NULLABLE_STRING, "phone": NULLABLE_STRING, "notes": NULLABLE_STRING, "simulated": {"type": "boolean"},
    "updated_at": TIME, "verified_at": TIME, "version": {"type": "integer", "minimum": 1},
    "status": {"type": "string", "enum": list(SITE_STATUSES),
               "description": "temporarily_closed: closed for every query until set back to open"},
    "hours_problem": {"type": ["string", "null"],
                      "description": "Set when the opening hours could not be evaluated: the site is reported closed"},
    "alert_hours": {"anyOf": [{"$ref": "#/components/schemas/AlertHours"}, {"type": "null"}]},
    "open_reason": {"type": ["string", "null"], "enum": [*OPEN_REASON_LABELS, None],
                    "description": "Why the site is open: its regular hours, or alert_hours while a weather alert "
                                   "extends them; null when closed"},
    "open_reason_label": {"anyOf": [LABELS, {"type": "null"}]},
    "unresolved_reports": {"type": "integer", "minimum": 0,
                           "description": "Couriers' problem reports not yet resolved by the operator"},
    "distance_m": {"type": "number", "minimum": 0, "description": "WGS-84 ellipsoidal geodesic distance, metres"},
    "walk_minutes": {"type": "integer", "minimum": 0, "description": "Minutes on foot under the walk model"},
    "walk_model": {"type": "string", "enum": ["network", "straight_line"],
                   "description": "How walk_minutes was measured: on the loaded walking network, or straight line × "
                                  "detour factor (no network loaded, or the point is off it)"},
    "walk_model_reason": {"type": ["string", "null"],
                          "enum": ["origin_off_network", "site_off_network", "not_connected", None],
                          "description": "Why this answer fell back to the straight line although a network is "
                                         "loaded (null otherwise)"},
    "is_open": {"type": "boolean"},
    "open_until": {**TIME, "description": "When it closes; null if open beyond the next 8 days (e.g. 24/7)"},
    "next_open": {**TIME, "description": "When a closed site opens next; null if not within 8 days"},
    "open_all_week": {"type": "boolean"}, "state_at": TIME,
    "closures": {"type": "array", "items": {"$ref": "#/components/schemas/Closure"}},
    "live_status": {"anyOf": [{"$ref": "#/components/schemas/LiveStatus"}, {"type": "null"}]},
    "may_be_closed": {"anyOf": [{"$ref": "#/components/schemas/MayBeClosed"}, {"type": "null"}]},
    "etag": {"type": "string", "description": "Operators' views: the ETag to send in If-Match"},
    "verify_request": {"description": "Operators' views: union staff asked the operator to verify the site "
                                      "(cleared when it is verified), or null",
                       "anyOf": [{"type": "null"}, {"type": "object", "required": ["requested_by", "requested_at"],
                                                   "properties": {"requested_by": STRING, "requested_at": TIME}}]},
    "stale": {"type": "boolean", "description": "True when the site was never verified, or verified longer ago "
                                                "than the service's threshold (GEOSERVICE_STALE_AFTER_DAYS, 180 by "
                                                "default): its details may be out of date"},
    "open_intervals": {"type": "array", "description": "Asked for with intervals_hours: when the site is open from "
                                                       "`at` for that many hours, clipped to that span, in order",
                       "items": {"type": "object", "required": ["start", "end"], "additionalProperties": False,
                                 "properties": {"start": INSTANT, "end": INSTANT}}},
}
SITE_REQUIRED = ["id", "source_id", "kind", "kind_label", "name_zh", "name_en", "address", "district",
                 "opening_hours", "amenities", "amenity_labels", "operator", "phone", "notes", "simulated",
                 "updated_at", "verified_at", "version", "status", "hours_problem", "alert_hours", "live_status",
                 "may_be_closed"]
SITE_SCHEMA = {"type": "object", "required": ["type", "id", "geometry", "properties"], "properties": {
    "type": {"const": "Feature"}, "id": STRING, "geometry": POINT,
    "properties": {"type": "object", "required": SITE_REQUIRED, "properties": SITE_PROPERTIES_SCHEMA,
                   "additionalProperties": False}}}
_SITE_OR_NULL = [{"$ref": "#/components/schemas/Site"}, {"type": "null"}]
ALTERNATIVES_SCHEMA = {
    "type": ["object", "null"], "required": ["opens_soonest", "nearest_open_any"], "additionalProperties": False,
    "description": "What a courier can do when no site matches (features is empty); null when there are results. "
                   "Each is a feature like the results (distance, walk minutes, open state at `at`), or null.",
    "properties": {
        "opens_soonest": {"anyOf": _SITE_OR_NULL, "description": (
            f"Of the {ALTERNATIVE_CANDIDATES} nearest sites matching kind and amenity within the query's radius "
            f"(max_distance_m, or what arrive_within allows), never beyond {ALTERNATIVE_RADIUS_M / 1000:g} km: the "
            "one closed at `at` with the earliest next_open (ties: the nearer); null if none opens within 8 days")},
        "nearest_open_any": {"anyOf": _SITE_OR_NULL, "description": (
            "The nearest site open at `at` of any kind and amenities, at any distance; null if none is")}}}
BASEMAP_SCHEMA = {"type": "object", "required": ["tiles"], "additionalProperties": False, "properties": {"tiles": {
    "description": "null when the service draws no tiles",
    "oneOf": [{"type": "null"}, {
        "type": "object", "additionalProperties": False,
        "required": ["url", "datum", "subdomains", "max_zoom", "name", "attribution", "attribution_url"],
        "properties": {
            "url": {"type": "string", "description": "Tile URL template: {s} subdomain, {z}/{x}/{y}"},
            "datum": {"enum": ["wgs84", "gcj02"],
                      "description": "Datum of the tiles' streets: draw every WGS-84 coordinate converted into it"},
            "subdomains": STRING, "max_zoom": {"type": "integer", "minimum": 0, "maximum": 30}, "name": STRING,
            "attribution": {"type": "object", "required": ["zh", "en"], "additionalProperties": False,
                            "properties": {"zh": STRING, "en": STRING},
                            "description": "Plain text (not HTML) the tiles' licence asks to show"},
            "attribution_url": NULLABLE_STRING}}]}}}
_WINDOW_H = MAY_BE_CLOSED_WINDOW.total_seconds() / 3600
LIVE_STATUS_SCHEMA = {
    "type": "object", "additionalProperties": False,
    "required": ["state", "label", "seats_free", "capacity", "posted_at", "expires_at"],
    "description": (
        "What the site's operator posted about it now, while in force (posted_at <= the query's time < "
        f"expires_at; at most {LIVE_MAX_TTL.total_seconds() / 3600:g} h): closed_now takes the site out of "
        f"open-only answers; full keeps it, ranked as if it were {FULL_TOLERANCE_M:g} m farther (so after the "
        f"non-full sites at most {FULL_TOLERANCE_M:g} m farther than it)"),
    "properties": {"state": {"type": "string", "enum": list(LIVE_STATES)}, "label": LABELS,
                   "seats_free": {"type": ["integer", "null"], "minimum": 0},
                   "capacity": {"type": ["integer", "null"], "minimum": 1},
                   "posted_at": {**TIME, "type": "string"}, "expires_at": {**TIME, "type": "string"}}}
MAY_BE_CLOSED_SCHEMA = {
    "type": "object", "additionalProperties": False, "required": ["reports", "since"],
    "description": (
        f"Set when at least {MAY_BE_CLOSED_REPORTS} couriers (different clients) reported the site closed when "
        f"they arrived within the last {_WINDOW_H:g} h, after its operator last posted a live status: "
        "\"可能已关闭 / may be closed\" until the operator posts or the reports are older than that"),
    "properties": {"reports": {"type": "integer", "minimum": MAY_BE_CLOSED_REPORTS},
                   "since": {**TIME, "type": "string"}}}
WARNING_SCHEMA = {"type": "object", "required": ["code", "en", "zh"],
                  "properties": {"code": STRING, "en": STRING, "zh": STRING}}
LINK_SCHEMA = {"type": "object", "required": ["rel", "href"],
               "properties": {"rel": STRING, "href": STRING, "type": STRING, "title": STRING}}

ACCOUNT_SCHEMA = {"type": "object", "required": ["name", "login", "role", "districts", "has_password", "locked",
                                                 "disabled", "home_district"],
                  "additionalProperties": False, "properties": {
    "name": STRING, "login": NULLABLE_STRING, "role": {"type": "string", "enum": list(ROLES)},
    "districts": {"type": "array", "items": STRING, "description": "A district_admin's adcodes"},
    "has_password": {"type": "boolean"},
    "locked": {"type": "boolean", "description": "Locked after too many wrong passwords; an admin unlocks it"},
    "disabled": {"type": "boolean", "description": "Disabled by union staff: no token, password or session works"},
    "home_district": {**NULLABLE_STRING, "description": "An operator account's district (its creator's)"}}}
SESSION_SCHEMA = {"type": "object", "required": ["signed_in", "account", "via", "csrf_token", "expires_at"],
                  "additionalProperties": False, "properties": {
    "signed_in": {"type": "boolean"},
    "account": {"anyOf": [{"$ref": "#/components/schemas/Account"}, {"type": "null"}]},
    "via": {"type": ["string", "null"], "enum": ["session", "token", None]},
    "csrf_token": {"type": ["string", "null"], "description": (
        "Send it as X-CSRF-Token on every state-changing request made with the session cookie")},
    "expires_at": {**TIME, "description": "When the session ends at the latest (it ends sooner when unused)"}}}

NUMBERS = {"type": "array", "items": {"type": "number"}}
SERVICE_AREA_SCHEMA = {
    "type": "object", "required": ["code", "name_zh", "name_en", "bbox", "centre"], "additionalProperties": False,
    "description": "The area the service covers (GEOSERVICE_SERVICE_AREA; by default Beijing's 16 districts)",
    "properties": {"code": STRING, "name_zh": STRING, "name_en": STRING,
                   "bbox": {**NUMBERS, "minItems": 4, "maxItems": 4,
                            "description": "lon_min, lat_min, lon_max, lat_max (WGS-84)"},
                   "centre": {**NUMBERS, "minItems": 2, "maxItems": 2,
                              "description": "lon, lat (WGS-84) where maps open"}}}

# The licence of the site data that downloads and the feed carry (the bundled layers' data: see
# geoservice/data/layers/README.md).
DATA_LICENSE = {"id": "CC0-1.0", "url": "https://creativecommons.org/publicdomain/zero/1.0/",
                "zh": "站点数据按 CC0-1.0 公共领域贡献发布(演示数据为模拟数据)",
                "en": "Site data released under CC0-1.0 (public domain dedication); the demo data is simulated"}
LICENSE_SCHEMA = {"type": "object", "required": ["id", "url", "zh", "en"], "additionalProperties": False,
                  "properties": {"id": STRING, "url": STRING, "zh": STRING, "en": STRING}}
FEED_ENTRY_SCHEMA = {
    "type": "object", "required": ["cursor", "site_id", "alert_id", "kind", "at", "feature", "alert"],
    "additionalProperties": False,
    "properties": {"cursor": STRING,
                   "site_id": {"anyOf": [STRING, {"type": "null"}],
                               "description": "The site changed (null for an entry about a weather alert)"},
                   "alert_id": {"anyOf": [{"type": "integer"}, {"type": "null"}],
                                "description": "The weather alert declared, changed or deleted (kinds alert and "
                                               "alert_removed; null otherwise)"},
                   "kind": {"type": "string", "enum": list(FEED_KINDS),
                            "description": "removed is reserved; skip kinds you do not know"},
                   "at": INSTANT,
                   "feature": {"anyOf": [{"$ref": "#/components/schemas/Site"}, {"type": "null"}],
                               "description": "The site after the change (null for a removal or an alert entry)"},
                   "alert": {"anyOf": [{"$ref": "#/components/schemas/Alert"}, {"type": "null"}],
                             "description": "The alert after the change (null once deleted, or for a site entry)"}}}
FEED_SCHEMA = {
    "type": "object", "required": ["entries", "next", "has_more", "license"], "additionalProperties": False,
    "properties": {"entries": {"type": "array", "items": FEED_ENTRY_SCHEMA},
                   "next": {"type": "string", "description": "Pass as since to resume after the last entry"},
                   "has_more": {"type": "boolean"}, "license": LICENSE_SCHEMA}}

_CURSOR = {"type": "string", "pattern": "^[0-9a-z]{1,12}$"}
WEBHOOK_SCHEMA = {
    "type": "object", "additionalProperties": False,
    "required": ["id", "url", "created_by", "created_at", "delivered_through", "pending_through", "attempts",
                 "next_attempt_at", "last_error", "last_success_at", "dead_letters"],
    "properties": {"id": {"type": "integer"}, "url": STRING, "created_by": STRING, "created_at": INSTANT,
                   "delivered_through": {**_CURSOR, "description": "Feed cursor delivered (or given up) so far"},
                   "pending_through": {"anyOf": [_CURSOR, {"type": "null"}],
                                       "description": "End of the batch being retried"},
                   "attempts": {"type": "integer", "description": "Failed attempts of the pending batch"},
                   "next_attempt_at": {"anyOf": [INSTANT, {"type": "null"}]},
                   "last_error": NULLABLE_STRING, "last_success_at": {"anyOf": [INSTANT, {"type": "null"}]},
                   "dead_letters": {"type": "integer", "description": "Dead letters not replayed yet"}}}
DEAD_LETTER_SCHEMA = {
    "type": "object", "additionalProperties": False,
    "required": ["id", "webhook_id", "first", "last", "entries", "attempts", "last_error", "failed_at",
                 "replay_requested_at", "replayed_at"],
    "properties": {"id": {"type": "integer"}, "webhook_id": {"type": "integer"}, "first": _CURSOR,
                   "last": _CURSOR, "entries": {"type": "integer"}, "attempts": {"type": "integer"},
                   "last_error": STRING, "failed_at": INSTANT,
                   "replay_requested_at": {"anyOf": [INSTANT, {"type": "null"}]},
                   "replayed_at": {"anyOf": [INSTANT, {"type": "null"}]}}}


ALERT_HOURS_SCHEMA: dict[str, Any] = {
    "type": "object", "required": ["hours", "types", "min_level"], "additionalProperties": False,
    "description": "Hours that replace opening_hours while a weather alert of one of these types, at this level or "
                   "above, covers the site's district",
    "properties": {"hours": {"type": "string", "format": "opening-hours", "minLength": 1, "maxLength": 1000,
                             "description": "OpenStreetMap opening_hours syntax, checked as opening_hours is"},
                   "types": {"type": "array", "minItems": 1, "items": {"type": "string", "enum": list(ALERT_TYPES)}},
                   "min_level": {"type": "string", "enum": list(ALERT_LEVELS)}}}
ALERT_SCHEMA: dict[str, Any] = {
    "type": "object", "additionalProperties": False,
    "required": ["id", "type", "type_label", "level", "level_label", "districts", "start", "end", "created_by",
                 "created_at"],
    "properties": {"id": {"type": "integer"}, "type": {"type": "string", "enum": list(ALERT_TYPES)},
                   "type_label": LABELS, "level": {"type": "string", "enum": list(ALERT_LEVELS)},
                   "level_label": LABELS, "districts": {"type": "array", "items": STRING}, "start": INSTANT,
                   "end": INSTANT, "created_by": STRING, "created_at": TIME}}


SCHEMAS: dict[str, dict[str, Any]] = {
    "Account": ACCOUNT_SCHEMA, "Session": SESSION_SCHEMA, "Site": SITE_SCHEMA, "ServiceArea": SERVICE_AREA_SCHEMA,
    "Closure": CLOSURE_SCHEMA, "Change": CHANGE_SCHEMA, "Report": REPORT_SCHEMA,
    "Warning": WARNING_SCHEMA, "Link": LINK_SCHEMA, "Alternatives": ALTERNATIVES_SCHEMA,
    "LiveStatus": LIVE_STATUS_SCHEMA, "MayBeClosed": MAY_BE_CLOSED_SCHEMA, "Changes": FEED_SCHEMA,
    "License": LICENSE_SCHEMA, "Webhook": WEBHOOK_SCHEMA, "DeadLetter": DEAD_LETTER_SCHEMA,
    "AlertHours": ALERT_HOURS_SCHEMA, "Alert": ALERT_SCHEMA,
    "Problem": {"type": "object", "required": ["type", "title", "status", "detail"], "properties": {
        "type": STRING, "title": STRING, "status": {"type": "integer"}, "detail": STRING,
        "instance": NULLABLE_STRING,
        "errors": {"type": "array", "items": {"type": "object", "required": ["field", "reason"],
                                              "properties": {"field": STRING, "reason": STRING}}}}},
}


def walk_model_answer(described: dict[str, Any], hits: Sequence[Any]) -> dict[str, Any]:
    """The answer's ``walk_model``: the model's description, with ``model`` ``straight_line`` and a ``reason``
    when a network is loaded but no result could be measured on it (each feature says its own too)."""
    out = dict(described)
    if described.get("model") == "network" and hits and all(h.walk_model != "network" for h in hits):
        out["model"] = "straight_line"
        out["reason"] = sorted({str(h.walk_reason) for h in hits if h.walk_reason})[0]
    return out
