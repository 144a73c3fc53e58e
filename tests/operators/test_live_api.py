"""Live status over HTTP, on both stores (issue 14, item 2): an operator posts how the site is now, couriers'
answers say so at once; three couriers' "closed when I arrived" reports from different clients mark a site.

The answers are asked with ``include_closed=true`` where the order matters, so they do not depend on the hour
the suite runs at (op-b and op-c keep daytime hours).
"""
from __future__ import annotations

from typing import Any

import pytest

from geoservice.errors import NotFound
from tests.support import TIANANMEN
from tests.support.sites import sid
from tests.support.world import World

from .test_operator_api import problem

STATUS = "/api/v1/operator/sites/{}/status"


def put(world: World, who: str, site_id: str, body: Any, **kw: Any) -> Any:
    return world.client.put(STATUS.format(site_id), json=body, headers=world.auth(who), **kw)


def nearest(world: World, **params: Any) -> list[dict[str, Any]]:
    resp = world.client.get("/api/v1/sites/nearest", query_string={
        "lat": TIANANMEN[1], "lon": TIANANMEN[0], "limit": 10, **params})
    assert resp.status_code == 200, resp.get_json()
    features: list[dict[str, Any]] = resp.get_json()["features"]
    assert features, "nearest answered nothing"
    return features


def test_a_full_post_marks_the_site_and_ranks_it_after_a_non_full_one_nearby(world: World) -> None:
    resp = put(world, "alice", sid("op-a"), {"state": "full", "seats_free": 0, "capacity": 8})
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    assert body["site_id"] == sid("op-a") and body["may_be_closed"] is None
    status = body["live_status"]
    assert status["state"] == "full" and status["label"] == {"zh": "满员", "en": "Full"}
    assert status["seats_free"] == 0 and status["capacity"] == 8
    assert status["expires_at"] > status["posted_at"] and status["posted_at"].endswith("+08:00")
    features = nearest(world, include_closed="true")
    # op-a (100 m, full) ranks as if 400 m away: after op-b (300 m), before op-c (500 m).
    assert [f["id"] for f in features] == [sid("op-b"), sid("op-a"), sid("op-c"), sid("op-d")]
    assert features[1]["properties"]["live_status"]["state"] == "full"
    assert features[0]["properties"]["live_status"] is None
    # The site's own page, the listing and the operator's view say it too.
    detail = world.client.get(f"/api/v1/sites/{sid('op-a')}").get_json()
    assert detail["properties"]["live_status"]["seats_free"] == 0
    listing = world.client.get("/api/v1/sites").get_json()["features"]
    assert {f["id"]: f["properties"]["live_status"] is not None for f in listing}[sid("op-a")]
    mine = world.client.get("/api/v1/operator/sites", headers=world.auth("alice")).get_json()["features"]
    assert [f["properties"]["live_status"]["state"] for f in mine if f["id"] == sid("op-a")] == ["full"]
    # GIS clients get flat columns.
    ogc = world.client.get(f"/ogc/collections/warm_stations/items/{sid('op-a')}").get_json()["properties"]
    assert (ogc["live_state"], ogc["live_seats_free"], ogc["live_capacity"]) == ("full", 0, 8)
    assert ogc["live_posted_at"] == status["posted_at"] and ogc["may_be_closed_reports"] is None
    other = world.client.get(f"/ogc/collections/warm_stations/items/{sid('op-b')}").get_json()["properties"]
    assert other["live_state"] is None


def test_closed_now_leaves_open_only_answers_until_cleared(world: World) -> None:
    assert sid("op-a") in [f["id"] for f in nearest(world)]  # 24/7
    assert put(world, "alice", sid("op-a"), {"state": "closed_now", "expires_in_minutes": 30}).status_code == 200
    assert sid("op-a") not in [f["id"] for f in nearest(world)]
    shown = {f["id"]: f for f in nearest(world, include_closed="true")}
    assert shown[sid("op-a")]["properties"]["live_status"]["state"] == "closed_now"
    cleared = world.client.delete(STATUS.format(sid("op-a")), headers=world.auth("alice"))
    assert cleared.status_code == 200 and cleared.get_json()["live_status"] is None
    assert sid("op-a") in [f["id"] for f in nearest(world)]
    history = world.client.get(f"/api/v1/sites/{sid('op-a')}/history", headers=world.auth("alice")).get_json()
    assert [c["action"] for c in history["items"]] == ["live_status_clear", "live_status"]
    assert history["items"][1]["changes"]["live_status"]["after"]["state"] == "closed_now"


