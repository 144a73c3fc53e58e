"""The pages and their static files, sent small and cached right: couriers open the page on a weak signal.

- Every script and stylesheet a page or a module names (``"/static/….js"``, ``"/static/….css"``, ``"./x.js"``)
  is rewritten to carry its version, ``?v=<hash>``: the hash of the file as sent, so a module's version also
  changes when a module it imports does. A request with the current version is cached for a year
  (``immutable``); any other request for the file (no version, an old one) gets today's bytes with ``no-cache``
  and an ETag, so a changed file is never served stale.
- The pages themselves (``/``, ``/operator``, ``/admin``) are ``no-cache`` with an ETag: a visit costs a 304
  when nothing changed, and a release is seen at once.
- Text (HTML, CSS, JavaScript, JSON, the manifest, SVG) is gzip-compressed when the client accepts it; the
  compressed copy of a static file is made once. API answers of 1 KiB or more are compressed per response,
  except those with an ETag of their own (the exports answer conditional requests on it) or already encoded.

The service worker (``/sw.js``, :mod:`geoservice.api.offline`) caches the shell by its plain URLs and matches
them ignoring the query, so it serves a versioned request offline from the same copy.
"""
from __future__ import annotations

import dataclasses
import gzip
import hashlib
import mimetypes
import re
import threading
from pathlib import Path

from flask import Flask, Response, abort, request

from geoservice.api.headers import header_names

IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"
TEXT_SUFFIXES = {".html", ".css", ".js", ".json", ".webmanifest", ".svg", ".txt", ".geojson"}
# The files whose references are versioned, and which references: scripts and stylesheets only (the manifest and
# icons keep their URLs, which installed apps remember).
REWRITTEN = {".html", ".js"}
REF = re.compile(r"""(?P<q>["'])(?P<url>/static/[\w./-]+?\.(?:js|css)|\./[\w.-]+\.js)(?P=q)""")
COMPRESSIBLE = ("application/json", "application/geo+json", "application/problem+json",
                "application/schema+json", "application/vnd.oai.openapi+json", "text/")
MIN_COMPRESS = 1024
mimetypes.add_type("application/manifest+json", ".webmanifest")
mimetypes.add_type("text/javascript", ".js")


@dataclasses.dataclass
class Asset:
    """One file as sent: its bytes (references versioned), version, and the stamps it was built from."""

    body: bytes
    version: str
    mimetype: str
    stamp: tuple[int, int]
    deps: tuple[tuple[str, str], ...]
    gz: bytes | None = None


