"""The public HTTP API as a courier's app sees it (embedded store with the bundled demo network)."""
from __future__ import annotations

import datetime as dt
import itertools
import math
from pathlib import Path

import pytest

from geoservice.geo import from_wgs84, geodesic_distance_m
from geoservice.hours import TZ, HoursEngine
from geoservice.settings import Settings
from geoservice.walk import WalkModel
from tests.support import demo

DONGCHENG = {"lat": 39.9289, "lon": 116.4160}  # near Nanluoguxiang


def nearest(client, **params):  # type: ignore[no-untyped-def]
    resp = client.get("/api/v1/sites/nearest", query_string=DONGCHENG | params)
    assert resp.status_code == 200, resp.get_json()
    assert resp.mimetype == "application/geo+json"
    return resp.get_json()


def test_nearest_in_dongcheng_returns_open_sites_by_distance(client, demo_embedded) -> None:  # type: ignore[no-untyped-def]
    at = "2026-11-24T22:40:00+08:00"
    body = nearest(client, at=at, limit=10)
    feats = body["features"]
    assert len(feats) == 10
    distances = [f["properties"]["distance_m"] for f in feats]
    assert distances == sorted(distances)
    engine: HoursEngine = demo_embedded.sites.engine
    when = dt.datetime.fromisoformat(at)
    for f in feats:
        p = f["properties"]
        assert p["is_open"] is True
        assert engine.is_open(p["opening_hours"], when)
        lon, lat = f["geometry"]["coordinates"]
        assert p["distance_m"] == pytest.approx(
            float(geodesic_distance_m(DONGCHENG["lon"], DONGCHENG["lat"], lon, lat)), abs=0.2)
        # walk_minutes = ceil(distance × 1.3 detour / 75 m per minute); distance_m is rounded to 0.1 m
        assert math.ceil((p["distance_m"] - 0.05) * 1.3 / 75) <= p["walk_minutes"] <= math.ceil(
            (p["distance_m"] + 0.05) * 1.3 / 75)
        assert p["kind_label"]["zh"] and p["kind_label"]["en"]
        assert p["simulated"] is True
    assert feats[0]["properties"]["district"]["adcode"] == "110101"
    assert body["walk_model"]["detour_factor"] == 1.3


def test_open_until_and_next_open_are_reported(client) -> None:  # type: ignore[no-untyped-def]
    body = nearest(client, at="2026-11-24T10:00", include_closed="true", limit=50)
    props = [f["properties"] for f in body["features"]]
    closed = [p for p in props if not p["is_open"]]
    open_ = [p for p in props if p["is_open"]]
    assert closed and open_
    assert all(p["next_open"] is None or p["next_open"] > "2026-11-24T10:00" for p in closed)
    assert all(p["open_until"] is None or p["open_until"] > "2026-11-24T10:00" for p in open_)
    assert any(p["open_all_week"] for p in open_)


def test_kind_and_amenity_filters_over_http(client) -> None:  # type: ignore[no-untyped-def]
    body = nearest(client, at="2026-11-24T15:00", kind="mother_baby_room", amenity=["nursing_chair", "sink"])
    assert body["features"]
    for f in body["features"]:
        assert f["properties"]["kind"] == "mother_baby_room"
        assert {"nursing_chair", "sink"} <= set(f["properties"]["amenities"])
    both = nearest(client, at="2026-11-24T15:00", kind="warm_station,worker_home", limit=20)
    assert both["features"] and {f["properties"]["kind"] for f in both["features"]} <= {"warm_station", "worker_home"}


def test_arrive_within_keeps_sites_open_on_arrival(client) -> None:  # type: ignore[no-untyped-def]
    at = "2026-11-24T19:50"
    body = nearest(client, at=at, arrive_within=30, limit=50)
    when = dt.datetime.fromisoformat(at).replace(tzinfo=TZ)
    assert body["features"], "no site is open on arrival near Dongcheng at 19:50"
    for f in body["features"]:
        p = f["properties"]
        assert p["walk_minutes"] <= 31
        arrival = when + dt.timedelta(minutes=WalkModel().minutes(p["distance_m"]))
        assert p["open_until"] is None or dt.datetime.fromisoformat(p["open_until"]) > arrival
    plain = nearest(client, at=at, limit=50)
    assert len({f["id"] for f in plain["features"]} - {f["id"] for f in body["features"]}) > 0


