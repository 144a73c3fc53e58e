"""The couriers' page without a signal: its service worker at ``/sw.js`` (scope ``/``), stamped with the version
of the app shell it caches — a hash of the shell's files, so a release installs a fresh cache and drops the old
one — and with the worker's own Content-Security-Policy (it fetches the shell, the API and the tiles)."""
from __future__ import annotations

import hashlib
import json

from flask import Flask, Response

from geoservice import csp
from geoservice.api.security import set_policy
from geoservice.basemap import BaseMap
from geoservice.packagedata import static_dir

# What the page needs to open and draw with no network, cached when the worker installs.
SHELL = ("/", "/static/css/app.css", "/static/js/app.js", "/static/js/common.js", "/static/js/i18n.js",
         "/static/js/datum.js", "/static/js/offline.js", "/static/vendor/leaflet/leaflet.js",
         "/static/vendor/leaflet/leaflet.css", "/static/manifest.webmanifest", "/static/icons/icon-192.png")
# Small answers the page reads at start: fresh when online, the last copy offline.
CONFIG = ("/api/v1/vocabulary", "/api/v1/basemap")
MAX_TILES = 200  # ~3-5 MB of 256 px tiles: the streets around the last few searches

def shell_file(path: str) -> str:
    """The file under the static folder that serves a shell URL."""
    return "index.html" if path == "/" else path.removeprefix("/static/")


def shell_version() -> str:
    """A hash of every shell file's bytes (and the worker's own): it changes exactly when the shell does."""
    digest = hashlib.sha256()
    root = static_dir()
    for name in (*map(shell_file, SHELL), "sw.js"):
        digest.update(name.encode())
        digest.update((root / name).read_bytes())
    return digest.hexdigest()[:16]


def worker_script() -> str:
    """The service worker: its settings, then ``static/sw.js``."""
    head = (f"var VERSION = {json.dumps(shell_version())}, SHELL = {json.dumps(SHELL)}, "
            f"CONFIG = {json.dumps(CONFIG)}, MAX_TILES = {MAX_TILES};\n")
    return head + (static_dir() / "sw.js").read_text(encoding="utf-8")


def init_app(app: Flask, basemap: BaseMap | None) -> None:
    """Serve ``/sw.js`` on ``app``; its policy lets it fetch this service and the configured tile server."""
    script = worker_script()
    policy = csp.service_worker(basemap.image_source() if basemap else None)

    def service_worker() -> Response:
        """The couriers' page's service worker (no-cache: browsers check it on every visit)."""
        resp = Response(script, mimetype="text/javascript")
        resp.headers["Cache-Control"] = "no-cache"
        return set_policy(resp, policy)

    app.add_url_rule("/sw.js", "service_worker", service_worker, methods=["GET"])
