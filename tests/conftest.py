"""Shared fixtures: both stores (embedded SQLite and a real throwaway PostGIS), the bundled layers, the app.

PostGIS tests are never skipped: if no server can be started they fail with the reason. Set
GEOSERVICE_TEST_DATABASE_URL to use an existing server (its database must allow CREATE DATABASE).
"""
from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from geoservice.bootstrap import load_bundled_calendar, load_districts
from geoservice.services import Services
from geoservice.settings import Settings
from tests.support import LAYERS
from tests.support.stores import fresh_embedded

_db_counter = itertools.count()
_postgis_passed = {"n": 0}


# ---- PostGIS server ------------------------------------------------------------------------------
class _ExternalServer:
    """An existing server named by GEOSERVICE_TEST_DATABASE_URL."""

    def __init__(self, url: str):
        import psycopg
        from psycopg.conninfo import conninfo_to_dict, make_conninfo

        self.base = url
        self._make = lambda db: make_conninfo(url, dbname=db)
        self._dict = conninfo_to_dict(url)
        self._psycopg = psycopg

    def url(self, dbname: str = "postgres") -> str:
        return self._make(dbname)

    def create_database(self, name: str, template: str | None = None) -> str:
        from psycopg import sql

        with self._psycopg.connect(self.base, autocommit=True) as conn:
            stmt = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
            if template:
                stmt = sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(name), sql.Identifier(template))
            conn.execute(stmt)
        return self.url(name)

    def drop_database(self, name: str) -> None:
        from psycopg import sql

        with self._psycopg.connect(self.base, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))

    def stop(self) -> None:
        pass


@pytest.fixture(scope="session")
def pg_server() -> Iterator[object]:
    """A running PostgreSQL + PostGIS server for the whole session."""
    url = os.environ.get("GEOSERVICE_TEST_DATABASE_URL")
    if url:
        server: object = _ExternalServer(url)
    else:
        from tools.pgcluster import ClusterError, ThrowawayCluster

        try:
            server = ThrowawayCluster().start()
        except ClusterError as exc:
            pytest.fail(f"cannot start a throwaway PostgreSQL cluster: {exc}", pytrace=False)
    yield server
    server.stop()  # type: ignore[attr-defined]


@pytest.fixture(scope="session")
def pg_template(pg_server: object) -> str:
    """A template database with the schema, districts and bundled calendar, copied for each test."""
    from geoservice.store.postgis import PostgisStore

    name = f"gs_template_{os.getpid()}"
    pg_server.drop_database(name)  # type: ignore[attr-defined]
    url = pg_server.create_database(name)  # type: ignore[attr-defined]
    store = Services.over(PostgisStore(url, max_size=2))
    store.migrate()
    load_districts(store, LAYERS)
    load_bundled_calendar(store)
    store.close()
    return name


def _new_postgis_store(pg_server: object, pg_template: str) -> tuple[Services, str]:
    from geoservice.store.postgis import PostgisStore

    name = f"gs_{os.getpid()}_{next(_db_counter)}"
    url = pg_server.create_database(name, template=pg_template)  # type: ignore[attr-defined]
    return Services.over(PostgisStore(url, max_size=4)), name


def _new_embedded_store(path: Path) -> Services:
    return fresh_embedded(path)


@pytest.fixture
def postgis_store(pg_server: object, pg_template: str) -> Iterator[Services]:
    """An empty PostGIS store, for what only PostgreSQL can get wrong (e.g. commits out of order)."""
    s, name = _new_postgis_store(pg_server, pg_template)
    yield s
    s.close()
    pg_server.drop_database(name)  # type: ignore[attr-defined]


@pytest.fixture(params=["embedded", pytest.param("postgis", marks=pytest.mark.postgis)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Services]:
    """An empty store (districts and calendar loaded) of each backend."""
    if request.param == "embedded":
        s = _new_embedded_store(tmp_path / "store.sqlite")
        yield s
        s.close()
    else:
        yield request.getfixturevalue("postgis_store")


@pytest.fixture(scope="session")
def demo_embedded(tmp_path_factory: pytest.TempPathFactory) -> Services:
    """The embedded store with the full bundled demo network (shared, read-only by convention)."""
    from geoservice.bootstrap import ensure_ready

    path = tmp_path_factory.mktemp("demo") / "demo.sqlite"
    settings = Settings(embedded_path=path, layers_dir=LAYERS)
    from geoservice.services import open_services

    s = open_services(settings)
    ensure_ready(s, settings)
    return s


@pytest.fixture(scope="session")
def demo_postgis(pg_server: object, pg_template: str) -> Iterator[Services]:
    """PostGIS with the full bundled demo network (shared, read-only by convention)."""
    from geoservice.bootstrap import ensure_ready

    s, _name = _new_postgis_store(pg_server, pg_template)
    ensure_ready(s, Settings(database_url="set", layers_dir=LAYERS))
    yield s
    s.close()


@pytest.fixture(scope="module", params=["embedded", pytest.param("postgis", marks=pytest.mark.postgis)])
def demo_store(request: pytest.FixtureRequest) -> Services:
    """Each backend with the demo network."""
    return request.getfixturevalue("demo_embedded" if request.param == "embedded" else "demo_postgis")


@pytest.fixture(scope="session")
def app(demo_embedded: Services, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """The Flask app over the demo embedded store."""
    from geoservice import create_app

    # The whole session's requests come from one address: the public rate limit has its own test.
    settings = Settings(embedded_path=tmp_path_factory.mktemp("app") / "unused", layers_dir=LAYERS,
                        public_rate_per_minute=0,
                        rate_limit_dir=tmp_path_factory.mktemp("limits"))
    application = create_app(settings, services=demo_embedded, prepare=False)
    application.config["TESTING"] = True
    return application


@pytest.fixture
def client(app):  # type: ignore[no-untyped-def]
    """Flask test client."""
    return app.test_client()


# ---- reporting -----------------------------------------------------------------------------------
def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when == "call" and report.passed and "postgis" in report.keywords:
        _postgis_passed["n"] += 1


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:  # type: ignore[no-untyped-def]
    terminalreporter.write_line(
        f"PostGIS: {_postgis_passed['n']} test(s) passed against a real PostgreSQL + PostGIS server")
