"""A zero-argument app factory for running other WSGI servers over the same app in the benchmarks
(``gunicorn 'bench.wsgi_app:create()'``, ``waitress-serve --call bench.wsgi_app:create``): settings from the
environment, warmed up like a ``geoservice serve`` worker."""
from __future__ import annotations

from typing import Any

from geoservice.serving import build_worker_app
from geoservice.settings import Settings


def create() -> Any:
    """The app, built in the server's worker."""
    return build_worker_app("bench", Settings.from_env())
