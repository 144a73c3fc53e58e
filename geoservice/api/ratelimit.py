"""Per-client rate limits of the API, one limit for the whole service: public reads and couriers' reports.

The buckets are :class:`geoservice.limiter.SharedLimiter` scopes in one state file shared by every worker and
process of the service on the host (``GEOSERVICE_RATE_LIMIT_DIR``, by default the folder of the embedded store,
``instance/``), so ``--workers 3`` lets exactly the configured number through, not three times it. A hit costs
tens of microseconds (see :mod:`geoservice.limiter`), so public reads are limited the same way.

Keys are the client address (``request.remote_addr``). Behind a reverse proxy set ``GEOSERVICE_PROXY_HOPS`` to
the number of proxies in front, so the app reads the client's address from ``X-Forwarded-For`` (Werkzeug's
``ProxyFix``); otherwise every client shares the proxy's allowance. Several hosts behind one balancer each keep
their own file: the limit is per host (docs/scaling.md).
"""
from __future__ import annotations

from collections.abc import Sequence

from flask import Flask, current_app, request

from geoservice.errors import TooManyRequests
from geoservice.limiter import SharedLimiter, open_table
from geoservice.settings import Settings

TABLE = "geoservice.rate_limit_table"
# The endpoints the public limit counts: the operations declared ``public_read`` (geoservice.api.spec), so the
# document's 429s and the limiter cannot disagree. The operators' API has accounts, /metrics and /healthz are
# for whoever runs the service, and static files are cheap.
PUBLIC_ENDPOINTS = "geoservice.public_endpoints"


def shared_limiter(app: Flask, scope: str, limits: Sequence[tuple[int, float]]) -> SharedLimiter:
    """The app's limiter for ``scope`` (created once per app; the state is shared by every process)."""
    name = f"geoservice.limiter.{scope}"
    if name not in app.extensions:
        app.extensions[name] = SharedLimiter(app.extensions[TABLE], scope, limits)
    limiter: SharedLimiter = app.extensions[name]
    return limiter


def init_rate_limits(app: Flask, settings: Settings, public_endpoints: set[str]) -> None:
    """Open the shared state (failing at start-up, not at the first request, when it cannot be) and install
    the public-read limit: 429 problem+json with ``Retry-After`` once a client address exceeds
    ``public_rate_per_minute`` public reads (a minute's worth may come at once); 0 turns it off.

    Generous on purpose: couriers on mobile networks share carrier-grade NAT addresses, so one address can be
    many phones; and a GIS client paging through /ogc items asks quickly.
    """
    app.extensions[TABLE] = open_table(settings.shared_state_dir())
    app.extensions[PUBLIC_ENDPOINTS] = frozenset(public_endpoints)
    per_minute = settings.public_rate_per_minute
    if per_minute <= 0:
        return
    shared_limiter(app, "public", ((per_minute, 60.0),))

    @app.before_request
    def _public_limit() -> None:
        if request.method in ("GET", "HEAD") and request.endpoint in current_app.extensions[PUBLIC_ENDPOINTS]:
            wait = shared_limiter(current_app, "public", ()).hit(request.remote_addr or "unknown")
            if wait is not None:
                raise TooManyRequests(wait)
