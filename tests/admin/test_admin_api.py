"""The admin API as union staff use it, on both stores: accounts a district admin creates belong to its district,
stale sites and verify requests reach the operator, disabling an account stops its token, the change log filters
and shows before → after."""
from __future__ import annotations

import pytest

from geoservice.hours import now_local
from tests.support.districts import DONGCHENG, XICHENG, Districts


def test_a_district_admin_creates_operators_of_its_district_only(districts: Districts) -> None:
    d = districts
    made = d.client.post("/api/v1/admin/accounts", headers=d.auth("dcadmin"),
                         json={"name": "某银行东城支行", "login": "bank.dc"})
    assert made.status_code == 201, made.get_json()
    assert made.get_json()["home_district"] == DONGCHENG and made.get_json()["role"] == "operator"
    listed = {a["login"] for a in d.client.get("/api/v1/admin/accounts", headers=d.auth("dcadmin")).get_json()["items"]}
    assert "bank.dc" in listed
    others = {a["login"] for a in d.client.get("/api/v1/admin/accounts", headers=d.auth("xcadmin")).get_json()["items"]}
    assert "bank.dc" not in others and "xop" in others
    refused = d.client.post("/api/v1/admin/accounts", headers=d.auth("dcadmin"),
                            json={"name": "城市管理员", "login": "city2", "role": "admin"})
    assert refused.status_code == 403
    assert d.store.accounts.by_login("city2") is None
    assert d.client.post("/api/v1/admin/accounts/bank.dc/setup-code", headers=d.auth("xcadmin")).status_code == 403
    code = d.client.post("/api/v1/admin/accounts/bank.dc/setup-code", headers=d.auth("dcadmin"))
    assert code.status_code == 201 and code.get_json()["setup_code"]


def test_stale_sites_and_the_verify_request_reach_the_operator(districts: Districts) -> None:
    d = districts
    stale = d.client.get("/api/v1/admin/stale", headers=d.auth("dcadmin")).get_json()
    assert stale["items"] and stale["days"] == 180  # nothing in the test network was ever verified
    site = d.site[DONGCHENG]
    assert site in [s["id"] for s in stale["items"]] and d.site[XICHENG] not in [s["id"] for s in stale["items"]]
    asked = d.client.post(f"/api/v1/admin/sites/{site}/verify-request", headers=d.auth("dcadmin"))
    assert asked.status_code == 201 and asked.get_json()["verify_request"]["requested_by"] == "东城区总工会"
    mine = d.client.get("/api/v1/operator/sites", headers=d.auth("alice")).get_json()["features"]
    flagged = {f["id"]: f["properties"]["verify_request"] for f in mine}
    assert flagged[site]["requested_by"] == "东城区总工会"
    assert [sid for sid, ask in flagged.items() if ask] == [site]
    etag = d.client.get(f"/api/v1/sites/{site}").headers["ETag"]
    done = d.client.post(f"/api/v1/sites/{site}/verify", headers=d.auth("alice", **{"If-Match": etag}))
    assert done.status_code == 200 and done.get_json()["properties"]["verify_request"] is None
    after = d.client.get("/api/v1/admin/stale", headers=d.auth("dcadmin")).get_json()
    assert site not in [s["id"] for s in after["items"]] and after["total"] == stale["total"] - 1
    assert d.client.get("/api/v1/admin/stale?days=1&district=110102", headers=d.auth("dcadmin")).status_code == 403


def test_disabling_an_account_stops_its_token(districts: Districts) -> None:
    d = districts
    assert d.client.post("/api/v1/admin/accounts/xop/disable", headers=d.auth("dcadmin")).status_code == 403
    off = d.client.post("/api/v1/admin/accounts/xop/disable", headers=d.auth("xcadmin"))
    assert off.status_code == 200 and off.get_json()["disabled"] is True
    assert d.client.get("/api/v1/operator/me", headers=d.auth("xop")).status_code == 401
    assert d.client.post("/api/v1/admin/accounts/xop/enable", headers=d.auth("carol")).status_code == 200
    assert d.client.get("/api/v1/operator/me", headers=d.auth("xop")).status_code == 200


def test_tokens_are_issued_once_and_revoked(districts: Districts) -> None:
    d = districts
    issued = d.client.post("/api/v1/admin/accounts/alice/tokens", headers=d.auth("dcadmin"), json={"label": "柜台"})
    assert issued.status_code == 201
    token, info = issued.get_json()["token"], issued.get_json()["info"]
    assert d.client.get("/api/v1/operator/me", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    listed = d.client.get("/api/v1/admin/accounts/alice/tokens", headers=d.auth("dcadmin")).get_json()["items"]
    assert token not in str(listed) and info["id"] in [t["id"] for t in listed]
    gone = d.client.delete(f"/api/v1/admin/accounts/alice/tokens/{info['id']}", headers=d.auth("dcadmin"))
    assert gone.status_code == 204
    assert d.client.get("/api/v1/operator/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_the_change_log_filters_and_shows_before_and_after(districts: Districts) -> None:
    d = districts
    site = d.site[DONGCHENG]
    etag = d.client.get(f"/api/v1/sites/{site}").headers["ETag"]
    assert d.client.patch(f"/api/v1/sites/{site}", json={"notes": "门口有坡道"},
                          headers=d.auth("alice", **{"If-Match": etag})).status_code == 200
    d.store.sites.verify(d.site[XICHENG], actor="xop-script")
    today = now_local().date().isoformat()
    got = d.client.get(f"/api/v1/admin/changes?actor=alice&from={today}&to={today}", headers=d.auth("carol"))
    items = got.get_json()["items"]
    assert items and all(c["actor"] == "alice" for c in items)
    assert items[0]["changes"]["notes"] == {"before": None, "after": "门口有坡道"}
    assert d.client.get("/api/v1/admin/changes?from=2001-01-01&to=2001-01-02",
                        headers=d.auth("carol")).get_json()["total"] == 0
    xc = d.client.get("/api/v1/admin/changes", headers=d.auth("xcadmin")).get_json()["items"]
    assert xc and {c["site_id"] for c in xc} == {d.site[XICHENG]}
    by_site = d.client.get(f"/api/v1/admin/changes?site_id={site}", headers=d.auth("dcadmin")).get_json()
    assert by_site["total"] >= 1 and {c["site_id"] for c in by_site["items"]} == {site}


@pytest.mark.parametrize("value", ["alice%00", "%01", "al%7Fice"])
def test_a_control_character_in_a_text_filter_is_refused_naming_the_field(districts: Districts,
                                                                          value: str) -> None:
    """A NUL in ``actor`` reached PostgreSQL (which cannot compare it) and came back as a 500."""
    got = districts.client.get(f"/api/v1/admin/changes?actor={value}", headers=districts.auth("carol"))
    assert got.status_code == 422 and got.mimetype == "application/problem+json"
    body = got.get_json()
    assert body["errors"][0]["field"] == "actor" and "control characters" in body["errors"][0]["reason"]
