"""The wheel works: built from this checkout, installed with the planners' extra into a fresh virtualenv outside
the checkout, and served by its own ``geoservice serve`` from an empty folder.

This is what a deployment does, and what the tests that import the checkout cannot see: files that are not
package data (the pages, Leaflet, the bundled layers and calendars) or code that finds them relative to the
checkout. Dependencies come from the package index pip is configured with, kept in a wheelhouse in the user's
cache so that reruns install offline; the build and the install run once per session.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tools.servers import free_port, get, wait_healthy

pytestmark = pytest.mark.packaging

ROOT = Path(__file__).resolve().parents[2]
# What a `pip wheel .` of a fresh clone sees: the checkout less what git ignores or keeps for itself.
NOT_SOURCE = shutil.ignore_patterns(".git", ".venv", "*.egg-info", "build", "dist", "instance", "test-artifacts",
                                    "__pycache__", ".mypy_cache", ".ruff_cache", ".pytest_cache", ".hypothesis",
                                    ".venv-pygeoapi", "*.sqlite", "*.sqlite-wal", "*.sqlite-shm", "ratelimits.bin")
NEAREST = "/api/v1/sites/nearest?lat=39.9289&lon=116.4160&at=2026-11-23T10:00&limit=3"
COVERAGE_MAP = "/maps/coverage?at=2026-11-23T22:00&resolution=7&n=0&tiles=none"


def _run(cmd: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(cmd, capture_output=True, text=True, **kwargs)  # type: ignore[call-overload]
    assert proc.returncode == 0, f"{' '.join(map(str, cmd))} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    return proc  # type: ignore[no-any-return]


def _clean_env(**extra: str) -> dict[str, str]:
    """The environment without anything that would point the installed package back at this checkout."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "DATABASE_URL", "VIRTUAL_ENV", "PYTHONHOME") and not k.startswith("GEOSERVICE_")}
    return env | extra


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``pip wheel --no-deps`` of a copy of the checkout (so the build leaves nothing in the checkout)."""
    src = tmp_path_factory.mktemp("src") / "geoservice"
    shutil.copytree(ROOT, src, ignore=NOT_SOURCE)
    out = tmp_path_factory.mktemp("wheelhouse")
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(out), str(src)])
    (built,) = out.glob("geoservice-*.whl")
    return built


def _wheelhouse() -> Path:
    """Where the dependencies' wheels are kept between runs: outside the checkout, in the user's cache."""
    default = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "geoservice" / "test-wheelhouse"
    return Path(os.environ.get("GEOSERVICE_TEST_WHEELHOUSE") or default)


@pytest.fixture(scope="module")
def venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtualenv outside the checkout with ``geoservice[planners]`` installed from the wheel.

    The dependencies are installed from a wheelhouse, offline (``--no-index``); when it lacks something (first
    run, or the dependencies changed) ``pip download`` fills it from the configured index and the install is
    tried again. Either way every package is installed anew into an empty virtualenv.
    """
    home = tmp_path_factory.mktemp("venv") / "env"
    _run([sys.executable, "-m", "venv", "--without-pip", str(home)])
    pip = [sys.executable, "-m", "pip", "--python", str(home / "bin" / "python")]
    house = _wheelhouse()
    house.mkdir(parents=True, exist_ok=True)
    install = [*pip, "install", "--quiet", "--no-compile", "--no-index", "--find-links", str(house),
               f"{wheel}[planners]"]
    if subprocess.run(install, capture_output=True, text=True, env=_clean_env()).returncode != 0:
        _run([*pip, "download", "--quiet", "--dest", str(house), f"{wheel}[planners]"], env=_clean_env())
        for stale in house.glob("geoservice-*"):  # the project itself always comes from this run's build
            stale.unlink()
        _run(install, env=_clean_env())
    return home


@pytest.fixture(scope="module")
def served(venv: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, Path]]:
    """``geoservice serve`` of the installed wheel, started in an empty folder: (port, that folder)."""
    folder = tmp_path_factory.mktemp("empty")
    assert not any(folder.iterdir())
    port = free_port()
    log = open(folder.parent / "serve.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen([str(venv / "bin" / "geoservice"), "serve", "--port", str(port), "--workers", "1",
                             "--threads", "2"], cwd=folder, env=_clean_env(), stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        try:
            wait_healthy(port, proc, timeout=240)
        except RuntimeError as exc:
            log.flush()
            pytest.fail(f"{exc}\n{(folder.parent / 'serve.log').read_text(errors='replace')[-4000:]}")
        yield port, folder
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
        log.close()


