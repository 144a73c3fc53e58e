"""Couriers' problem reports: ``POST /api/v1/sites/{id}/reports``, no account, rate-limited per client.

A courier tells us a site was closed when they arrived, or that an amenity was missing (with an optional note of
at most 500 characters). Nothing about the reporter is stored. The operators of the site see open reports
(``GET /api/v1/operator/reports``) and resolve them; the public site features carry ``unresolved_reports``.

Rate limit: token buckets per client IP (``request.remote_addr``), by default 5 a minute and 30 a day, one limit
for the whole service — the buckets are shared by every worker process on the host (the ``reports`` scope of
:mod:`geoservice.api.ratelimit`); past it, 429 with ``Retry-After``. Only reports that would be accepted are
counted (a malformed body or an unknown site is refused before the limiter). Behind a reverse proxy set
``GEOSERVICE_PROXY_HOPS`` so ``remote_addr`` is the client's address.
"""
from __future__ import annotations

import datetime as dt

from flask import Blueprint, Response, current_app, json, request

from geoservice.api import params as P
from geoservice.api.body import json_object
from geoservice.api.operators import reject_unknown
from geoservice.api.ratelimit import TooManyRequests, shared_limiter
from geoservice.errors import InvalidInput, NotFound, Unprocessable
from geoservice.hours import TZ, now_local
from geoservice.limiter import SharedLimiter
from geoservice.model import AMENITIES, REPORT_TYPES
from geoservice.store.base import Report, Store

bp = Blueprint("reports", __name__)

DEFAULT_LIMITS: tuple[tuple[int, float], ...] = ((5, 60.0), (30, 86400.0))
MAX_NOTE = 500
FIELDS = ("type", "amenity", "note", "observed_at", "lang")
MAX_AGE = dt.timedelta(days=7)
MAX_CLOCK_SKEW = dt.timedelta(minutes=10)


def limiter() -> SharedLimiter:
    """The reports limiter (``app.config["GEOSERVICE_REPORT_LIMITS"]`` overrides the default limits)."""
    return shared_limiter(current_app, "reports", current_app.config.get("GEOSERVICE_REPORT_LIMITS", DEFAULT_LIMITS))


def _bad(field: str, reason: str) -> Unprocessable:
    return Unprocessable(f"{field}: {reason}", [{"field": field, "reason": reason}])


def parse_report(site_id: str, body: object, now: dt.datetime) -> Report:
    """Check a report body as the couriers' page sends it; every problem is a 422 naming the field."""
    if not isinstance(body, dict):
        raise InvalidInput("the body must be a JSON object", [{"field": "body", "reason": "not a JSON object"}])
    reject_unknown(body, FIELDS)
    rtype = body.get("type")
    if rtype not in REPORT_TYPES:
        raise _bad("type", f"must be one of {', '.join(REPORT_TYPES)}")
    amenity = body.get("amenity")
    if rtype == "amenity_missing":
        if amenity not in AMENITIES:
            raise _bad("amenity", f"which amenity is missing: one of {', '.join(AMENITIES)}")
    elif amenity is not None:
        raise _bad("amenity", "only with type amenity_missing")
    note = body.get("note")
    if note is not None:
        if not isinstance(note, str) or len(note.strip()) > MAX_NOTE:
            raise _bad("note", f"a string of at most {MAX_NOTE} characters")
        if any(ord(ch) < 32 and ch not in "\n\t" for ch in note):
            raise _bad("note", "contains control characters")
        note = note.strip() or None
    lang = body.get("lang")
    if lang is not None and lang not in ("zh", "en"):
        raise _bad("lang", "must be zh or en")
    observed = now
    raw = body.get("observed_at")
    if raw is not None:
        if not isinstance(raw, str):
            raise _bad("observed_at", "must be an ISO 8601 time string")
        try:
            observed = dt.datetime.fromisoformat(raw.strip())
        except ValueError:
            raise _bad("observed_at", f"{raw[:40]!r} is not an ISO 8601 time") from None
        observed = observed.replace(tzinfo=TZ) if observed.tzinfo is None else observed.astimezone(TZ)
        if observed > now + MAX_CLOCK_SKEW:
            raise _bad("observed_at", "is in the future")
        if observed < now - MAX_AGE:
            raise _bad("observed_at", "is more than 7 days ago")
    return Report(site_id=site_id, type=rtype, observed_at=observed, amenity=amenity, note=note, lang=lang)


@bp.post("/api/v1/sites/<site_id>/reports")
def post_report(site_id: str) -> Response:
    """A courier reports a problem with a site (no account; rate-limited per client address)."""
    P.check_known(request, ())
    report = parse_report(site_id, json_object(), now_local())
    store: Store = current_app.extensions["geoservice.store"]
    site = store.get_site(site_id) if len(site_id) <= 64 else None
    if site is None:
        raise NotFound(f"no site with id {site_id[:64]!r}")
    wait = limiter().hit(request.remote_addr or "unknown")
    if wait is not None:
        raise TooManyRequests(wait, "reports")
    saved = store.add_report(report)
    return Response(json.dumps({
        "id": saved.id, "site_id": saved.site_id, "type": saved.type, "amenity": saved.amenity, "note": saved.note,
        "observed_at": saved.observed_at.astimezone(TZ).isoformat(timespec="seconds"),
        "received_at": saved.received_at.astimezone(TZ).isoformat(timespec="seconds") if saved.received_at else None,
        "status": "open"}, ensure_ascii=False), status=201, mimetype="application/json")
