"""The vector tile endpoints over HTTP: what a map client or QGIS relies on — the media type, TileJSON whose URL
template leads to the same tiles, filters carried into it, revalidation with ETags, and 4xx problems that
name what was wrong."""
from __future__ import annotations

from typing import Any

import mapbox_vector_tile

from tests.support import TIANANMEN

MVT = "application/vnd.mapbox-vector-tile"


def tile_xy(z: int) -> tuple[int, int]:
    from pyproj import Transformer

    world = 20037508.342789244
    x, y = Transformer.from_crs("EPSG:4326", "EPSG:3857", always_xy=True).transform(*TIANANMEN)
    return int((x + world) / (2 * world) * 2 ** z), int((world - y) / (2 * world) * 2 ** z)


def layer(resp: Any, name: str) -> list[dict[str, Any]]:
    assert resp.status_code == 200 and resp.mimetype == MVT, resp.data[:300]
    features: list[dict[str, Any]] = mapbox_vector_tile.decode(resp.data)[name]["features"]
    return features


def test_tilejson_leads_to_the_tiles_and_carries_the_filters(client: Any) -> None:
    doc = client.get("/tiles/warm_stations/tiles.json?open_at=2026-11-25T03:00").get_json()
    assert doc["tilejson"] == "3.0.0" and doc["minzoom"] == 0 and doc["maxzoom"] == 20
    lon0, lat0, lon1, lat1 = doc["bounds"]
    assert lon0 < TIANANMEN[0] < lon1 and lat0 < TIANANMEN[1] < lat1
    assert [v["id"] for v in doc["vector_layers"]] == ["warm_stations"]
    template = doc["tiles"][0]
    assert "{z}/{x}/{y}.mvt" in template and "open_at=2026-11-25T03%3A00%3A00%2B08%3A00" in template
    x, y = tile_xy(14)
    path = template.split("://", 1)[1].split("/", 1)[1]
    via_template = layer(client.get("/" + path.replace("{z}", "14").replace("{x}", str(x))
                                    .replace("{y}", str(y))), "warm_stations")
    everything = layer(client.get(f"/tiles/warm_stations/14/{x}/{y}.mvt"), "warm_stations")
    assert {f["properties"]["kind"] for f in everything} == {"warm_station"}
    assert 0 < len(via_template) < len(everything)  # 03:00 leaves some warm stations out


def test_kind_filter_and_the_kind_tilesets_agree(client: Any) -> None:
    x, y = tile_xy(13)
    mixed = layer(client.get(f"/tiles/sites/13/{x}/{y}.mvt"), "sites")
    assert {f["properties"]["kind"] for f in mixed} == {"warm_station", "mother_baby_room", "worker_home"}
    homes = layer(client.get(f"/tiles/sites/13/{x}/{y}.mvt?kind=worker_home"), "sites")
    own = layer(client.get(f"/tiles/worker_homes/13/{x}/{y}.mvt"), "worker_homes")
    assert sorted(f["properties"]["id"] for f in homes) == sorted(f["properties"]["id"] for f in own) == sorted(
        f["properties"]["id"] for f in mixed if f["properties"]["kind"] == "worker_home")
    # A kind outside a kind's tileset matches nothing: an empty tile, not an error.
    empty = client.get(f"/tiles/worker_homes/13/{x}/{y}.mvt?kind=warm_station")
    assert empty.status_code == 200 and empty.data == b""


def test_tiles_revalidate_with_their_etag(client: Any) -> None:
    x, y = tile_xy(12)
    first = client.get(f"/tiles/sites/12/{x}/{y}.mvt")
    assert first.status_code == 200 and first.headers["Cache-Control"] == "public, max-age=60"
    etag = first.headers["ETag"]
    again = client.get(f"/tiles/sites/12/{x}/{y}.mvt", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.data == b"" and again.headers["ETag"] == etag
    other = client.get(f"/tiles/sites/12/{x}/{y}.mvt?open_at=2026-11-25T03:00", headers={"If-None-Match": etag})
    assert other.status_code == 200 and other.headers["ETag"] != etag


def test_a_partners_map_on_another_origin_may_read_tiles_and_tilejson(client: Any) -> None:
    x, y = tile_xy(12)
    for url in (f"/tiles/sites/12/{x}/{y}.mvt", "/tiles/sites/tiles.json"):
        resp = client.get(url, headers={"Origin": "https://map.partner.example"})
        assert resp.status_code == 200 and resp.headers["Access-Control-Allow-Origin"] == "*", url


def test_districts_are_polygons_with_their_names(client: Any) -> None:
    x, y = tile_xy(9)
    features = layer(client.get(f"/tiles/districts/9/{x}/{y}.mvt"), "districts")
    names = {f["properties"]["name_zh"]: f for f in features}
    assert "东城区" in names and names["东城区"]["properties"]["name_en"] == "Dongcheng"
    assert names["东城区"]["geometry"]["type"] in ("Polygon", "MultiPolygon")


def test_bad_tile_requests_are_problems_that_say_why(client: Any) -> None:
    cases = {
        "/tiles/sites/21/0/0.mvt": (404, "z = 21"),
        "/tiles/sites/3/8/0.mvt": (404, "less than 2^z = 8"),
        "/tiles/parks/3/0/0.mvt": (404, "tileset"),
        "/tiles/districts/3/6/3.mvt?kind=warm_station": (400, "site tilesets only"),
        "/tiles/sites/3/6/3.mvt?kind=park": (400, "unknown value 'park'"),
        "/tiles/sites/3/6/3.mvt?open_at=tonight": (400, "ISO 8601"),
        "/tiles/sites/3/6/3.mvt?zoom=3": (400, "unknown parameter"),
    }
    for url, (status, words) in cases.items():
        resp = client.get(url)
        assert resp.status_code == status and resp.mimetype == "application/problem+json", url
        assert words in resp.get_json()["detail"], (url, resp.get_json())
