"""OGC API – Features Part 1 at /ogc over the demo network: documents, paging, filters, errors, media types."""
from __future__ import annotations

import datetime as dt
import re
from urllib.parse import parse_qs, urlsplit

import pytest

from geoservice.api.ogc import CONFORMANCE
from geoservice.geo import geodesic_distance_m
from geoservice.hours import TZ
from geoservice.model import SiteFilter
from geoservice.services import Services
from tests.support import demo

SITE_COLLECTIONS = {"warm_stations": "warm_station", "mother_baby_rooms": "mother_baby_room",
                    "worker_homes": "worker_home"}


def get(client, url: str):  # type: ignore[no-untyped-def]
    resp = client.get(url)
    body = resp.get_json(force=True)
    resp.close()
    return resp, body


def links(doc: dict) -> dict[str, dict]:  # type: ignore[type-arg]
    return {link["rel"]: link for link in doc["links"]}


def local(href: str) -> str:
    parts = urlsplit(href)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def problem(resp, status: int, field: str | None = None) -> None:  # type: ignore[no-untyped-def]
    assert resp.status_code == status
    assert resp.mimetype == "application/problem+json"
    body = resp.get_json(force=True)
    assert body["status"] == status and body["detail"]
    if field:
        assert body["errors"][0]["field"] == field, body


def test_landing_page_conformance_and_api_definition(client) -> None:  # type: ignore[no-untyped-def]
    for url in ("/ogc", "/ogc/", "/ogc/?f=json"):
        resp, doc = get(client, url)
        assert resp.status_code == 200 and resp.mimetype == "application/json", url
    rels = links(doc)
    assert {"self", "service-desc", "conformance", "data"} <= set(rels)
    assert rels["service-desc"]["type"] == "application/vnd.oai.openapi+json;version=3.0"
    assert "open_at" in doc["description"] and "near" in doc["description"] and "CRS84" in doc["description"]
    assert {e["parameter"] for e in doc["extensions"]} == {"open_at", "near"}

    resp, conf = get(client, local(rels["conformance"]["href"]))
    assert resp.mimetype == "application/json"
    assert set(conf["conformsTo"]) == set(CONFORMANCE)
    assert "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core" in conf["conformsTo"]
    assert "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson" in conf["conformsTo"]

    resp, api = get(client, local(rels["service-desc"]["href"]))
    assert resp.status_code == 200 and resp.mimetype == "application/vnd.oai.openapi+json"
    assert resp.headers["Content-Type"].endswith("version=3.0")
    assert api["openapi"].startswith("3.0")
    for cid in list(SITE_COLLECTIONS) + ["districts"]:
        params = [p.get("name") or p["$ref"].rsplit("/", 1)[1]
                  for p in api["paths"][f"/collections/{cid}/items"]["get"]["parameters"]]
        assert {"limit", "bbox", "datetime"} <= set(params)
        assert ("open_at" in params) == (cid != "districts")


def test_collections_have_extents_and_item_links(client, demo_embedded: Services) -> None:  # type: ignore[no-untyped-def]
    resp, doc = get(client, "/ogc/collections")
    assert resp.mimetype == "application/json"
    assert [c["id"] for c in doc["collections"]] == ["warm_stations", "mother_baby_rooms", "worker_homes", "districts"]
    for coll in doc["collections"]:
        assert coll["itemType"] == "feature"
        assert coll["crs"] == ["http://www.opengis.net/def/crs/OGC/1.3/CRS84"]
        x0, y0, x1, y1 = coll["extent"]["spatial"]["bbox"][0]
        assert coll["extent"]["spatial"]["crs"] == "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
        assert 115.3 < x0 < x1 < 117.6 and 39.4 < y0 < y1 < 41.1  # Beijing, lon/lat order
        rels = links(coll)
        assert rels["items"]["type"] == "application/geo+json"
        assert local(rels["items"]["href"]) == f"/ogc/collections/{coll['id']}/items"
        one, single = get(client, local(rels["self"]["href"]))
        assert one.status_code == 200 and single["id"] == coll["id"]
    homes = {s.lon for s in demo_embedded.sites.list_sites(SiteFilter(kinds=("worker_home",), limit=1000))[0]}
    wh = next(c for c in doc["collections"] if c["id"] == "worker_homes")
    assert wh["extent"]["spatial"]["bbox"][0][0] == pytest.approx(min(homes), abs=1e-7)
    assert "open_at" in wh["description"] and "not part of the standard" in wh["description"]


