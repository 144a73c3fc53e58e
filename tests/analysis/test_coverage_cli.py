"""`geoservice coverage …` and `geoservice map coverage` against the demo store file (r8 grid for speed)."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
from click.testing import CliRunner

from geoservice.cli import main

from .conftest import LAYERS


def _env(demo_embedded) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {"GEOSERVICE_EMBEDDED_PATH": str(demo_embedded.spatial.path), "GEOSERVICE_LAYERS_DIR": str(LAYERS),
            "DATABASE_URL": ""}


def test_week_csv_and_heatmap(demo_embedded, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out, png = tmp_path / "week.csv", tmp_path / "week.png"
    result = CliRunner().invoke(main, ["coverage", "week", "--week-of", "2026-11-25", "--kind", "warm_station",
                                       "--resolution", "8", "-o", str(out), "--heatmap", str(png)],
                                env=_env(demo_embedded))
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out, dtype={"adcode": str})
    assert len(table) == 168 * 17 and table["start"].iloc[0] == "2026-11-23T00:00+08:00"
    assert table["demand_share"].between(0, 1).all()
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_map_and_recommend(demo_embedded, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    html = tmp_path / "map.html"
    env = _env(demo_embedded)
    result = CliRunner().invoke(main, ["map", "coverage", "--at", "2026-11-23T22:00", "--kind", "warm_station",
                                       "--radius", "800", "--resolution", "8", "-n", "3", "-o", str(html)], env=env)
    assert result.exit_code == 0, result.output
    text = html.read_text(encoding="utf-8")
    assert "assets inlined" in result.output and "<script src=" not in text and "800 m" in text
    recs = tmp_path / "recs.geojson"
    result = CliRunner().invoke(main, ["coverage", "recommend", "--at", "2026-11-23T22:00", "--walk-minutes", "10",
                                       "--resolution", "8", "-n", "2", "-o", str(recs)], env=env)
    assert result.exit_code == 0, result.output
    assert '"rank": 1' in recs.read_text(encoding="utf-8") and "gap ≤" in result.output


def test_cli_errors_name_the_option(demo_embedded, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    env = _env(demo_embedded)
    runner = CliRunner()
    bad = runner.invoke(main, ["coverage", "at", "--kind", "castle"], env=env)
    assert bad.exit_code == 1 and "--kind: 'castle'" in bad.output
    both = runner.invoke(main, ["coverage", "at", "--radius", "500", "--walk-minutes", "5"], env=env)
    assert both.exit_code == 1 and "not both" in both.output
    tiles = runner.invoke(main, ["map", "coverage", "--tiles", "baidu", "-o", str(tmp_path / "x.html")], env=env)
    assert tiles.exit_code == 1 and "--tiles" in tiles.output and not (tmp_path / "x.html").exists()
    when = runner.invoke(main, ["coverage", "week", "--week-of", "next week", "-o", str(tmp_path / "w.csv")], env=env)
    assert when.exit_code == 1 and "--week-of" in when.output
