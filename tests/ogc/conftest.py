"""Fixtures for the OGC API / export tests: a live HTTP server for GDAL, and fresh stores to load exports into."""
from __future__ import annotations

import itertools
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from geoservice.cli import main
from geoservice.services import Services
from geoservice.settings import Settings
from tests.support import LAYERS

_fresh = itertools.count()


class LiveServer:
    """The app over HTTP on a free loopback port, recording every request line it serves."""

    def __init__(self, store: Services, state_dir: Path):
        from werkzeug.serving import make_server

        from geoservice import create_app

        settings = Settings(embedded_path=Path("unused"), layers_dir=LAYERS, rate_limit_dir=state_dir)
        app = create_app(settings, services=store, prepare=False)
        self.requests: list[str] = []
        inner = app.wsgi_app

        def recording(environ, start_response):  # type: ignore[no-untyped-def]
            query = environ.get("QUERY_STRING")
            self.requests.append(environ["PATH_INFO"] + (f"?{query}" if query else ""))
            return inner(environ, start_response)

        app.wsgi_app = recording  # type: ignore[method-assign]
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, name="ogc-live-server", daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


@pytest.fixture(scope="module")
def live_server(demo_embedded: Services, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """The service over the demo network (embedded store) on 127.0.0.1:<free port>."""
    with LiveServer(demo_embedded, tmp_path_factory.mktemp("limits")) as server:
        yield server


def cli_env(store: Services) -> dict[str, str]:
    """Environment that points the `geoservice` CLI at ``store``."""
    if store.backend == "postgis":
        return {"DATABASE_URL": store.spatial.url}  # type: ignore[attr-defined]
    return {"DATABASE_URL": "", "GEOSERVICE_EMBEDDED_PATH": str(store.spatial.path)}  # type: ignore[attr-defined]


def run_cli(env: dict[str, str], *args: str) -> Result:
    """Invoke the CLI in-process."""
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


class FreshTarget:
    """An EMPTY store of a given backend, filled through the CLI; ``open()`` it afterwards to compare."""

    def __init__(self, env: dict[str, str], opener):  # type: ignore[no-untyped-def]
        self.env = env
        self._opener = opener
        self.store: Services | None = None

    def open(self) -> Services:
        """The store, opened after the CLI has created and filled it."""
        if self.store is None:
            self.store = self._opener()
        return self.store


@pytest.fixture
def fresh_target(store: Services, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[FreshTarget]:
    """A second, empty store of the same backend as ``store``: no schema, no districts (the CLI's ``load``
    migrates it and loads the districts and calendar, as on a new installation)."""
    if store.backend == "postgis":
        from geoservice.store.postgis import PostgisStore

        pg_server = request.getfixturevalue("pg_server")
        name = f"gs_ogc_{os.getpid()}_{next(_fresh)}"
        url = pg_server.create_database(name)
        target = FreshTarget({"DATABASE_URL": url}, lambda: Services.over(PostgisStore(url, max_size=2)))
        yield target
        if target.store is not None:
            target.store.close()
        pg_server.drop_database(name)
    else:
        from geoservice.store.embedded import EmbeddedStore

        path = tmp_path / f"fresh-{next(_fresh)}.sqlite"
        target = FreshTarget({"DATABASE_URL": "", "GEOSERVICE_EMBEDDED_PATH": str(path)},
                             lambda: Services.over(EmbeddedStore(path)))
        yield target
        if target.store is not None:
            target.store.close()
