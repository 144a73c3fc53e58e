"""Issue 12 at the edges (HTTP and CLI): hours the engine cannot evaluate are evaluated right or refused by name at
every entrance, a reload keeps operators' edits and says so, phones are numbers, names may be Chinese, and
closures have one shape."""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from geoservice.cli import main
from geoservice.services import Services
from tests.support import TIANANMEN
from tests.support.sites import sid
from tests.support.world import World

from .test_operator_api import etag_of, patch, problem

DAY_AFTER_PH = "Mo-Fr 08:00-18:00; PH +1 day off"
REFUSED = ("Mo-Fr 08:00-18:00; SH off", "SH")  # school holidays: no calendar for China


def cli(store: Services, *args: str, input: str | None = None) -> Result:
    env = {"DATABASE_URL": store.spatial.url} if store.backend == "postgis" else {  # type: ignore[attr-defined]
        "DATABASE_URL": "", "GEOSERVICE_EMBEDDED_PATH": str(store.spatial.path)}  # type: ignore[attr-defined]
    return CliRunner().invoke(main, list(args), env=env, input=input, catch_exceptions=False)


# ---- item 2: the expression of the report, end to end --------------------------------------------------
def test_day_after_a_holiday_hours_answer_everywhere_on_the_eve_of_a_holiday(world: World) -> None:
    """PATCH `PH +1 day off`, then every reader that used to 500 in the days before a holiday answers, and
    `hours refresh` succeeds for every site."""
    site = sid("op-b")
    assert patch(world, "alice", site, {"opening_hours": DAY_AFTER_PH}).status_code == 200
    c = world.client
    eve = "2026-09-30T10:00"  # the day before National Day (Wednesday)
    near = c.get("/api/v1/sites/nearest", query_string={"lat": TIANANMEN[1], "lon": TIANANMEN[0], "at": eve,
                                                          "include_closed": "true", "limit": 10})
    assert near.status_code == 200
    states = {f["id"]: f["properties"] for f in near.get_json()["features"]}
    assert states[site]["is_open"] is True and states[site]["hours_problem"] is None
    after = c.get(f"/api/v1/sites/{site}", query_string={"at": "2026-10-08T10:00"}).get_json()["properties"]
    assert after["is_open"] is False  # the day after the last Golden Week day off
    assert c.get("/api/v1/sites", query_string={"open_at": eve}).status_code == 200
    assert c.get("/ogc/collections/warm_stations/items", query_string={"open_at": eve}).status_code == 200
    refreshed = cli(world.store, "hours", "refresh")
    assert refreshed.exit_code == 0, refreshed.output
    assert "skipped" not in refreshed.output


@pytest.mark.parametrize("expression, construct", [REFUSED, ("PH Mo-Fr 10:00-12:00", "PH <weekday>")])
def test_unevaluable_constructs_are_refused_by_name_at_every_entrance(world: World, tmp_path: Path,
                                                                      expression: str, construct: str) -> None:
    site = sid("op-b")
    # PATCH
    body = problem(patch(world, "alice", site, {"opening_hours": expression}), 422)
    assert body["errors"][0]["field"] == "opening_hours" and body["errors"][0]["construct"] == construct
    # the preview
    body = problem(world.client.get("/api/v1/hours/preview", query_string={"opening_hours": expression}), 422)
    assert body["errors"][0]["construct"] == construct
    # the operators' bulk file
    csv = f"site_id,opening_hours,closed_from,closed_to,reason\n{site},{expression},,,\n"
    resp = world.client.post("/api/v1/operator/bulk", data=csv.encode(), content_type="text/csv",
                             headers=world.auth("alice"))
    body = problem(resp, 422)
    assert body["errors"][0]["where"] == "line 2" and "cannot evaluate" in body["errors"][0]["reason"]
    assert world.store.sites.get_site(site).opening_hours == "Mo-Su 06:00-22:00"  # type: ignore[union-attr]
    # a layer file
    path = tmp_path / "sites.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [{
        "type": "Feature", "id": "edge-1", "geometry": {"type": "Point", "coordinates": [116.40, 39.91]},
        "properties": {"name_zh": "驿站", "opening_hours": expression, "kind": "warm_station"}}]}), encoding="utf-8")
    loaded = cli(world.store, "load", str(path))
    assert loaded.exit_code == 1 and f"{path}:feature 1: opening_hours:" in loaded.output
    assert "cannot evaluate" in loaded.output
    # the CLI check
    checked = cli(world.store, "hours", "check", expression)
    assert checked.exit_code == 1 and "cannot evaluate" in checked.output


def test_hours_check_keeps_the_offset_of_at(world: World) -> None:
    """10:00 UTC is 18:00 in Beijing: a site open 09:00-17:00 is closed then (it used to read 10:00 Beijing)."""
    utc = cli(world.store, "hours", "check", "Mo-Fr 09:00-17:00", "--at", "2026-11-23T10:00+00:00")
    assert utc.exit_code == 0 and utc.output.startswith("2026-11-23 Mon 18:00: closed"), utc.output
    local = cli(world.store, "hours", "check", "Mo-Fr 09:00-17:00", "--at", "2026-11-23T10:00")
    assert local.output.startswith("2026-11-23 Mon 10:00: open"), local.output
    bad = cli(world.store, "hours", "check", "24/7", "--at", "tomorrow")
    assert bad.exit_code == 1 and "--at" in bad.output


