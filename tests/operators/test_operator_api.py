"""The operators' HTTP API: accounts and tokens, conditional edits, closures, audit, bulk, reports, preview."""
from __future__ import annotations

import datetime as dt
import io
import logging
from typing import Any

import pytest

from geoservice.hours import now_local
from tests.support import TIANANMEN
from tests.support.sites import sid
from tests.support.world import World, rows_of_every_table

from .conftest import tomorrow_at

PROBLEM = "application/problem+json"


def problem(resp: Any, status: int) -> dict[str, Any]:
    assert resp.status_code == status, resp.get_data(as_text=True)
    assert resp.mimetype == PROBLEM
    body = resp.get_json()
    assert body["status"] == status and body["title"] and body["detail"]
    return body


def line(error: dict[str, Any]) -> int:
    """The line number a problem's ``where`` names (``line 4``)."""
    return int(str(error["where"]).removeprefix("line "))


def etag_of(world: World, site_id: str) -> str:
    return world.client.get(f"/api/v1/sites/{site_id}").headers["ETag"]


def patch(world: World, who: str, site_id: str, body: Any, etag: str | None = "current", **kw: Any) -> Any:
    headers = world.auth(who)
    if etag == "current":
        etag = etag_of(world, site_id)
    if etag is not None:
        headers["If-Match"] = etag
    return world.client.patch(f"/api/v1/sites/{site_id}", json=body, headers=headers, **kw)


# ---- accounts and tokens (both stores) ---------------------------------------------------------------------
def test_401_for_missing_or_bad_tokens_403_for_other_peoples_sites_and_revocation_is_immediate(
        world: World) -> None:
    c = world.client
    missing = problem(c.get("/api/v1/operator/sites"), 401)
    assert "Bearer" in c.get("/api/v1/operator/sites").headers["WWW-Authenticate"]
    unknown = problem(c.get("/api/v1/operator/sites", headers={"Authorization": "Bearer gso_" + "x" * 43}), 401)
    problem(c.get("/api/v1/operator/sites", headers={"Authorization": "Basic YWxpY2U6cHc="}), 401)
    problem(c.get("/api/v1/operator/sites", headers={"Authorization": "Bearer " + "é" * 50}), 401)
    assert "Authorization" in missing["detail"]
    assert world.client.get("/api/v1/operator/me", headers=world.auth("alice")).get_json() == {
        "name": "alice", "role": "operator", "sites": 2}

    # alice may not touch bob's site (403), nor see its history; unknown sites are 404
    problem(patch(world, "alice", sid("op-c"), {"notes": "mine now"}), 403)
    problem(c.get(f"/api/v1/sites/{sid('op-c')}/history", headers=world.auth("alice")), 403)
    problem(c.post(f"/api/v1/sites/{sid('op-c')}/verify", headers=world.auth("alice", **{"If-Match": '"1"'})), 403)
    problem(patch(world, "alice", "no-such-site", {"notes": "x"}, etag='"1"'), 404)
    assert world.store.sites.get_site(sid("op-c")).notes is None  # type: ignore[union-attr]
    # an admin reaches every site and the network-wide change log; an operator does not
    assert patch(world, "carol", sid("op-c"), {"notes": "checked by the union"}).status_code == 200
    problem(c.get("/api/v1/admin/changes", headers=world.auth("alice")), 403)
    changes = c.get("/api/v1/admin/changes", headers=world.auth("carol")).get_json()
    assert changes["total"] == 1 and changes["items"][0]["actor"] == "carol"

    # revoking takes effect on the very next request, and looks exactly like an unknown token
    assert c.get("/api/v1/operator/sites", headers=world.auth("alice")).status_code == 200
    world.store.accounts.revoke("alice")
    revoked = problem(c.get("/api/v1/operator/sites", headers=world.auth("alice")), 401)
    assert {k: v for k, v in revoked.items() if k != "instance"} == {
        k: v for k, v in unknown.items() if k != "instance"}
    problem(patch(world, "alice", sid("op-a"), {"notes": "after revocation"}), 401)


