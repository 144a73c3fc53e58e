"""Every operator and admin route of the OpenAPI document, walked with each role on both stores (issue 16,
item 2): an operator acts on its own sites only, a district admin on its district's sites, reports and operator
accounts only, the city admin on everything. Out of scope is 403; what does not exist is 404. A route added to
the document without a recipe here fails the test, so a new route cannot escape the walk."""
from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import Any

import pytest

from geoservice.hours import now_local
from geoservice.model import Closure, Report
from tests.support.districts import DONGCHENG, ROLES, XICHENG, Districts

Call = tuple[str, str, dict[str, Any]]
Recipe = Callable[[Districts, str], Call]


def _site(d: Districts, district: str) -> tuple[str, dict[str, str]]:
    site = d.store.sites.get_site(d.site[district])
    assert site is not None
    return site.id, {"If-Match": f'"{site.version}"'}


def _report(d: Districts, district: str) -> int:
    saved = d.store.reports.add(Report(site_id=d.site[district], type="closed_on_arrival", observed_at=now_local()))
    assert saved.id is not None
    return saved.id


def _closure(d: Districts, district: str) -> int:
    day = now_local().date() + dt.timedelta(days=3)
    result = d.store.sites.add_closure(Closure(d.site[district], day, day, "walk"), actor="test")
    found = [c for c in d.store.sites.closures_for([d.site[district]])[d.site[district]] if c.start == day]
    assert result.after and found and found[0].id is not None
    return found[0].id


def _token(d: Districts, district: str) -> int:
    name = d.store.accounts.by_login(d.account[district]).name  # type: ignore[union-attr]
    return d.store.accounts.issue_token(name, "walk")[1].id


def _alert(d: Districts, district: str) -> int:
    from geoservice.services.alerts import AlertService

    carol = d.store.accounts.by_login("carol")
    assert carol is not None
    start = now_local()
    alert = AlertService(d.store.sites).declare(carol, "cold_wave", "orange", [district], start,
                                                start + dt.timedelta(hours=6))
    return alert.id


def _later(hours: int = 5) -> str:
    return (now_local() + dt.timedelta(hours=hours)).replace(tzinfo=None, microsecond=0).isoformat()


def site_route(method: str, tail: str = "", body: Any = None, etag: bool = True) -> Recipe:
    def make(d: Districts, district: str) -> Call:
        site_id, headers = _site(d, district)
        kw: dict[str, Any] = {"headers": headers if etag else {}}
        if body is not None:
            kw["json"] = body
        return method, f"/api/v1/sites/{site_id}{tail}", kw
    return make


def tomorrow() -> str:
    return (now_local().date() + dt.timedelta(days=1)).isoformat()