class Assets:
    """The static folder ``root`` as sent: versioned references, hashes, gzip copies; rebuilt when a file (or
    a file it names) changes on disk."""

    def __init__(self, root: Path):
        self.root = root.resolve()
        self._cache: dict[str, Asset] = {}
        self._lock = threading.RLock()

    def _path(self, name: str) -> Path | None:
        path = (self.root / name).resolve()
        if not path.is_relative_to(self.root) or not path.is_file():
            return None
        return path

    def get(self, name: str, _seen: frozenset[str] = frozenset()) -> Asset | None:
        """The file ``name`` (relative to the root) as sent, or None when there is no such file."""
        path = self._path(name)
        if path is None or name in _seen:
            return None
        st = path.stat()
        stamp = (st.st_mtime_ns, st.st_size)
        with self._lock:
            old = self._cache.get(name)
            if old is not None and old.stamp == stamp and all(
                    self.version(dep, _seen | {name}) == v for dep, v in old.deps):
                return old
            asset = self._build(name, path, stamp, _seen | {name})
            self._cache[name] = asset
            return asset

    def version(self, name: str, _seen: frozenset[str] = frozenset()) -> str | None:
        """The current version of ``name`` (None: no such file)."""
        asset = self.get(name, _seen)
        return asset.version if asset else None

    def _build(self, name: str, path: Path, stamp: tuple[int, int], seen: frozenset[str]) -> Asset:
        raw = path.read_bytes()
        deps: dict[str, str] = {}
        if path.suffix in REWRITTEN:
            folder = str(Path(name).parent)

            def versioned(m: re.Match[str]) -> str:
                url = m["url"]
                dep = url.removeprefix("/static/") if url.startswith("/static/") else \
                    str(Path(folder) / url.removeprefix("./"))
                v = self.version(dep, seen)
                if v is None:
                    return m[0]
                deps[dep] = v
                return f"{m['q']}{url}?v={v}{m['q']}"

            raw = REF.sub(versioned, raw.decode("utf-8")).encode("utf-8")
        mimetype = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        return Asset(raw, hashlib.sha256(raw).hexdigest()[:12], mimetype, stamp, tuple(deps.items()))

    def compressed(self, asset: Asset) -> bytes:
        """The gzip copy of a text file, made once per version."""
        if asset.gz is None:
            asset.gz = gzip.compress(asset.body, compresslevel=9, mtime=0)
        return asset.gz

    def response(self, name: str, versioned: bool) -> Response:
        """The file ``name`` for this request: compressed if accepted, 304 when the client has it."""
        asset = self.get(name)
        if asset is None:
            abort(404)
        immutable = versioned and request.args.get("v") == asset.version
        gz = Path(name).suffix in TEXT_SUFFIXES and accepts_gzip()
        etag = asset.version + ("-gz" if gz else "")
        resp = Response(mimetype=asset.mimetype)
        resp.set_etag(etag)
        resp.headers["Cache-Control"] = IMMUTABLE if immutable else REVALIDATE
        if Path(name).suffix in TEXT_SUFFIXES:
            resp.vary.add("Accept-Encoding")
        if request.if_none_match.contains(etag):
            resp.status_code = 304
            return resp
        if gz:
            resp.set_data(self.compressed(asset))
            resp.headers["Content-Encoding"] = "gzip"
        else:
            resp.set_data(asset.body)
        if asset.mimetype.startswith("text/"):
            resp.mimetype_params["charset"] = "utf-8"
        return resp


def accepts_gzip() -> bool:
    """Whether the request's Accept-Encoding allows gzip."""
    return request.accept_encodings["gzip"] > 0  # "*" counts as gzip (werkzeug matches the wildcard)


def compress_response(resp: Response) -> Response:
    """Gzip an API answer of 1 KiB or more when the client accepts it (see the module docstring for which)."""
    if resp.status_code != 200 or resp.direct_passthrough or resp.is_streamed or request.method == "HEAD":
        return resp
    present = header_names(resp)
    if ("content-encoding" in present or "etag" in present
            or not (resp.mimetype or "").startswith(COMPRESSIBLE)):
        return resp
    if "vary" in present:
        resp.vary.add("Accept-Encoding")
    else:
        resp.headers["Vary"] = "Accept-Encoding"
    data = resp.get_data()
    if len(data) < MIN_COMPRESS or not accepts_gzip():
        return resp
    resp.set_data(gzip.compress(data, compresslevel=6, mtime=0))
    resp.headers["Content-Encoding"] = "gzip"
    return resp


def init_app(app: Flask, root: Path) -> Assets:
    """Serve ``root`` at ``/static/…`` (endpoint ``static``) and the three pages; compress API answers."""
    assets = Assets(root)

    def static(filename: str) -> Response:
        """A static file: a year in the cache under its current version, revalidated otherwise."""
        return assets.response(filename, versioned=True)

    def page(name: str) -> Response:
        return assets.response(name, versioned=False)

    def index() -> Response:
        """The couriers' page."""
        return page("index.html")

    def operator_page() -> Response:
        """The operators' page."""
        return page("operator.html")

    def admin_page() -> Response:
        """The admin console (union staff of the city and the districts)."""
        return page("admin.html")

    app.add_url_rule("/static/<path:filename>", "static", static, methods=["GET"])
    app.add_url_rule("/", "index", index, methods=["GET"])
    app.add_url_rule("/operator", "operator_page", operator_page, methods=["GET"])
    app.add_url_rule("/admin", "admin_page", admin_page, methods=["GET"])
    app.after_request(compress_response)
    app.extensions["geoservice.assets"] = assets
    return assets
