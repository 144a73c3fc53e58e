"""Faults: the database goes away while requests flow; the embedded store is killed mid-write."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from geoservice import create_app
from geoservice.bootstrap import load_bundled_calendar, load_districts
from geoservice.services import Services
from geoservice.settings import Settings
from tests.support import LAYERS, demo
from tests.support.stores import fresh_embedded
from tools.pgcluster import ThrowawayCluster

NEAREST = "/api/v1/sites/nearest?lat=39.9289&lon=116.4160&include_closed=true"


@contextmanager
def served_over_postgis(tmp_path: Path) -> Iterator[tuple[ThrowawayCluster, Services, FlaskClient]]:
    """A throwaway PostGIS with the basic sites, a store over it (pool of 2) and the app's test client."""
    from geoservice.store.postgis import PostgisStore
    from tests.support.sites import BASIC, make_sites

    cluster = ThrowawayCluster().start()
    try:
        url = cluster.create_database("faults")
        store = Services.over(PostgisStore(url, max_size=2, timeout=2.0))
        store.migrate()
        load_districts(store, LAYERS)
        load_bundled_calendar(store)
        store.sites.upsert_sites(make_sites(store, BASIC))
        settings = Settings(database_url=url, rate_limit_dir=tmp_path)
        client = create_app(settings, services=store, prepare=False).test_client()
        assert client.get(NEAREST).status_code == 200
        yield cluster, store, client
        store.close()
    finally:
        cluster.stop()


@pytest.mark.postgis
def test_restart_while_idle_fails_no_request(tmp_path: Path) -> None:
    """The database restarts while the service sits idle (a nightly upgrade, a failover): the pooled connections
    it held are dead, and the first courier to ask afterwards still gets an answer, not a 503: a connection idle
    for over IDLE_CHECK_S is pinged before use and replaced when the ping fails."""
    from geoservice.store.postgis.store import IDLE_CHECK_S

    with served_over_postgis(tmp_path) as (cluster, _, client):
        cluster.pause()
        cluster.resume()
        time.sleep(IDLE_CHECK_S + 0.5)
        resp = client.get(NEAREST)
        assert resp.status_code == 200, resp.get_data(as_text=True)
        assert len(resp.get_json()["features"]) == 5


@pytest.mark.postgis
def test_postgis_outage_gives_503_with_retry_after_then_recovers(tmp_path: Path) -> None:
    with served_over_postgis(tmp_path) as (cluster, store, client):
        cluster.pause()
        statuses = []
        for _ in range(3):
            resp = client.get(NEAREST)
            statuses.append(resp.status_code)
            assert resp.status_code == 503
            assert resp.mimetype == "application/problem+json"
            assert int(resp.headers["Retry-After"]) > 0
            assert "Traceback" not in resp.get_data(as_text=True)
        # The pool could not hand out a connection: the breaker is open, so requests fail without waiting.
        assert store.spatial.breaker.state()["state"] == "down"
        health = client.get("/healthz")
        assert health.status_code == 503 and "Retry-After" in health.headers

        cluster.resume()
        deadline = time.monotonic() + 30
        while True:
            resp = client.get(NEAREST)
            if resp.status_code == 200:
                break
            assert resp.status_code == 503 and time.monotonic() < deadline, "did not recover by itself"
            time.sleep(0.5)
        assert len(resp.get_json()["features"]) == 5
        assert client.get("/healthz").get_json()["store"] == {"state": "up"}


OUTAGE_PATHS = [NEAREST, "/api/v1/sites?limit=3", "/api/v1/sites/nearest?lat=39.91&lon=116.40&kind=warm_station",
                "/ogc/collections/warm_stations/items?limit=2"]


def _problem_503(status: int, headers: dict[str, str], body: bytes) -> bool:
    return (status == 503 and headers.get("content-type", "").startswith("application/problem+json")
            and int(headers.get("retry-after", "0")) > 0 and json.loads(body)["status"] == 503)