def test_tokens_are_not_stored_or_logged(world: World, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    for name in ("geoservice", "geoservice.access", "werkzeug", "psycopg", "psycopg.pool"):
        logging.getLogger(name).setLevel(logging.DEBUG)
    token = world.tokens["alice"]
    c = world.client
    assert c.get("/api/v1/operator/sites", headers=world.auth("alice")).status_code == 200
    assert patch(world, "alice", sid("op-a"), {"notes": "logged?"}).status_code == 200
    assert patch(world, "alice", sid("op-a"), {"opening_hours": "Mo-Fx"}).status_code == 422
    assert patch(world, "alice", sid("op-c"), {"notes": "x"}).status_code == 403
    world.store.accounts.revoke("alice")
    assert c.get("/api/v1/operator/me", headers=world.auth("alice")).status_code == 401
    assert c.get("/api/v1/operator/me", headers={"Authorization": f"Bearer {token}x"}).status_code == 401
    assert caplog.records, "expected the requests to log something"
    logged = "\n".join(f"{r.getMessage()} {r.args!r} {r.exc_text or ''}" for r in caplog.records)
    assert token not in logged and token[4:24] not in logged
    dump = rows_of_every_table(world.store)
    for secret in world.tokens.values():
        assert secret not in dump and secret[4:24] not in dump


# ---- conditional edits -------------------------------------------------------------------------------------
def test_patch_needs_if_match_and_refuses_a_stale_version(embedded_world: World) -> None:
    w, site = embedded_world, sid("op-a")
    body = problem(patch(w, "alice", site, {"notes": "x"}, etag=None), 428)
    assert body["errors"][0]["field"] == "If-Match" and '"1"' in body["detail"]
    problem(patch(w, "alice", site, {"notes": "x"}, etag="*"), 428)
    ok = patch(w, "alice", site, {"notes": "first"}, etag='"1"')
    assert ok.status_code == 200 and ok.headers["ETag"] == '"2"'
    props = ok.get_json()["properties"]
    assert props["notes"] == "first" and props["version"] == 2 and props["etag"] == '"2"'
    stale = patch(w, "alice", site, {"notes": "second"}, etag='"1"')
    assert problem(stale, 412)["errors"][0]["field"] == "If-Match"
    assert stale.headers["ETag"] == '"2"'  # the current version, to reload
    # Not an ETag this service gives: a malformed precondition (400), not a stale one (412).
    malformed = problem(patch(w, "alice", site, {"notes": "second"}, etag='"banana"'), 400)
    assert malformed["errors"][0]["field"] == "If-Match"
    problem(patch(w, "alice", site, {"notes": "second"}, etag='"9"'), 412)
    assert patch(w, "alice", site, {"notes": "second"}, etag='W/"2", "9"').status_code == 200  # a list, weak ok
    assert w.store.sites.get_site(site).notes == "second"  # type: ignore[union-attr]


def test_patch_validates_everything_before_saving(embedded_world: World) -> None:
    w, site = embedded_world, sid("op-a")
    body = problem(patch(w, "alice", site, {"notes": "x", "lon": 116.0, "kind": "worker_home"}), 422)
    assert {e["field"] for e in body["errors"]} == {"lon", "kind"} and "lon: unknown field" in body["detail"]
    body = problem(patch(w, "alice", site, {"opening_hours": "Mo-Fr 09:00-18:0x"}), 422)
    [err] = body["errors"]
    assert err["field"] == "opening_hours" and err["column"] == 16 and "minute" in err["expected"]
    assert "at character 16" in body["detail"]
    body = problem(patch(w, "alice", site, {"opening_hours": "Tu-Su 09:00-20:00", "amenities": ["sauna"],
                                            "status": "gone", "name_zh": "", "phone": 12}), 422)
    assert {e["field"] for e in body["errors"]} == {"amenities", "status", "name_zh", "phone"}
    problem(w.client.patch(f"/api/v1/sites/{site}", data="notes=x", content_type="text/plain",
                           headers=w.auth("alice", **{"If-Match": '"1"'})), 415)
    problem(w.client.patch(f"/api/v1/sites/{site}", data="{not json", content_type="application/json",
                           headers=w.auth("alice", **{"If-Match": '"1"'})), 400)
    problem(patch(w, "alice", site, ["notes"]), 400)
    after = w.store.sites.get_site(site)
    assert after is not None and after.version == 1 and after.opening_hours == "24/7"  # nothing was saved
    assert w.store.audit.site_history(site)[1] == 0
    merged = w.client.patch(f"/api/v1/sites/{site}", data='{"phone": "010-6512 3456", "amenities": ["wifi"],'
                            ' "name_en": "Gate A Warm Station"}', content_type="application/merge-patch+json",
                            headers=w.auth("alice", **{"If-Match": '"1"'}))
    assert merged.status_code == 200
    cleared = patch(w, "alice", site, {"phone": None, "name_en": ""})
    props = cleared.get_json()["properties"]
    assert props["phone"] is None and props["name_en"] is None and props["amenities"] == ["wifi"]


def test_every_write_reaches_the_public_nearest_query_at_once(world: World) -> None:
    ten = tomorrow_at(10)
    a, b = sid("op-a"), sid("op-b")
    assert world.nearest_ids(ten)[:2] == [a, b]
    assert patch(world, "alice", a, {"opening_hours": "Mo-Su 18:00-22:00"}).status_code == 200
    assert world.nearest_ids(ten)[0] == b
    assert patch(world, "alice", a, {"opening_hours": "24/7"}).status_code == 200
    assert world.nearest_ids(ten)[0] == a
    closed = patch(world, "alice", a, {"status": "temporarily_closed"})
    assert closed.status_code == 200 and closed.get_json()["properties"]["is_open"] is False
    assert a not in world.nearest_ids(ten)
    assert world.client.get(f"/api/v1/sites/{a}").get_json()["properties"]["status"] == "temporarily_closed"
    assert patch(world, "alice", a, {"status": "open"}).status_code == 200
    day = ten.date().isoformat()
    added = world.client.post(f"/api/v1/sites/{a}/closures", json={"start": day, "end": day, "reason": "维修"},
                              headers=world.auth("alice", **{"If-Match": etag_of(world, a)}))
    assert added.status_code == 201
    assert a not in world.nearest_ids(ten) and a in world.nearest_ids(ten + dt.timedelta(days=1))
    removed = world.client.delete(added.headers["Location"],
                                  headers=world.auth("alice", **{"If-Match": added.headers["ETag"]}))
    assert removed.status_code == 200 and removed.get_json()["properties"]["closures"] == []
    assert world.nearest_ids(ten)[0] == a


def test_closures_verify_and_history(embedded_world: World) -> None:
    w, site = embedded_world, sid("op-b")
    c = w.client
    today = now_local().date()

    def post(body: Any, etag: str | None = None) -> Any:
        return c.post(f"/api/v1/sites/{site}/closures", json=body,
                      headers=w.auth("alice", **{"If-Match": etag or etag_of(w, site)}))

    assert problem(post({"start": "2027-02-12", "end": "2027-02-05"}), 422)["errors"][0]["field"] == "end"
    assert problem(post({"start": "2020-01-01", "end": "2020-01-02"}), 422)["errors"][0]["reason"].count("past")
    # every problem of the body at once: the unknown field, the unreadable date, the missing one
    assert {e["field"] for e in problem(post({"start": "5 Feb", "till": "x"}), 422)["errors"]} == {
        "till", "start", "end"}
    assert {e["field"] for e in problem(post({"start": "5 Feb"}), 422)["errors"]} == {"start", "end"}
    problem(post({"start": "2027-01-01", "end": "2028-06-01"}), 422)  # longer than a year: use status
    problem(c.post(f"/api/v1/sites/{site}/closures", json={"start": "2027-02-05", "end": "2027-02-12"},
                   headers=w.auth("alice")), 428)
    created = post({"start": "2027-02-05", "end": "2027-02-12", "reason": "Spring Festival"})
    assert created.status_code == 201 and created.headers["ETag"] == '"2"'
    closure = created.get_json()["closure"]
    assert closure == {"id": closure["id"], "start": "2027-02-05", "end": "2027-02-12", "reason": "Spring Festival"}
    assert created.headers["Location"].endswith(f"/api/v1/sites/{site}/closures/{closure['id']}")
    public = c.get(f"/api/v1/sites/{site}", query_string={"at": "2027-02-08T12:00"}).get_json()["properties"]
    assert public["is_open"] is False and public["closures"][0]["reason"] == "Spring Festival"
    problem(c.delete(f"/api/v1/sites/{site}/closures/{closure['id'] + 99}",
                     headers=w.auth("alice", **{"If-Match": '"2"'})), 404)
    problem(c.delete(f"/api/v1/sites/{site}/closures/{closure['id']}",
                     headers=w.auth("bob", **{"If-Match": '"2"'})), 403)
    verified = c.post(f"/api/v1/sites/{site}/verify", headers=w.auth("alice", **{"If-Match": '"2"'}))
    assert verified.status_code == 200 and verified.get_json()["properties"]["verified_at"].startswith(
        today.isoformat()[:4])
    problem(c.post(f"/api/v1/sites/{site}/verify", headers=w.auth("alice", **{"If-Match": '"2"'})), 412)
    history = c.get(f"/api/v1/sites/{site}/history", headers=w.auth("alice")).get_json()
    assert [i["action"] for i in history["items"]] == ["verify", "add_closure"]
    assert history["items"][1]["changes"]["closures"]["after"][0]["start"] == "2027-02-05"
    assert all(i["actor"] == "alice" for i in history["items"])
    assert c.get(f"/api/v1/sites/{site}/history", headers=w.auth("carol")).status_code == 200
    paged = c.get(f"/api/v1/sites/{site}/history", query_string={"limit": 1},
                  headers=w.auth("alice")).get_json()
    assert len(paged["items"]) == 1 and paged["links"][0]["rel"] == "next"


def test_my_sites_are_listed_with_etags_and_pages(embedded_world: World) -> None:
    c = embedded_world.client
    mine = c.get("/api/v1/operator/sites", headers=embedded_world.auth("alice"))
    assert mine.status_code == 200 and mine.mimetype == "application/geo+json"
    body = mine.get_json()
    assert body["numberMatched"] == 2 and [f["id"] for f in body["features"]] == sorted([sid("op-a"), sid("op-b")])
    props = body["features"][0]["properties"]
    assert props["etag"] == '"1"' and props["closures"] == [] and props["unresolved_reports"] == 0
    assert props["status"] == "open" and "is_open" in props
    first = c.get("/api/v1/operator/sites", query_string={"limit": 1}, headers=embedded_world.auth("alice"))
    nxt = next(link["href"] for link in first.get_json()["links"] if link["rel"] == "next")
    assert c.get(nxt, headers=embedded_world.auth("alice")).get_json()["features"][0]["id"] == body["features"][1]["id"]
    assert c.get("/api/v1/operator/sites", headers=embedded_world.auth("carol")).get_json()["numberMatched"] == 4
    assert c.get("/api/v1/operator/sites", headers=embedded_world.auth("bob")).get_json()["numberMatched"] == 1
    problem(c.get("/api/v1/operator/sites", query_string={"limit": 0}, headers=embedded_world.auth("bob")), 422)


# ---- bulk --------------------------------------------------------------------------------------------------
BAD_CSV = """site_id,opening_hours,closed_from,closed_to,reason
{a},Mo-Fr 08:00-18:00,,,
{a},,2027-02-05,2027-02-12,Spring Festival
{b},Mo-Fx 09:00-17:00,,,
{b},,2027-02-12,2027-02-05,backwards
{c},24/7,,,
nope,24/7,,,
{a},,,,
{a},Mo-Su 10:00-12:00,,,
{b},,2027-13-01,2027-13-02,
{a},24/7
"""


def test_a_malformed_csv_changes_nothing_and_lists_every_bad_line(world: World) -> None:
    text = BAD_CSV.format(a=sid("op-a"), b=sid("op-b"), c=sid("op-c"))
    before = {s: world.store.sites.get_site(sid(s)) for s in ("op-a", "op-b", "op-c")}
    resp = world.client.post("/api/v1/operator/bulk", data=text.encode(), content_type="text/csv",
                             headers=world.auth("alice"))
    body = problem(resp, 422)
    messages = [f'{e["where"]}: {e["field"]}: {e["reason"]}' for e in body["errors"]]
    assert sorted({line(e) for e in body["errors"]}) == [4, 5, 6, 7, 8, 9, 10, 11], messages
    expected = {
        (4, "opening_hours"), (5, "closed_to"), (6, "site_id"), (7, "site_id"), (8, "row"), (9, "opening_hours"),
        (10, "closed_from"), (10, "closed_to"), (11, "row")}
    assert {(line(e), e["field"]) for e in body["errors"]} == expected
    assert "line 4: opening_hours: cannot parse at character 4" in messages[0]
    assert any("line 6: site_id:" in m and "not one of your sites" in m for m in messages)
    assert any(m.startswith("line 7: site_id: no site with id 'nope'") for m in messages)
    assert any("line 9: opening_hours: differs from line 2" in m for m in messages)
    assert "nothing was changed" in body["detail"]
    for source, old in before.items():
        now = world.store.sites.get_site(sid(source))
        assert now == old
    assert world.store.sites.closures_for([sid("op-a"), sid("op-b")]) == {}
    assert world.store.audit.recent()[1] == 0

    # only other people's sites: a 403, still line by line
    forbidden = f"site_id,opening_hours,closed_from,closed_to,reason\n{sid('op-c')},24/7,,,\n{sid('op-d')},24/7,,,\n"
    body = problem(world.client.post("/api/v1/operator/bulk", data=forbidden, content_type="text/csv",
                                     headers=world.auth("alice")), 403)
    assert [line(e) for e in body["errors"]] == [2, 3]


def test_bulk_dry_run_shows_the_changes_then_the_real_run_applies_them(world: World) -> None:
    a, b = sid("op-a"), sid("op-b")
    text = (f"site_id,opening_hours,closed_from,closed_to,reason\n{a},Mo-Su 18:00-22:00,,,\n"
            f"{b},,{tomorrow_at(0).date()},{tomorrow_at(0).date()},inventory\n{b},Mo-Su 06:00-22:00,,,\n")
    dry = world.client.post("/api/v1/operator/bulk", query_string={"dry_run": "true"}, data=text,
                            content_type="text/csv", headers=world.auth("alice"))
    assert dry.status_code == 200, dry.get_json()
    report = dry.get_json()
    assert report["dry_run"] is True and report["applied"] is False and report["sites"] == 2
    by_site = {c["site_id"]: c for c in report["changes"]}
    assert by_site[a]["changes"] == {"opening_hours": {"before": "24/7", "after": "Mo-Su 18:00-22:00"}}
    assert by_site[a]["lines"] == [2] and by_site[b]["lines"] == [3, 4]
    assert "opening_hours" not in by_site[b]["changes"]  # unchanged hours are not a change
    assert by_site[b]["changes"]["closures"]["before"] == []
    assert by_site[b]["changes"]["closures"]["after"][0]["reason"] == "inventory"
    assert world.store.sites.get_site(a).opening_hours == "24/7"  # type: ignore[union-attr]
    assert world.store.audit.recent()[1] == 0
    assert world.nearest_ids(tomorrow_at(10))[:2] == [a, b]

    upload = {"file": (io.BytesIO(text.encode("utf-8-sig")), "hours.csv")}
    real = world.client.post("/api/v1/operator/bulk", data=upload, content_type="multipart/form-data",
                             headers=world.auth("alice"))
    assert real.status_code == 200 and real.get_json()["applied"] is True
    assert [c.action for c in world.store.audit.recent()[0]] == ["bulk", "bulk"]
    assert a not in world.nearest_ids(tomorrow_at(10)) and b not in world.nearest_ids(tomorrow_at(10))


def test_bulk_refuses_bad_files_clearly(embedded_world: World) -> None:
    c, auth = embedded_world.client, embedded_world.auth("alice")
    body = problem(c.post("/api/v1/operator/bulk", data="id,hours\nx,24/7\n", content_type="text/csv",
                          headers=auth), 422)
    assert line(body["errors"][0]) == 1 and "missing site_id" in body["errors"][0]["reason"]
    problem(c.post("/api/v1/operator/bulk", data="site_id,opening_hours,closed_from,closed_to,reason\n",
                   content_type="text/csv", headers=auth), 422)
    problem(c.post("/api/v1/operator/bulk", json={"rows": []}, headers=auth), 415)
    problem(c.post("/api/v1/operator/bulk", data=b"\xff\xfe\x00", content_type="text/csv", headers=auth), 400)
    problem(c.post("/api/v1/operator/bulk", data="x", content_type="text/csv"), 401)


# ---- couriers' reports -------------------------------------------------------------------------------------
def test_couriers_report_and_operators_see_only_their_own(embedded_world: World) -> None:
    w = embedded_world
    c = w.client
    a, c_site = sid("op-a"), sid("op-c")
    # exactly what the couriers' page sends (observed_at from JavaScript's toISOString())
    observed = (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)).isoformat(timespec="milliseconds")
    sent = {"type": "amenity_missing", "amenity": "toilet", "observed_at": observed.replace("+00:00", "Z"),
            "lang": "zh"}
    created = c.post(f"/api/v1/sites/{a}/reports", json=sent)
    assert created.status_code == 201, created.get_json()
    assert created.get_json()["type"] == "amenity_missing" and created.get_json()["status"] == "open"
    assert c.post(f"/api/v1/sites/{a}/reports", json={"type": "closed_on_arrival", "note": "门锁着"}).status_code == 201
    assert c.post(f"/api/v1/sites/{c_site}/reports", json={"type": "closed_on_arrival"}).status_code == 201
    problem(c.post("/api/v1/sites/no-such-site/reports", json={"type": "closed_on_arrival"}), 404)
    assert problem(c.post(f"/api/v1/sites/{a}/reports", json={"type": "rude"}), 422)["errors"][0]["field"] == "type"
    problem(c.post(f"/api/v1/sites/{a}/reports", json={"type": "amenity_missing"}), 422)
    problem(c.post(f"/api/v1/sites/{a}/reports", json={"type": "closed_on_arrival", "note": "x" * 501}), 422)
    problem(c.post(f"/api/v1/sites/{a}/reports", json={"type": "closed_on_arrival", "who": "me"}), 422)
    problem(c.post(f"/api/v1/sites/{a}/reports", json={"type": "closed_on_arrival",
                                                       "observed_at": "2030-01-01T00:00:00Z"}), 422)
    problem(c.post(f"/api/v1/sites/{a}/reports", data="type=closed", content_type="text/plain"), 415)

    # the public features carry the count; nearest, one site, listing
    nearest = c.get("/api/v1/sites/nearest", query_string={"lat": TIANANMEN[1], "lon": TIANANMEN[0],
                                                           "include_closed": "true", "limit": 10}).get_json()
    counts = {f["id"]: f["properties"]["unresolved_reports"] for f in nearest["features"]}
    assert counts[a] == 2 and counts[c_site] == 1 and counts[sid("op-b")] == 0
    assert c.get(f"/api/v1/sites/{a}").get_json()["properties"]["unresolved_reports"] == 2

    alice = c.get("/api/v1/operator/reports", headers=w.auth("alice")).get_json()
    bob = c.get("/api/v1/operator/reports", headers=w.auth("bob")).get_json()
    carol = c.get("/api/v1/operator/reports", headers=w.auth("carol")).get_json()
    assert alice["total"] == 2 and {r["site_id"] for r in alice["items"]} == {a}
    assert bob["total"] == 1 and {r["site_id"] for r in bob["items"]} == {c_site}
    assert carol["total"] == 3
    note = next(r for r in alice["items"] if r["note"])
    assert note["note"] == "门锁着"
    problem(c.post(f"/api/v1/operator/reports/{note['id']}/resolve", headers=w.auth("bob")), 403)
    problem(c.post("/api/v1/operator/reports/99999/resolve", headers=w.auth("alice")), 404)
    done = c.post(f"/api/v1/operator/reports/{note['id']}/resolve", json={"note": "opened the door"},
                  headers=w.auth("alice"))
    assert done.status_code == 200 and done.get_json()["resolved_by"] == "alice"
    problem(c.post(f"/api/v1/operator/reports/{note['id']}/resolve", headers=w.auth("alice")), 409)
    assert c.get(f"/api/v1/sites/{a}").get_json()["properties"]["unresolved_reports"] == 1
    everything = c.get("/api/v1/operator/reports", query_string={"status": "all"}, headers=w.auth("alice"))
    assert everything.get_json()["total"] == 2


