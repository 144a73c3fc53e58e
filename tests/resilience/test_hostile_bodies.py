"""Hostile JSON bodies on every endpoint that takes one: a 4xx problem naming the body, never a 5xx (both stores).

The endpoints are found from the OpenAPI document (every operation whose request body is JSON), so a new JSON
endpoint that is not added here makes the test fail instead of going untested.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from geoservice.services import Services
from tests.support.sites import sid
from tests.support.world import World, build_world

DEEP = 100_000
# (name, body): every one of these is unreadable as a JSON object -> 400, errors[0].field == "body".
UNREADABLE: list[tuple[str, bytes]] = [
    ("arrays nested 100,000 deep", b"[" * DEEP + b"]" * DEEP),
    ("objects nested 5,000 deep", b'{"a":' * 5000 + b"1" + b"}" * 5000),
    ("a field nested 1,001 deep", b'{"note":' + b"[" * 1001 + b"]" * 1001 + b"}"),
    ("a field nested 100 deep", b'{"note":' + b"[" * 100 + b"]" * 100 + b"}"),
    ("invalid UTF-8", b'{"note": "\xff\xfe\xfa"}'),
    ("a lone surrogate", b'{"note": "\\ud800"}'),
    ("a JSON array", b'[{"type": "closed_on_arrival"}]'),
    ("a JSON string", b'"closed_on_arrival"'),
    ("a JSON number", b"42"),
    ("null", b"null"),
    ("a huge exponent", b'{"note": 1e999999}'),
    ("a 5,000-digit integer", b'{"note": ' + b"9" * 5000 + b"}"),
    ("NaN", b'{"note": NaN}'),
    ("Infinity", b'{"note": -Infinity}'),
    ("trailing garbage", b'{"note": "x"} {"note": "y"}'),
    ("truncated", b'{"note": "x'),
    ("not JSON at all", b"type=closed_on_arrival"),
]
# Readable objects with hostile content: a 4xx (400/422), never a 5xx.
HOSTILE_CONTENT: list[tuple[str, bytes]] = [
    ("NUL in a value", b'{"note": "a\\u0000b", "reason": "\\u0000", "phone": "\\u0000", "type": "\\u0000"}'),
    ("NUL in a key", b'{"no\\u0000te": "x"}'),
    ("10,000 unknown keys", b"{" + b",".join(b'"k%d": 1' % i for i in range(10_000)) + b"}"),
    ("wrong types everywhere", b'{"note": {"a": 1}, "reason": [1], "start": 1e308, "end": true, "type": false, '
                               b'"opening_hours": [], "phone": 12, "amenities": {"x": 1}, '
                               b'"alert_hours": {"hours": [], "types": "x"}, "districts": [[]], "level": 3}'),
    ("NUL in alert hours", b'{"alert_hours": {"hours": "24/7\\u0000", "types": ["cold_wave\\u0000"]}}'),
]


@pytest.fixture
def world(store: Services, tmp_path: Path) -> World:
    """The operators' seeded world on each backend."""
    return build_world(store, tmp_path)


