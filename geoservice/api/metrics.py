"""Prometheus metrics and one structured (JSON) access-log line per request.

With several gunicorn workers, set ``PROMETHEUS_MULTIPROC_DIR`` (``geoservice serve --workers N`` does) so every
worker's counters are aggregated when ``/metrics`` is scraped, whichever worker answers.

Who may scrape (the counters describe traffic per route and status, which is the service operator's business):

* neither ``metrics_token`` nor ``metrics_public`` set (the default): ``/metrics`` answers 404, exactly as an
  unknown path does;
* ``metrics_token`` set (``GEOSERVICE_METRICS_TOKEN``): only with ``Authorization: Bearer <token>``, else 401
  with ``WWW-Authenticate: Bearer``; the comparison is of SHA-256 digests with ``hmac.compare_digest``, so its
  time does not depend on how much of a guess is right (nor on the token's length). Never from the URL;
* ``metrics_public`` true (``GEOSERVICE_METRICS_PUBLIC``) and no token: anyone may scrape.
"""
from __future__ import annotations

import functools
import hashlib
import hmac
import json
import logging
import os
import re
import time

from flask import Blueprint, Flask, Response, current_app, g, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from werkzeug.exceptions import NotFound

from geoservice.errors import Unauthorized
from geoservice.settings import Settings

bp = Blueprint("metrics", __name__)
ACCESS_LOG = logging.getLogger("geoservice.access")
LOGGER = logging.getLogger(__name__)

_CONVERTER = re.compile(r"<(?:[^:<>]+:)?([^<>]+)>")


@functools.cache
def _label(rule: str) -> str:
    """A route as its OpenAPI path (``/api/v1/sites/{site_id}``): one label per route, never a value."""
    return _CONVERTER.sub(r"{\1}", rule)


REQUESTS = Counter("geoservice_http_requests_total", "HTTP requests", ["endpoint", "method", "status"])
LATENCY = Histogram("geoservice_http_request_seconds", "HTTP request latency", ["endpoint"],
                    buckets=(0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5))


METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


@functools.cache
def _counted(endpoint: str, method: str, status: int) -> tuple[Counter, Histogram]:
    """The request counter and latency histogram of one label set, looked up once per worker (bounded: routes
    × methods × statuses)."""
    return REQUESTS.labels(endpoint, method, str(status)), LATENCY.labels(endpoint)


def _registry() -> CollectorRegistry:
    from prometheus_client import REGISTRY

    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return registry
    return REGISTRY


def _unauthorized() -> Unauthorized:
    return Unauthorized("send Authorization: Bearer <GEOSERVICE_METRICS_TOKEN> to read /metrics",
                        realm='Bearer realm="metrics"')


def _digest(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()


def check_scraper(settings: Settings, authorization: str | None) -> None:
    """Let the request read the metrics, or raise 404 (not enabled) / 401 (token missing or wrong)."""
    if settings.metrics_token:
        scheme, _, given = (authorization or "").strip().partition(" ")
        ok = hmac.compare_digest(_digest(given.strip()), _digest(settings.metrics_token))
        if scheme.lower() != "bearer" or not ok:
            raise _unauthorized()
    elif not settings.metrics_public:
        raise NotFound()


@bp.get("/metrics")
def metrics() -> Response:
    """Prometheus text exposition, for whoever ``check_scraper`` lets in."""
    check_scraper(current_app.extensions["geoservice.settings"], request.headers.get("Authorization"))
    return Response(generate_latest(_registry()), mimetype=CONTENT_TYPE_LATEST)


MIN_TOKEN = 16


def init_app(app: Flask) -> None:
    """Time every request, count it by route template (not raw path: bounded label values), log it as JSON."""
    settings: Settings | None = app.extensions.get("geoservice.settings")
    if settings is not None and settings.metrics_token and len(settings.metrics_token) < MIN_TOKEN:
        LOGGER.warning("GEOSERVICE_METRICS_TOKEN is shorter than %d characters: easy to guess", MIN_TOKEN)

    @app.before_request
    def _start() -> None:
        g.started = time.perf_counter()

    @app.after_request
    def _finish(resp: Response) -> Response:
        elapsed = time.perf_counter() - g.get("started", time.perf_counter())
        endpoint = _label(request.url_rule.rule) if request.url_rule else "unmatched"
        # Any token is a method to HTTP: one label for the rest, so a client cannot mint label values.
        method = request.method if request.method in METHODS else "OTHER"
        count, latency = _counted(endpoint, method, resp.status_code)
        count.inc()
        latency.observe(elapsed)
        if ACCESS_LOG.isEnabledFor(logging.INFO):
            # Path only: query strings carry locations, and Authorization is never logged.
            ACCESS_LOG.info(json.dumps({
                "ts": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "method": request.method, "path": request.path,
                "endpoint": endpoint, "status": resp.status_code, "ms": round(elapsed * 1000, 2),
                "bytes": resp.calculate_content_length(), "remote": request.remote_addr,
            }))
        return resp

    app.register_blueprint(bp)