def test_items_default_page(client) -> None:  # type: ignore[no-untyped-def]
    resp, doc = get(client, "/ogc/collections/warm_stations/items")
    assert resp.status_code == 200 and resp.mimetype == "application/geo+json"
    assert doc["type"] == "FeatureCollection"
    assert doc["numberMatched"] == demo.by_kind()["warm_station"]
    assert doc["numberReturned"] == len(doc["features"]) == 10
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", doc["timeStamp"])
    rels = links(doc)
    assert "prev" not in rels and rels["next"]["type"] == "application/geo+json"
    assert parse_qs(urlsplit(rels["next"]["href"]).query) == {"limit": ["10"], "offset": ["10"]}
    f = doc["features"][0]
    assert f["geometry"]["type"] == "Point" and isinstance(f["id"], str)
    props = f["properties"]
    assert props["kind"] == "warm_station" and props["simulated"] is True
    assert all(not isinstance(v, (dict, list)) for v in props.values())  # flat columns for GIS clients
    resp, doc2 = get(client, "/ogc/collections/warm_stations/items?f=geojson&limit=10")
    assert [x["id"] for x in doc2["features"]] == [x["id"] for x in doc["features"]]


def test_paging_links_walk_the_whole_collection(client, demo_embedded: Services) -> None:  # type: ignore[no-untyped-def]
    url = "/ogc/collections/worker_homes/items?limit=50"
    seen: list[str] = []
    sizes = []
    pages = []
    while url:
        resp, doc = get(client, url)
        assert resp.status_code == 200
        assert doc["numberMatched"] == demo.by_kind()["worker_home"]
        seen += [f["id"] for f in doc["features"]]
        sizes.append(doc["numberReturned"])
        pages.append(doc)
        nxt = links(doc).get("next")
        url = local(nxt["href"]) if nxt else ""
    assert sizes == [50, 50, 50, 9]
    expected = sorted(s.id for s in demo_embedded.sites.list_sites(SiteFilter(kinds=("worker_home",), limit=1000))[0])
    assert seen == expected  # ordered by id, no repeats, nothing missed
    prev = links(pages[1])["prev"]
    resp, back = get(client, local(prev["href"]))
    assert [f["id"] for f in back["features"]] == [f["id"] for f in pages[0]["features"]]
    assert "prev" in links(pages[-1]) and "next" not in links(pages[-1])
    resp, beyond = get(client, "/ogc/collections/worker_homes/items?offset=500")
    assert beyond["numberReturned"] == 0 and beyond["numberMatched"] == demo.by_kind()["worker_home"]


@pytest.mark.parametrize("query,field", [
    ("limit=0", "limit"), ("limit=100001", "limit"), ("limit=10001", "limit"), ("limit=ten", "limit"),
    ("offset=-1", "offset"), ("bbox=116,39,117", "bbox"), ("bbox=116,39,117,x", "bbox"),
    ("colour=red", "colour"),
    ("f=html", "f"), ("datetime=yesterday", "datetime"), ("datetime=../..", "datetime"),
    ("simulated=maybe", "simulated"), ("near=116.4", "near"), ("open_at=noon", "open_at"),
    ("limit=5&limit=6", "limit"), ("limit=", "limit"), ("bbox=", "bbox"),
])
def test_bad_parameters_are_400_problems(client, query: str, field: str) -> None:  # type: ignore[no-untyped-def]
    resp = client.get(f"/ogc/collections/warm_stations/items?{query}")
    problem(resp, 400, field)