def _endpoints(world: World) -> dict[tuple[str, str], dict[str, Any]]:
    """(method, OpenAPI path) -> how to reach that endpoint's body reader with alice's rights."""
    c = world.client
    site = sid("op-a")
    report = c.post(f"/api/v1/sites/{site}/reports", json={"type": "closed_on_arrival"})
    assert report.status_code == 201
    etag = c.get(f"/api/v1/sites/{site}").headers["ETag"]
    writer = world.auth("alice", **{"If-Match": etag})
    declared = c.post("/api/v1/alerts", headers=world.auth("carol"), json={
        "type": "cold_wave", "level": "orange", "districts": ["110101"], "end": _later()})
    assert declared.status_code == 201, declared.get_data()
    if world.store.accounts.get("alice").login is None:  # type: ignore[union-attr]
        world.store.accounts.give_login("alice", "alice")  # the admin API names accounts by login
    return {
        ("post", "/api/v1/alerts"): {"url": "/api/v1/alerts", "headers": world.auth("carol"),
                                     "types": ("application/json",)},
        ("patch", "/api/v1/alerts/{alert_id}"): {"url": f"/api/v1/alerts/{declared.get_json()['id']}",
                                                 "headers": world.auth("carol"), "types": ("application/json",)},
        ("post", "/api/v1/admin/accounts"): {"url": "/api/v1/admin/accounts", "headers": world.auth("carol"),
                                             "types": ("application/json",)},
        ("post", "/api/v1/admin/accounts/{login}/tokens"): {
            "url": "/api/v1/admin/accounts/alice/tokens", "headers": world.auth("carol"),
            "types": ("application/json",)},
        ("patch", "/api/v1/sites/{site_id}"): {"url": f"/api/v1/sites/{site}", "headers": writer,
                                          "types": ("application/merge-patch+json", "application/json")},
        ("post", "/api/v1/sites/{site_id}/closures"): {"url": f"/api/v1/sites/{site}/closures", "headers": writer,
                                                  "types": ("application/json",)},
        ("post", "/api/v1/operator/reports/{report_id}/resolve"): {
            "url": f"/api/v1/operator/reports/{report.get_json()['id']}/resolve", "headers": world.auth("alice"),
            "types": ("application/json",)},
        ("post", "/api/v1/sites/{site_id}/reports"): {"url": f"/api/v1/sites/{site}/reports", "headers": {},
                                                 "types": ("application/json",)},
        ("put", "/api/v1/operator/sites/{site_id}/status"): {
            "url": f"/api/v1/operator/sites/{site}/status", "headers": world.auth("alice"),
            "types": ("application/merge-patch+json", "application/json")},
        ("post", "/api/v1/session"): {"url": "/api/v1/session", "headers": {}, "types": ("application/json",)},
        ("put", "/api/v1/session/password"): {"url": "/api/v1/session/password", "headers": world.auth("alice"),
                                              "types": ("application/json",)},
        ("post", "/api/v1/session/setup"): {"url": "/api/v1/session/setup", "headers": {},
                                            "types": ("application/json",)},
        ("post", "/api/v1/admin/webhooks"): {"url": "/api/v1/admin/webhooks", "headers": world.auth("carol"),
                                             "types": ("application/json",)},
    }


def _later() -> str:
    """An alert's end four hours from now (Beijing time, no offset)."""
    import datetime as dt

    from geoservice.hours import now_local

    return (now_local() + dt.timedelta(hours=4)).replace(tzinfo=None).isoformat(timespec="seconds")


def _nul_bodies() -> dict[tuple[str, str], bytes]:
    """Per endpoint, a body that would be accepted but for one U+0000 in a text field (PostgreSQL refuses it)."""
    from geoservice.hours import now_local

    today = now_local().date().isoformat().encode()
    return {
        ("post", "/api/v1/alerts"): b'{"type": "cold_wave", "level": "red\\u0000", "districts": ["110101"], '
                                    b'"end": "%s"}' % _later().encode(),
        ("patch", "/api/v1/alerts/{alert_id}"): b'{"end": "%s\\u0000"}' % _later().encode(),
        ("patch", "/api/v1/sites/{site_id}"): b'{"notes": "open\\u0000late"}',
        ("post", "/api/v1/sites/{site_id}/closures"):
            b'{"start": "%s", "end": "%s", "reason": "\\u0000"}' % (today, today),
        ("post", "/api/v1/operator/reports/{report_id}/resolve"): b'{"note": "done\\u0000"}',
        ("post", "/api/v1/sites/{site_id}/reports"): b'{"type": "closed_on_arrival", "note": "\\u0000"}',
        ("put", "/api/v1/operator/sites/{site_id}/status"): b'{"state": "full\\u0000"}',
        ("post", "/api/v1/session"): b'{"login": "alice", "password": "pass\\u0000word"}',
        ("post", "/api/v1/admin/accounts"): b'{"name": "\\u0000", "login": "newacct"}',
        ("post", "/api/v1/admin/accounts/{login}/tokens"): b'{"label": "walk\\u0000"}',
        ("put", "/api/v1/session/password"): b'{"old_password": "x\\u0000", "new_password": "long enough 123"}',
        ("post", "/api/v1/session/setup"): b'{"login": "alice", "setup_code": "abc", "password": "new\\u0000pass"}',
        ("post", "/api/v1/admin/webhooks"): b'{"url": "https://93.184.216.34/ho\\u0000ok"}',
    }


