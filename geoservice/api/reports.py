"""Couriers' problem reports: ``POST /api/v1/sites/{site_id}/reports``, no account, rate-limited per client.

A courier tells us a site was closed when they arrived, or that an amenity was missing (with an optional note of
at most 500 characters). Nothing about the reporter is stored but, for two hours, a keyed hash of the client's
address (never the address): three "closed when I arrived" reports from different clients within two hours mark
the site "may be closed" (:mod:`geoservice.services.live`). The operators of the site see open reports
(``GET /api/v1/operator/reports``) and resolve them; the public site features carry ``unresolved_reports``.

Rate limit: token buckets per client IP (``request.remote_addr``), by default 5 a minute and 30 a day, one limit
for the whole service — the buckets are shared by every worker process on the host (the ``reports`` scope of
:mod:`geoservice.api.ratelimit`); past it, 429 with ``Retry-After``. Only reports that would be accepted are
counted (a malformed body or an unknown site is refused before the limiter). Behind a reverse proxy set
``GEOSERVICE_PROXY_HOPS`` so ``remote_addr`` is the client's address.
"""
from __future__ import annotations

import datetime as dt
from typing import Any

from flask import Blueprint, Response, current_app, request

from geoservice import serialize as S
from geoservice.api import spec as P
from geoservice.api.body import json_object
from geoservice.api.context import services
from geoservice.api.jsonprovider import json_response
from geoservice.api.ratelimit import shared_limiter
from geoservice.errors import NotFound, TooManyRequests
from geoservice.hours import now_local
from geoservice.limiter import SharedLimiter
from geoservice.model import AMENITIES, REPORT_TYPES, Report
from geoservice.validation import Problem, ValidationFailed

bp = Blueprint("reports", __name__)
API = P.Api()

DEFAULT_LIMITS: tuple[tuple[int, float], ...] = ((5, 60.0), (30, 86400.0))
MAX_AGE = dt.timedelta(days=7)
MAX_CLOCK_SKEW = dt.timedelta(minutes=10)

REPORT_FIELDS = P.JsonBody((
    P.EnumField("type", "What was wrong", required=True, values=REPORT_TYPES),
    P.EnumField("amenity", "Which amenity was missing: required with amenity_missing, not allowed otherwise",
                values=AMENITIES),
    P.TextField("note", "What the courier saw", max_length=500, min_length=0, multiline=True),
    P.TimeField("observed_at", "When it was observed: within the last 7 days, not in the future (10 minutes of "
                               "clock skew allowed); default now"),
    P.EnumField("lang", "The courier's language", values=("zh", "en")),
))


def _variant(rtype: str, with_amenity: bool) -> dict[str, Any]:
    base = REPORT_FIELDS.schema()
    props = dict(base["properties"])
    props["type"] = {**props["type"], "enum": [rtype]}
    props["observed_at"] = {**props["observed_at"], "format": "recent-date-time"}
    required = ["type", "amenity"] if with_amenity else ["type"]
    if not with_amenity:
        props.pop("amenity")
    return {**base, "properties": props, "required": required}


# The one rule JSON Schema cannot say field by field: an amenity is named exactly when one is missing.
REPORT_SCHEMA = {"oneOf": [_variant("closed_on_arrival", False), _variant("amenity_missing", True)],
                 "description": "A courier's report; nothing about the reporter is stored"}


def limiter() -> SharedLimiter:
    """The reports limiter (``app.config["GEOSERVICE_REPORT_LIMITS"]`` overrides the default limits)."""
    return shared_limiter(current_app, "reports", current_app.config.get("GEOSERVICE_REPORT_LIMITS", DEFAULT_LIMITS))


def parse_report(site_id: str, body: dict[str, Any], now: dt.datetime) -> Report:
    """Check a report body as the couriers' page sends it; every problem is a 422 naming the field."""
    fields = REPORT_FIELDS.parse(body)
    problems: list[Problem] = []
    rtype, amenity = fields["type"], fields.get("amenity")
    if rtype == "amenity_missing" and amenity is None:
        problems.append(Problem("amenity", f"which amenity is missing: one of {', '.join(AMENITIES)}"))
    elif rtype != "amenity_missing" and amenity is not None:
        problems.append(Problem("amenity", "only with type amenity_missing"))
    observed: dt.datetime = fields.get("observed_at") or now
    if observed > now + MAX_CLOCK_SKEW:
        problems.append(Problem("observed_at", "is in the future"))
    elif observed < now - MAX_AGE:
        problems.append(Problem("observed_at", "is more than 7 days ago"))
    if problems:
        raise ValidationFailed(problems)
    return Report(site_id=site_id, type=rtype, observed_at=observed, amenity=amenity,
                  note=fields.get("note") or None, lang=fields.get("lang"))


@API.route(bp, P.Operation(
    "POST", "/api/v1/sites/{site_id}/reports", "Report a problem with a site (couriers; no account)",
    description="\"Closed when I arrived\" or \"amenity missing\". Rate-limited per client address (5 a minute, "
                "30 a day, for the whole service): past it, 429 with Retry-After. Nothing about the reporter is "
                "stored but, for two hours, a keyed hash of the client's address: three closed_on_arrival reports "
                "from different clients within two hours mark the site may_be_closed until its operator posts a "
                "live status.",
    params=(P.PathId("site_id", "Site id", what="site"),),
    body=P.Body({"application/json": REPORT_SCHEMA}),
    ok={201: P.Response("Received", {"application/json": {"$ref": "#/components/schemas/Report"}})},
    errors=(404, 415, 422, 429)))
def post_report(args: dict[str, Any], site_id: str) -> Response:
    """A courier reports a problem with a site (no account; rate-limited per client address)."""
    report = parse_report(site_id, json_object(), now_local())
    svc = services()
    if svc.sites.get_site(site_id) is None:
        raise NotFound(f"no site with id {site_id[:64]!r}")
    wait = limiter().hit(request.remote_addr or "unknown")
    if wait is not None:
        raise TooManyRequests(wait, "reports")
    saved = svc.live.add_report(report, request.remote_addr)
    return json_response(S.report(saved), status=201)
