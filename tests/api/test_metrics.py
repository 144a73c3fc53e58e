"""Operators of the service see traffic in Prometheus format, labelled by route, never by raw path."""
from __future__ import annotations

import re


def test_metrics_count_requests_by_route(client) -> None:  # type: ignore[no-untyped-def]
    def count(text: str, status: str) -> float:
        m = re.search(r'geoservice_http_requests_total\{endpoint="/api/v1/sites/<site_id>",method="GET",'
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
