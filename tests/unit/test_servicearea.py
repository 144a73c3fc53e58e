"""GEOSERVICE_SERVICE_AREA: a bad areas layer is a settings problem naming the variable, the file and the feature."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from geoservice.cli import main
from geoservice.settings import Settings
from geoservice.validation import ValidationFailed
from tests.support import LAYERS

VAR = "GEOSERVICE_SERVICE_AREA"
SQUARE = {"type": "Polygon", "coordinates": [[[24.9, 60.1], [25.0, 60.1], [25.0, 60.2], [24.9, 60.2], [24.9, 60.1]]]}
BOWTIE = {"type": "Polygon", "coordinates": [[[24.9, 60.1], [25.0, 60.2], [25.0, 60.1], [24.9, 60.2], [24.9, 60.1]]]}


def _area(code: str, geometry: dict[str, Any] = SQUARE, **props: Any) -> dict[str, Any]:
    return {"type": "Feature", "geometry": geometry,
            "properties": {"adcode": code, "name_zh": f"区{code}", "name_en": f"Area {code}", **props}}


def _write(tmp_path: Path, features: list[Any], metadata: dict[str, Any] | None = None) -> Path:
    path = tmp_path / "areas.geojson"
    doc: dict[str, Any] = {"type": "FeatureCollection", "features": features}
    if metadata is not None:
        doc["metadata"] = metadata
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    return path


def _problems(path: Path | str) -> list[str]:
    with pytest.raises(ValidationFailed) as err:
        Settings.from_env({VAR: str(path)})
    assert all(p.field == VAR for p in err.value.items)
    return [p.reason for p in err.value.items]


def test_default_is_the_bundled_beijing_districts() -> None:
    bundled = json.loads((LAYERS / "districts.geojson").read_text(encoding="utf-8"))
    area = Settings.from_env({}).area()
    assert {d.adcode for d in area.districts} == {f["properties"]["adcode"] for f in bundled["features"]}
    named = bundled["metadata"]["service_area"]
    assert (area.code, area.name_zh, area.name_en) == (named["code"], named["name_zh"], named["name_en"])
    assert any(d.geometry.contains(__import__("shapely").Point(area.centre)) for d in area.districts)


def test_unreadable_file_names_the_variable_and_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.geojson"
    [reason] = _problems(missing)
    assert str(missing) in reason and "cannot be read" in reason
    bad = tmp_path / "bad.geojson"
    bad.write_text("{not json", encoding="utf-8")
    assert "not valid UTF-8 JSON" in _problems(bad)[0]


def test_no_polygons(tmp_path: Path) -> None:
    assert any("no areas" in r for r in _problems(_write(tmp_path, [])))
    point = _area("A", {"type": "Point", "coordinates": [24.9, 60.1]})
    [reason] = _problems(_write(tmp_path, [point]))
    assert "feature 1" in reason and "must be a Polygon or MultiPolygon, got Point" in reason


def test_bad_geometry_and_duplicate_codes_name_the_feature(tmp_path: Path) -> None:
    reasons = _problems(_write(tmp_path, [_area("A"), _area("B", BOWTIE), _area("A")],
                               {"service_area": {"code": "X", "name_zh": "某市", "name_en": "Somewhere"}}))
    assert any("feature 2" in r and "geometry" in r and "not a valid polygon" in r for r in reasons)
    assert any("feature 3" in r and "'A' repeats feature 1" in r for r in reasons)


def test_several_areas_need_the_whole_areas_name(tmp_path: Path) -> None:
    other = {**SQUARE, "coordinates": [[[x + 1, y] for x, y in SQUARE["coordinates"][0]]]}
    [reason] = _problems(_write(tmp_path, [_area("A"), _area("B", other)]))
    assert "metadata.service_area" in reason
    [reason] = _problems(_write(tmp_path, [_area("A"), _area("B", other)],
                                {"service_area": {"code": "A", "name_zh": "某市", "name_en": "Somewhere"}}))
    assert "also an area's code" in reason


def test_one_area_is_named_after_itself_and_gets_its_area(tmp_path: Path) -> None:
    area = Settings.from_env({VAR: str(_write(tmp_path, [_area("A")]))}).area()
    assert (area.name_zh, area.name_en) == ("区A", "Area A") and area.code != "A"
    assert area.districts[0].area_km2 > 0 and area.districts[0].population_2020 == 0
    assert area.districts[0].geometry.contains(__import__("shapely").Point(area.centre))


def test_cli_says_what_is_wrong_without_a_traceback(tmp_path: Path) -> None:
    missing = tmp_path / "nope.geojson"
    result = CliRunner().invoke(main, ["db", "init"], env={VAR: str(missing),
                                                           "GEOSERVICE_EMBEDDED_PATH": str(tmp_path / "db.sqlite")})
    assert result.exit_code == 1
    assert VAR in result.output and str(missing) in result.output and "Traceback" not in result.output
    assert not (tmp_path / "db.sqlite").exists()


def test_a_store_of_another_area_is_refused(tmp_path: Path) -> None:
    """Beijing's demo network in the store, then a restart for another area: refused, nothing changed."""
    db = tmp_path / "db.sqlite"
    env = {"GEOSERVICE_EMBEDDED_PATH": str(db)}
    runner = CliRunner()
    first = runner.invoke(main, ["db", "init"], env=env)
    assert first.exit_code == 0, first.output
    result = runner.invoke(main, ["db", "init"], env={**env, VAR: str(_write(tmp_path, [_area("A")]))})
    assert result.exit_code == 1 and VAR in result.output and "another service area" in result.output