# ---- item 4: a reload reports what it kept ---------------------------------------------------------------
def test_cli_reload_keeps_operator_edits_and_names_file_line_and_field(world: World, tmp_path: Path) -> None:
    path = tmp_path / "stations.csv"
    path.write_text("id,name_zh,kind,lon,lat,opening_hours,phone\n"
                    "st-1,东四驿站,warm_station,116.4170,39.9290,Mo-Su 08:00-20:00,010-6512 3456\n"
                    "st-2,南锣驿站,warm_station,116.4030,39.9370,Tu-Su 09:00-20:00,\n", encoding="utf-8")
    assert cli(world.store, "load", str(path)).exit_code == 0
    from geoservice.model import site_id_for

    st1 = site_id_for("st-1")
    world.store.accounts.assign("alice", [st1])
    assert patch(world, "alice", st1, {"opening_hours": "24/7", "phone": "13812345678"}).status_code == 200
    again = cli(world.store, "load", str(path))
    assert again.exit_code == 0, again.output
    today = dt.date.today().isoformat()[:4]
    assert f"{path}:line 2: opening_hours: kept the operator's value (edited {today}" in again.output
    assert f"{path}:line 2: phone: kept the operator's value (edited {today}" in again.output
    assert "by alice)" in again.output and "2 operator edit(s) kept" in again.output
    kept = world.store.sites.get_site(st1)
    assert kept is not None and (kept.opening_hours, kept.phone) == ("24/7", "13812345678")
    forced = cli(world.store, "load", str(path), "--overwrite-edits")
    assert forced.exit_code == 0 and "overwrote the operator's value '24/7'" in forced.output
    assert world.store.sites.get_site(st1).opening_hours == "Mo-Su 08:00-20:00"  # type: ignore[union-attr]
    history = world.client.get(f"/api/v1/sites/{st1}/history", headers=world.auth("alice")).get_json()
    assert history["items"][0]["action"] == "load-overwrite"


# ---- item 9: names, phones, closures -----------------------------------------------------------------------
def test_readmes_chinese_operator_name_is_accepted_by_the_cli(world: World) -> None:
    created = cli(world.store, "operators", "create", "某银行东城支行")
    assert created.exit_code == 0, created.output
    assert "created operator 某银行东城支行" in created.output
    assigned = cli(world.store, "operators", "assign", "某银行东城支行", sid("op-d"))
    assert assigned.exit_code == 0, assigned.output
    refused = cli(world.store, "operators", "create", "bad\u202ename")
    assert refused.exit_code == 1 and "invisible" in refused.output


@pytest.mark.parametrize("phone", ["010-6512 3456", "13812345678", "+86 10 6512 3456", "010-6512 3456 转 802",
                                   "12351", "400-810-8888", "6512 3456", "010-6512 3456 / 138 1234 5678"])
def test_chinese_phone_formats_are_accepted(world: World, phone: str) -> None:
    resp = patch(world, "alice", sid("op-a"), {"phone": phone})
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["properties"]["phone"] == phone


@pytest.mark.parametrize("phone", ["call us", "javascript:alert(1)", "010-1234", "<b>010</b>", "12",
                                   "010-65123456-802"])
def test_text_that_is_not_a_phone_number_is_refused(world: World, phone: str) -> None:
    body = problem(patch(world, "alice", sid("op-a"), {"phone": phone}), 422)
    assert body["errors"][0]["field"] == "phone"
    assert world.store.sites.get_site(sid("op-a")).phone is None  # type: ignore[union-attr]


def test_a_layer_file_with_a_bad_phone_names_the_line(world: World, tmp_path: Path) -> None:
    path = tmp_path / "p.csv"
    path.write_text("id,name_zh,kind,lon,lat,opening_hours,phone\n"
                    "p-1,驿站,warm_station,116.4170,39.9290,24/7,请到店咨询\n", encoding="utf-8")
    result = cli(world.store, "load", str(path))
    assert result.exit_code == 1 and f"{path}:line 2: phone:" in result.output


def test_closures_have_one_shape_in_the_public_and_the_operators_api(world: World) -> None:
    site = sid("op-a")
    day = (dt.date.today() + dt.timedelta(days=30)).isoformat()
    created = world.client.post(f"/api/v1/sites/{site}/closures", json={"start": day, "end": day, "reason": "盘点"},
                                headers=world.auth("alice", **{"If-Match": etag_of(world, site)}))
    assert created.status_code == 201, created.get_json()
    mine: dict[str, Any] = created.get_json()["properties"]["closures"][0]
    public: dict[str, Any] = world.client.get(f"/api/v1/sites/{site}").get_json()["properties"]["closures"][0]
    assert mine == public == {"id": mine["id"], "start": day, "end": day, "reason": "盘点"}
    old_shape = world.client.post(f"/api/v1/sites/{site}/closures", json={"from": day, "to": day},
                                  headers=world.auth("alice", **{"If-Match": created.headers["ETag"]}))
    assert {e["field"] for e in problem(old_shape, 422)["errors"]} == {"from", "to", "start", "end"}
