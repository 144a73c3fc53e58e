"""geoservice: nearest-open rest sites for outdoor workers in Beijing, and the planners' coverage tools."""
from __future__ import annotations

import logging
from typing import Any

from flask import Flask, send_from_directory

from geoservice.packagedata import static_dir
from geoservice.settings import Settings

LOGGER = logging.getLogger(__name__)
STATIC_DIR = static_dir()  # package data: geoservice/static/


def create_app(settings: Settings | None = None, store: Any = None, prepare: bool = True) -> Flask:
    """The app factory. ``store`` lets tests share one store; ``prepare`` loads bundled data when missing."""
    from geoservice.api import metrics
    from geoservice.api import operators as operators_api
    from geoservice.api.coverage import bp as coverage_bp
    from geoservice.api.errors import register_error_handlers
    from geoservice.api.exports import bp as exports_bp
    from geoservice.api.jsonprovider import FastJSONProvider
    from geoservice.api.ogc import bp as ogc_bp
    from geoservice.api.openapi import bp as openapi_bp
    from geoservice.api.public import bp as public_bp
    from geoservice.api.ratelimit import init_rate_limits
    from geoservice.api.security import init_app as init_security_headers
    from geoservice.bootstrap import ensure_ready
    from geoservice.store import open_store

    settings = settings or Settings.from_env()
    app = Flask(__name__, static_folder=str(STATIC_DIR), static_url_path="/static")
    app.json = FastJSONProvider(app)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_upload_bytes
    if settings.proxy_hops > 0:  # client addresses (rate limits, logs) and URLs as the proxy received them
        from werkzeug.middleware.proxy_fix import ProxyFix

        n = settings.proxy_hops
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n)  # type: ignore[method-assign]
    owns_store = store is None
    store = store or open_store(settings)
    if prepare:
        ensure_ready(store, settings)
    app.extensions["geoservice.settings"] = settings
    app.extensions["geoservice.store"] = store
    register_error_handlers(app)
    init_security_headers(app)  # CSP per kind of response, nosniff, no framing, Referrer-Policy
    metrics.init_app(app)
    init_rate_limits(app, settings)  # shared by every worker process: one limit for the service
    app.register_blueprint(public_bp)
    app.register_blueprint(openapi_bp)
    app.register_blueprint(exports_bp)
    app.register_blueprint(ogc_bp)
    app.register_blueprint(coverage_bp)  # planners: /api/v1/coverage*, /maps/coverage
    operators_api.init_app(app, STATIC_DIR)  # operators' API, couriers' reports, and the page at /operator

    @app.get("/")
    def index() -> Any:
        """The couriers' page."""
        return send_from_directory(STATIC_DIR, "index.html")

    if owns_store:
        import atexit

        atexit.register(store.close)
    return app