def test_the_wheel_carries_the_pages_assets_layers_and_calendars_but_not_the_tools(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for shipped in ("geoservice/static/index.html", "geoservice/static/operator.html", "geoservice/static/js/app.js",
                    "geoservice/static/js/common.js", "geoservice/static/js/i18n.js",
                    "geoservice/static/js/operator.js", "geoservice/static/js/operator-i18n.js",
                    "geoservice/static/css/app.css", "geoservice/static/vendor/leaflet/leaflet.js",
                    "geoservice/static/vendor/leaflet/images/marker-icon.png",
                    "geoservice/static/vendor/leaflet.markercluster/leaflet.markercluster.js",
                    "geoservice/data/layers/districts.geojson", "geoservice/data/layers/README.md",
                    "geoservice/data/layers/sites_warm_station_simulated.geojson",
                    "geoservice/data/layers/demand_h3r8_modelled.csv", "geoservice/data/calendar/cn-2026.csv",
                    "geoservice/store/sql/postgis/001_init.sql", "geoservice/store/sql/embedded/001_init.sql"):
        assert shipped in names, shipped
    top = {n.split("/", 1)[0] for n in names}
    assert top == {"geoservice", f"{wheel.name.split('-')[0]}-{wheel.name.split('-')[1]}.dist-info"}, top
    assert not any(n.startswith(("tools/", "tests/", "bench/", "geoservice/layerbuild/", "geoservice/devtools/"))
                   for n in names)


def test_the_installed_package_is_the_wheel_not_the_checkout(venv: Path, tmp_path: Path) -> None:
    out = _run([str(venv / "bin" / "python"), "-c",
                "import geoservice, importlib.util; print(geoservice.__file__); "
                "print(importlib.util.find_spec('tools') is None)"], cwd=tmp_path, env=_clean_env()).stdout
    location, no_tools = out.split()
    assert Path(location).is_relative_to(venv) and not Path(location).is_relative_to(ROOT), location
    assert no_tools == "True"


def test_served_from_an_empty_folder_the_couriers_page_and_its_assets(served: tuple[int, Path]) -> None:
    port, folder = served
    status, headers, body = get(port, "/")
    assert status == 200 and headers["content-type"].startswith("text/html"), (status, body[:300])
    assert b'<script type="module" src="/static/js/app.js"' in body or b"/static/js/app.js" in body
    for asset in ("/static/js/app.js", "/static/vendor/leaflet/leaflet.js", "/operator"):
        status, _, body = get(port, asset)
        assert status == 200 and body, asset
    # The embedded store was created in the folder it was started from, nowhere near the checkout.
    assert (folder / "instance" / "geoservice.sqlite").is_file()


def test_served_from_an_empty_folder_a_nearest_answer(served: tuple[int, Path]) -> None:
    import json

    port, _ = served
    status, _, body = get(port, NEAREST)
    assert status == 200, body[:500]
    features = json.loads(body)["features"]
    assert len(features) == 3 and all(f["properties"]["is_open"] for f in features)


def test_served_from_an_empty_folder_ogc_api_features(served: tuple[int, Path]) -> None:
    import json

    port, _ = served
    status, _, body = get(port, "/ogc")
    assert status == 200, body[:500]
    assert any(link["rel"] == "data" for link in json.loads(body)["links"])
    status, _, body = get(port, "/ogc/collections/districts/items?limit=20")
    assert status == 200 and len(json.loads(body)["features"]) == 16


def test_served_from_an_empty_folder_the_planners_coverage_map(served: tuple[int, Path]) -> None:
    port, _ = served
    status, headers, body = get(port, COVERAGE_MAP, timeout=180)  # the first request builds the H3 grid
    assert status == 200 and headers["content-type"].startswith("text/html"), (status, body[:500])
    assert b'src="/static/vendor/leaflet/leaflet.js"' in body and b"L.map(" in body
    status, _, _ = get(port, "/static/vendor/leaflet.markercluster/leaflet.markercluster.js")
    assert status == 200


def test_the_installed_cli_points_layer_builders_at_a_checkout(venv: Path, tmp_path: Path) -> None:
    proc = subprocess.run([str(venv / "bin" / "geoservice"), "layers", "build-districts"], cwd=tmp_path,
                          env=_clean_env(), capture_output=True, text=True)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "python -m tools.layers" in proc.stderr and "检出" in proc.stderr