def test_crs_gcj02_round_trips_coordinates(client) -> None:  # type: ignore[no-untyped-def]
    wgs = nearest(client, at="2026-11-24T12:00", limit=3)
    glon, glat = from_wgs84(DONGCHENG["lon"], DONGCHENG["lat"], "gcj02")
    gcj = client.get("/api/v1/sites/nearest", query_string={"lat": glat, "lon": glon, "crs": "gcj02",
                                                            "at": "2026-11-24T12:00", "limit": 3}).get_json()
    assert [f["id"] for f in gcj["features"]] == [f["id"] for f in wgs["features"]]
    for a, b in zip(wgs["features"], gcj["features"]):
        expect = from_wgs84(*a["geometry"]["coordinates"], "gcj02")
        assert b["geometry"]["coordinates"] == pytest.approx(list(expect), abs=1e-6)


@pytest.mark.parametrize("params, field, status", [
    ({"lat": 91, "lon": 116.4}, "lat", 422),
    ({"lat": 39.9, "lon": -181}, "lon", 422),
    ({"lat": "north", "lon": 116.4}, "lat", 400),
    ({"lon": 116.4}, "lat", 400),
    ({"lat": "nan", "lon": 116.4}, "lat", 400),
    ({"lat": 39.9, "lon": 116.4, "kind": "hotel"}, "kind", 422),
    ({"lat": 39.9, "lon": 116.4, "amenity": "sauna"}, "amenity", 422),
    ({"lat": 39.9, "lon": 116.4, "at": "tomorrow"}, "at", 400),
    ({"lat": 39.9, "lon": 116.4, "limit": 51}, "limit", 422),
    ({"lat": 39.9, "lon": 116.4, "limit": "5x"}, "limit", 400),
    ({"lat": 39.9, "lon": 116.4, "arrive_within": -5}, "arrive_within", 422),
    ({"lat": 39.9, "lon": 116.4, "crs": "mars"}, "crs", 422),
    ({"lat": 39.9, "lon": 116.4, "radius": 5}, "radius", 400),
    ({"lat": "39.9'; DROP TABLE sites; --", "lon": 116.4}, "lat", 400),
])
def test_bad_input_gets_a_problem_naming_the_parameter(client, params, field, status) -> None:  # type: ignore[no-untyped-def]
    resp = client.get("/api/v1/sites/nearest", query_string=params)
    assert resp.status_code == status
    assert resp.mimetype == "application/problem+json"
    body = resp.get_json()
    assert body["status"] == status and body["title"] and field in body["detail"]
    assert body["errors"][0]["field"] == field


def test_unknown_site_is_404_problem(client) -> None:  # type: ignore[no-untyped-def]
    resp = client.get("/api/v1/sites/does-not-exist")
    assert resp.status_code == 404 and resp.mimetype == "application/problem+json"
    assert client.get("/api/v1/nothing-here").status_code == 404


def test_site_by_id_with_state(client) -> None:  # type: ignore[no-untyped-def]
    first = nearest(client, at="2026-11-24T12:00", limit=1)["features"][0]
    resp = client.get(f"/api/v1/sites/{first['id']}", query_string={"at": "2026-11-24T12:00"})
    assert resp.status_code == 200
    body = resp.get_json()
    assert body["id"] == first["id"] and body["properties"]["is_open"] is True
    assert body["properties"]["closures"] == []


