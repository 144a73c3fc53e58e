"""Operators of the service see traffic in Prometheus format, labelled by route, never by raw path — and only
they: /metrics is off (404) unless a bearer token is set or it is explicitly made public."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from geoservice import create_app
from geoservice.settings import Settings

TOKEN = "s3cr3t-scrape-token-0123456789abcdef"


def _client(demo_embedded, tmp_path: Path, **settings):  # type: ignore[no-untyped-def]
    app = create_app(Settings(embedded_path=tmp_path / "unused", public_rate_per_minute=0, **settings),
                     services=demo_embedded, prepare=False)
    return app.test_client()


def test_metrics_count_requests_by_route(demo_embedded, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    client = _client(demo_embedded, tmp_path, metrics_public=True)

    def count(text: str, status: str) -> float:
        m = re.search(r'geoservice_http_requests_total\{endpoint="/api/v1/sites/\{site_id\}",method="GET",'
                      rf'status="{status}"\}} ([0-9.e+]+)', text)
        return float(m.group(1)) if m else 0.0

    before = client.get("/metrics").get_data(as_text=True)
    for i in range(3):
        assert client.get(f"/api/v1/sites/no-such-site-{i}").status_code == 404
    resp = client.get("/metrics")
    assert resp.status_code == 200 and resp.mimetype == "text/plain"
    after = resp.get_data(as_text=True)
    assert count(after, "404") - count(before, "404") == 3
    assert "no-such-site" not in after  # ids never become label values
    assert "geoservice_http_request_seconds_bucket" in after


def test_unknown_methods_share_one_label(demo_embedded, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Any token is a method to HTTP: a client sending made-up ones must not mint a label value each."""
    client = _client(demo_embedded, tmp_path, metrics_public=True)

    def other(text: str) -> float:
        m = re.search(r'geoservice_http_requests_total\{endpoint="unmatched",method="OTHER",status="405"\} '
                      r'([0-9.e+]+)', text)
        return float(m.group(1)) if m else 0.0

    before = client.get("/metrics").get_data(as_text=True)
    for i in range(3):
        assert client.open("/api/v1/sites", method=f"BREW{i}").status_code == 405
    after = client.get("/metrics").get_data(as_text=True)
    assert "BREW" not in after
    assert other(after) - other(before) == 3


def test_metrics_are_not_served_by_default(demo_embedded, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    client = _client(demo_embedded, tmp_path)
    resp = client.get("/metrics")
    assert resp.status_code == 404 and resp.mimetype == "application/problem+json"
    assert b"geoservice_http" not in resp.data
    unknown = client.get("/no-such-page")
    assert resp.get_json()["detail"] == unknown.get_json()["detail"]  # indistinguishable from an unknown path
    assert client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 404


@pytest.mark.parametrize("public", [False, True])
def test_with_a_token_metrics_need_it_as_a_bearer(demo_embedded, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                  public: bool) -> None:
    client = _client(demo_embedded, tmp_path, metrics_token=TOKEN, metrics_public=public)
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Bearer {TOKEN}x"},
                    {"Authorization": f"Bearer {TOKEN[:-1]}"}, {"Authorization": f"Basic {TOKEN}"},
                    {"Authorization": TOKEN}, {"Authorization": "Bearer"}, {"Authorization": "Bearer é"}):
        resp = client.get("/metrics", headers=headers)
        assert resp.status_code == 401, headers
        assert resp.mimetype == "application/problem+json"
        assert resp.headers["WWW-Authenticate"].startswith("Bearer")
        assert b"geoservice_http" not in resp.data and TOKEN not in resp.get_data(as_text=True)
    assert client.get(f"/metrics?token={TOKEN}").status_code == 401  # never from the URL (it would be logged)
    for scheme in ("Bearer", "bearer"):
        ok = client.get("/metrics", headers={"Authorization": f"{scheme} {TOKEN}"})
        assert ok.status_code == 200 and b"geoservice_http_requests_total" in ok.data


def test_metrics_settings_come_from_the_environment() -> None:
    s = Settings.from_env({"GEOSERVICE_METRICS_TOKEN": TOKEN, "GEOSERVICE_METRICS_PUBLIC": "true"})
    assert s.metrics_token == TOKEN and s.metrics_public is True
    assert Settings.from_env({}).metrics_token == "" and Settings.from_env({}).metrics_public is False
    assert TOKEN not in repr(s)