def test_who_may_post_and_what_is_refused(world: World) -> None:
    problem(world.client.put(STATUS.format(sid("op-a")), json={"state": "full"}), 401)
    problem(put(world, "bob", sid("op-a"), {"state": "full"}), 403)
    problem(world.client.delete(STATUS.format(sid("op-a")), headers=world.auth("bob")), 403)
    problem(put(world, "alice", "s000000000000", {"state": "full"}), 404)
    assert put(world, "carol", sid("op-c"), {"state": "open", "seats_free": 2, "capacity": 4}).status_code == 200
    more = problem(put(world, "alice", sid("op-a"), {"state": "open", "seats_free": 5, "capacity": 4}), 422)
    assert more["errors"] == [{"field": "seats_free", "reason": "is more than capacity"}]
    full = problem(put(world, "alice", sid("op-a"), {"state": "full", "seats_free": 3}), 422)
    assert full["errors"][0]["field"] == "seats_free"
    long = problem(put(world, "alice", sid("op-a"), {"state": "full", "expires_in_minutes": 721}), 422)
    assert long["errors"][0]["field"] == "expires_in_minutes"
    problem(put(world, "alice", sid("op-a"), {"state": "busy"}), 422)
    problem(put(world, "alice", sid("op-a"), {"state": "full", "colour": "red"}), 422)
    problem(world.client.put(STATUS.format(sid("op-a")), data="state=full", headers={
        **world.auth("alice"), "Content-Type": "application/x-www-form-urlencoded"}), 415)
    # Nothing refused was written.
    assert world.client.get(f"/api/v1/sites/{sid('op-a')}").get_json()["properties"]["live_status"] is None


def report_from(world: World, site_id: str, address: str) -> None:
    resp = world.client.post(f"/api/v1/sites/{site_id}/reports", json={"type": "closed_on_arrival"},
                             environ_base={"REMOTE_ADDR": address})
    assert resp.status_code == 201, resp.get_json()


def test_three_couriers_reports_mark_a_site_may_be_closed_until_its_operator_posts(world: World) -> None:
    site = sid("op-d")
    report_from(world, site, "198.51.100.1")
    report_from(world, site, "198.51.100.2")
    report_from(world, site, "198.51.100.2")  # the same client twice counts once
    detail = world.client.get(f"/api/v1/sites/{site}").get_json()["properties"]
    assert detail["may_be_closed"] is None and detail["unresolved_reports"] == 3
    report_from(world, site, "198.51.100.3")
    marked = {f["id"]: f["properties"] for f in nearest(world, include_closed="true")}[site]
    assert marked["may_be_closed"]["reports"] == 3 and marked["may_be_closed"]["since"].endswith("+08:00")
    assert world.client.get(f"/api/v1/sites/{site}").get_json()["properties"]["may_be_closed"]["reports"] == 3
    # Still listed (it may be wrong), only marked; its operator (here the admin) confirms by posting.
    assert put(world, "carol", site, {"state": "open"}).status_code == 200
    after = world.client.get(f"/api/v1/sites/{site}").get_json()["properties"]
    assert after["may_be_closed"] is None and after["live_status"]["state"] == "open"


def test_a_token_limited_to_one_site_posts_its_live_status_and_nothing_else(world: World) -> None:
    token, info = world.store.accounts.issue_token("alice", "door tablet", site_id=sid("op-a"))
    assert info.site_id == sid("op-a")
    door = {"Authorization": f"Bearer {token}"}
    c = world.client
    resp = c.put(STATUS.format(sid("op-a")), json={"state": "open", "seats_free": 2, "capacity": 5}, headers=door)
    assert resp.status_code == 200 and resp.get_json()["live_status"]["seats_free"] == 2
    assert c.delete(STATUS.format(sid("op-a")), headers=door).status_code == 200
    # alice's other site, her record of this one, her lists: not with this token.
    problem(c.put(STATUS.format(sid("op-b")), json={"state": "full"}, headers=door), 403)
    etag = c.get(f"/api/v1/sites/{sid('op-a')}").headers["ETag"]
    problem(c.patch(f"/api/v1/sites/{sid('op-a')}", json={"notes": "from the door"},
                    headers={**door, "If-Match": etag}), 403)
    problem(c.get("/api/v1/operator/sites", headers=door), 403)
    problem(c.get("/api/v1/operator/reports", headers=door), 403)
    # alice's own token keeps its full rights; a site that is not alice's cannot be a token's limit.
    assert c.get("/api/v1/operator/sites", headers=world.auth("alice")).status_code == 200
    [scoped] = [t for t in world.store.accounts.tokens("alice") if t.site_id]
    assert scoped.id == info.id
    with pytest.raises(NotFound):
        world.store.accounts.issue_token("alice", "wrong", site_id=sid("op-c"))
