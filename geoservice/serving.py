"""Production serving: granian runs N worker processes; each builds its own Flask app, store and pool.

granian parses HTTP/1.1 and does all socket I/O in Rust on an async runtime, so a client that sends its request
head slowly (slowloris) costs a small buffer, not a Python thread: a request reaches Flask only once its head
is complete, and a head that has not fully arrived within ``header_timeout_s`` closes the connection (an idle
keep-alive connection too). Measured against gunicorn, gunicorn gthread and waitress in bench/bench_servers.py.

What granian does not bound is the *body*: a client that stops sending half-way through a POST body holds a
worker thread for as long as it likes. Public deployments therefore put nginx in front
(``docs/nginx/geoservice.conf``), which buffers whole requests under its own timeouts and limits; the README's
"Production serving" section lists every limit on both layers.
"""
from __future__ import annotations

import dataclasses
import functools
import gc
import logging
import os
import shutil
import tempfile
from typing import Any

from geoservice.settings import Settings

LOGGER = logging.getLogger(__name__)

HEADER_TIMEOUT_S = 10  # the whole request head (request line + headers) must arrive within this
HEAD_BUFFER_BYTES = 16 * 1024  # request line + headers larger than this are refused (granian's minimum is 8 KiB)
BACKLOG = 1024  # connections queued in the kernel before accept


@dataclasses.dataclass(frozen=True)
class ServeOptions:
    """How ``geoservice serve`` runs the server (the CLI's options, validated there)."""

    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    threads: int = 1  # Python threads per worker that run requests (granian's "blocking threads")
    header_timeout_s: int = HEADER_TIMEOUT_S
    shutdown_timeout_s: int = 30  # on stop/restart, workers still busy after this are killed
    access_log: bool = False


def enable_access_log() -> None:
    """One JSON line per request on stderr (written by geoservice.api.metrics)."""
    access = logging.getLogger("geoservice.access")
    if not access.handlers:
        access.addHandler(logging.StreamHandler())
    access.setLevel(logging.INFO)
    access.propagate = False


def build_worker_app(target: str, settings: Settings, access_log: bool = False) -> Any:
    """The WSGI app of one worker process, built after the worker started (fork or spawn): its own store and
    connection pool, never one inherited from the parent. ``target`` is granian's target name (unused).

    Warms up before the first request (opens the pool / builds the embedded index). A store that is down at
    start-up is not fatal: the worker serves 503s and health until the store is back.
    """
    from geoservice import create_app
    from geoservice.errors import GeoserviceError
    from geoservice.hours import now_local
    from geoservice.model import NearestQuery

    if access_log:
        enable_access_log()
    app = create_app(settings, prepare=False)
    try:
        lon, lat = settings.area().centre  # a query in the service area (Beijing: Tiananmen)
        app.extensions["geoservice.services"].sites.nearest(NearestQuery(lon=lon, lat=lat, at=now_local(), limit=1))
    except GeoserviceError as exc:
        LOGGER.warning("warm-up failed (serving anyway): %s", exc.detail)
    # What start-up built lives as long as the worker: out of the collector's sight, each collection of a
    # request's garbage no longer walks it (2.5 % of a nearest request's instructions, bench/README.md).
    gc.collect()
    gc.freeze()
    return app


def metrics_dir() -> str | None:
    """Set ``PROMETHEUS_MULTIPROC_DIR`` for the workers, so that ``/metrics`` aggregates every worker's counters
    whichever worker answers the scrape: the operator's, or a fresh temporary one, which is returned (the caller
    deletes it when the server stops)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return None
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = created = tempfile.mkdtemp(prefix="geoservice-metrics-")
    return created


def granian_server(settings: Settings, options: ServeOptions) -> Any:
    """A configured granian server (not started)."""
    from granian import Granian
    from granian.constants import HTTPModes, Interfaces
    from granian.http import HTTP1Settings

    return Granian(
        "geoservice",  # informative only: the app comes from build_worker_app
        address=options.host,
        port=options.port,
        interface=Interfaces.WSGI,
        workers=options.workers,
        blocking_threads=options.threads,
        # Connections a worker serves at once (the rest wait in the kernel backlog). A slow client holds one of
        # these until the header timeout cuts it, so this must stay far above the threads: with 8 per worker,
        # 20 slowloris connections locked 3 workers out (bench/bench_servers.py). granian's default, kept.
        backpressure=max(1, BACKLOG // options.workers),
        backlog=BACKLOG,
        http=HTTPModes.http1,  # HTTP/2 is the TLS terminator's job; h2c here would bypass the HTTP/1 limits
        websockets=False,
        http1_settings=HTTP1Settings(header_read_timeout=options.header_timeout_s * 1000, keep_alive=True,
                                     max_buffer_size=HEAD_BUFFER_BYTES),
        log_access=False,  # the app logs one JSON line per request (geoservice.access) when asked
        respawn_failed_workers=True,
        workers_kill_timeout=options.shutdown_timeout_s,
    )


def serve(settings: Settings, options: ServeOptions) -> None:
    """Run granian until stopped; the caller has already prepared the store (migrations, bundled data)."""
    created = metrics_dir()
    server = granian_server(settings, options)
    try:
        server.serve(target_loader=functools.partial(build_worker_app, settings=settings,
                                                     access_log=options.access_log))
    finally:
        if created:
            shutil.rmtree(created, ignore_errors=True)