def test_reports_are_rate_limited_per_client(embedded_world: World) -> None:
    c, site = embedded_world.client, sid("op-b")
    for _ in range(5):
        assert c.post(f"/api/v1/sites/{site}/reports", json={"type": "closed_on_arrival"}).status_code == 201
    limited = c.post(f"/api/v1/sites/{site}/reports", json={"type": "closed_on_arrival"})
    problem(limited, 429)
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    other = c.post(f"/api/v1/sites/{site}/reports", json={"type": "closed_on_arrival"},
                   environ_base={"REMOTE_ADDR": "10.1.2.3"})
    assert other.status_code == 201  # per client address
    # refused input does not use up the allowance
    assert c.post(f"/api/v1/sites/{site}/reports", json={"type": "nope"},
                  environ_base={"REMOTE_ADDR": "10.9.9.9"}).status_code == 422


# ---- hours preview -----------------------------------------------------------------------------------------
def test_hours_preview_shows_seven_days_with_the_official_calendar(embedded_world: World) -> None:
    c = embedded_world.client
    body = c.get("/api/v1/hours/preview", query_string={"opening_hours": "Mo-Fr 09:00-18:00; PH off",
                                                       "from": "2026-09-30"}).get_json()
    days = {d["date"]: d for d in body["days"]}
    assert len(body["days"]) == 7 and body["warnings"] == []
    assert days["2026-09-30"]["intervals"] == [{"start": "2026-09-30T09:00:00+08:00",
                                                "end": "2026-09-30T18:00:00+08:00"}]
    assert days["2026-10-01"]["day_type"] == "holiday" and days["2026-10-01"]["intervals"] == []
    assert days["2026-10-01"]["holiday"]["zh"] == "国庆节"
    assert body["from"] == "2026-09-30T00:00:00+08:00" and body["to"] == "2026-10-07T00:00:00+08:00"
    new_year = c.get("/api/v1/hours/preview", query_string={"opening_hours": "24/7", "from": "2026-12-29"})
    warn = new_year.get_json()["warnings"]
    assert [w["code"] for w in warn] == ["calendar-missing"] and "2027" in warn[0]["en"]
    assert new_year.get_json()["days"][4]["calendar_known"] is False
    bad = problem(c.get("/api/v1/hours/preview", query_string={"opening_hours": "Mo-Fr 25:00-26:00"}), 422)
    assert bad["errors"][0]["field"] == "opening_hours"
    err = problem(c.get("/api/v1/hours/preview", query_string={"opening_hours": "Mo-Fx 09:00"}), 422)["errors"][0]
    assert err["column"] == 4 and err["expected"]
    problem(c.get("/api/v1/hours/preview"), 400)
    problem(c.get("/api/v1/hours/preview", query_string={"opening_hours": "24/7", "from": "someday"}), 400)


