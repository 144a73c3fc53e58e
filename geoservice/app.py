"""The app factory: settings, services, the API blueprints, the pages, errors, headers, limits and metrics."""
from __future__ import annotations

import atexit
import logging

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.routing import BaseConverter

from geoservice.api import (
    admin,
    alerts,
    coverage,
    exports,
    imports,
    live,
    metrics,
    ogc,
    openapi,
    operators,
    public,
    reports,
    session,
    tiles,
    webhooks,
)
from geoservice.api.assets import init_app as init_assets
from geoservice.api.errors import register_error_handlers
from geoservice.api.jsonprovider import FastJSONProvider
from geoservice.api.offline import init_app as init_offline
from geoservice.api.ratelimit import init_rate_limits
from geoservice.api.security import init_app as init_security_headers
from geoservice.api.write_position import init_app as init_write_position
from geoservice.bootstrap import ensure_ready
from geoservice.packagedata import static_dir
from geoservice.passwords import dummy_hash
from geoservice.services import Services, open_services
from geoservice.settings import Settings

LOGGER = logging.getLogger(__name__)
STATIC_DIR = static_dir()  # package data: geoservice/static/


class SiteIdConverter(BaseConverter):
    """A site id in a path, never the word ``nearest``: ``PATCH /api/v1/sites/<id>`` must not claim
    ``/api/v1/sites/nearest`` (its ``Allow`` header would then advertise PATCH there)."""

    regex = r"(?!nearest$)[^/]+"


def create_app(settings: Settings | None = None, services: Services | None = None, prepare: bool = True) -> Flask:
    """The WSGI app. ``services`` lets tests share one backend; ``prepare`` loads the bundled data when missing."""
    settings = settings or Settings.from_env()
    app = Flask("geoservice", static_folder=None)  # static files: geoservice/api/assets.py
    app.json = FastJSONProvider(app)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_upload_bytes
    app.url_map.converters["site_id"] = SiteIdConverter
    if settings.proxy_hops > 0:  # client addresses (rate limits, logs) and URLs as the proxy received them
        n = settings.proxy_hops
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n)  # type: ignore[method-assign]
    owned = services is None
    services = services or open_services(settings)
    if prepare:
        ensure_ready(services, settings)
        services.use_network(settings.network_snap_m)  # a stored walking network: nearest walks on it
    app.extensions["geoservice.settings"] = settings
    app.extensions["geoservice.services"] = services
    register_error_handlers(app)
    init_security_headers(app, settings.basemap())  # CSP per kind of response, nosniff, no framing, Referrer-Policy
    init_offline(app, settings.basemap())  # the couriers' page's service worker at /sw.js
    metrics.init_app(app)
    init_write_position(app)  # read-your-writes across workers with read replicas
    # The planners' routes are always there; without the [planners] extra they answer 501 naming it.
    for module in (public, session, operators, admin, live, alerts, reports, exports, webhooks, imports, openapi,
                   ogc, coverage, tiles):
        app.register_blueprint(module.bp)
    apis = [public.API, session.API, operators.API, admin.API, live.API, alerts.API, reports.API, exports.API,
            webhooks.API, imports.API, openapi.API, coverage.API, tiles.API]
    app.extensions["geoservice.apis"] = apis
    dummy_hash()  # made now, so the first unknown login costs what every other wrong password does
    init_rate_limits(app, settings, set().union(*(api.public_reads() for api in apis), ogc.public_endpoints()))

    # The pages and /static/: versioned, cached and gzip-compressed (geoservice/api/assets.py).
    init_assets(app, STATIC_DIR)

    if owned:
        atexit.register(services.close)
    return app
