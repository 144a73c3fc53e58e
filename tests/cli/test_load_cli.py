"""`geoservice load` and `geoservice calendar load`: all-or-nothing, every problem named, idempotent."""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import geopandas as gpd
import pytest
from click.testing import CliRunner, Result
from shapely.geometry import Point

from geoservice.cli import main
from geoservice.geo import from_wgs84
from geoservice.model import SiteFilter
from geoservice.services import Services


def run(store: Services, *args: str) -> Result:
    env = {"DATABASE_URL": store.spatial.url} if store.backend == "postgis" else {  # type: ignore[attr-defined]
        "DATABASE_URL": "", "GEOSERVICE_EMBEDDED_PATH": str(store.spatial.path)}  # type: ignore[attr-defined]
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


def feature(fid: str, lon: float, lat: float, **props) -> dict:  # type: ignore[no-untyped-def]
    base = {"name_zh": f"驿站{fid}", "opening_hours": "Mo-Su 08:00-20:00", "amenities": ["drinking_water"]}
    return {"type": "Feature", "id": fid, "geometry": {"type": "Point", "coordinates": [lon, lat]},
            "properties": base | props}


def write_geojson(path: Path, features: list) -> Path:  # type: ignore[type-arg]
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}, ensure_ascii=False),
                    encoding="utf-8")
    return path


def count(store: Services) -> int:
    return store.sites.list_sites(SiteFilter(limit=1))[1]


def test_malformed_file_changes_nothing_and_names_every_bad_record(store: Services, tmp_path: Path) -> None:
    path = write_geojson(tmp_path / "bad.geojson", [
        feature("ok-1", 116.40, 39.91),
        feature("bad-hours", 116.41, 39.91, opening_hours="Mo-Fx 09:00-18:00"),
        feature("bad-amenity", 116.42, 39.91, amenities=["sauna"]),
        feature("shanghai", 121.47, 31.23),
        feature("ok-1", 116.43, 39.91),
        {"type": "Feature", "id": "line", "geometry": {"type": "LineString", "coordinates": [[116, 39], [117, 40]]},
         "properties": {"name_zh": "x", "opening_hours": "24/7"}},
        feature("no-name", 116.44, 39.91, name_zh=""),
        feature("nan", float("nan"), 39.91),
    ])
    result = run(store, "load", str(path), "--kind", "warm_station")
    assert result.exit_code == 1
    err = result.output
    for where, field in [("feature 2", "opening_hours"), ("feature 3", "amenities"), ("feature 4", "lon/lat"),
                         ("feature 5", "source_id"), ("feature 6", "geometry"), ("feature 7", "name_zh"),
                         ("feature 8", "lon/lat")]:
        assert f"{path}:{where}: {field}:" in err, (where, field, err)
    assert "feature 1:" not in err
    assert "nothing was loaded" in err
    assert "Traceback" not in err
    assert count(store) == 0


def test_csv_in_gcj02_is_converted_and_reload_is_idempotent(store: Services, tmp_path: Path) -> None:
    wgs = [(116.3975, 39.9087), (116.4595, 39.9087), (116.3103, 39.9834)]
    rows = ["id,name_zh,name_en,lon,lat,opening_hours,amenities,phone"]
    for i, (lon, lat) in enumerate(wgs):
        glon, glat = from_wgs84(lon, lat, "gcj02")
        rows.append(f'csv-{i},测试站{i},Test {i},{glon:.7f},{glat:.7f},"Mo-Fr 08:30-17:30; PH off",'
                    f'drinking_water;toilet,010-0000000{i}')
    path = tmp_path / "sites.csv"
    path.write_text("\ufeff" + "\n".join(rows) + "\n", encoding="utf-8")  # Excel's BOM is accepted
    first = run(store, "load", str(path), "--kind", "warm_station", "--crs", "gcj02")
    assert first.exit_code == 0, first.output
    assert "3 inserted" in first.output
    sites, n = store.sites.list_sites(SiteFilter(limit=10))
    assert n == 3
    by_source = {s.source_id: s for s in sites}
    for i, (lon, lat) in enumerate(wgs):
        s = by_source[f"csv-{i}"]
        assert s.lon == pytest.approx(lon, abs=1e-6) and s.lat == pytest.approx(lat, abs=1e-6)
        assert s.amenities == ["drinking_water", "toilet"]
    assert by_source["csv-0"].district_adcode == "110101"
    assert by_source["csv-2"].district_adcode == "110108"
    again = run(store, "load", str(path), "--kind", "warm_station", "--crs", "gcj02")
    assert again.exit_code == 0 and "0 inserted, 0 updated, 3 unchanged" in again.output
    assert count(store) == 3


