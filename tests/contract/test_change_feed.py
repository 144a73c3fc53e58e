"""The partners' change feed on both stores (issue 14, item 3): loads, edits, closures, verification, live status
and a reload all appear in ``GET /api/v1/changes``; replaying the feed from EVERY cursor of the run onto what a
partner had at that cursor gives exactly the final state the public listing shows; pages of any size give the
same entries; a rolled-back change leaves none; downloads carry ETag / Last-Modified / licence and answer 304.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import threading
from pathlib import Path
from typing import Any

import pytest

from geoservice.errors import NotFound
from geoservice.hours import now_local
from geoservice.model import SiteEdit
from geoservice.services import Services
from tests.operators.test_operator_api import etag_of, patch, problem
from tests.support.sites import sid
from tests.support.world import OPERATOR_SITES, World, build_world, operator_sites

# What only a request decides (not partners' data): left out when comparing states.
REQUEST_TIME = ("stale", "unresolved_reports", "may_be_closed", "closures")
State = dict[str, dict[str, Any]]


@pytest.fixture
def world(store: Services, tmp_path: Path) -> World:
    return build_world(store, tmp_path)


def feed(world: World, since: str | None = None, limit: int = 1000) -> tuple[list[dict[str, Any]], str]:
    """Every entry after ``since``, page by page, and the cursor to resume from."""
    entries: list[dict[str, Any]] = []
    while True:
        query: dict[str, Any] = {"limit": limit} | ({"since": since} if since is not None else {})
        resp = world.client.get("/api/v1/changes", query_string=query)
        assert resp.status_code == 200, resp.get_data(as_text=True)
        body = resp.get_json()
        assert body["license"]["id"] == "CC0-1.0"
        entries.extend(body["entries"])
        assert len(body["entries"]) <= limit
        since = body["next"]
        if not body["has_more"]:
            return entries, since


def head(world: World) -> str:
    return feed(world)[1]


def comparable(feature: dict[str, Any], closures: list[dict[str, Any]]) -> dict[str, Any]:
    props = {k: v for k, v in feature["properties"].items() if k not in REQUEST_TIME}
    return {"geometry": feature["geometry"], "properties": props, "closures": closures}


def public_state(world: World) -> State:
    """What the public API shows now: the listing, with each site's closures from its own page, and the weather
    alerts (keyed ``alert:<id>``)."""
    listing = world.client.get("/api/v1/sites", query_string={"limit": 1000}).get_json()["features"]
    out = {}
    for f in listing:
        closures = world.client.get(f"/api/v1/sites/{f['id']}").get_json()["properties"]["closures"]
        out[f["id"]] = comparable(f, closures)
    for alert in world.client.get("/api/v1/alerts").get_json()["items"]:
        out[f"alert:{alert['id']}"] = alert
    return out


def replay(state: State, entries: list[dict[str, Any]]) -> State:
    """A partner applying entries in order: each carries the site's or the alert's resulting state (null:
    removed)."""
    out = dict(state)
    for e in entries:
        if e["alert_id"] is not None:
            assert e["site_id"] is None and e["feature"] is None and e["kind"] in ("alert", "alert_removed")
            if e["alert"] is None:
                out.pop(f"alert:{e['alert_id']}", None)
            else:
                out[f"alert:{e['alert_id']}"] = e["alert"]
        elif e["feature"] is None:
            out.pop(e["site_id"], None)
        else:
            out[e["site_id"]] = comparable(e["feature"], e["feature"]["properties"]["closures"])
    return out


def the_run(world: World) -> list[tuple[str, State]]:
    """Loads, edits, closures, verification, live posts and a reload; after each, the cursor and the state."""
    store, c = world.store, world.client
    seen = [(head(world), public_state(world))]

    def step() -> None:
        seen.append((head(world), public_state(world)))

    assert patch(world, "alice", sid("op-a"), {"notes": "热水 / hot water", "phone": "010-12345678"}).status_code == 200
    step()
    today = now_local().date()
    closure = {"start": (today + dt.timedelta(days=3)).isoformat(), "end": (today + dt.timedelta(days=4)).isoformat(),
               "reason": "检修 maintenance"}
    added = c.post(f"/api/v1/sites/{sid('op-b')}/closures", json=closure,
                   headers=world.auth("alice", **{"If-Match": etag_of(world, sid("op-b"))}))
    assert added.status_code == 201, added.get_json()
    step()
    status = c.put(f"/api/v1/operator/sites/{sid('op-a')}/status", json={"state": "full", "seats_free": 0,
                                                                         "capacity": 8}, headers=world.auth("alice"))
    assert status.status_code == 200, status.get_json()
    step()
    verified = c.post(f"/api/v1/sites/{sid('op-c')}/verify",
                      headers=world.auth("carol", **{"If-Match": etag_of(world, sid("op-c"))}))
    assert verified.status_code == 200, verified.get_json()
    step()
    closure_id = added.get_json()["closure"]["id"]
    removed = c.delete(f"/api/v1/sites/{sid('op-b')}/closures/{closure_id}",
                       headers=world.auth("alice", **{"If-Match": etag_of(world, sid("op-b"))}))
    assert removed.status_code == 200, removed.get_json()
    step()
    assert c.put(f"/api/v1/operator/sites/{sid('op-c')}/status", json={"state": "closed_now"},
                 headers=world.auth("bob")).status_code == 200
    assert c.delete(f"/api/v1/operator/sites/{sid('op-a')}/status", headers=world.auth("alice")).status_code in (
        200, 204)
    step()
    # A reload: op-d's hours change in the source, a new site op-e appears, the rest is unchanged.
    specs = [(s[0], s[1], s[2], "Mo-Fr 07:00-19:00" if s[0] == "op-d" else s[3], s[4], s[5]) for s in OPERATOR_SITES]
    specs.append(("op-e", 0, -600, "24/7", "warm_station", ["toilet"]))
    from tests.support.sites import make_sites

    result = store.sites.upsert_sites(make_sites(store, specs, name=lambda s: f"测试驿站{s[-1].upper()}"))
    assert result.inserted == [sid("op-e")] and sid("op-d") in result.updated
    step()
    assert patch(world, "bob", sid("op-c"), {"amenities": ["wifi", "toilet"]}).status_code == 200
    step()
    # Weather alerts: op-b keeps 24/7 in cold waves; one is declared over its district, shortened, a second one
    # declared, the first deleted.
    assert patch(world, "alice", sid("op-b"), {"alert_hours": {"hours": "24/7", "types": ["cold_wave"],
                                                               "min_level": "yellow"}}).status_code == 200
    step()
    district = store.sites.get_site(sid("op-b")).district_adcode  # type: ignore[union-attr]
    now = now_local()
    declared = []
    for hours in (6, 9):
        made = c.post("/api/v1/alerts", headers=world.auth("carol"), json={
            "type": "cold_wave", "level": "orange", "districts": [district],
            "end": (now + dt.timedelta(hours=hours)).isoformat()})
        assert made.status_code == 201, made.get_json()
        declared.append(made.get_json()["id"])
        step()
        if hours == 6:
            shortened = c.patch(f"/api/v1/alerts/{declared[0]}", headers=world.auth("carol"),
                                json={"end": (now + dt.timedelta(hours=3)).isoformat()})
            assert shortened.status_code == 200, shortened.get_json()
            step()
    assert c.delete(f"/api/v1/alerts/{declared[0]}", headers=world.auth("carol")).status_code == 204
    step()
    return seen


def test_replaying_from_every_cursor_of_a_run_reproduces_the_final_state(world: World) -> None:
    start = (None, {})
    seen = the_run(world)
    final = public_state(world)
    everything, last = feed(world)
    assert last == seen[-1][0]
    kinds = {(e["site_id"], e["kind"]) for e in everything}
    assert {(sid("op-e"), "added"), (sid("op-d"), "changed"), (sid("op-a"), "live_status"),
            (sid("op-b"), "changed"), (sid("op-c"), "live_status"), (sid("op-b"), "alert_hours")} <= kinds
    about_alerts = [(e["kind"], e["alert"] and e["alert"]["end"]) for e in everything if e["alert_id"] is not None]
    assert [k for k, _ in about_alerts] == ["alert", "alert", "alert", "alert_removed"]
    assert about_alerts[1][1] < about_alerts[0][1]  # the shortened end
    assert any(k.startswith("alert:") for k in final)  # the second alert is still in force
    assert len({e["cursor"] for e in everything}) == len(everything)  # no entry twice
    assert replay({}, everything) == final
    # The feed up to each cursor seen during the run is exactly what the public API showed then ...
    for cursor, state in seen:
        prefix = everything[:[e["cursor"] for e in everything].index(cursor) + 1]
        assert replay({}, prefix) == state, cursor
    # ... and from EVERY cursor (each entry's, the run's, the very start), what follows finishes the job.
    cursors: list[tuple[str | None, State]] = [start]
    cursors += [(e["cursor"], replay({}, everything[:i + 1])) for i, e in enumerate(everything)]
    for cursor, state in cursors:
        rest, resumed = feed(world, cursor, limit=3)
        assert resumed == last
        assert replay(state, rest) == final, cursor
    # Pages of any size give the same entries in the same order.
    for limit in (1, 2, 5):
        assert feed(world, limit=limit)[0] == everything


def test_an_entry_carries_the_resulting_public_feature(world: World) -> None:
    _, before = feed(world)
    assert patch(world, "alice", sid("op-b"), {"opening_hours": "Mo-Su 07:00-21:00"}).status_code == 200
    entries, _ = feed(world, before)
    assert [(e["site_id"], e["kind"]) for e in entries] == [(sid("op-b"), "changed")]
    props = entries[0]["feature"]["properties"]
    assert props["opening_hours"] == "Mo-Su 07:00-21:00" and props["version"] == 2
    assert props["name_zh"] == "测试驿站B" and props["kind_label"]["en"] == "Warm station"
    assert entries[0]["at"].endswith("+08:00") and entries[0]["feature"]["geometry"]["type"] == "Point"
    # Nothing more until something changes: resuming from the end gives nothing and the same cursor.
    assert feed(world, entries[-1]["cursor"]) == ([], entries[-1]["cursor"])


def test_a_failed_or_rolled_back_change_leaves_no_entry(world: World) -> None:
    _, before = feed(world)
    problem(patch(world, "alice", sid("op-a"), {"notes": "stale"}, etag='"99"'), 412)
    problem(patch(world, "alice", sid("op-a"), {"opening_hours": "not hours at all"}), 422)
    # One bulk edit whose second site does not exist: all or nothing, so op-a's change is rolled back too.
    with pytest.raises(NotFound):
        world.store.sites.apply_edits([SiteEdit(sid("op-a"), fields={"notes": "rolled back"}),
                                       SiteEdit("s000000000000", fields={"notes": "x"})], "carol")
    # An edit that changes nothing and a dry run write nothing.
    site = world.store.sites.get_site(sid("op-a"))
    assert site is not None
    world.store.sites.apply_edits([SiteEdit(site.id, fields={"notes": site.notes})], "carol")
    world.store.sites.apply_edits([SiteEdit(site.id, fields={"notes": "dry"})], "carol", dry_run=True)
    assert feed(world, before) == ([], before)
    assert world.client.get(f"/api/v1/sites/{sid('op-a')}").get_json()["properties"]["notes"] != "rolled back"


def test_a_bad_cursor_is_a_problem_naming_since(world: World) -> None:
    for bad in ("!!", "A1", "zzzzzzzz", "x" * 13):
        body = problem(world.client.get("/api/v1/changes", query_string={"since": bad}), 422)
        assert [e["field"] for e in body["errors"]] == ["since"], body


def test_downloads_carry_etag_last_modified_and_licence_and_answer_304(world: World) -> None:
    c = world.client
    first = c.get("/api/v1/sites.geojson")
    assert first.status_code == 200
    etag, modified = first.headers["ETag"], first.headers["Last-Modified"]
    assert first.get_json()["license"]["id"] == "CC0-1.0" and "CC0-1.0" in first.headers["X-License"]
    assert c.get("/api/v1/sites.geojson", headers={"If-None-Match": etag}).status_code == 304
    assert c.get("/api/v1/sites.geojson", headers={"If-Modified-Since": modified}).status_code == 304
    other = c.get("/api/v1/sites.geojson", query_string={"crs": "gcj02"})
    assert other.headers["ETag"] != etag  # another representation
    csv = c.get("/api/v1/sites.csv")
    assert csv.status_code == 200 and "CC0-1.0" in csv.headers["X-License"] and csv.headers["ETag"] != etag
    assert c.get("/api/v1/sites.csv", headers={"If-None-Match": csv.headers["ETag"]}).status_code == 304
    # A change makes both downloads new.
    assert patch(world, "alice", sid("op-a"), {"notes": "变了 changed"}).status_code == 200
    again = c.get("/api/v1/sites.geojson", headers={"If-None-Match": etag})
    assert again.status_code == 200 and again.headers["ETag"] != etag
    assert "变了 changed" in again.get_data(as_text=True)
    assert c.get("/api/v1/sites.csv", headers={"If-None-Match": csv.headers["ETag"]}).status_code == 200


@pytest.mark.postgis
def test_postgis_cursors_become_visible_in_order_under_concurrent_writers(postgis_store: Services) -> None:
    """Two real concurrent transactions: the first takes cursors and stays open; the second, which would commit
    first with a sequence, waits for it; a reader meanwhile sees neither, then both, never a gap. PostgreSQL
    only: SQLite serialises writers, so nothing there can commit out of order."""
    import psycopg

    store = postgis_store

    store.sites.upsert_sites(operator_sites(store))
    feed_ = store.sites.feed
    start, _ = feed_.head()
    holding, release = threading.Event(), threading.Event()
    got: dict[str, list[int]] = {}

    def slow(ids: list[str]) -> dict[str, Any]:
        holding.set()
        assert release.wait(30)
        return dict.fromkeys(ids)

    def write(name: str, site: str, render: Any) -> None:
        got[name] = feed_.append([(sid(site), "changed")], dt.datetime.now(dt.UTC), render)

    first = threading.Thread(target=write, args=("first", "op-a", slow))
    first.start()
    assert holding.wait(30)
    second = threading.Thread(target=write, args=("second", "op-b", lambda ids: dict.fromkeys(ids)))
    second.start()
    with psycopg.connect(store.spatial.url, autocommit=True) as watch:  # type: ignore[attr-defined]
        for _ in range(3000):  # until the second writer is seen waiting for the first one's lock
            row = watch.execute("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                                "AND query LIKE '%%UPDATE change_feed_head%%'").fetchone()
            if row and row[0] == 1:
                break
            threading.Event().wait(0.01)
        else:
            pytest.fail("the second writer never waited for the first")
    assert "second" not in got
    assert [e.seq for e in feed_.page(start, 10)] == []  # nothing visible yet, so nothing can be skipped
    release.set()
    first.join(30)
    second.join(30)
    assert got == {"first": [start + 1], "second": [start + 2]}
    assert [(e.seq, e.site_id) for e in feed_.page(start, 10)] == [(start + 1, sid("op-a")), (start + 2, sid("op-b"))]


def test_cursors_are_opaque_short_text() -> None:
    from geoservice.model import decode_cursor, encode_cursor

    for n in (0, 1, 35, 36, 10**9, 36**12 - 1):
        text = encode_cursor(n)
        assert decode_cursor(text) == n and 1 <= len(text) <= 12 and text.isalnum()
    assert dataclasses.is_dataclass(Services)
