"""Security headers on every response: a Content-Security-Policy for its kind, nosniff, no framing, Referrer-Policy."""
from __future__ import annotations

from typing import Any

import pytest

# (method, path, expected status): pages, JSON/GeoJSON/CSV, OGC, metrics, static assets, and errors of each kind.
RESPONSES = [
    ("GET", "/", 200), ("GET", "/operator", 200),
    ("GET", "/api/v1/sites/nearest?lat=39.9289&lon=116.4160&limit=2", 200), ("GET", "/api/v1/sites?limit=1", 200),
    ("GET", "/api/v1/districts", 200), ("GET", "/api/v1/vocabulary", 200), ("GET", "/api/v1/openapi.json", 200),
    ("GET", "/api/v1/sites.csv?kind=worker_home&district=110108", 200),
    ("GET", "/api/v1/sites.geojson?kind=worker_home&district=110108", 200),
    ("GET", "/ogc", 200), ("GET", "/ogc/collections", 200), ("GET", "/healthz", 200),
    ("GET", "/metrics", 404),  # off unless a token is set or it is made public
    ("GET", "/static/js/app.js", 200), ("GET", "/static/css/operator.css", 200), ("GET", "/static/index.html", 200),
    ("GET", "/api/v1/sites/nearest?lat=north", 400), ("GET", "/api/v1/operator/me", 401),
    ("GET", "/api/v1/sites/s000000000000", 404), ("GET", "/no/such/page", 404),
    ("DELETE", "/api/v1/vocabulary", 405), ("POST", "/api/v1/sites/s000000000000/reports", 415),
]


def fetch(client: Any, method: str, path: str) -> Any:
    """The response, read and closed (static files are streamed)."""
    with client.open(path, method=method) as resp:
        resp.get_data()
        return resp


def policy(resp: Any) -> dict[str, list[str]]:
    """The response's CSP as {directive: sources}."""
    header = resp.headers.get("Content-Security-Policy")
    assert header, f"{resp.request.path}: no Content-Security-Policy"
    out: dict[str, list[str]] = {}
    for part in header.split(";"):
        name, *sources = part.split()
        assert name not in out, f"{name} twice"
        out[name] = sources
    return out


@pytest.mark.parametrize(("method", "path", "status"), RESPONSES)
def test_every_response_carries_the_headers(client: Any, method: str, path: str, status: int) -> None:
    resp = fetch(client, method, path)
    assert resp.status_code == status, resp.get_data(as_text=True)[:300]
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert resp.headers["X-Frame-Options"] == "DENY"
    assert resp.headers["Referrer-Policy"] == "strict-origin-when-cross-origin"
    csp = policy(resp)
    assert csp["frame-ancestors"] == ["'none'"] and csp["default-src"] == ["'none'"]
    assert csp["base-uri"] == ["'none'"] and csp["form-action"] == ["'none'"]
    for name, sources in csp.items():
        assert not {"'unsafe-inline'", "'unsafe-eval'", "*"} & set(sources), name
        assert "data:" not in sources or name == "img-src", name


@pytest.mark.parametrize("path", [p for m, p, s in RESPONSES if p not in ("/", "/operator")])
def test_everything_but_the_pages_may_load_and_run_nothing(client: Any, path: str) -> None:
    method = next(m for m, p, _ in RESPONSES if p == path)
    assert set(policy(fetch(client, method, path))) == {"default-src", "base-uri", "form-action",
                                                              "frame-ancestors"}


@pytest.mark.parametrize(("path", "images"), [("/", {"'self'", "data:", "https://tile.openstreetmap.org"}),
                                              ("/operator", {"'self'", "data:"})])
def test_the_static_pages_run_only_their_own_files(client: Any, path: str, images: set[str]) -> None:
    csp = policy(fetch(client, "GET", path))
    assert csp["script-src"] == ["'self'"] and csp["style-src"] == ["'self'"]  # no inline script, handler or style
    assert csp["connect-src"] == ["'self'"] and set(csp["img-src"]) == images
