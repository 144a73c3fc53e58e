"""One rate limit for the whole service: worker processes of one host share the couriers' reports limit and the
public-read limit (3 gunicorn workers used to let 3 × 5 reports through at once)."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from geoservice.packagedata import layers_dir

ROOT = Path(__file__).resolve().parent.parent.parent
LAYERS = layers_dir()  # the bundled layers, as the package ships them
WORKERS = 3

# A worker: its own app over the same embedded store file, configured from the environment as
# `geoservice serve --workers N` configures each gunicorn worker; all start together on a signal file.
WORKER = textwrap.dedent("""
    import os, sys, time
    from pathlib import Path
    from geoservice import create_app
    from geoservice.settings import Settings

    what, site, go, out = sys.argv[1], sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4])
    client = create_app(Settings.from_env(), prepare=False).test_client()
    while not go.exists():
        time.sleep(0.001)
    codes = []
    for _ in range(int(sys.argv[5])):
        if what == "reports":
            resp = client.post(f"/api/v1/sites/{site}/reports", json={"type": "closed_on_arrival"})
        else:
            resp = client.get("/api/v1/sites/nearest?lat=39.9087&lon=116.3975&limit=1")
        codes.append(resp.status_code)
    out.write_text(" ".join(map(str, codes)))
""")


@pytest.fixture
def store_file(tmp_path: Path) -> tuple[Path, str]:
    """An embedded store file with the operators' small network (closed again, for the workers to open)."""
    from geoservice.bootstrap import load_bundled_calendar, load_districts
    from geoservice.store.embedded import EmbeddedStore
    from tests.operators.conftest import make_sites, sid

    path = tmp_path / "store" / "geoservice.sqlite"
    path.parent.mkdir()
    store = EmbeddedStore(path)
    store.migrate()
    load_districts(store, LAYERS)
    load_bundled_calendar(store)
    store.upsert_sites(make_sites(store))
    store.close()
    return path, sid("op-a")


def _run_workers(tmp_path: Path, store_path: Path, site: str, what: str, each: int,
                 **env: str) -> list[int]:
    """Status codes of every request of ``WORKERS`` processes sending ``each`` requests at once."""
    go = tmp_path / f"go-{what}"
    environ = {**os.environ, "PYTHONPATH": str(ROOT), "DATABASE_URL": "",
               "GEOSERVICE_EMBEDDED_PATH": str(store_path), "GEOSERVICE_LAYERS_DIR": str(LAYERS), **env}
    outs = [tmp_path / f"{what}-{n}.txt" for n in range(WORKERS)]
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, what, site, str(go), str(out), str(each)],
                              env=environ, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for out in outs]
    try:
        time.sleep(2.0)  # let every worker build its app, then release them together
        go.touch()
        results = [p.communicate(timeout=180) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    assert all(p.returncode == 0 for p in procs), [err[-2000:] for _, err in results]
    return [int(code) for out in outs for code in out.read_text().split()]


def test_worker_processes_share_one_reports_limit(tmp_path: Path, store_file: tuple[Path, str]) -> None:
    store_path, site = store_file
    state = tmp_path / "state"
    codes = _run_workers(tmp_path, store_path, site, "reports", 5, GEOSERVICE_RATE_LIMIT_DIR=str(state),
                         GEOSERVICE_PUBLIC_RATE_PER_MINUTE="0")
    assert len(codes) == WORKERS * 5 and set(codes) <= {201, 429}
    assert codes.count(201) == 5, codes  # 5 a minute for the service, not per worker
    from geoservice.store.embedded import EmbeddedStore

    store = EmbeddedStore(store_path)
    try:
        assert store.unresolved_report_counts([site]).get(site, 0) == 5
    finally:
        store.close()
    assert any(state.iterdir())  # the state lives where GEOSERVICE_RATE_LIMIT_DIR says


def test_worker_processes_share_one_public_read_limit(tmp_path: Path, store_file: tuple[Path, str]) -> None:
    store_path, site = store_file
    codes = _run_workers(tmp_path, store_path, site, "public", 4, GEOSERVICE_PUBLIC_RATE_PER_MINUTE="6")
    assert len(codes) == WORKERS * 4 and set(codes) <= {200, 429}
    assert codes.count(200) == 6, codes
    # without GEOSERVICE_RATE_LIMIT_DIR the state sits next to the embedded store (the instance folder)
    assert any(p.name.startswith("ratelimit") for p in store_path.parent.iterdir())
