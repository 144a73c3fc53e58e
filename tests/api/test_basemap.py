"""The couriers' page draws on the server's tiles (issue 17, item 2): ``GEOSERVICE_TILES`` is checked at start,
``/api/v1/basemap`` says which tiles and which datum, and the page's Content-Security-Policy admits exactly that
tile server — no other."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from geoservice import create_app
from geoservice.services import Services
from geoservice.settings import Settings
from geoservice.validation import ValidationFailed
from tests.api.test_security_headers import fetch, policy
from tests.support import LAYERS

AMAP_HOSTS = "https://*.is.autonavi.com"
OSM_HOST = "https://tile.openstreetmap.org"


def client_for(demo_embedded: Services, tmp_path: Path, **tiles: str) -> Any:
    settings = Settings(embedded_path=Path("unused"), layers_dir=LAYERS, public_rate_per_minute=0,
                        rate_limit_dir=tmp_path, **tiles)  # type: ignore[arg-type]
    return create_app(settings, services=demo_embedded, prepare=False).test_client()


@pytest.mark.parametrize(("tiles", "datum", "host", "attribution"), [
    ({}, "wgs84", OSM_HOST, "OpenStreetMap contributors"),
    ({"tiles": "amap"}, "gcj02", AMAP_HOSTS, "Amap AutoNavi"),
    ({"tiles": "https://{s}.tiles.example.cn:8443/gcj/{z}/{x}/{y}.png", "tiles_datum": "GCJ-02",
      "tiles_attribution": "<b>某区测绘院</b>"}, "gcj02", "https://*.tiles.example.cn:8443", "<b>某区测绘院</b>"),
    ({"tiles": "http://tiles.internal:8080/{z}/{x}/{y}.png"}, "wgs84", "http://tiles.internal:8080", "custom tiles"),
])
def test_the_page_is_told_its_tiles_and_may_load_only_them(demo_embedded: Services, tmp_path: Path,
                                                            tiles: dict[str, str], datum: str, host: str,
                                                            attribution: str) -> None:
    client = client_for(demo_embedded, tmp_path, **tiles)
    body = client.get("/api/v1/basemap").get_json()["tiles"]
    assert body["datum"] == datum
    assert body["attribution"]["en"] == attribution  # plain text: the page never treats it as markup
    assert "{z}" in body["url"] and "{x}" in body["url"] and "{y}" in body["url"]
    img = policy(fetch(client, "GET", "/"))["img-src"]
    assert img == ["'self'", "data:", host]


def test_no_tiles_means_no_tile_server_in_the_policy(demo_embedded: Services, tmp_path: Path) -> None:
    client = client_for(demo_embedded, tmp_path, tiles="none")
    assert client.get("/api/v1/basemap").get_json() == {"tiles": None}
    assert policy(fetch(client, "GET", "/"))["img-src"] == ["'self'", "data:"]


@pytest.mark.parametrize(("env", "reason"), [
    ({"GEOSERVICE_TILES": "baidu"}, "Baidu tiles"),
    ({"GEOSERVICE_TILES": "https://t.example/{z}/{x}/{y}.png", "GEOSERVICE_TILES_DATUM": "bd09"}, "BD-09"),
    ({"GEOSERVICE_TILES": "amap", "GEOSERVICE_TILES_DATUM": "wgs84"}, "does not match"),
    ({"GEOSERVICE_TILES": "ftp://t.example/{z}/{x}/{y}.png"}, "http(s) URL template"),
    ({"GEOSERVICE_TILES": "https://t.example/{z}/{x}.png"}, "{z}, {x} and {y}"),
    ({"GEOSERVICE_TILES": "https://{z}.example/{z}/{x}/{y}.png"}, "http(s) URL template"),
])
def test_a_tile_setting_that_cannot_work_is_refused_at_start(env: dict[str, str], reason: str) -> None:
    with pytest.raises(ValidationFailed) as failed:
        Settings.from_env(env)
    [problem] = failed.value.items
    assert problem.field == "GEOSERVICE_TILES" and reason in problem.reason
