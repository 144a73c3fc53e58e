"""The couriers' page's service worker and manifest (issue 17, item 1): served so that a browser installs it,
versioned by the shell's own bytes, and limited by its own Content-Security-Policy."""
from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from geoservice.api import offline
from geoservice.packagedata import static_dir
from tests.api.test_security_headers import fetch, policy


def test_the_worker_is_served_at_the_root_with_its_shell_and_policy(client: Any) -> None:
    resp = fetch(client, "GET", "/sw.js")
    assert resp.status_code == 200 and resp.mimetype == "text/javascript"
    assert resp.headers["Cache-Control"] == "no-cache"  # browsers look for a new version on every visit
    text = resp.get_data(as_text=True)
    assert f'var VERSION = "{offline.shell_version()}"' in text and "addEventListener(\"fetch\"" in text
    assert policy(resp)["connect-src"] == ["'self'", "https://tile.openstreetmap.org"]
    for path in offline.SHELL:  # every file it caches exists: a missing one would fail the whole install
        assert fetch(client, "GET", path).status_code == 200, path
    page = policy(fetch(client, "GET", "/"))
    assert page["manifest-src"] == ["'self'"] and page["worker-src"] == ["'self'"]


def test_a_changed_shell_file_is_a_new_version(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    copy = tmp_path / "static"
    shutil.copytree(static_dir(), copy)
    monkeypatch.setattr(offline, "static_dir", lambda: copy)
    before = offline.shell_version()
    assert offline.shell_version() == before
    (copy / "js" / "i18n.js").write_text((copy / "js" / "i18n.js").read_text(encoding="utf-8") + "\n",
                                         encoding="utf-8")
    assert offline.shell_version() != before


def test_the_manifest_makes_an_installable_bilingual_app(client: Any) -> None:
    resp = fetch(client, "GET", "/static/manifest.webmanifest")
    manifest = json.loads(resp.get_data(as_text=True))
    assert manifest["start_url"] == "/" and manifest["display"] == "standalone"
    assert "驿站" in manifest["name"] and "Rest sites" in manifest["name"]
    sizes = {icon["sizes"] for icon in manifest["icons"]}
    assert {"192x192", "512x512"} <= sizes and any(i["purpose"] == "maskable" for i in manifest["icons"])
    for icon in manifest["icons"]:
        png = fetch(client, "GET", icon["src"])
        assert png.status_code == 200 and png.get_data()[:8] == b"\x89PNG\r\n\x1a\n"
        width = int.from_bytes(png.get_data()[16:20], "big")
        assert f"{width}x{width}" == icon["sizes"]
