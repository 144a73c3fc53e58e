"""`geoservice export` → `geoservice load` gives back the same sites, per format and datum, on both stores."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import pyogrio
import pytest

from geoservice.exports import CSV_COLUMNS
from geoservice.geo import from_wgs84
from geoservice.model import Site, SiteFilter
from geoservice.services import Services

from .conftest import FreshTarget, cli_env, run_cli

# (source_id, kind, lon, lat WGS-84, properties): varied on purpose — Chinese text with commas and quotes,
# empty optional fields, seasonal hours with holidays off, no amenities, simulated or not.
SAMPLE = [
    ("rt-nanluoguxiang", "warm_station", 116.40350, 39.93750, {
        "name_zh": "南锣鼓巷13号暖心驿站", "address": "北京市东城区南锣鼓巷13号",
        "opening_hours": "Tu-Su 09:00-20:00", "amenities": ["wifi", "drinking_water", "heating"],
        "notes": '50 m², "closed Mondays", 周一闭馆; 免费Wi-Fi', "operator": "交道口街道总工会"}),
    ("rt-haidian", "warm_station", 116.31030, 39.98340, {
        "name_zh": "中关村加油站驿站", "name_en": "Zhongguancun Fuel Station", "opening_hours": "24/7",
        "amenities": [], "phone": "010-6255-0000"}),
    ("rt-mall-room", "mother_baby_room", 116.45950, 39.90870, {
        "name_zh": "国贸商城母婴关爱室", "name_en": "China World Mall Mother-and-baby Room",
        "opening_hours": "Mo-Su 10:00-22:00; PH off", "amenities": ["nursing_chair", "sink", "changing_table"]}),
    ("rt-tongzhou-home", "worker_home", 116.65640, 39.90970, {
        "name_zh": "通州运河商务区职工之家", "opening_hours": "24/7", "simulated": True,
        "amenities": ["charging", "seating", "toilet"]}),
    ("rt-yanqing", "warm_station", 115.97490, 40.45690, {
        "name_zh": "延庆（妫水北街）暖心驿站",
        "opening_hours": "Nov-Mar Mo-Fr 07:00-19:00; Apr-Oct Mo-Fr 08:00-18:00; PH off",
        "amenities": ["heating", "hot_water"]}),
]
COMPARED = ("id", "source_id", "kind", "name_zh", "name_en", "address", "district_adcode", "opening_hours",
            "operator", "phone", "notes", "simulated")


def _fill(store: Services, tmp_path: Path) -> list[Site]:
    """Load the sample into ``store`` through the ordinary loader (so districts are assigned as usual)."""
    features = [{"type": "Feature", "id": sid, "geometry": {"type": "Point", "coordinates": [lon, lat]},
                 "properties": {"kind": kind, **props}} for sid, kind, lon, lat, props in SAMPLE]
    path = tmp_path / "sample.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}, ensure_ascii=False),
                    encoding="utf-8")
    result = run_cli(cli_env(store), "load", str(path))
    assert result.exit_code == 0, result.output
    sites, total = store.sites.list_sites(SiteFilter(limit=100))
    assert total == len(SAMPLE)
    return sites


def _exported_coords(path: Path, fmt: str) -> dict[str, tuple[float, float, str]]:
    """source_id -> (lon, lat, crs) as written in the file."""
    if fmt == "csv":
        with open(path, encoding="utf-8-sig", newline="") as fh:
            rows = list(csv.DictReader(fh))
        assert tuple(rows[0].keys()) == CSV_COLUMNS
        return {r["source_id"]: (float(r["lon"]), float(r["lat"]), r["crs"]) for r in rows}
    if fmt == "geojson":
        doc = json.loads(path.read_text(encoding="utf-8"))
        return {f["properties"]["source_id"]: (*f["geometry"]["coordinates"], doc["datum"]) for f in doc["features"]}
    frame = pyogrio.read_dataframe(path)
    return {r.source_id: (r.geometry.x, r.geometry.y, r.crs) for r in frame.itertuples()}


@pytest.mark.parametrize("fmt,datum", [
    ("geojson", "wgs84"), ("geojson", "gcj02"),
    ("csv", "wgs84"), ("csv", "gcj02"),
    ("gpkg", "wgs84"), ("gpkg", "gcj02"),
    ("csv", "bd09"),
])
def test_export_then_load_gives_the_same_sites(store: Services, fresh_target: FreshTarget, tmp_path: Path,
                                               fmt: str, datum: str) -> None:
    originals = _fill(store, tmp_path)
    out = tmp_path / f"export.{fmt}"
    args = ["export", "-o", str(out), "--crs", datum] + (["--bom"] if fmt == "csv" and datum == "bd09" else [])
    exported = run_cli(cli_env(store), *args)
    assert exported.exit_code == 0, exported.output
    assert f"{len(SAMPLE)} site(s)" in exported.output and f"({datum})" in exported.output
    assert f"--crs {datum}" in exported.output

    # The file holds coordinates in the requested datum, and says so.
    written = _exported_coords(out, fmt)
    for site in originals:
        lon, lat, crs = written[site.source_id]
        elon, elat = from_wgs84(site.lon, site.lat, datum)
        assert crs == datum
        assert lon == pytest.approx(elon, abs=2e-8) and lat == pytest.approx(elat, abs=2e-8)
        if datum != "wgs84":
            assert abs(lon - site.lon) + abs(lat - site.lat) > 1e-3  # really converted (GCJ-02 is ~500 m off)

    # Load into a store that has never seen these sites: the same sites come back.
    loaded = run_cli(fresh_target.env, "load", str(out), "--crs", datum)
    assert loaded.exit_code == 0, loaded.output
    assert f"{len(SAMPLE)} inserted" in loaded.output
    target = fresh_target.open()
    back, total = target.sites.list_sites(SiteFilter(limit=100))
    assert total == len(SAMPLE)
    by_id = {s.id: s for s in back}
    for site in originals:
        copy = by_id[site.id]
        for name in COMPARED:
            assert getattr(copy, name) == getattr(site, name), (name, site.source_id)
        assert sorted(copy.amenities) == sorted(site.amenities)
        assert copy.lon == pytest.approx(site.lon, abs=1e-6) and copy.lat == pytest.approx(site.lat, abs=1e-6)

    # Loading the same file again changes nothing (ids are stable across stores).
    again = run_cli(fresh_target.env, "load", str(out), "--crs", datum)
    assert again.exit_code == 0 and f"0 inserted, 0 updated, {len(SAMPLE)} unchanged" in again.output


def test_export_filters_kind_and_refuses_bad_options(store: Services, tmp_path: Path) -> None:
    _fill(store, tmp_path)
    env = cli_env(store)
    out = tmp_path / "homes.csv"
    result = run_cli(env, "export", "--kind", "worker_home", "-o", str(out))
    assert result.exit_code == 0, result.output
    assert "--kind worker_home --crs wgs84" in result.output
    with open(out, encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["source_id"] for r in rows] == ["rt-tongzhou-home"]
    assert rows[0]["simulated"] == "true" and rows[0]["amenities"] == "charging;seating;toilet"
    two = run_cli(env, "export", "--kind", "warm_station,mother_baby_room", "-o", str(tmp_path / "two.geojson"))
    assert two.exit_code == 0 and "4 site(s)" in two.output
    for args, message in [
        (["--kind", "hotel", "-o", str(tmp_path / "x.csv")], "--kind: 'hotel'"),
        (["-o", str(tmp_path / "x.xlsx")], "cannot tell the format"),
        (["--bom", "-o", str(tmp_path / "x.geojson")], "--bom applies to CSV only"),
        (["--district", "999999", "-o", str(tmp_path / "x.csv")], "unknown adcode"),
        (["-o", str(tmp_path / "missing" / "x.csv")], "does not exist"),
    ]:
        res = run_cli(env, "export", *args)
        assert res.exit_code != 0 and message in res.output, (args, res.output)
    assert not any(p.name.startswith(("x.", ".x.")) for p in tmp_path.iterdir())  # nothing half-written
