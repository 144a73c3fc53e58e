"""Prometheus metrics and one structured (JSON) access-log line per request.

With several gunicorn workers, set ``PROMETHEUS_MULTIPROC_DIR`` (``geoservice serve --workers N`` does) so every
worker's counters are aggregated when ``/metrics`` is scraped, whichever worker answers.
"""
from __future__ import annotations

import json
import logging
import os
import time

from flask import Blueprint, Flask, Response, g, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest

bp = Blueprint("metrics", __name__)
ACCESS_LOG = logging.getLogger("geoservice.access")

REQUESTS = Counter("geoservice_http_requests_total", "HTTP requests", ["endpoint", "method", "status"])
LATENCY = Histogram("geoservice_http_request_seconds", "HTTP request latency", ["endpoint"],
                    buckets=(0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5))


def _registry() -> CollectorRegistry:
    from prometheus_client import REGISTRY

    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return registry
    return REGISTRY


@bp.get("/metrics")
def metrics() -> Response:
    """Prometheus text exposition."""
    return Response(generate_latest(_registry()), mimetype=CONTENT_TYPE_LATEST)


def init_app(app: Flask) -> None:
    """Time every request, count it by route template (not raw path: bounded label values), log it as JSON."""

    @app.before_request
    def _start() -> None:
        g.started = time.perf_counter()

    @app.after_request
    def _finish(resp: Response) -> Response:
        elapsed = time.perf_counter() - g.get("started", time.perf_counter())
        endpoint = request.url_rule.rule if request.url_rule else "unmatched"
        REQUESTS.labels(endpoint, request.method, str(resp.status_code)).inc()
        LATENCY.labels(endpoint).observe(elapsed)
        if ACCESS_LOG.isEnabledFor(logging.INFO):
            # Path only: query strings carry locations, and Authorization is never logged.
            ACCESS_LOG.info(json.dumps({
                "ts": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "method": request.method, "path": request.path,
                "endpoint": endpoint, "status": resp.status_code, "ms": round(elapsed * 1000, 2),
                "bytes": resp.calculate_content_length(), "remote": request.remote_addr,
            }))
        return resp

    app.register_blueprint(bp)
