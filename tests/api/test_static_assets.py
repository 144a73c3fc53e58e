"""The couriers' page and its files, small and cached right (issue 15 part 6): JavaScript and CSS come
gzip-compressed to a client that accepts it, under versioned URLs cached for a year; the page itself is
revalidated (ETag, no-cache); a changed file gets a new URL and is never served stale."""
from __future__ import annotations

import gzip
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from geoservice.packagedata import static_dir
from tests.support import LAYERS

GZIP = {"Accept-Encoding": "gzip, deflate, br"}
ASSET = re.compile(r'(?:src|href)="(/static/[\w./-]+\.(?:js|css)\?v=[0-9a-f]+)"')


def body(resp: Any) -> str:
    """The response's text, decoded as the browser would."""
    data = resp.get_data()
    if resp.headers.get("Content-Encoding") == "gzip":
        data = gzip.decompress(data)
    return str(data.decode("utf-8"))


def page_assets(client: Any) -> dict[str, str]:
    """The couriers' page's scripts and stylesheets, by path without the version: their versioned URLs."""
    resp = client.get("/", headers=GZIP)
    assert resp.status_code == 200
    urls = ASSET.findall(body(resp))
    return {u.split("?")[0]: u for u in urls}


def test_scripts_and_styles_come_compressed_and_cached_for_a_year(client: Any) -> None:
    page = client.get("/", headers=GZIP)
    assert page.headers.get("Content-Encoding") == "gzip" and "Accept-Encoding" in page.headers.get("Vary", "")
    # The page: revalidated on every visit (a 304 when unchanged), so a release is seen at once.
    assert page.headers["Cache-Control"] == "no-cache" and page.headers.get("ETag")
    assert client.get("/", headers={**GZIP, "If-None-Match": page.headers["ETag"]}).status_code == 304

    assets = page_assets(client)
    assert {"/static/js/app.js", "/static/css/app.css", "/static/js/common.js"} <= set(assets), assets
    for url in assets.values():
        resp = client.get(url, headers=GZIP)
        assert resp.status_code == 200, url
        assert resp.headers.get("Content-Encoding") == "gzip", url
        assert "Accept-Encoding" in resp.headers.get("Vary", ""), url
        cache = resp.headers["Cache-Control"]
        assert "max-age=31536000" in cache and "immutable" in cache, (url, cache)
        # Worth it: the compressed copy is well under the file's size.
        plain = client.get(url)
        assert "Content-Encoding" not in plain.headers
        assert body(resp) == plain.get_data(as_text=True)
        assert len(resp.get_data()) < 0.7 * len(plain.get_data()), url
        assert resp.mimetype in ("text/javascript", "text/css"), (url, resp.mimetype)
    # The modules a module imports are versioned too: app.js asks for the same common.js URL as the page.
    app_js = body(client.get(assets["/static/js/app.js"], headers=GZIP))
    assert f'from "./common.js?v={assets["/static/js/common.js"].split("v=")[1]}"' in app_js


def test_the_service_worker_shell_urls_still_answer(client: Any) -> None:
    # The worker caches the shell by its plain URLs (and matches versioned requests ignoring the query).
    from geoservice.api.offline import SHELL

    for path in SHELL:
        resp = client.get(path, headers=GZIP)
        assert resp.status_code == 200, path
        if path.endswith((".js", ".css")):
            assert resp.headers["Cache-Control"] == "no-cache", path  # unversioned: revalidated, never stale


def test_api_answers_come_compressed(client: Any) -> None:
    resp = client.get("/api/v1/sites/nearest?lat=39.9289&lon=116.4160&limit=10", headers=GZIP)
    assert resp.status_code == 200 and resp.headers.get("Content-Encoding") == "gzip"
    assert '"features"' in body(resp)
    plain = client.get("/api/v1/sites/nearest?lat=39.9289&lon=116.4160&limit=10")
    assert "Content-Encoding" not in plain.headers
    # Both say the body depends on Accept-Encoding, so a shared cache never hands the gzip copy to a plain client.
    for answer in (resp, plain):
        assert "Accept-Encoding" in answer.headers.get("Vary", ""), answer.headers


def test_a_changed_file_gets_a_new_url_and_is_never_served_stale(monkeypatch: pytest.MonkeyPatch,
                                                                  tmp_path: Path) -> None:
    import geoservice.app
    from geoservice import create_app
    from geoservice.settings import Settings

    copy = tmp_path / "static"
    shutil.copytree(static_dir(), copy)
    monkeypatch.setattr(geoservice.app, "STATIC_DIR", copy)
    app = create_app(Settings(embedded_path=tmp_path / "g.sqlite", layers_dir=LAYERS, rate_limit_dir=tmp_path))
    client = app.test_client()
    try:
        before = page_assets(client)
        common = copy / "js" / "common.js"
        common.write_text(common.read_text(encoding="utf-8") + "\n// changed\n", encoding="utf-8")
        after = page_assets(client)
        # The changed module has a new URL, and so has the module that imports it (its import line changed).
        assert after["/static/js/common.js"] != before["/static/js/common.js"]
        assert after["/static/js/app.js"] != before["/static/js/app.js"]
        assert after["/static/css/app.css"] == before["/static/css/app.css"]
        fresh = client.get(after["/static/js/common.js"], headers=GZIP)
        assert "// changed" in body(fresh) and "immutable" in fresh.headers["Cache-Control"]
        # The old URL (a page still open, an old cached shell) gets today's file, not to be kept.
        old = client.get(before["/static/js/common.js"], headers=GZIP)
        assert old.status_code == 200 and "// changed" in body(old)
        assert old.headers["Cache-Control"] == "no-cache"
    finally:
        app.extensions["geoservice.services"].close()
