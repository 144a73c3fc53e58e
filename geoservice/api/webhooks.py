"""Admins' webhooks (issue 14): ``/api/v1/admin/webhooks`` — register a partner's endpoint, list, remove, see
its dead letters and replay one.

Deliveries themselves are made by ``geoservice webhooks deliver`` (:mod:`geoservice.services.webhooks`), never
inside a request. The signing secret is in the registration's answer only.
"""
from __future__ import annotations

import re
from typing import Any

from flask import Blueprint, Response

from geoservice import serialize as S
from geoservice.api import spec as P
from geoservice.api.body import json_object
from geoservice.api.context import services
from geoservice.api.jsonprovider import json_response
from geoservice.api.session import CREDENTIALS, current_operator
from geoservice.auth import require_admin
from geoservice.model import CURSOR_PATTERN, decode_cursor
from geoservice.webhook_delivery import HOOK_HEADER, KEY_HEADER, SIGNATURE_HEADER

bp = Blueprint("webhooks", __name__)
API = P.Api()
TAGS = ("admin",)
HOOK_ID = P.PathInt("webhook_id", "The webhook")
LETTER_ID = P.PathInt("letter_id", "The dead letter")

REGISTER = P.JsonBody((
    P.TextField("url", "The partner's endpoint: https:// on a public host (no user name, password or fragment)",
                required=True, max_length=2000, format="uri"),
    P.TextField("since", "Send the feed entries after this cursor (a `next` of GET /api/v1/changes; \"0\": the "
                         "whole history); omitted: only changes made from now on", max_length=12),
), "A partner's endpoint", ("application/json",))
HOOK_OUT = {"application/json": {"$ref": "#/components/schemas/Webhook"}}
HOOK_LIST = {"application/json": {"type": "object", "required": ["items"], "additionalProperties": False,
                                  "properties": {"items": {"type": "array",
                                                           "items": {"$ref": "#/components/schemas/Webhook"}}}}}
LETTER_LIST = {"application/json": {
    "type": "object", "required": ["items"], "additionalProperties": False,
    "properties": {"items": {"type": "array", "items": {"$ref": "#/components/schemas/DeadLetter"}}}}}
DELIVERIES = (f"Each delivery is a POST of JSON `{{webhook_id, idempotency_key, entries, next, license}}` "
              f"(entries as in GET /api/v1/changes) with headers `{KEY_HEADER}` (the same on every retry and "
              f"replay of a batch: apply each once), `{HOOK_HEADER}` and `{SIGNATURE_HEADER}: t=<unix>,v1=<hex>` "
              "(HMAC-SHA256 with the secret over `<t>.` + body; refuse a t more than 5 minutes old). A non-2xx "
              "answer is retried with exponential backoff; after the last attempt the batch is a dead letter.")


def _json(body: Any, status: int = 200) -> Response:
    return json_response(body, status=status)


def _admin() -> str:
    operator = current_operator()
    require_admin(operator)
    return operator.name


def _cursor(text: str | None) -> int | None:
    if text is None:
        return None
    if not re.fullmatch(CURSOR_PATTERN, text):
        raise P.bad("since", "is not a cursor of this feed", 422)
    return decode_cursor(text)


@API.route(bp, P.Operation(
    "POST", "/api/v1/admin/webhooks", "Register a partner's webhook (the change feed pushed to it)",
    description="Admins. The answer carries the signing `secret`, only this once. " + DELIVERIES,
    body=REGISTER.body(), tags=TAGS, security=CREDENTIALS,
    ok={201: P.Response("The webhook and its secret", {"application/json": {
        "type": "object", "required": ["webhook", "secret"], "additionalProperties": False,
        "properties": {"webhook": {"$ref": "#/components/schemas/Webhook"}, "secret": {"type": "string"}}}})},
    errors=(403, 415, 422)))
def register(args: dict[str, Any]) -> Response:
    """An admin registers a webhook."""
    by = _admin()
    body = REGISTER.parse(json_object())
    hook, secret = services().webhooks.register(body["url"], by, _cursor(body.get("since")))
    return _json({"webhook": S.webhook(hook), "secret": secret}, 201)


@API.route(bp, P.Operation(
    "GET", "/api/v1/admin/webhooks", "Partners' webhooks and how their deliveries go",
    description="Admins. Each with the cursor delivered so far, the batch being retried, the last error and "
                "the count of dead letters. " + DELIVERIES,
    tags=TAGS, security=CREDENTIALS, ok={200: P.Response("Every webhook", HOOK_LIST)}, errors=(403,)))
def list_hooks(args: dict[str, Any]) -> Response:
    """Every webhook."""
    _admin()
    return _json({"items": [S.webhook(h) for h in services().webhooks.all()]})


@API.route(bp, P.Operation(
    "GET", "/api/v1/admin/webhooks/{webhook_id:int}", "One webhook", params=(HOOK_ID,), tags=TAGS,
    security=CREDENTIALS, ok={200: P.Response("The webhook", HOOK_OUT)}, errors=(403, 404)))
def get_hook(args: dict[str, Any], webhook_id: int) -> Response:
    """One webhook."""
    _admin()
    return _json(S.webhook(services().webhooks.get(webhook_id)))


@API.route(bp, P.Operation(
    "DELETE", "/api/v1/admin/webhooks/{webhook_id:int}", "Remove a webhook (deliveries stop)",
    params=(HOOK_ID,), tags=TAGS, security=CREDENTIALS, ok={204: P.Response("Removed")}, errors=(403, 404)))
def remove_hook(args: dict[str, Any], webhook_id: int) -> Response:
    """Remove a webhook and its dead letters."""
    _admin()
    services().webhooks.remove(webhook_id)
    return Response(status=204)


@API.route(bp, P.Operation(
    "GET", "/api/v1/admin/webhooks/{webhook_id:int}/dead-letters", "Batches a webhook gave up on",
    params=(HOOK_ID,), tags=TAGS, security=CREDENTIALS, ok={200: P.Response("Dead letters, oldest first",
                                                                            LETTER_LIST)}, errors=(403, 404)))
def dead_letters(args: dict[str, Any], webhook_id: int) -> Response:
    """A webhook's dead letters."""
    _admin()
    return _json({"items": [S.dead_letter(d) for d in services().webhooks.dead_letters(webhook_id)]})


@API.route(bp, P.Operation(
    "POST", "/api/v1/admin/webhooks/{webhook_id:int}/dead-letters/{letter_id:int}/replay",
    "Send a dead letter again (same entries, same idempotency key)",
    description="Admins. Queued for the delivery worker, which sends it on its next pass.",
    params=(HOOK_ID, LETTER_ID), tags=TAGS, security=CREDENTIALS,
    ok={202: P.Response("Queued", {"application/json": {"$ref": "#/components/schemas/DeadLetter"}})},
    errors=(403, 404)))
def replay(args: dict[str, Any], webhook_id: int, letter_id: int) -> Response:
    """Queue a replay."""
    _admin()
    return _json(S.dead_letter(services().webhooks.replay(webhook_id, letter_id)), 202)
