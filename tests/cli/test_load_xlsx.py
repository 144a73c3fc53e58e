"""`geoservice load FILE.xlsx` (issue 16, item 3): the workbooks union staff keep — Chinese headers, GCJ-02
coordinates copied from Amap, a notes sheet beside the data — load on both stores; a bad row is named by sheet,
row and column and nothing is written; `--skip-invalid` loads the rest, lists and audits what it left out.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import openpyxl
import pytest

from geoservice.geo import from_wgs84
from geoservice.model import SiteFilter, site_id_for
from geoservice.services import Services
from tests.cli.test_load_cli import count, run

HEADER = ["编号", "名称", "类型", "经度（GCJ-02）", "纬度（GCJ-02）", "开放时间", "服务设施", "联系电话", "备注"]
# WGS-84 points in Dongcheng and Chaoyang, written into the sheet as Amap (GCJ-02) shows them.
GOOD = [("DC-001", "东城区环卫驿站", "warm_station", (116.4105, 39.9120), "Mo-Su 07:00-21:00", "drinking_water;toilet",
         "010-65123456", "东门进，24小时热水"),
        ("CY-002", "朝阳区户外劳动者驿站", "warm_station", (116.4800, 39.9300), "24/7", "heating", None, None),
        ("CY-003", "朝阳区母婴室", "mother_baby_room", (116.4600, 39.9200), "Mo-Fr 09:00-17:00", None, None, None)]


def workbook(path: Path, rows: list[tuple[Any, ...]], datum: str = "gcj02") -> Path:
    book = openpyxl.Workbook()
    notes = book.active
    assert notes is not None
    notes.title = "说明"
    notes.append(["本表由区总工会整理，坐标取自高德地图"])  # a notes sheet: no coordinate columns, left alone
    sheet = book.create_sheet("站点")
    sheet.append([])  # a blank first row, as hand-made sheets often have
    sheet.append(HEADER)
    for sid, name, kind, (lon, lat), hours, amenities, phone, notes_text in rows:
        x, y = from_wgs84(lon, lat, datum) if isinstance(lon, float) else (lon, lat)
        sheet.append([sid, name, kind, x, y, hours, amenities, phone, notes_text])
    sheet.append([None] * len(HEADER))  # a blank row at the end
    book.save(path)
    return path


def test_a_workbook_with_chinese_headers_and_gcj02_loads_exactly(store: Services, tmp_path: Path) -> None:
    path = workbook(tmp_path / "驿站台账.xlsx", GOOD)
    result = run(store, "load", str(path), "--crs", "gcj02")
    assert result.exit_code == 0, result.output
    assert "3 inserted" in result.output
    sites = {s.source_id: s for s in store.sites.list_sites(SiteFilter(limit=10))[0]}
    assert set(sites) == {"DC-001", "CY-002", "CY-003"}
    for sid, name, kind, (lon, lat), hours, *_ in GOOD:
        site = sites[sid]
        assert (site.name_zh, site.kind, site.opening_hours) == (name, kind, hours)
        assert site.lon == pytest.approx(lon, abs=1e-6) and site.lat == pytest.approx(lat, abs=1e-6)  # back to WGS-84
    assert sites["DC-001"].amenities == ["drinking_water", "toilet"]
    assert sites["DC-001"].district_adcode == "110101" and sites["CY-002"].district_adcode == "110105"
    assert sites["DC-001"].notes == "东门进，24小时热水" and sites["DC-001"].phone
    # Loading the same workbook again changes nothing (matched by 编号).
    again = run(store, "load", str(path), "--crs", "gcj02")
    assert again.exit_code == 0 and "0 inserted, 0 updated, 3 unchanged" in again.output


def bad_rows() -> list[tuple[Any, ...]]:
    return [*GOOD,
            ("BAD-4", "错误时间驿站", "warm_station", (116.40, 39.90), "Mo-Fx 09:00-18:00", None, None, None),
            ("HB-5", "燕郊驿站", "warm_station", (116.83, 39.96), "24/7", None, None, None),  # Hebei: outside
            ("BAD-6", "错误设施驿站", "warm_station", ("东经116度", 39.9), "24/7", "sauna", None, None)]


def test_a_bad_row_is_named_by_sheet_row_and_column_and_nothing_is_written(store: Services,
                                                                           tmp_path: Path) -> None:
    path = workbook(tmp_path / "bad.xlsx", bad_rows())
    before = count(store)
    result = run(store, "load", str(path), "--crs", "gcj02")
    assert result.exit_code == 1
    out = result.output
    # Header on row 2 (row 1 is blank), data from row 3: the 4th data row is row 6.
    assert f"{path}:sheet 站点, row 6, column F (开放时间): opening_hours:" in out, out
    assert f"{path}:sheet 站点, row 7, column D (经度（GCJ-02）), E (纬度（GCJ-02）): lon/lat:" in out, out
    assert "不在服务区域" in out
    assert f"{path}:sheet 站点, row 8, column G (服务设施): amenities: unknown amenity 'sauna'" in out, out
    assert f"{path}:sheet 站点, row 8, column D (经度（GCJ-02）), E (纬度（GCJ-02）): lon/lat: not numbers" in out
    assert "row 3" not in out and "说明" not in out
    assert "nothing was loaded (--skip-invalid loads the valid records and lists the rest)" in out
    assert count(store) == before


def test_skip_invalid_loads_the_rest_and_lists_and_audits_what_it_left_out(store: Services,
                                                                           tmp_path: Path) -> None:
    path = workbook(tmp_path / "bad.xlsx", bad_rows())
    dry = run(store, "load", str(path), "--crs", "gcj02", "--skip-invalid", "--dry-run")
    assert dry.exit_code == 0 and "3 inserted" in dry.output and "3 skipped (dry run" in dry.output
    assert count(store) == 0
    result = run(store, "load", str(path), "--crs", "gcj02", "--skip-invalid")
    assert result.exit_code == 0, result.output
    assert "3 inserted, 0 updated, 0 unchanged, 3 skipped" in result.output
    assert result.output.count("(record skipped)") == 4  # row 8 has two problems
    assert {s.source_id for s in store.sites.list_sites(SiteFilter(limit=10))[0]} == {"DC-001", "CY-002", "CY-003"}
    audit, _ = store.audit.recent(limit=50)
    skipped = {c.site_id: c.changes["skipped"]["after"] for c in audit if c.action == "load-skipped"}
    assert set(skipped) == {site_id_for("BAD-4"), site_id_for("HB-5"), site_id_for("BAD-6")}
    assert "column F (开放时间): opening_hours" in skipped[site_id_for("BAD-4")]


def test_a_file_that_is_not_a_workbook_is_refused_in_one_line(store: Services, tmp_path: Path) -> None:
    good = workbook(tmp_path / "good.xlsx", GOOD)
    truncated = tmp_path / "truncated.xlsx"
    truncated.write_bytes(good.read_bytes()[:300])
    result = run(store, "load", str(truncated))
    assert result.exit_code == 1
    assert f"{truncated}: file: cannot be read as an Excel .xlsx workbook" in result.output
    book = openpyxl.Workbook()
    assert book.active is not None
    book.active.append(["名称", "地址"])
    book.save(tmp_path / "nocoords.xlsx")
    nocoords = run(store, "load", str(tmp_path / "nocoords.xlsx"))
    assert nocoords.exit_code == 1 and "no sheet has a header row naming 经度/lon and 纬度/lat" in nocoords.output
    assert count(store) == 0


def upload(world: Any, path: Path, name: str | None = None, **query: str) -> Any:
    with path.open("rb") as fh:
        return world.client.post("/api/v1/admin/sites/import", query_string=query,
                                 data={"file": (fh, name or path.name)}, content_type="multipart/form-data",
                                 headers=world.auth("carol"))


def test_admins_preview_then_load_a_workbook_from_the_browser(store: Services, tmp_path: Path) -> None:
    from tests.support.world import build_world

    world = build_world(store, tmp_path)
    before = count(store)
    path = workbook(tmp_path / "台账.xlsx", bad_rows())
    # All or nothing: a 422 naming each bad cell; nothing written.
    refused = upload(world, path, crs="gcj02")
    assert refused.status_code == 422 and refused.mimetype == "application/problem+json"
    wheres = {(e["where"], e["field"]) for e in refused.get_json()["errors"]}
    assert ("sheet 站点, row 6, column F (开放时间)", "opening_hours") in wheres
    assert ("sheet 站点, row 7, column D (经度（GCJ-02）), E (纬度（GCJ-02）)", "lon/lat") in wheres
    assert count(store) == before
    # The preview with skip_invalid: what would be inserted and what left out; still nothing written.
    preview = upload(world, path, crs="gcj02", skip_invalid="true", dry_run="true")
    assert preview.status_code == 200, preview.get_json()
    body = preview.get_json()
    assert body["dry_run"] and not body["applied"] and len(body["inserted"]) == 3
    assert [s["source_id"] for s in body["skipped"]] == ["BAD-4", "HB-5", "BAD-6"]
    assert count(store) == before
    # The explicit choice: the valid rows load.
    done = upload(world, path, crs="gcj02", skip_invalid="true")
    assert done.status_code == 200 and done.get_json()["applied"]
    assert count(store) == before + 3
    # Operators and a file that is no site file.
    with path.open("rb") as fh:
        denied = world.client.post("/api/v1/admin/sites/import", data={"file": (fh, "x.xlsx")},
                                   content_type="multipart/form-data", headers=world.auth("alice"))
    assert denied.status_code == 403
    wrong = upload(world, path, name="台账.xls")
    assert wrong.status_code == 422 and wrong.get_json()["errors"][0]["field"] == "file"
    garbage = tmp_path / "garbage.xlsx"
    garbage.write_bytes(b"PK\x03\x04 not really")
    bad = upload(world, garbage)
    assert bad.status_code == 422 and "cannot be read as an Excel" in bad.get_json()["errors"][0]["reason"]
    assert count(store) == before + 3