def test_limit_bounds_accept_the_maximum(client) -> None:  # type: ignore[no-untyped-def]
    resp, doc = get(client, "/ogc/collections/warm_stations/items?limit=10000")
    assert resp.status_code == 200 and doc["numberReturned"] == demo.by_kind()["warm_station"]
    assert "next" not in links(doc)
    last = demo.by_kind()["worker_home"] - 1
    resp, doc = get(client, f"/ogc/collections/worker_homes/items?limit=1&offset={last}")
    assert doc["numberReturned"] == 1 and "next" not in links(doc)


def test_unknown_collection_and_feature_are_404_problems(client, demo_embedded: Services) -> None:  # type: ignore[no-untyped-def]
    problem(client.get("/ogc/collections/hotels"), 404)
    problem(client.get("/ogc/collections/hotels/items"), 404)
    problem(client.get("/ogc/collections/warm_stations/items/s000000000000"), 404)
    problem(client.get("/ogc/collections/districts/items/999999"), 404)
    problem(client.get("/ogc/nothing-here"), 404)
    home = demo_embedded.sites.list_sites(SiteFilter(kinds=("worker_home",), limit=1))[0][0]
    problem(client.get(f"/ogc/collections/warm_stations/items/{home.id}"), 404)  # exists, other collection


def test_single_feature(client, demo_embedded: Services) -> None:  # type: ignore[no-untyped-def]
    home = demo_embedded.sites.list_sites(SiteFilter(kinds=("worker_home",), limit=1))[0][0]
    resp, f = get(client, f"/ogc/collections/worker_homes/items/{home.id}")
    assert resp.status_code == 200 and resp.mimetype == "application/geo+json"
    assert f["type"] == "Feature" and f["id"] == home.id
    assert f["geometry"]["coordinates"] == [pytest.approx(home.lon, abs=1e-7), pytest.approx(home.lat, abs=1e-7)]
    assert f["properties"]["name_zh"] == home.name_zh
    assert f["properties"]["amenities"] == ";".join(home.amenities)
    assert local(links(f)["collection"]["href"]) == "/ogc/collections/worker_homes"
    problem(client.get(f"/ogc/collections/worker_homes/items/{home.id}?limit=3"), 400, "limit")


def test_bbox_and_property_filters(client, demo_embedded: Services) -> None:  # type: ignore[no-untyped-def]
    bbox = (116.38, 39.90, 116.42, 39.94)
    resp, doc = get(client, "/ogc/collections/warm_stations/items?limit=1000&bbox=" + ",".join(map(str, bbox)))
    _, total = demo_embedded.sites.list_sites(SiteFilter(bbox=bbox, kinds=("warm_station",), limit=1))
    assert doc["numberMatched"] == total > 0
    for f in doc["features"]:
        lon, lat = f["geometry"]["coordinates"]
        assert bbox[0] <= lon <= bbox[2] and bbox[1] <= lat <= bbox[3]
    resp, six = get(client, "/ogc/collections/warm_stations/items?limit=1&bbox=116.38,39.90,0,116.42,39.94,100")
    assert six["numberMatched"] == total

    counts = demo_embedded.sites.count_sites()
    for q in ("district=110101", "district_adcode=110101"):
        resp, doc = get(client, f"/ogc/collections/warm_stations/items?{q}&limit=5")
        assert doc["numberMatched"] == counts["110101"]["warm_station"]
        assert {f["properties"]["district_adcode"] for f in doc["features"]} == {"110101"}
        assert f"{q}" in links(doc)["next"]["href"]  # filters survive paging

    site = demo_embedded.sites.list_sites(SiteFilter(kinds=("mother_baby_room",), limit=1, offset=7))[0][0]
    resp, doc = get(client, f"/ogc/collections/mother_baby_rooms/items?name_zh={site.name_zh}")
    assert site.id in [f["id"] for f in doc["features"]]
    assert {f["properties"]["name_zh"] for f in doc["features"]} == {site.name_zh}
    resp, doc = get(client, f"/ogc/collections/mother_baby_rooms/items?source_id={site.source_id}&district=110101")
    assert doc["numberMatched"] == (1 if site.district_adcode == "110101" else 0)
    resp, doc = get(client, "/ogc/collections/worker_homes/items?simulated=false")
    assert doc["numberMatched"] == 0  # the demo network is simulated throughout
    resp, doc = get(client, "/ogc/collections/worker_homes/items?simulated=true&datetime=2026-01-01T00:00:00Z/..")
    # datetime is accepted; the sites have no temporal geometry
    assert doc["numberMatched"] == demo.by_kind()["worker_home"]
    resp, doc = get(client, "/ogc/collections/warm_stations/items?district=999999")
    assert resp.status_code == 200 and doc["numberMatched"] == 0