def test_sites_listing_paginates_with_links(client) -> None:  # type: ignore[no-untyped-def]
    page1 = client.get("/api/v1/sites", query_string={"kind": "worker_home", "limit": 100}).get_json()
    assert page1["numberMatched"] == demo.by_kind()["worker_home"] and page1["numberReturned"] == 100
    nxt = next(link["href"] for link in page1["links"] if link["rel"] == "next")
    page2 = client.get(nxt.replace("http://localhost", "")).get_json()
    assert page2["numberReturned"] == 59
    assert not {f["id"] for f in page1["features"]} & {f["id"] for f in page2["features"]}
    assert any(link["rel"] == "prev" for link in page2["links"])
    assert not any(link["rel"] == "next" for link in page2["links"])


def test_sites_listing_by_district_bbox_and_open_at(client) -> None:  # type: ignore[no-untyped-def]
    dongcheng = client.get("/api/v1/sites", query_string={"district": "110101", "kind": "warm_station",
                                                          "limit": 1}).get_json()
    assert dongcheng["numberMatched"] == demo.in_district("110101", "warm_station")
    night = client.get("/api/v1/sites", query_string={"district": "110101", "open_at": "2026-11-24T03:00",
                                                      "limit": 1}).get_json()
    day = client.get("/api/v1/sites", query_string={"district": "110101", "open_at": "2026-11-24T11:00",
                                                    "limit": 1}).get_json()
    assert 0 < night["numberMatched"] < day["numberMatched"]
    box = client.get("/api/v1/sites", query_string={"bbox": "116.39,39.90,116.41,39.92", "limit": 1000}).get_json()
    assert box["features"], "the box around Tiananmen holds demo sites"
    for f in box["features"]:
        lon, lat = f["geometry"]["coordinates"]
        assert 116.39 <= lon <= 116.41 and 39.90 <= lat <= 39.92
    assert client.get("/api/v1/sites", query_string={"bbox": "1,2,3"}).status_code == 400
    assert client.get("/api/v1/sites", query_string={"district": "999999"}).status_code == 422


def test_districts_endpoint(client) -> None:  # type: ignore[no-untyped-def]
    body = client.get("/api/v1/districts").get_json()
    assert len(body["features"]) == demo.districts()
    dc = body["features"][0]["properties"]
    assert dc["adcode"] == "110101" and dc["name_en"] == "Dongcheng" and dc["population_2020"] == 708_829
    assert dc["sites"]["warm_station"] == demo.in_district("110101", "warm_station")
    with_geom = client.get("/api/v1/districts?geometry=true").get_json()
    assert with_geom["features"][0]["geometry"]["type"] == "MultiPolygon"


def test_year_without_official_calendar_is_flagged(client) -> None:  # type: ignore[no-untyped-def]
    body = nearest(client, at="2027-02-10T10:00")
    assert [w["code"] for w in body["warnings"]] == ["calendar-missing"]
    assert "2027" in body["warnings"][0]["en"] and "2027" in body["warnings"][0]["zh"]
    assert nearest(client, at="2026-11-24T10:00")["warnings"] == []


# 23:45 in Dongcheng: no mother-and-baby room with a toilet is open within an hour's walk (demo network).
NOTHING_OPEN = {"at": "2026-11-24T23:45", "kind": "mother_baby_room", "amenity": "toilet", "arrive_within": 60}


def nearest_schema(client):  # type: ignore[no-untyped-def]
    """The documented 200 body of the nearest endpoint, with the document's components (so its $refs resolve)."""
    doc = client.get("/api/v1/openapi.json").get_json()
    body = doc["paths"]["/api/v1/sites/nearest"]["get"]["responses"]["200"]["content"]["application/geo+json"]
    return {**body["schema"], "components": doc["components"]}


