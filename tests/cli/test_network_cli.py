"""``geoservice network load`` on both stores: the real Helsinki extract loads with progress on stderr; a bad,
truncated or missing PBF and a bad ``--bbox`` are refused with one line naming the file (or option) and change
nothing: the network stored before stays."""
from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from geoservice.cli import main
from geoservice.services import Services
from tests.support.helsinki import PBF


def run(store: Services, *args: str) -> Result:
    env = {"DATABASE_URL": store.spatial.url} if store.backend == "postgis" else {  # type: ignore[attr-defined]
        "DATABASE_URL": "", "GEOSERVICE_EMBEDDED_PATH": str(store.spatial.path)}  # type: ignore[attr-defined]
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


def test_load_bad_files_refused_and_the_old_network_stays(store: Services, tmp_path: Path) -> None:
    ok = run(store, "network", "load", str(PBF))
    assert ok.exit_code == 0, ok.output
    assert "walking network loaded" in ok.stdout and "reading" in ok.stderr and "kept" in ok.stderr
    before = store.spatial.load_network()
    assert before is not None and before.edges > 1000
    data = PBF.read_bytes()
    truncated = tmp_path / "truncated.osm.pbf"
    truncated.write_bytes(data[: len(data) // 2])
    garbage = tmp_path / "garbage.osm.pbf"
    garbage.write_bytes(b"<osm>this is XML, not a PBF</osm>" * 10)
    for bad in (truncated, garbage, tmp_path / "missing.osm.pbf"):
        result = run(store, "network", "load", str(bad))
        assert result.exit_code == 1
        lines = result.stderr.strip().splitlines()
        assert len(lines) <= 3 and str(bad) in lines[-1] and "nothing was changed" in lines[-1]
        assert "Traceback" not in result.output
        after = store.spatial.load_network()
        assert after is not None and after.edges == before.edges


@pytest.mark.parametrize("bbox", ["1,2,3", "25,60,24,61", "a,b,c,d", "nan,60,25,61"])
def test_bad_bbox_refused_naming_the_option(store: Services, bbox: str) -> None:
    result = run(store, "network", "load", str(PBF), "--bbox", bbox)
    assert result.exit_code == 1
    assert result.stderr.startswith("--bbox: ") and len(result.stderr.strip().splitlines()) == 1
    assert store.spatial.load_network() is None


def test_bbox_keeps_only_the_box(store: Services) -> None:
    full = run(store, "network", "load", str(PBF))
    assert full.exit_code == 0
    whole = store.spatial.load_network()
    assert whole is not None
    w, s = float(whole.lon.min()), float(whole.lat.min())
    e, n = (w + float(whole.lon.max())) / 2, (s + float(whole.lat.max())) / 2
    part = run(store, "network", "load", str(PBF), "--bbox", f"{w},{s},{e},{n}")
    assert part.exit_code == 0, part.output
    cut = store.spatial.load_network()
    assert cut is not None and 0 < cut.edges < whole.edges
    assert cut.lon.max() <= e + 0.01 and cut.lat.max() <= n + 0.01  # ways crossing the edge keep their ends
