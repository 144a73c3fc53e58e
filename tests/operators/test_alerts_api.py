"""The alerts API (issue 14 item 1) on both stores: public reads, admins' writes, a district admin kept to its own
districts with a 403 problem naming the others, and alert_hours set by PATCH and shown in the site feature."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

from geoservice.auth import new_token, token_hash
from geoservice.hours import now_local
from geoservice.services import Services
from tests.support.sites import sid
from tests.support.world import World, build_world


def _in(hours: float) -> str:
    return (now_local() + dt.timedelta(hours=hours)).replace(tzinfo=None).isoformat(timespec="seconds")


def _world(store: Services, tmp_path: Path) -> World:
    world = build_world(store, tmp_path)
    store.accounts.create("xicheng", "district_admin", districts=["110102"])
    world.tokens["xicheng"] = new_token()
    store.accounts.add_token("xicheng", token_hash(world.tokens["xicheng"]), "test")
    return world


def test_declare_read_shorten_and_delete_an_alert(store: Services, tmp_path: Path) -> None:
    world = _world(store, tmp_path)
    c = world.client
    made = c.post("/api/v1/alerts", headers=world.auth("carol"), json={
        "type": "cold_wave", "level": "orange", "districts": ["110101"], "end": _in(6)})
    assert made.status_code == 201, made.get_json()
    alert = made.get_json()
    assert alert["type_label"] == {"zh": "寒潮", "en": "Cold wave"} and alert["districts"] == ["110101"]
    assert [a["id"] for a in c.get("/api/v1/alerts").get_json()["items"]] == [alert["id"]]  # public
    changed = c.patch(f"/api/v1/alerts/{alert['id']}", headers=world.auth("carol"), json={"end": _in(2)})
    assert changed.status_code == 200 and changed.get_json()["end"] < alert["end"]
    assert c.delete(f"/api/v1/alerts/{alert['id']}", headers=world.auth("carol")).status_code == 204
    assert c.get(f"/api/v1/alerts/{alert['id']}").status_code == 404
    assert c.get("/api/v1/alerts").get_json()["items"] == []


def test_a_district_admin_gets_a_403_naming_the_districts_outside_its_own(store: Services, tmp_path: Path) -> None:
    world = _world(store, tmp_path)
    c = world.client
    refused = c.post("/api/v1/alerts", headers=world.auth("xicheng"), json={
        "type": "heat", "level": "red", "districts": ["110101", "110102"], "end": _in(3)})
    assert refused.status_code == 403 and refused.mimetype == "application/problem+json"
    assert refused.get_json()["errors"] == [{"field": "districts", "reason": "outside your districts: 110101"}]
    assert c.get("/api/v1/alerts").get_json()["items"] == []  # nothing written
    own = c.post("/api/v1/alerts", headers=world.auth("xicheng"), json={
        "type": "heat", "level": "red", "districts": ["110102"], "end": _in(3)})
    assert own.status_code == 201
    # An operator is no admin; an end before the start is a 422 naming end.
    assert c.post("/api/v1/alerts", headers=world.auth("alice"), json={
        "type": "heat", "level": "red", "districts": ["110102"], "end": _in(3)}).status_code == 403
    early = c.post("/api/v1/alerts", headers=world.auth("carol"), json={
        "type": "heat", "level": "red", "districts": ["110102"], "start": _in(3), "end": _in(1)})
    assert early.status_code == 422 and early.get_json()["errors"][0]["field"] == "end"


def test_alert_hours_by_patch_are_checked_and_shown(store: Services, tmp_path: Path) -> None:
    world = _world(store, tmp_path)
    c = world.client
    site = sid("op-a")
    etag = c.get(f"/api/v1/sites/{site}").headers["ETag"]
    bad = c.patch(f"/api/v1/sites/{site}", headers=world.auth("alice", **{"If-Match": etag}),
                  json={"alert_hours": {"hours": "Mo-Fr 08:00-20:00; SH off", "types": ["cold_wave"]}})
    assert bad.status_code == 422 and bad.get_json()["errors"][0]["field"] == "alert_hours"
    rule = {"hours": "24/7", "types": ["cold_wave", "blizzard"], "min_level": "orange"}
    ok = c.patch(f"/api/v1/sites/{site}", headers=world.auth("alice", **{"If-Match": etag}),
                 json={"alert_hours": rule})
    assert ok.status_code == 200, ok.get_json()
    assert c.get(f"/api/v1/sites/{site}").get_json()["properties"]["alert_hours"] == rule