def test_when_nothing_matches_the_answer_names_alternatives(client) -> None:  # type: ignore[no-untyped-def]
    from jsonschema import Draft202012Validator

    body = nearest(client, **NOTHING_OPEN)
    assert body["features"] == [] and body["numberReturned"] == 0
    alt = body["alternatives"]
    assert set(alt) == {"opens_soonest", "nearest_open_any"}
    soon, open_any = alt["opens_soonest"], alt["nearest_open_any"]
    assert soon is not None and open_any is not None
    # opens_soonest: a matching site, closed now, opening at dawn, within the hour's walk; serialised exactly as
    # the same site is among the results when closed sites are asked for.
    p = soon["properties"]
    assert p["kind"] == "mother_baby_room" and "toilet" in p["amenities"]
    assert p["is_open"] is False and p["next_open"] == "2026-11-25T05:00:00+08:00"
    assert p["distance_m"] <= 60 * 75 / 1.3 and p["walk_minutes"] <= 60
    with_closed = nearest(client, **NOTHING_OPEN, include_closed="true", limit=50)
    assert with_closed["alternatives"] is None
    [same] = [f for f in with_closed["features"] if f["id"] == soon["id"]]
    assert same == soon
    closed = [f["properties"] for f in with_closed["features"] if f["properties"]["distance_m"] <= p["distance_m"]]
    assert closed and all(c["next_open"] is None or c["next_open"] >= p["next_open"] for c in closed)
    # nearest_open_any: the first answer of the same place and time with every filter dropped.
    plain = nearest(client, at=NOTHING_OPEN["at"], limit=1)
    assert plain["alternatives"] is None
    assert open_any == plain["features"][0] and open_any["properties"]["is_open"] is True
    assert "toilet" not in open_any["properties"]["amenities"]
    Draft202012Validator(nearest_schema(client)).validate(body)


def test_alternatives_are_null_when_there_are_results(client) -> None:  # type: ignore[no-untyped-def]
    from jsonschema import Draft202012Validator

    body = nearest(client, at="2026-11-24T12:00", kind="mother_baby_room")
    assert body["features"] and body["alternatives"] is None
    schema = nearest_schema(client)
    assert "alternatives" in schema["required"]
    Draft202012Validator(schema).validate(body)
    assert not Draft202012Validator(schema).is_valid({**body, "alternatives": {"opens_soonest": None}})


@pytest.mark.parametrize("crs", ["wgs84", "gcj02", "bd09"])
@pytest.mark.parametrize("corner", [(-90, -180), (90, 180), (-90, 180), (90, -180)])
def test_nearest_from_a_pole_or_the_antimeridian_answers(client, crs, corner) -> None:  # type: ignore[no-untyped-def]
    # Found by the fuzz: BD-09's offset took (-90, -180) off the globe, every distance was NaN and the answer 500.
    lat, lon = corner
    for extra in ({}, {"include_closed": "true"}, {"max_distance_m": 1}):
        body = nearest(client, lat=lat, lon=lon, crs=crs, limit=1, **extra)
        for f in body["features"] + [a for a in (body["alternatives"] or {}).values() if a]:
            assert math.isfinite(f["properties"]["distance_m"]) and f["properties"]["walk_minutes"] >= 0


def test_openapi_document_lists_the_endpoints(client) -> None:  # type: ignore[no-untyped-def]
    doc = client.get("/api/v1/openapi.json").get_json()
    assert doc["openapi"].startswith("3.")
    assert {"/api/v1/sites/nearest", "/api/v1/sites", "/api/v1/sites/{site_id}", "/api/v1/districts",
            "/healthz"} <= set(doc["paths"])
    names = {p["name"] for p in doc["paths"]["/api/v1/sites/nearest"]["get"]["parameters"]}
    assert {"lat", "lon", "kind", "amenity", "at", "arrive_within", "limit", "max_distance_m"} <= names


def test_healthz(client) -> None:  # type: ignore[no-untyped-def]
    body = client.get("/healthz").get_json()
    assert body["status"] == "ok" and body["sites"] == demo.total()


def test_page_is_served_at_root(client) -> None:  # type: ignore[no-untyped-def]
    with client.get("/") as resp:
        assert resp.status_code == 200 and b"<html" in resp.data.lower()
        assert resp.mimetype == "text/html"


