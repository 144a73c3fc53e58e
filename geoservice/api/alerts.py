"""Weather alerts (issue 14 item 1): ``/api/v1/alerts``.

Anyone reads the alerts in force or upcoming; admins declare, shorten or extend and delete them, and a district
admin does so only for alerts wholly inside its districts (403 naming the others). While an alert is in force, the
sites whose ``alert_hours`` it triggers are open by those hours (:mod:`geoservice.services.alerts`).
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
from geoservice.api.operators import JSON_TYPES, TOKEN, me
from geoservice.hours import now_local
from geoservice.model import ALERT_LEVELS, ALERT_MAX_DISTRICTS, ALERT_MAX_LENGTH, ALERT_TYPES
from geoservice.services.alerts import AlertService
from geoservice.validation import Problem, ValidationFailed

bp = Blueprint("alerts", __name__)
API = P.Api()
TAGS = ("alerts",)

ALERT_BODY = P.JsonBody((
    P.EnumField("type", "寒潮 cold_wave, 高温 heat, 暴雨 rainstorm, 大风 gale, 暴雪 blizzard (labels in "
                        "/api/v1/vocabulary)", required=True, values=ALERT_TYPES),
    P.EnumField("level", "blue < yellow < orange < red", required=True, values=ALERT_LEVELS),
    P.CodesField("districts", "District adcodes the alert covers (at least one)", required=True,
                 max_items=ALERT_MAX_DISTRICTS),
    P.TimeField("start", "When it starts (Beijing time without an offset); now when left out"),
    P.TimeField("end", f"When it ends: after start, at most {ALERT_MAX_LENGTH.days} days later", required=True),
), "A weather alert. Rules between fields: end after start, at most "
   f"{ALERT_MAX_LENGTH.days} days after it.", JSON_TYPES)
END_BODY = P.JsonBody((
    P.TimeField("end", f"The new end: after the alert's start, at most {ALERT_MAX_LENGTH.days} days after it "
                       "(now ends it)", required=True),
), "Move the alert's end.", JSON_TYPES)
ALERT_ID = P.PathInt("alert_id", "Alert id")
ALERT_OUT = {"application/json": {"$ref": "#/components/schemas/Alert"}}
ALERT_LIST = {"application/json": {
    "type": "object", "required": ["items"], "additionalProperties": False,
    "properties": {"items": {"type": "array", "items": {"$ref": "#/components/schemas/Alert"}}}}}


def alert_service() -> AlertService:
    """The alerts' workflows over this request's store."""
    return AlertService(services().sites)


def _json(body: Any, status: int = 200) -> Response:
    return json_response(body, status=status)


def check_span(start: dt.datetime, end: dt.datetime) -> None:
    """End after start and within the maximum length (422 naming end)."""
    if end <= start:
        raise ValidationFailed([Problem("end", "must be after start")])
    if end - start > ALERT_MAX_LENGTH:
        raise ValidationFailed([Problem("end", f"at most {ALERT_MAX_LENGTH.days} days after start")])


@API.route(bp, P.Operation(
    "GET", "/api/v1/alerts", "Weather alerts in force now or upcoming",
    description="Each with its type and level (labels in both languages), districts, start and end.",
    tags=TAGS, operation_id="list_alerts", public_read=True,
    ok={200: P.Response("Alerts in force or upcoming, by start", ALERT_LIST)}))
def list_alerts(args: dict[str, Any]) -> Response:
    """Alerts in force now or starting later."""
    return _json({"items": [S.alert(a) for a in alert_service().active(now_local())]})


@API.route(bp, P.Operation(
    "POST", "/api/v1/alerts", "Declare a weather alert (admins; district admins for their districts)",
    description="The covered sites' alert hours apply from start to end at once (their open intervals are "
                "re-computed in the same transaction).",
    body=ALERT_BODY.body(), tags=TAGS, security=TOKEN, operation_id="declare_alert",
    ok={201: P.Response("The alert", ALERT_OUT)}, errors=(403, 404, 415, 422)))
def declare_alert(args: dict[str, Any]) -> Response:
    """Declare an alert."""
    op = me()
    body = ALERT_BODY.parse(json_object(JSON_TYPES))
    start = body.get("start") or now_local()
    check_span(start, body["end"])
    alert = alert_service().declare(op, body["type"], body["level"], body["districts"], start, body["end"])
    return _json(S.alert(alert), 201)


@API.route(bp, P.Operation(
    "GET", "/api/v1/alerts/{alert_id:int}", "One weather alert", params=(ALERT_ID,), tags=TAGS,
    operation_id="get_alert", public_read=True, ok={200: P.Response("The alert", ALERT_OUT)}, errors=(404,)))
def get_alert(args: dict[str, Any], alert_id: int) -> Response:
    """One alert, ended or not."""
    return _json(S.alert(alert_service().get(alert_id)))


@API.route(bp, P.Operation(
    "PATCH", "/api/v1/alerts/{alert_id:int}",
    "Move a weather alert's end (admins; district admins for their districts)",
    params=(ALERT_ID,), body=END_BODY.body(), tags=TAGS, security=TOKEN, operation_id="change_alert_end",
    ok={200: P.Response("The alert", ALERT_OUT)}, errors=(403, 404, 415, 422)))
def change_alert_end(args: dict[str, Any], alert_id: int) -> Response:
    """Shorten or extend an alert."""
    op = me()
    body = END_BODY.parse(json_object(JSON_TYPES))
    return _json(S.alert(alert_service().change_end(op, alert_id, body["end"])))


@API.route(bp, P.Operation(
    "DELETE", "/api/v1/alerts/{alert_id:int}",
    "Delete a weather alert (admins; district admins of all its districts)",
    params=(ALERT_ID,), tags=TAGS, security=TOKEN, operation_id="delete_alert",
    ok={204: P.Response("Deleted: the sites' normal hours apply again")}, errors=(403, 404)))
def delete_alert(args: dict[str, Any], alert_id: int) -> Response:
    """Delete an alert."""
    alert_service().delete(me(), alert_id)
    return Response(status=204)