@pytest.mark.postgis
def test_postgis_outage_under_concurrent_load_fails_fast_serves_static_and_recovers(tmp_path: Path) -> None:
    """A real multi-threaded server (2 workers × 4 threads) while the database is stopped: a burst of five
    times as many requests as threads all get a 503 problem well within the client timeout (each request used
    to wait for the pool in turn, so a burst queued for tens of seconds), and a static file and /healthz answer
    meanwhile; after the database comes back, the service recovers by itself."""
    from geoservice.store.postgis import PostgisStore
    from tests.support.sites import BASIC, make_sites
    from tools.pgcluster import ThrowawayCluster
    from tools.servers import ServeProcess, get

    cluster = ThrowawayCluster().start()
    try:
        url = cluster.create_database("outage_served")
        store = Services.over(PostgisStore(url, max_size=2))
        store.migrate()
        load_districts(store, LAYERS)
        load_bundled_calendar(store)
        store.sites.upsert_sites(make_sites(store, BASIC))
        store.close()
        env = {"DATABASE_URL": url, "GEOSERVICE_AUTOLOAD_LAYERS": "0", "GEOSERVICE_PUBLIC_RATE_PER_MINUTE": "0"}
        with ServeProcess(["--workers", "2", "--threads", "4"], env=env, log=tmp_path / "serve.log") as server:
            status, _, body = get(server.port, NEAREST)
            assert status == 200 and len(json.loads(body)["features"]) == 5

            cluster.pause()
            client_timeout = 10.0  # generous: the fixed code answers a burst in about a second
            burst = [OUTAGE_PATHS[i % len(OUTAGE_PATHS)] for i in range(40)]
            with ThreadPoolExecutor(max_workers=len(burst)) as pool:
                answers = list(pool.map(lambda path: get(server.port, path, timeout=client_timeout), burst))
            assert all(_problem_503(*a) for a in answers), [a[0] for a in answers]
            assert not any(b"Traceback" in a[2] for a in answers)

            # Meanwhile, with the database still down: the page's assets and the health check answer.
            status, headers, body = get(server.port, "/static/js/app.js", timeout=client_timeout)
            assert status == 200 and len(body) > 100
            status, headers, body = get(server.port, "/healthz", timeout=client_timeout)
            assert _problem_503(status, headers, body)
            assert "not reachable" in json.loads(body)["detail"]

            # Each worker has its own breaker and probe, so one worker may answer again a probe pause before the
            # other: recovered means a run of answers in a row (spread over both workers) is healthy.
            cluster.resume()
            deadline = time.monotonic() + 30
            healthy_in_a_row = 0
            while healthy_in_a_row < 10:
                status, _, body = get(server.port, NEAREST, timeout=client_timeout)
                h_status, _, h_body = get(server.port, "/healthz", timeout=client_timeout)
                if status == 200 and h_status == 200:
                    assert len(json.loads(body)["features"]) == 5
                    assert json.loads(h_body)["store"]["state"] == "up"
                    healthy_in_a_row += 1
                    continue
                healthy_in_a_row = 0
                assert {status, h_status} <= {200, 503} and time.monotonic() < deadline, "did not recover by itself"
                time.sleep(0.5)
    finally:
        cluster.stop()


KILLED_WRITER = textwrap.dedent("""
    import sys
    from pathlib import Path
    from geoservice.bootstrap import load_site_file
    from geoservice.services import Services
    from geoservice.store.embedded import store as embedded

    class AnnouncingTxn(embedded._Txn):
        def __enter__(self):
            cur = super().__enter__()
            print("writing", flush=True)  # the transaction has begun
            return cur

    embedded._Txn = AnnouncingTxn
    store = Services.over(embedded.EmbeddedStore(sys.argv[1]))
    load_site_file(store, Path(sys.argv[2]))
    print("done", flush=True)
""")


def _writer(path: Path, layer: Path) -> subprocess.Popen:  # type: ignore[type-arg]
    return subprocess.Popen([sys.executable, "-c", KILLED_WRITER, str(path), str(layer)], stdout=subprocess.PIPE,
                            text=True)


def test_embedded_store_killed_mid_write_is_all_or_nothing(tmp_path: Path) -> None:
    from geoservice.model import NearestQuery, SiteFilter
    from geoservice.store.embedded import EmbeddedStore

    path = tmp_path / "crash.sqlite"
    fresh_embedded(path).close()
    layer = LAYERS / "sites_warm_station_simulated.geojson"

    def state() -> tuple[int, int]:
        reopened = Services.over(EmbeddedStore(path))
        try:
            assert reopened.spatial.connection().execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            n = reopened.sites.list_sites(SiteFilter(limit=1))[1]
            with_hours = reopened.spatial.connection().execute(
                "SELECT count(DISTINCT site_id) FROM site_open_intervals").fetchone()[0]
            return n, with_hours
        finally:
            reopened.close()

    killed_inside = 0
    for delay in (0.0, 0.05, 0.15):
        with _writer(path, layer) as proc:
            assert proc.stdout is not None and proc.stdout.readline().strip() == "writing"
            time.sleep(delay)
            proc.send_signal(signal.SIGKILL)
            finished = proc.wait(10) == 0
        n, with_hours = state()
        assert n in (0, demo.by_kind()["warm_station"]), f"half-applied write: {n} sites"
        assert with_hours == n, "sites and their open intervals land together or not at all"
        killed_inside += int(n == 0 and not finished)
        if n:
            break
    assert killed_inside > 0, "no kill landed inside the transaction; the test tested nothing"

    # The same write, not interrupted, lands whole and the store serves it.
    with _writer(path, layer) as proc:
        assert proc.wait(120) == 0
    assert state() == (demo.by_kind()["warm_station"], demo.by_kind()["warm_station"])
    served = Services.over(EmbeddedStore(path))
    at = served.sites.default_window()[0]
    hits = served.sites.nearest(NearestQuery(lon=116.416, lat=39.9289, at=at, open_only=False))
    assert len(hits) == 5
    served.close()