def test_public_reads_are_rate_limited_per_client_address(demo_embedded, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from geoservice import create_app

    app = create_app(Settings(embedded_path=tmp_path / "unused", public_rate_per_minute=3, metrics_public=True),
                     services=demo_embedded, prepare=False)
    c = app.test_client()
    url = "/api/v1/sites/nearest?lat=39.9087&lon=116.3975"
    assert [c.get(url).status_code for _ in range(3)] == [200, 200, 200]
    limited = c.get("/ogc/collections/warm_stations/items?limit=1")
    assert limited.status_code == 429 and limited.mimetype == "application/problem+json"
    assert 1 <= int(limited.headers["Retry-After"]) <= 20  # a token comes back every 20 s at 3 a minute
    assert "try again" in limited.get_json()["detail"]
    # another address has its own allowance; the service's own endpoints and operators' reads are not limited,
    # and couriers' reports have their own limit (404 here: the site is unknown, not 429)
    assert c.get(url, environ_base={"REMOTE_ADDR": "10.1.2.3"}).status_code == 200
    assert c.get("/healthz").status_code == 200 and c.get("/metrics").status_code == 200
    assert c.get("/api/v1/sites/x/history").status_code == 401
    assert c.post("/api/v1/sites/x/reports", json={"type": "closed_on_arrival"}).status_code == 404


def test_behind_a_proxy_the_limit_counts_each_forwarded_client(demo_embedded, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from geoservice import create_app

    app = create_app(Settings(embedded_path=tmp_path / "unused", public_rate_per_minute=2, proxy_hops=1),
                     services=demo_embedded, prepare=False)
    c = app.test_client()
    url = "/api/v1/sites/nearest?lat=39.9087&lon=116.3975"
    one, two = {"X-Forwarded-For": "203.0.113.7"}, {"X-Forwarded-For": "203.0.113.8"}
    assert [c.get(url, headers=one).status_code for _ in range(3)] == [200, 200, 429]
    assert c.get(url, headers=two).status_code == 200  # same proxy address, another client


@pytest.mark.parametrize("at", ["2026-12-02T21:30", "2026-12-05T04:00", "2026-12-31T23:59"])
def test_open_intervals_ahead_agree_with_each_sites_state(client, at) -> None:  # type: ignore[no-untyped-def]
    """What the couriers' page keeps for offline use: each site's open intervals from ``at`` for 24 hours. Read
    back at ``at`` they give the state the service reports, and the next opening it reports."""
    start = dt.datetime.fromisoformat(at).replace(tzinfo=TZ)
    end = start + dt.timedelta(hours=24)
    body = client.get(f"/api/v1/sites/nearest?lat=39.9289&lon=116.4160&limit=30&include_closed=true"
                      f"&intervals_hours=24&at={at}").get_json()
    assert body["query"]["intervals_hours"] == 24 and len(body["features"]) == 30
    for f in body["features"]:
        p = f["properties"]
        spans = [(dt.datetime.fromisoformat(s["start"]), dt.datetime.fromisoformat(s["end"]))
                 for s in p["open_intervals"]]
        assert all(start <= a < b <= end for a, b in spans), (p["id"], spans)
        assert all(b1 < a2 for (_, b1), (a2, _) in itertools.pairwise(spans)), (p["id"], spans)  # sorted, merged
        assert p["is_open"] == any(a <= start < b for a, b in spans), (p["id"], p["is_open"], spans)
        if p["is_open"] and p["open_until"] and dt.datetime.fromisoformat(p["open_until"]) < end:
            assert dt.datetime.fromisoformat(p["open_until"]) == next(b for a, b in spans if a <= start < b)
        if not p["is_open"] and p["next_open"] and dt.datetime.fromisoformat(p["next_open"]) < end:
            assert dt.datetime.fromisoformat(p["next_open"]) == spans[0][0]


def test_open_intervals_only_when_asked(client) -> None:  # type: ignore[no-untyped-def]
    body = client.get("/api/v1/sites/nearest?lat=39.9289&lon=116.4160&limit=3").get_json()
    assert all("open_intervals" not in f["properties"] for f in body["features"])
    bad = client.get("/api/v1/sites/nearest?lat=39.9289&lon=116.4160&intervals_hours=49")
    assert bad.status_code == 422 and "intervals_hours" in bad.get_json()["detail"]
