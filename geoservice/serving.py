"""Production serving: gunicorn with N worker processes, each with its own app and connection pool."""
from __future__ import annotations

import logging
import os
import tempfile
from typing import Any

from gunicorn.app.base import BaseApplication

from geoservice.settings import Settings

LOGGER = logging.getLogger(__name__)


class GeoserviceServer(BaseApplication):  # type: ignore[misc]
    """gunicorn, configured in code; the app is built in each worker after fork (no shared pools)."""

    def __init__(self, settings: Settings, options: dict[str, Any]):
        self.settings = settings
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            if key in self.cfg.settings and value is not None:
                self.cfg.set(key.lower(), value)

    def load(self) -> Any:
        from geoservice import create_app
        from geoservice.hours import now_local
        from geoservice.store.base import NearestQuery

        app = create_app(self.settings, prepare=False)
        # Warm up in the worker: open the pool / build the embedded index before the first request.
        app.extensions["geoservice.store"].nearest(NearestQuery(lon=116.40, lat=39.91, at=now_local(), limit=1))
        return app


def serve_gunicorn(settings: Settings, host: str, port: int, workers: int, threads: int,
                   timeout: int = 30) -> None:
    """Run gunicorn; the caller has already prepared the store (migrations, bundled data)."""
    if "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="geoservice-metrics-")
    options = {
        "bind": f"{host}:{port}",
        "workers": workers,
        "threads": threads,
        "worker_class": "gthread" if threads > 1 else "sync",
        "timeout": timeout,           # a worker stuck longer than this is restarted
        "graceful_timeout": 10,
        "keepalive": 5,
        "limit_request_line": 8190,   # longest URL accepted
        "limit_request_fields": 100,
        "max_requests": 20000,        # recycle workers now and then
        "max_requests_jitter": 2000,
        "accesslog": None,            # the app logs one JSON line per request (geoservice.access)
    }
    GeoserviceServer(settings, options).run()