def test_the_openapi_document_offers_reports_to_the_couriers_page(embedded_world: World) -> None:
    doc = embedded_world.client.get("/api/v1/openapi.json").get_json()
    assert "post" in doc["paths"]["/api/v1/sites/{site_id}/reports"]
    assert "patch" in doc["paths"]["/api/v1/sites/{site_id}"] and "get" in doc["paths"]["/api/v1/sites/{site_id}"]
    for path in ("/api/v1/operator/sites", "/api/v1/sites/{site_id}/closures", "/api/v1/sites/{site_id}/verify",
                 "/api/v1/sites/{site_id}/history", "/api/v1/admin/changes", "/api/v1/operator/bulk",
                 "/api/v1/operator/reports", "/api/v1/hours/preview"):
        assert path in doc["paths"], path
    assert doc["components"]["securitySchemes"]["operatorToken"]["scheme"] == "bearer"
    patch_op = doc["paths"]["/api/v1/sites/{site_id}"]["patch"]
    assert {"412", "428", "401", "403"} <= set(patch_op["responses"])
    with embedded_world.client.get("/operator") as page:
        assert page.status_code == 200 and b"operator.js" in page.data



def test_ids_beyond_64_bits_are_no_such_resource(embedded_world: World) -> None:
    # Regression (fuzz): an id above 2^63-1 in a path overflowed the store's integer and answered 500.
    w, site = embedded_world, sid("op-a")
    etag = w.client.get(f"/api/v1/sites/{site}").headers["ETag"]
    resp = w.client.delete(f"/api/v1/sites/{site}/closures/{2**63}", headers=w.auth("alice", **{"If-Match": etag}))
    assert resp.status_code == 404 and resp.mimetype == "application/problem+json"
    resp = w.client.post(f"/api/v1/operator/reports/{2**64}/resolve", json={}, headers=w.auth("alice"))
    assert resp.status_code == 404 and resp.mimetype == "application/problem+json"