def _json_operations(world: World) -> set[tuple[str, str]]:
    doc = world.client.get("/api/v1/openapi.json").get_json()
    return {(method, path) for path, item in doc["paths"].items() for method, op in item.items()
            if any("json" in media for media in op.get("requestBody", {}).get("content", {}))}


def _state(world: World) -> tuple[int, int, int, bool]:
    site = world.store.sites.get_site(sid("op-a"))
    assert site is not None
    closures = len(world.store.sites.closures_for([site.id]).get(site.id, []))
    live = bool(world.store.live.statuses.for_sites([site.id]))
    return site.version, closures, world.store.reports.unresolved_counts([site.id]).get(site.id, 0), live


def test_every_json_endpoint_refuses_hostile_bodies_with_a_4xx(world: World) -> None:
    endpoints = _endpoints(world)
    assert _json_operations(world) == set(endpoints), "a JSON endpoint is missing from this test"
    before = _state(world)
    c = world.client
    for (method, path), spec in endpoints.items():
        for media in spec["types"]:
            for name, body in UNREADABLE:
                resp = c.open(spec["url"], method=method.upper(), data=body, content_type=media,
                              headers=spec["headers"])
                assert resp.status_code == 400, (path, media, name, resp.status_code, resp.get_data()[:300])
                assert resp.mimetype == "application/problem+json", (path, name)
                problem = resp.get_json()
                assert problem["status"] == 400 and problem["errors"][0]["field"] == "body", (path, name, problem)
                assert "Traceback" not in problem["detail"]
            for name, body in HOSTILE_CONTENT:
                resp = c.open(spec["url"], method=method.upper(), data=body, content_type=media,
                              headers=spec["headers"])
                assert resp.status_code in (400, 422), (path, media, name, resp.status_code, resp.get_data()[:300])
                assert resp.mimetype == "application/problem+json", (path, name)
                assert len(resp.get_data()) < 20_000, (path, name, "the problem should not echo the whole body")
        resp = c.open(spec["url"], method=method.upper(), data=_nul_bodies()[(method, path)],
                      content_type=spec["types"][0], headers=spec["headers"])
        assert resp.status_code == 422, (path, "NUL", resp.status_code, resp.get_data()[:300])
        assert resp.get_json()["errors"][0]["field"] in (
            "notes", "reason", "note", "state", "password", "old_password", "url", "level", "end", "name", "label"
        ), resp.get_json()
    assert _state(world) == before  # nothing was written


@pytest.mark.parametrize("media", ["text/plain", "application/x-www-form-urlencoded", "text/csv",
                                   "application/jsonp", None])
def test_a_body_in_another_media_type_is_415_everywhere(world: World, media: str | None) -> None:
    endpoints = _endpoints(world)
    for (method, path), spec in endpoints.items():
        resp = world.client.open(spec["url"], method=method.upper(), data=b'{"note": "x", "type": "other"}',
                                 headers={**spec["headers"], **({"Content-Type": media} if media else {})})
        assert resp.status_code == 415, (path, media, resp.status_code)
        assert resp.mimetype == "application/problem+json"
        assert resp.get_json()["errors"][0]["field"] == "Content-Type"