# Routes about one site, report or account: (method, OpenAPI path) -> how to call it on a district's object.
TARGETED: dict[tuple[str, str], Recipe] = {
    ("PATCH", "/api/v1/sites/{site_id}"): site_route("PATCH", body={"notes": "走查"}),
    ("POST", "/api/v1/sites/{site_id}/closures"): lambda d, x: site_route(
        "POST", "/closures", {"start": tomorrow(), "end": tomorrow(), "reason": "walk"})(d, x),
    ("DELETE", "/api/v1/sites/{site_id}/closures/{closure_id}"): lambda d, x: (
        lambda cid: site_route("DELETE", f"/closures/{cid}")(d, x))(_closure(d, x)),
    ("GET", "/api/v1/sites/{site_id}/history"): site_route("GET", "/history", etag=False),
    ("POST", "/api/v1/sites/{site_id}/verify"): site_route("POST", "/verify"),
    ("PUT", "/api/v1/operator/sites/{site_id}/status"): lambda d, x: (
        "PUT", f"/api/v1/operator/sites/{d.site[x]}/status", {"json": {"state": "open"}}),
    ("DELETE", "/api/v1/operator/sites/{site_id}/status"): lambda d, x: (
        "DELETE", f"/api/v1/operator/sites/{d.site[x]}/status", {}),
    ("POST", "/api/v1/operator/bulk"): lambda d, x: (
        "POST", "/api/v1/operator/bulk?dry_run=true", {
            "data": f"site_id,opening_hours,closed_from,closed_to,reason\n{d.site[x]},24/7,,,\n",
            "content_type": "text/csv"}),
    ("POST", "/api/v1/operator/reports/{report_id}/resolve"): lambda d, x: (
        "POST", f"/api/v1/operator/reports/{_report(d, x)}/resolve", {"json": {"note": "处理了"}}),
    ("POST", "/api/v1/admin/sites/{site_id}/verify-request"): lambda d, x: (
        "POST", f"/api/v1/admin/sites/{d.site[x]}/verify-request", {}),
    ("POST", "/api/v1/admin/accounts/{login}/disable"): lambda d, x: (
        "POST", f"/api/v1/admin/accounts/{d.account[x]}/disable", {}),
    ("POST", "/api/v1/admin/accounts/{login}/enable"): lambda d, x: (
        "POST", f"/api/v1/admin/accounts/{d.account[x]}/enable", {}),
    ("POST", "/api/v1/admin/accounts/{login}/setup-code"): lambda d, x: (
        "POST", f"/api/v1/admin/accounts/{d.account[x]}/setup-code", {}),
    ("POST", "/api/v1/admin/accounts/{login}/unlock"): lambda d, x: (
        "POST", f"/api/v1/admin/accounts/{d.account[x]}/unlock", {}),
    ("GET", "/api/v1/admin/accounts/{login}/tokens"): lambda d, x: (
        "GET", f"/api/v1/admin/accounts/{d.account[x]}/tokens", {}),
    ("POST", "/api/v1/admin/accounts/{login}/tokens"): lambda d, x: (
        "POST", f"/api/v1/admin/accounts/{d.account[x]}/tokens", {"json": {"label": "walk"}}),
    ("DELETE", "/api/v1/admin/accounts/{login}/tokens/{token_id}"): lambda d, x: (
        "DELETE", f"/api/v1/admin/accounts/{d.account[x]}/tokens/{_token(d, x)}", {}),
    ("PUT", "/api/v1/admin/accounts/{login}/sites/{site_id}"): lambda d, x: (
        "PUT", f"/api/v1/admin/accounts/{d.account[x]}/sites/{d.site[x]}", {}),
    ("DELETE", "/api/v1/admin/accounts/{login}/sites/{site_id}"): lambda d, x: (
        "DELETE", f"/api/v1/admin/accounts/{d.account[x]}/sites/{d.site[x]}", {}),
    # Weather alerts: the city and the district's own admins declare, change and end them.
    ("POST", "/api/v1/alerts"): lambda d, x: (
        "POST", "/api/v1/alerts", {"json": {"type": "cold_wave", "level": "orange", "districts": [x],
                                            "end": _later()}}),
    ("PATCH", "/api/v1/alerts/{alert_id}"): lambda d, x: (
        "PATCH", f"/api/v1/alerts/{_alert(d, x)}", {"json": {"end": _later(3)}}),
    ("DELETE", "/api/v1/alerts/{alert_id}"): lambda d, x: ("DELETE", f"/api/v1/alerts/{_alert(d, x)}", {}),
}
# The city's own tools, not any district's: partners' webhooks (they carry every district's changes) and loading
# site files. Only the city admin; everyone else 403 (walked in test_city_tools_are_the_city_admins_only).
CITY_ONLY: dict[tuple[str, str], Callable[[Districts], Call]] = {
    ("POST", "/api/v1/admin/webhooks"): lambda d: ("POST", "/api/v1/admin/webhooks", {
        "json": {"url": "https://93.184.216.34/hooks"}}),
    ("GET", "/api/v1/admin/webhooks"): lambda d: ("GET", "/api/v1/admin/webhooks", {}),
    ("GET", "/api/v1/admin/webhooks/{webhook_id}"): lambda d: (
        "GET", f"/api/v1/admin/webhooks/{_hook(d)}", {}),
    ("DELETE", "/api/v1/admin/webhooks/{webhook_id}"): lambda d: (
        "DELETE", f"/api/v1/admin/webhooks/{_hook(d)}", {}),
    ("GET", "/api/v1/admin/webhooks/{webhook_id}/dead-letters"): lambda d: (
        "GET", f"/api/v1/admin/webhooks/{_hook(d)}/dead-letters", {}),
    ("POST", "/api/v1/admin/webhooks/{webhook_id}/dead-letters/{letter_id}/replay"): lambda d: (
        "POST", "/api/v1/admin/webhooks/{}/dead-letters/{}/replay".format(*_dead_letter(d)), {}),
    ("POST", "/api/v1/admin/sites/import"): lambda d: ("POST", "/api/v1/admin/sites/import?dry_run=true", {
        "data": {"file": (__import__("io").BytesIO(b'{"type": "FeatureCollection", "features": []}'),
                          "sites.geojson")}, "content_type": "multipart/form-data"}),
}


def _hook(d: Districts) -> int:
    hook, _ = d.store.webhooks.register("https://93.184.216.34/hooks", "test")
    return hook.id


def _dead_letter(d: Districts) -> tuple[int, int]:
    hook = _hook(d)
    d.store.webhooks.hooks.give_up(hook, 1, 1, 8, "HTTP 503", now_local())
    return hook, d.store.webhooks.dead_letters(hook)[0].id
