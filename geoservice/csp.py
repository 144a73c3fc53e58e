"""Content-Security-Policy strings for every kind of response the service sends, and the nonces they use.

The CSP is the second line of defence behind output encoding (:mod:`geoservice.htmlsafe`): even if some text
slipped into a page as markup, no inline script, inline event handler, ``javascript:`` URL or inline style
that the page did not mark with its nonce would run. Kept free of Flask so the maps can write the same
policy into a saved file (``<meta http-equiv>``) as the service sends in the header.
"""
from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Iterable
from urllib.parse import urlsplit

# Directives a browser ignores in a <meta http-equiv> policy: sent in the header only.
HEADER_ONLY = ("frame-ancestors", "report-uri", "sandbox")


@dataclasses.dataclass(frozen=True)
class Policy:
    """An ordered list of directives, each with its sources."""

    directives: tuple[tuple[str, tuple[str, ...]], ...]

    def header(self) -> str:
        """The ``Content-Security-Policy`` header value."""
        return "; ".join(" ".join((name, *sources)) for name, sources in self.directives)

    def meta(self) -> str:
        """The same policy for ``<meta http-equiv="Content-Security-Policy">`` (header-only directives left out)."""
        return "; ".join(" ".join((name, *sources)) for name, sources in self.directives if name not in HEADER_ONLY)


def _policy(**directives: Iterable[str]) -> Policy:
    base = {"default-src": ("'none'",), "base-uri": ("'none'",), "form-action": ("'none'",),
            "frame-ancestors": ("'none'",)}
    merged = {**base, **{k.replace("_", "-"): tuple(v) for k, v in directives.items()}}
    return Policy(tuple(merged.items()))


def new_nonce() -> str:
    """A fresh, unguessable nonce (128 bits, URL-safe base64: safe in an attribute as it is)."""
    return secrets.token_urlsafe(16)


# JSON, GeoJSON, CSV, problem details, metrics, static assets: nothing may load, run or frame it.
API = _policy()



def _tiles(tile_source: str | None) -> tuple[str, ...]:
    return (tile_source,) if tile_source else ()


def couriers_page(tile_source: str | None) -> Policy:
    """The couriers' page (static/index.html): scripts, styles, the API, its manifest and service worker from
    this service; images from the service, data: URLs (the favicon) and the one tile server it is configured
    with (``GEOSERVICE_TILES``)."""
    return _policy(script_src=("'self'",), style_src=("'self'",), connect_src=("'self'",),
                   img_src=("'self'", "data:", *_tiles(tile_source)), manifest_src=("'self'",),
                   worker_src=("'self'",))


def service_worker(tile_source: str | None) -> Policy:
    """The couriers' page's service worker (static/sw.js): it fetches only this service and the tile server."""
    return _policy(connect_src=("'self'", *_tiles(tile_source)))


# The operators' page (static/operator.html): no map, no images but its data: favicon.
OPERATORS_PAGE = _policy(script_src=("'self'",), style_src=("'self'",), connect_src=("'self'",),
                         img_src=("'self'", "data:"))


def image_source(url: str) -> str | None:
    """The CSP source an image URL (or a tile URL template) needs beyond ``https:``: None for https or a
    relative URL, ``http://host[:port]`` for plain HTTP, ``http://*.host`` for a ``{s}.host`` template, and
    ``http:`` when the host has another placeholder."""
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.netloc:
        return None
    host = parts.netloc
    if host.startswith("{s}.") and "{" not in host[4:]:
        host = "*." + host[4:]
    return "http:" if "{" in host or "}" in host else f"http://{host}"


def map_policy(nonce: str, image_sources: Iterable[str] = (), connect_self: bool = False) -> Policy:
    """The planners' coverage map: only script and style elements carrying ``nonce`` (Leaflet, its plugin, the
    map's own code and CSS, inlined or linked), no inline style attributes, no network access from scripts
    except, with ``connect_self`` (the served map), this service's own API for the sites' details.

    Images: tiles from any https host (osm, amap, custom templates), ``image_sources`` (from
    :func:`image_source`: an http tile server or asset host), the service's own Leaflet images, and data: URIs
    (inlined Leaflet images).
    """
    extra = sorted({s for s in image_sources if s})
    connect = {"connect_src": ("'self'",)} if connect_self else {}
    return _policy(script_src=(f"'nonce-{nonce}'",), style_src=(f"'nonce-{nonce}'",),
                   img_src=("'self'", "data:", "https:", *extra), **connect)
