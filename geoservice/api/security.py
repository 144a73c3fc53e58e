"""Security headers on every response: a Content-Security-Policy per kind of response, nosniff, no framing,
and a Referrer-Policy.

Kinds: the two static pages get their own policies (by endpoint), a view that renders HTML with a nonce (the
coverage map) sets its policy with :func:`set_policy`, and everything else (JSON, GeoJSON, CSV, problems,
metrics, static assets) gets :data:`geoservice.csp.API`, which lets nothing load, run or frame it.
"""
from __future__ import annotations

from flask import Flask, Response, request

from geoservice import csp
from geoservice.api.headers import header_names
from geoservice.basemap import BaseMap

CSP = "Content-Security-Policy"
STATIC_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    # OpenStreetMap's tile policy asks for a Referer: send the origin (never the path and query: they carry
    # locations) to other hosts over HTTPS, nothing over plain HTTP.
    "Referrer-Policy": "strict-origin-when-cross-origin",
}


def set_policy(resp: Response, policy: csp.Policy) -> Response:
    """Give ``resp`` its own policy (e.g. the map page's, with its nonce) instead of the default for its kind."""
    resp.headers[CSP] = policy.header()
    return resp


def page_policies(basemap: BaseMap | None) -> dict[str, csp.Policy]:
    """The policy of each static page by endpoint (``index`` in geoservice/__init__.py, ``operator_page`` in
    api/operators.py, ``admin_page`` likewise); the couriers' page may load the configured tiles."""
    return {"index": csp.couriers_page(basemap.image_source() if basemap else None),
            "operator_page": csp.OPERATORS_PAGE, "admin_page": csp.OPERATORS_PAGE}


def init_app(app: Flask, basemap: BaseMap | None) -> None:
    """Add the headers to every response of ``app``, errors included."""
    pages = {endpoint: policy.header() for endpoint, policy in page_policies(basemap).items()}
    api = csp.API.header()  # the header texts are made once, not per response

    def add_headers(resp: Response) -> Response:
        present = header_names(resp)
        if CSP.lower() not in present:
            page = pages.get(request.endpoint or "") if resp.status_code < 400 else None
            resp.headers[CSP] = page or api
        for name, value in STATIC_HEADERS.items():
            if name.lower() not in present:
                resp.headers[name] = value
        return resp

    app.after_request(add_headers)
