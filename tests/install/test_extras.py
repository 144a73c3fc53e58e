"""A couriers'-API install without the planners' stack: simulated by an import hook in a fresh interpreter that
refuses geopandas, pandas, h3, folium, branca, matplotlib and pyogrio, as if ``pip install geoservice`` had been
run without ``[planners]`` or ``[gpkg]``.

The app must start and serve the couriers' page, the public API, OGC API and the CSV/GeoJSON exports; the
planners' routes answer 501 problem+json naming the extra in Chinese and English; the planners' and GeoPackage
commands say the same on stderr and exit 1.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.packaging

ROOT = Path(__file__).resolve().parents[2]
BLOCKED = ("geopandas", "pandas", "h3", "folium", "branca", "matplotlib", "pyogrio")

BLOCKER = textwrap.dedent(f"""
    import importlib.abc, sys

    BLOCKED = {BLOCKED!r}

    class NotInstalled(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
            return None

    sys.meta_path.insert(0, NotInstalled())
""")

HTTP = BLOCKER + textwrap.dedent("""
    import json
    from pathlib import Path

    from geoservice import create_app
    from geoservice.settings import Settings

    tmp = Path(sys.argv[1])
    app = create_app(Settings(embedded_path=tmp / "g.sqlite", rate_limit_dir=tmp, public_rate_per_minute=0))
    client = app.test_client()
    out = {}
    for path in sys.argv[2:]:
        r = client.get(path)
        out[path] = {"status": r.status_code, "type": r.mimetype, "body": r.get_data(as_text=True)}
    print(json.dumps(out))
""")

CLI = BLOCKER + textwrap.dedent("""
    import json
    from click.testing import CliRunner

    from geoservice.cli import main

    out = []
    for args in json.loads(sys.argv[1]):
        r = CliRunner().invoke(main, args, catch_exceptions=True)
        crashed = r.exception is not None and not isinstance(r.exception, SystemExit)
        out.append({"args": args, "code": r.exit_code, "stdout": r.stdout, "stderr": r.stderr,
                    "exception": repr(r.exception) if crashed else None})
    print(json.dumps(out))
""")

CORE = {
    "/": "text/html",
    "/operator": "text/html",
    "/static/vendor/leaflet/leaflet.js": "text/javascript",
    "/healthz": "application/json",
    "/api/v1/sites/nearest?lat=39.9289&lon=116.4160&at=2026-11-23T10:00&limit=3": "application/geo+json",
    "/api/v1/sites?kind=worker_home&limit=2": "application/geo+json",
    "/api/v1/districts": "application/geo+json",
    "/api/v1/openapi.json": "application/vnd.oai.openapi+json",
    "/ogc": "application/json",
    "/ogc/collections/warm_stations/items?limit=2": "application/geo+json",
    "/api/v1/sites.csv?kind=worker_home": "text/csv",
    "/api/v1/sites.geojson?kind=worker_home": "application/geo+json",
}
PLANNERS = ("/api/v1/coverage?at=2026-11-23T22:00", "/api/v1/coverage/gaps", "/api/v1/coverage/recommendations",
            "/maps/coverage")


def _env(tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GEOSERVICE_") and k != "DATABASE_URL"}
    return env | {"PYTHONPATH": str(ROOT), "GEOSERVICE_EMBEDDED_PATH": str(tmp / "cli.sqlite"),
                  "GEOSERVICE_RATE_LIMIT_DIR": str(tmp)}


def _python(code: str, *args: str, tmp: Path) -> Any:
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=tmp, env=_env(tmp),
                          timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    return json.loads(proc.stdout.splitlines()[-1])


@pytest.fixture(scope="module")
def answers(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("core-only")
    return _python(HTTP, str(tmp), *CORE, *PLANNERS, tmp=tmp)  # type: ignore[no-any-return]


def test_the_blocker_really_blocks(tmp_path: Path) -> None:
    """The simulation is only worth something if the planners' modules cannot be imported under it."""
    code = BLOCKER + ("import json\nout = []\nfor m in BLOCKED:\n    try:\n        __import__(m)\n"
                      "    except ModuleNotFoundError:\n        out.append(m)\nprint(json.dumps(out))\n")
    assert _python(code, tmp=tmp_path) == list(BLOCKED)


@pytest.mark.parametrize("path", list(CORE))
def test_core_routes_work_without_the_planners_stack(answers: dict[str, dict[str, Any]], path: str) -> None:
    answer = answers[path]
    assert answer["status"] == 200, answer
    assert answer["type"] == CORE[path], answer["type"]
    if path.startswith("/api/v1/sites/nearest"):
        assert len(json.loads(answer["body"])["features"]) == 3


def test_the_api_document_still_lists_the_planners_paths(answers: dict[str, dict[str, Any]]) -> None:
    assert "/api/v1/coverage" in json.loads(answers["/api/v1/openapi.json"]["body"])["paths"]


@pytest.mark.parametrize("path", PLANNERS)
def test_planners_routes_say_which_extra_to_install(answers: dict[str, dict[str, Any]], path: str) -> None:
    answer = answers[path]
    assert answer["status"] == 501 and answer["type"] == "application/problem+json", answer
    problem = json.loads(answer["body"])
    assert problem["status"] == 501 and problem["title"] == "Not installed"
    detail = problem["detail"]
    assert "pip install 'geoservice[planners]'" in detail
    assert "请安装" in detail and "install them with" in detail  # Chinese and English
    assert "geopandas is missing" in detail


@pytest.fixture(scope="module")
def commands(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("cli-core-only")
    (tmp / "sites.gpkg").write_bytes(b"not read: the extra is checked first")
    runs = [
        ["coverage", "at", "--at", "2026-11-23T22:00"],
        ["coverage", "week", "--week-of", "2026-11-23", "-o", str(tmp / "week.csv")],
        ["coverage", "recommend", "-n", "3"],
        ["map", "coverage", "-o", str(tmp / "map.html")],
        ["coverage", "at", "--help"],
        ["load", str(tmp / "sites.gpkg"), "--kind", "warm_station"],
        ["export", "-o", str(tmp / "sites.gpkg")],
        ["export", "-o", str(tmp / "sites.csv")],
        ["hours", "check", "Mo-Fr 08:00-18:00; PH off", "--at", "2026-10-01T10:00"],
    ]
    return _python(CLI, json.dumps(runs), tmp=tmp)  # type: ignore[no-any-return]


@pytest.mark.parametrize("index", range(4))
def test_planners_commands_say_which_extra_to_install(commands: list[dict[str, Any]], index: int) -> None:
    run = commands[index]
    assert run["code"] == 1 and run["exception"] is None, run
    assert "pip install 'geoservice[planners]'" in run["stderr"] and "请安装" in run["stderr"], run
    assert "Traceback" not in run["stderr"]


def test_planners_commands_still_show_their_help(commands: list[dict[str, Any]]) -> None:
    assert commands[4]["code"] == 0 and "--at" in commands[4]["stdout"], commands[4]


@pytest.mark.parametrize("index", (5, 6))
def test_geopackage_needs_the_gpkg_extra(commands: list[dict[str, Any]], index: int) -> None:
    run = commands[index]
    assert run["code"] == 1 and run["exception"] is None, run
    assert "pip install 'geoservice[gpkg]'" in run["stderr"] and "GeoPackage" in run["stderr"], run


@pytest.mark.parametrize("index", (7, 8))
def test_core_commands_work_without_the_planners_stack(commands: list[dict[str, Any]], index: int) -> None:
    run = commands[index]
    assert run["code"] == 0 and run["exception"] is None, run


def test_the_analysis_package_still_exports_every_name() -> None:
    """``geoservice.analysis`` loads its submodules on first use; each exported name must resolve (with the extra)."""
    import geoservice.analysis as analysis

    assert sorted(analysis.__all__) == sorted(analysis._MODULE_OF)
    for name in analysis.__all__:
        assert getattr(analysis, name).__module__.startswith("geoservice.analysis."), name
