"""The OpenAPI 3.1 document of ``/api/v1``, served at ``/api/v1/openapi.json``, built from the same declarations
that validate requests (:mod:`geoservice.api.spec`) and the same schemas that describe answers
(:mod:`geoservice.serialize`): what it says is what the service does. The fuzz test
(tests/resilience/test_fuzz_openapi.py) runs schemathesis with every check against it."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app

from geoservice import serialize as S
from geoservice.api import spec as P
from geoservice.api.context import services
from geoservice.api.jsonprovider import json_response
from geoservice.walk import WalkModel

bp = Blueprint("openapi", __name__)
API = P.Api()

SECURITY = {"operatorToken": {
    "type": "http", "scheme": "bearer",
    "description": "An operator's token, issued once by `geoservice operators token issue NAME`. Operators reach "
                   "their assigned sites; admins (union staff) every site and /api/v1/admin/*. A request with a "
                   "token needs no CSRF token."},
    "operatorSession": {
    "type": "apiKey", "in": "cookie", "name": "gs_session",
    "description": "The session cookie set by POST /api/v1/session (login name and password): HttpOnly, "
                   "SameSite=Strict, Secure over HTTPS; it ends after a while unused and after a maximum lifetime. "
                   "Every state-changing request made with it needs the header X-CSRF-Token with the csrf_token "
                   "of GET /api/v1/session (403 without it)."}}


def document(apis: list[P.Api], walk: WalkModel) -> dict[str, Any]:
    """The document for these APIs; the walk model's numbers are the running configuration."""
    paths: dict[str, Any] = {}
    for api in apis:
        for path, ops in api.paths().items():
            paths.setdefault(path, {}).update(ops)
    return {
        "openapi": "3.1.0",
        "info": {"title": "geoservice — rest sites for outdoor workers (Beijing)", "version": "1.0.0",
                 "description": "Nearest open warm stations (暖心驿站), mother-and-baby rooms (母婴关爱室) and "
                                "workers' homes (职工之家). Times are Asia/Shanghai; a time without an offset is "
                                "Beijing local time. Opening hours follow OSM syntax with China's official holiday "
                                "calendar (public holidays and make-up working days). Walking time is "
                                f"{walk.legend()['en']}"
                                f"{' (no road network)' if not walk.routes_by_network else ''}; each nearest "
                                "answer says its walk_model (network or straight_line, with the reason of a "
                                "fallback). Unknown, empty or repeated parameters "
                                "are 400; values outside a range or vocabulary 422; every error is "
                                "application/problem+json (RFC 9457). With read replicas, the answer to a "
                                "signed-in write also sets the cookie `gs_wal` (HttpOnly, SameSite=Strict, "
                                "60 s): sent back, it keeps that caller's reads on data at least as new as "
                                "its write, on any server.",
                 "license": {"name": "MIT"}},
        "paths": paths,
        "tags": [{"name": "operators", "description": "Station operators keep their sites current (token required)"},
                 {"name": "planners", "description": "Coverage gaps by district and hour, and where to add sites"}],
        "components": {"schemas": {**S.SCHEMAS, "Labels": S.LABELS}, "securitySchemes": SECURITY},
    }


@API.route(bp, P.Operation(
    "GET", "/api/v1/openapi.json", "This document",
    ok={200: P.Response("The OpenAPI 3.1 document", {"application/vnd.oai.openapi+json;version=3.1":
                                                     {"type": "object"}})}))
def openapi(args: dict[str, Any]) -> Response:
    """The OpenAPI document."""
    apis: list[P.Api] = current_app.extensions["geoservice.apis"]
    return json_response(document(apis, services().walk), mimetype="application/vnd.oai.openapi+json;version=3.1")