def test_districts_collection(client, demo_embedded: Services) -> None:  # type: ignore[no-untyped-def]
    resp, doc = get(client, "/ogc/collections/districts/items?limit=100")
    assert resp.mimetype == "application/geo+json"
    assert doc["numberMatched"] == doc["numberReturned"] == 16
    f = next(x for x in doc["features"] if x["id"] == "110105")
    assert f["properties"]["name_en"] == "Chaoyang" and f["geometry"]["type"] in ("Polygon", "MultiPolygon")
    assert f["properties"]["sites_warm_station"] == demo_embedded.sites.count_sites()["110105"]["warm_station"]
    resp, one = get(client, "/ogc/collections/districts/items/110101")
    assert one["properties"]["name_zh"] == "东城区"
    resp, doc = get(client, "/ogc/collections/districts/items?bbox=116.40,39.91,116.41,39.92")
    assert [x["id"] for x in doc["features"]] == ["110101"]
    resp, doc = get(client, "/ogc/collections/districts/items?name_en=Haidian")
    assert [x["id"] for x in doc["features"]] == ["110108"]
    problem(client.get("/ogc/collections/districts/items?open_at=2026-11-23T03:00"), 400, "open_at")
    problem(client.get("/ogc/collections/districts/items?near=116.4,39.9"), 400, "near")


def test_open_at_extension(client, demo_embedded: Services) -> None:  # type: ignore[no-untyped-def]
    at = dt.datetime.now(TZ).replace(hour=3, minute=0, second=0, microsecond=0) + dt.timedelta(days=1)
    _resp, doc = get(client, f"/ogc/collections/warm_stations/items?open_at={at:%Y-%m-%dT%H:%M}&limit=100")
    _, total = demo_embedded.sites.list_sites(SiteFilter(kinds=("warm_station",), open_at=at, limit=1))
    assert doc["numberMatched"] == total
    assert 0 < total < demo.by_kind()["warm_station"]  # at 03:00 only part of the network is open
    assert f"open_at={at:%Y-%m-%dT%H}" in links(doc)["next"]["href"]


def test_near_extension_orders_by_distance(client, demo_embedded: Services) -> None:  # type: ignore[no-untyped-def]
    lon, lat = 116.3975, 39.9087  # Tian'anmen
    _, doc = get(client, f"/ogc/collections/worker_homes/items?near={lon},{lat}&limit=5")
    assert doc["numberMatched"] == demo.by_kind()["worker_home"]
    dists = [f["properties"]["distance_m"] for f in doc["features"]]
    assert dists == sorted(dists)
    homes = demo_embedded.sites.list_sites(SiteFilter(kinds=("worker_home",), limit=1000))[0]
    brute = sorted(homes, key=lambda s: geodesic_distance_m(lon, lat, s.lon, s.lat))[:5]
    assert [f["id"] for f in doc["features"]] == [s.id for s in brute]
    assert dists[0] == pytest.approx(geodesic_distance_m(lon, lat, brute[0].lon, brute[0].lat), abs=0.1)
    _resp, page2 = get(client, local(links(doc)["next"]["href"]))
    assert page2["features"][0]["properties"]["distance_m"] >= dists[-1]


def test_contradictory_filters_match_nothing(client) -> None:  # type: ignore[no-untyped-def]
    # Regression (fuzz): two different districts in district and district_adcode answered 400; filters are
    # conjunctive, so they match nothing.
    resp, doc = get(client, "/ogc/collections/warm_stations/items?district=110101&district_adcode=110105")
    assert resp.status_code == 200 and doc["numberMatched"] == 0 and doc["features"] == []
