"""Faults: the database goes away while requests flow; the embedded store is killed mid-write."""
from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from geoservice import create_app
from geoservice.bootstrap import load_bundled_calendar, load_districts
from geoservice.settings import Settings

LAYERS = Path(__file__).resolve().parents[2] / "layers"
NEAREST = "/api/v1/sites/nearest?lat=39.9289&lon=116.4160&include_closed=true"


@pytest.mark.postgis
def test_postgis_outage_gives_503_with_retry_after_then_recovers(tmp_path: Path) -> None:
    from geoservice.devtools.pgcluster import ThrowawayCluster
    from geoservice.store.postgis import PostgisStore

    cluster = ThrowawayCluster().start()
    try:
        url = cluster.create_database("outage")
        store = PostgisStore(url, max_size=2, timeout=2.0)
        store.migrate()
        load_districts(store, LAYERS)
        load_bundled_calendar(store)
        from tests.contract.test_store_contract import BASIC, make_sites

        store.upsert_sites(make_sites(store, BASIC))
        settings = Settings(database_url=url, rate_limit_dir=tmp_path)
        client = create_app(settings, store=store, prepare=False).test_client()
        assert client.get(NEAREST).status_code == 200

        cluster.pause()
        statuses = []
        for _ in range(3):
            resp = client.get(NEAREST)
            statuses.append(resp.status_code)
            assert resp.status_code == 503
            assert resp.mimetype == "application/problem+json"
            assert int(resp.headers["Retry-After"]) > 0
            assert "Traceback" not in resp.get_data(as_text=True)
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
        store.close()
    finally:
        cluster.stop()


KILLED_WRITER = textwrap.dedent("""
    import sys
    from pathlib import Path
    from geoservice.bootstrap import load_site_file
    from geoservice.store import embedded

    class AnnouncingTxn(embedded._Txn):
        def __enter__(self):
            cur = super().__enter__()
            print("writing", flush=True)  # the transaction has begun
            return cur

    embedded._Txn = AnnouncingTxn
    store = embedded.EmbeddedStore(sys.argv[1])
    load_site_file(store, Path(sys.argv[2]))
    print("done", flush=True)
""")


def _writer(path: Path, layer: Path) -> subprocess.Popen:  # type: ignore[type-arg]
    return subprocess.Popen([sys.executable, "-c", KILLED_WRITER, str(path), str(layer)], stdout=subprocess.PIPE,
                            text=True)


def test_embedded_store_killed_mid_write_is_all_or_nothing(tmp_path: Path) -> None:
    from geoservice.store.base import NearestQuery, SiteFilter
    from geoservice.store.embedded import EmbeddedStore

    path = tmp_path / "crash.sqlite"
    store = EmbeddedStore(path)
    store.migrate()
    load_districts(store, LAYERS)
    load_bundled_calendar(store)
    store.close()
    layer = LAYERS / "sites_warm_station_simulated.geojson"

    def state() -> tuple[int, int]:
        reopened = EmbeddedStore(path)
        try:
            assert reopened._conn().execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            n = reopened.list_sites(SiteFilter(limit=1))[1]
            with_hours = reopened._conn().execute(
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
        assert n in (0, 9650), f"half-applied write: {n} sites"
        assert with_hours == n, "sites and their open intervals land together or not at all"
        killed_inside += int(n == 0 and not finished)
        if n:
            break
    assert killed_inside > 0, "no kill landed inside the transaction; the test tested nothing"

    # The same write, not interrupted, lands whole and the store serves it.
    with _writer(path, layer) as proc:
        assert proc.wait(120) == 0
    assert state() == (9650, 9650)
    served = EmbeddedStore(path)
    hits = served.nearest(NearestQuery(lon=116.416, lat=39.9289, at=served.default_window()[0], open_only=False))
    assert len(hits) == 5
    served.close()