def test_bad_csv_line_numbers(store: Services, tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("id,name_zh,lon,lat,opening_hours,kind\n"
                    "a,甲,116.40,39.91,24/7,warm_station\n"
                    "b,乙,abc,39.91,24/7,warm_station\n"
                    "c,丙,116.40,39.91,24/7,hotel\n", encoding="utf-8")
    result = run(store, "load", str(path))
    assert result.exit_code == 1
    assert f"{path}:line 3: lon/lat:" in result.output
    assert f"{path}:line 4: kind:" in result.output
    assert count(store) == 0


def test_geopackage_loads(store: Services, tmp_path: Path) -> None:
    frame = gpd.GeoDataFrame({
        "id": ["g1", "g2"], "name_zh": ["母婴室一", "母婴室二"], "opening_hours": ["10:00-22:00", "24/7"],
        "amenities": ["nursing_chair;sink", "changing_table"],
    }, geometry=[Point(116.40, 39.92), Point(116.30, 39.98)], crs="EPSG:4326")
    path = tmp_path / "rooms.gpkg"
    frame.to_file(path, driver="GPKG")
    result = run(store, "load", str(path), "--kind", "mother_baby_room")
    assert result.exit_code == 0, result.output
    sites, n = store.sites.list_sites(SiteFilter(kinds=("mother_baby_room",)))
    assert n == 2 and {s.source_id for s in sites} == {"g1", "g2"}


def test_missing_file_and_unknown_format(store: Services, tmp_path: Path) -> None:
    result = run(store, "load", str(tmp_path / "nope.geojson"), "--kind", "warm_station")
    assert result.exit_code == 1 and "does not exist" in result.output
    other = tmp_path / "sites.xls"  # the old binary Excel format: save as .xlsx
    other.write_bytes(b"\xd0\xcf\x11\xe0")
    result = run(store, "load", str(other), "--kind", "warm_station")
    assert result.exit_code == 1 and "unsupported extension '.xls'" in result.output and ".xlsx" in result.output


def test_calendar_load_cli(store: Services, tmp_path: Path) -> None:
    bad = tmp_path / "cn-2027-bad.csv"
    bad.write_text("date,type,name_en,name_zh\n2027-01-01,holiday,New Year's Day,元旦\n2027-01-04,workday,x,y\n",
                   encoding="utf-8")
    result = run(store, "calendar", "load", str(bad))
    assert result.exit_code == 1 and f"{bad}:line 3: type:" in result.output
    assert 2027 not in store.calendars.calendar().years
    good = tmp_path / "cn-2027.csv"
    good.write_text("date,type,name_en,name_zh\n2027-01-01,holiday,New Year's Day,元旦\n", encoding="utf-8")
    result = run(store, "calendar", "load", str(good))
    assert result.exit_code == 0, result.output
    assert 2027 in store.calendars.calendar().years
    listing = run(store, "calendar", "list")
    assert "2027" in listing.output and "2026" in listing.output


def test_csv_keeps_line_breaks_in_quoted_fields_and_verified_at(store: Services, tmp_path: Path) -> None:
    path = tmp_path / "notes.csv"
    path.write_text('id,name_zh,lon,lat,opening_hours,notes,verified_at\n'
                    'n1,甲,116.40,39.91,24/7,"line one\nline two",2026-11-01T09:30:00+08:00\n'
                    'n2,乙,116.41,39.91,24/7,,not-a-time\n', encoding="utf-8")
    bad = run(store, "load", str(path), "--kind", "warm_station")
    assert bad.exit_code == 1 and f"{path}:line 4: verified_at:" in bad.output  # line 4: the record spans 2
    path.write_text(path.read_text(encoding="utf-8").replace("not-a-time", ""), encoding="utf-8")
    assert run(store, "load", str(path), "--kind", "warm_station").exit_code == 0
    sites = {s.source_id: s for s in store.sites.list_sites(SiteFilter(limit=10))[0]}
    assert sites["n1"].notes == "line one\nline two"
    assert sites["n1"].verified_at == dt.datetime(2026, 11, 1, 1, 30, tzinfo=dt.UTC)
