"""Live status of a site (issue 14): ``PUT``/``DELETE /api/v1/operator/sites/{site_id}/status``.

An operator (or union staff) says how the site is right now — ``open``, ``full`` or ``closed_now``, optionally
with seats free and capacity — for ``expires_in_minutes`` (default 120, at most 720). The public answers carry
it while it is in force (``live_status``): ``closed_now`` takes the site out of open-only answers, ``full``
ranks it after non-full sites up to 300 m farther. ``DELETE`` clears it at once. Both confirm the site: couriers'
"closed when I arrived" marks received before no longer count. Each post is in the site's audit trail; neither
changes the site's version, so no ``If-Match`` is needed (a device at the door posts without reading first).
Authorisation is the operators' API's: a token of the site's operator or of an admin, or a token limited to this
one site (``geoservice operators token issue NAME --site ID``), which may do nothing else.
"""
from __future__ import annotations

import datetime as dt
from typing import Any

from flask import Blueprint, Response

from geoservice import serialize as S
from geoservice.api import spec as P
from geoservice.api.body import json_object
from geoservice.api.context import services
from geoservice.api.jsonprovider import json_response
from geoservice.api.operators import JSON_TYPES, SITE_ID, TAGS, TOKEN, me, my_site
from geoservice.hours import now_local
from geoservice.model import (
    FULL_TOLERANCE_M,
    LIVE_DEFAULT_TTL,
    LIVE_MAX_TTL,
    LIVE_STATES,
    MAX_SEATS,
    LiveView,
)
from geoservice.validation import Problem, ValidationFailed

bp = Blueprint("live", __name__)
API = P.Api()

DEFAULT_MINUTES = int(LIVE_DEFAULT_TTL.total_seconds() // 60)
MAX_MINUTES = int(LIVE_MAX_TTL.total_seconds() // 60)

STATUS_BODY = P.JsonBody((
    P.EnumField("state", "open; full (still listed, marked, ranked after non-full sites up to "
                         f"{FULL_TOLERANCE_M:g} m farther); closed_now (left out of open-only answers)",
                required=True, values=LIVE_STATES),
    P.IntegerField("seats_free", "Seats free now; with full it can only be 0; not more than capacity",
                   nullable=True, lo=0, hi=MAX_SEATS),
    P.IntegerField("capacity", "Seats in all", nullable=True, lo=1, hi=MAX_SEATS),
    P.IntegerField("expires_in_minutes", f"How long the state holds (default {DEFAULT_MINUTES}); it then "
                                         "vanishes by itself", lo=1, hi=MAX_MINUTES),
), "The site's state now. Rules between fields: seats_free at most capacity; full with seats_free only 0.",
    JSON_TYPES)
LIVE_OUT = {"application/json": {
    "type": "object", "required": ["site_id", "live_status", "may_be_closed"], "additionalProperties": False,
    "properties": {"site_id": {"type": "string"},
                   "live_status": {"anyOf": [{"$ref": "#/components/schemas/LiveStatus"}, {"type": "null"}]},
                   "may_be_closed": {"anyOf": [{"$ref": "#/components/schemas/MayBeClosed"}, {"type": "null"}]}}}}


def check_status(body: dict[str, Any]) -> None:
    """The rules between fields that the schema cannot state (422 naming the field)."""
    problems: list[Problem] = []
    seats, capacity = body.get("seats_free"), body.get("capacity")
    if seats is not None and capacity is not None and seats > capacity:
        problems.append(Problem("seats_free", "is more than capacity"))
    if body["state"] == "full" and seats not in (None, 0):
        problems.append(Problem("seats_free", "a full site has 0 seats free"))
    if problems:
        raise ValidationFailed(problems)


def live_response(site_id: str, view: LiveView) -> Response:
    """The site's live view as the public answers show it."""
    body = {"site_id": site_id, "live_status": S.live_status(view.status),
            "may_be_closed": S.may_be_closed(view.may_be_closed)}
    return json_response(body)


@API.route(bp, P.Operation(
    "PUT", "/api/v1/operator/sites/{site_id}/status", "Say how my site is right now (live status)",
    description=f"open, full or closed_now, for expires_in_minutes (default {DEFAULT_MINUTES}, at most "
                f"{MAX_MINUTES}); it replaces any status in force and vanishes by itself when it expires. "
                "closed_now leaves the site out of open-only answers; full keeps it listed, marked, and ranked as "
                f"if it were {FULL_TOLERANCE_M:g} m farther. Confirms the site: couriers' earlier \"closed when I "
                "arrived\" marks stop counting. Audited; the site's version (ETag) does not change.",
    params=(SITE_ID,), body=STATUS_BODY.body(), tags=TAGS, security=TOKEN, operation_id="put_live_status",
    ok={200: P.Response("The status now in force", LIVE_OUT)}, errors=(403, 404, 415, 422)))
def put_status(args: dict[str, Any], site_id: str) -> Response:
    """Post my site's live status."""
    op = me()
    site = my_site(op, site_id)
    body = STATUS_BODY.parse(json_object(JSON_TYPES))
    check_status(body)
    minutes = body.get("expires_in_minutes") or DEFAULT_MINUTES
    live = services().live
    now = now_local()
    live.post(site.id, body["state"], op.name, now, dt.timedelta(minutes=minutes), body.get("seats_free"),
              body.get("capacity"))
    return live_response(site.id, live.view(site.id, now))


@API.route(bp, P.Operation(
    "DELETE", "/api/v1/operator/sites/{site_id}/status", "Clear my site's live status",
    description="Ends the status in force now (if any) and confirms the site, as a post does. Audited.",
    params=(SITE_ID,), tags=TAGS, security=TOKEN, operation_id="clear_live_status",
    ok={200: P.Response("No status in force any more", LIVE_OUT)}, errors=(403, 404)))
def clear_status(args: dict[str, Any], site_id: str) -> Response:
    """Clear my site's live status."""
    op = me()
    site = my_site(op, site_id)
    live = services().live
    now = now_local()
    live.clear(site.id, op.name, now)
    return live_response(site.id, live.view(site.id, now))