# Listings: everyone in scope gets 200 with its own district's objects and never the other district's.
LISTINGS: dict[tuple[str, str], str] = {
    ("GET", "/api/v1/operator/me"): "/api/v1/operator/me",
    ("GET", "/api/v1/operator/sites"): "/api/v1/operator/sites",
    ("GET", "/api/v1/operator/reports"): "/api/v1/operator/reports",
    ("GET", "/api/v1/admin/accounts"): "/api/v1/admin/accounts",
    ("GET", "/api/v1/admin/sites"): "/api/v1/admin/sites",
    ("GET", "/api/v1/admin/stale"): "/api/v1/admin/stale",
    ("GET", "/api/v1/admin/reports"): "/api/v1/admin/reports",
    ("GET", "/api/v1/admin/changes"): "/api/v1/admin/changes",
}
# The caller's own account, not anyone's scope: covered by tests/operators/test_session_api.py.
SELF = {("PUT", "/api/v1/session/password")}
# Creating accounts: a district admin creates operators of its district (tests/admin/test_admin_api.py).
CREATE = {("POST", "/api/v1/admin/accounts")}

MY_DISTRICT = {"alice": DONGCHENG, "dcadmin": DONGCHENG, "xcadmin": XICHENG}


def operations(d: Districts) -> list[tuple[str, str]]:
    doc = d.client.get("/api/v1/openapi.json").get_json()
    out = [(m.upper(), p) for p, ops in doc["paths"].items() for m, o in ops.items() if o.get("security")]
    assert len(out) > 25
    return sorted(out)


def may(role: str, path: str, district: str) -> bool:
    """Whether ``role`` may act on ``district``'s object through ``path``."""
    if role == "carol":
        return True
    if role == "alice" and path.startswith(("/api/v1/admin/", "/api/v1/alerts")):
        return False
    return MY_DISTRICT[role] == district


def test_every_secured_route_has_a_recipe(districts: Districts) -> None:
    known = set(TARGETED) | set(LISTINGS) | SELF | CREATE | set(CITY_ONLY)
    missing = [op for op in operations(districts) if op not in known]
    assert not missing, f"routes not walked with each role: {missing}"


@pytest.mark.parametrize("role", ROLES)
def test_each_role_acts_only_in_its_scope(districts: Districts, role: str) -> None:
    d = districts
    walked = 0
    for op in operations(d):
        recipe = TARGETED.get(op)
        if recipe is None:
            continue
        for district in (DONGCHENG, XICHENG):
            method, url, kw = recipe(d, district)
            headers = {**kw.pop("headers", {}), **d.auth(role)}
            resp = d.client.open(url, method=method, headers=headers, **kw)
            expected = may(role, op[1], district)
            got = resp.status_code
            assert (200 <= got < 300) if expected else got == 403, (role, method, url, got, resp.get_data(True))
            walked += 1
    assert walked == 2 * len(TARGETED)


@pytest.mark.parametrize("role", ROLES)
def test_city_tools_are_the_city_admins_only(districts: Districts, role: str) -> None:
    for recipe in CITY_ONLY.values():
        method, url, kw = recipe(districts)
        resp = districts.client.open(url, method=method, headers=districts.auth(role), **kw)
        if role == "carol":
            assert 200 <= resp.status_code < 300, (method, url, resp.status_code, resp.get_data(True))
        else:
            assert resp.status_code == 403, (role, method, url, resp.status_code, resp.get_data(True))


@pytest.mark.parametrize("role", ROLES)
def test_listings_show_only_the_scope(districts: Districts, role: str) -> None:
    d = districts
    for district in (DONGCHENG, XICHENG):  # something to list in each district
        _report(d, district)
        d.store.sites.verify(d.site[district], actor="test")
    for op in operations(d):
        url = LISTINGS.get(op)
        if url is None:
            continue
        resp = d.client.get(url, headers=d.auth(role))
        if role == "alice" and url.startswith("/api/v1/admin/"):
            assert resp.status_code == 403, (url, resp.get_data(True))
            continue
        assert resp.status_code == 200, (url, resp.get_data(True))
        text = json.dumps(resp.get_json(), ensure_ascii=False)
        if url.endswith("/me"):
            continue
        for district in (DONGCHENG, XICHENG):
            mine = role == "carol" or MY_DISTRICT[role] == district
            marker = d.site[district] if "accounts" not in url else f'"login": "{d.account[district]}"'
            if url.endswith("/stale") and not mine:
                assert marker not in text, (role, url)
            elif not url.endswith("/stale"):
                assert (marker in text) == mine, (role, url, district, text[:500])


@pytest.mark.parametrize("role", ROLES)
def test_what_does_not_exist_is_404(districts: Districts, role: str) -> None:
    d = districts
    for url, method in (("/api/v1/sites/nosuchsite/history", "GET"), ("/api/v1/operator/reports/999999/resolve",
                                                                        "POST"),
                        ("/api/v1/admin/accounts/nobody/tokens", "GET"),
                        ("/api/v1/admin/sites/nosuchsite/verify-request", "POST")):
        resp = d.client.open(url, method=method, headers=d.auth(role))
        expected = 403 if role == "alice" and url.startswith("/api/v1/admin/") else 404
        assert resp.status_code == expected, (role, url, resp.get_data(True))
