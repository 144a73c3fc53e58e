"""Fixtures for the planners' analysis tests: one Beijing grid per session, shared by planners, app and server."""
from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from geoservice.analysis import GridCache, Planner
from geoservice.packagedata import layers_dir
from geoservice.settings import Settings

ROOT = Path(__file__).resolve().parent.parent.parent
LAYERS = layers_dir()  # the bundled layers, as the package ships them
ARTIFACTS = ROOT / "test-artifacts" / "analysis"
MONDAY_2200 = "2026-11-23T22:00"
SUNDAY_1000 = "2026-11-29T10:00"


@pytest.fixture(scope="session")
def grid_cache() -> GridCache:
    """Grids per resolution, built once for the whole session (the Beijing r9 grid takes seconds)."""
    return GridCache()


@pytest.fixture(scope="session")
def planner(demo_embedded: Any, grid_cache: GridCache) -> Planner:
    """A planner over the demo network (embedded store, 11,829 SIMULATED sites) at H3 r9, bundled demand."""
    return Planner(demo_embedded, grid_cache=grid_cache, layers_dir=LAYERS)


@pytest.fixture(scope="session")
def monday(planner: Planner) -> Any:
    """Coverage at Monday 2026-11-23 22:00, all kinds, 1 km."""
    return planner.coverage(MONDAY_2200)


@pytest.fixture
def coverage_client(app: Any, grid_cache: GridCache) -> Any:
    """The shared app's test client, with the session's grid cache (so the API does not rebuild the grid)."""
    app.extensions["geoservice.coverage_grids"] = grid_cache
    return app.test_client()


@pytest.fixture(scope="session")
def coverage_server(demo_embedded: Any, grid_cache: GridCache,
                    tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The app over the demo store on 127.0.0.1:<free port> (for the browser test)."""
    from werkzeug.serving import make_server

    from geoservice import create_app

    app = create_app(Settings(embedded_path=Path("unused"), layers_dir=LAYERS,
                              rate_limit_dir=tmp_path_factory.mktemp("limits")), store=demo_embedded, prepare=False)
    app.extensions["geoservice.coverage_grids"] = grid_cache
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="coverage-live-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)
