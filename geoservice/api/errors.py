"""RFC 9457 problem+json for every error the API returns, from one handler table; never a stack trace.

Every error the service raises is a :class:`~geoservice.errors.GeoserviceError` carrying its status, title,
problems and protocol headers (Retry-After, WWW-Authenticate, ETag), so this is the only place that turns an
exception into an answer.
"""
from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException

from geoservice.api.jsonprovider import json_response
from geoservice.errors import GeoserviceError

LOGGER = logging.getLogger(__name__)
PROBLEM_TYPE = "https://geoservice.example/problems/"


def problem(status: int, title: str, detail: str, errors: list[dict[str, Any]] | None = None,
            headers: dict[str, str] | None = None, slug: str | None = None) -> Response:
    """A problem+json response."""
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE + (slug or title.lower().replace(" ", "-")),
        "title": title,
        "status": status,
        "detail": detail,
        "instance": request.path if request else None,
    }
    if errors:
        body["errors"] = errors
    resp = json_response(body, status=status, mimetype="application/problem+json")
    for k, v in (headers or {}).items():
        resp.headers[k] = v
    return resp


def register_error_handlers(app: Flask) -> None:
    """The handler table: the service's errors, HTTP errors from Werkzeug (404 route, 405, 413), anything else."""

    @app.errorhandler(GeoserviceError)
    def _service_error(exc: GeoserviceError) -> Response:
        return problem(exc.status, exc.title, exc.detail, exc.problems, exc.headers)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Response:
        status = exc.code or 500
        # Keep protocol headers such as Allow (405) and Retry-After; the body is ours.
        headers = {k: v for k, v in exc.get_headers() if k.lower() != "content-type"}
        return problem(status, exc.name, exc.description or exc.name, headers=headers)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        LOGGER.error("unhandled error on %s", request.path, exc_info=exc)
        return problem(500, "Internal error", "An unexpected error occurred; it has been logged.")
