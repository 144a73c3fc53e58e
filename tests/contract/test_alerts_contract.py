"""Weather alerts and alert hours on both stores (issue 14 item 1): a cold-wave alert over Dongcheng makes a
station with alert hours the first open answer at 23:00 where it was closed before, and the alert's end or its
deletion removes it again; district admins stay inside their districts.

Two warm stations east of Tiananmen (Dongcheng, 110101): "near" is open 08:00-20:00 and 24/7 under a cold wave
at orange or above; "far" is open 24/7 anyway. One west of it in Xicheng (110102) has the same alert hours.
"""
from __future__ import annotations

import datetime as dt
import threading

import pytest

from geoservice.errors import Forbidden
from geoservice.hours import TZ
from geoservice.model import NearestQuery, SiteFilter
from geoservice.services import Services
from geoservice.services.alerts import AlertService
from tests.support import TIANANMEN
from tests.support.pause import pause_first_materialise
from tests.support.sites import Spec, make_sites, sid

WINDOW = (dt.datetime(2026, 12, 1, tzinfo=TZ), dt.datetime(2026, 12, 20, tzinfo=TZ))
NIGHT = dt.datetime(2026, 12, 9, 23, 0, tzinfo=TZ)  # a Wednesday, 23:00
DONGCHENG, XICHENG = "110101", "110102"
COLD = {"hours": "24/7", "types": ["cold_wave"], "min_level": "orange"}

SITES: list[Spec] = [
    ("near", 100, 0, "Mo-Su 08:00-20:00", "warm_station", ["heating"]),
    ("far", 1500, 0, "24/7", "warm_station", ["heating"]),
]
WEST: list[Spec] = [("west", -1200, 0, "Mo-Su 08:00-20:00", "warm_station", ["heating"])]


@pytest.fixture
def net(store: Services) -> Services:
    near, far = make_sites(store, SITES)
    (west,) = make_sites(store, WEST)
    assert near.district_adcode == DONGCHENG and far.district_adcode == DONGCHENG
    assert west.district_adcode == XICHENG
    near.alert_hours = dict(COLD)
    west.alert_hours = dict(COLD)
    store.sites.upsert_sites([near, far, west])
    store.sites.refresh_intervals(WINDOW)
    return store


def admin(store: Services, role: str = "admin", districts: tuple[str, ...] = ()):  # type: ignore[no-untyped-def]
    return store.accounts.create(f"staff-{role}-{'-'.join(districts)}", role, districts=districts)


def first_open(store: Services, at: dt.datetime = NIGHT) -> str:
    hits = store.sites.nearest(NearestQuery(lon=TIANANMEN[0], lat=TIANANMEN[1], at=at, limit=1))
    assert hits, "nothing open"
    return hits[0].site.id


def test_a_cold_wave_opens_the_station_with_alert_hours_until_it_ends(net: Services) -> None:
    alerts = AlertService(net.sites)
    assert first_open(net) == sid("far")  # near is closed at 23:00 by its normal hours
    alert = alerts.declare(admin(net), "cold_wave", "red", [DONGCHENG], NIGHT - dt.timedelta(hours=1),
                           NIGHT + dt.timedelta(hours=9))
    hits = net.sites.nearest(NearestQuery(lon=TIANANMEN[0], lat=TIANANMEN[1], at=NIGHT, limit=2))
    assert [h.site.id for h in hits] == [sid("near"), sid("far")]
    assert hits[0].state.reason == "alert_hours" and hits[1].state.reason == "hours"
    # Listings and "open at" agree with the nearest answer.
    listed, _ = net.sites.list_sites(SiteFilter(open_at=NIGHT))
    assert sid("near") in {s.id for s in listed} and sid("west") not in {s.id for s in listed}
    # Before the alert starts, the normal hours apply.
    assert first_open(net, NIGHT - dt.timedelta(hours=1, minutes=30)) == sid("far")
    # Ended early at 22:30: closed again at 23:00, at once (no refresh).
    alerts.change_end(admin(net, "district_admin", (DONGCHENG,)), alert.id, NIGHT - dt.timedelta(minutes=30))
    assert first_open(net) == sid("far")
    hits = net.sites.nearest(NearestQuery(lon=TIANANMEN[0], lat=TIANANMEN[1], at=NIGHT, limit=3, open_only=False))
    assert not next(h for h in hits if h.site.id == sid("near")).state.is_open


def test_deleting_the_alert_restores_the_normal_hours(net: Services) -> None:
    alerts = AlertService(net.sites)
    alert = alerts.declare(admin(net), "cold_wave", "orange", [DONGCHENG], NIGHT - dt.timedelta(hours=1),
                           NIGHT + dt.timedelta(hours=5))
    assert first_open(net) == sid("near")
    alerts.delete(admin(net, "district_admin", (DONGCHENG,)), alert.id)
    assert first_open(net) == sid("far")


def test_an_alert_below_the_minimum_level_or_of_another_type_changes_nothing(net: Services) -> None:
    alerts = AlertService(net.sites)
    alerts.declare(admin(net), "cold_wave", "yellow", [DONGCHENG], NIGHT - dt.timedelta(hours=1),
                   NIGHT + dt.timedelta(hours=5))
    alerts.declare(admin(net, "district_admin", (DONGCHENG,)), "heat", "red", [DONGCHENG],
                   NIGHT - dt.timedelta(hours=1), NIGHT + dt.timedelta(hours=5))
    assert first_open(net) == sid("far")


def test_a_district_admin_cannot_declare_or_delete_outside_its_districts(net: Services) -> None:
    alerts = AlertService(net.sites)
    xicheng = admin(net, "district_admin", (XICHENG,))
    with pytest.raises(Forbidden) as refused:
        alerts.declare(xicheng, "cold_wave", "red", [DONGCHENG, XICHENG], NIGHT, NIGHT + dt.timedelta(hours=4))
    assert refused.value.problems[0]["field"] == "districts" and DONGCHENG in refused.value.problems[0]["reason"]
    assert first_open(net) == sid("far")  # nothing was written
    assert alerts.active(NIGHT - dt.timedelta(hours=1)) == []
    alert = alerts.declare(admin(net), "cold_wave", "red", [DONGCHENG], NIGHT, NIGHT + dt.timedelta(hours=4))
    with pytest.raises(Forbidden):
        alerts.delete(xicheng, alert.id)
    assert first_open(net) == sid("near")
    own = alerts.declare(xicheng, "cold_wave", "red", [XICHENG], NIGHT, NIGHT + dt.timedelta(hours=4))
    assert own.districts == (XICHENG,)


def test_an_alert_declared_during_an_operators_edit_keeps_both(net: Services) -> None:
    """The edit of "near"'s hours is paused inside its transaction (after computing its intervals) while a cold
    wave is declared over its district: the alert waits for the edit, then recomputes from the new hours. Before,
    the alert read the old hours beside the uncommitted edit, then the two deadlocked over the site's interval
    rows and PostgreSQL rolled one back: the operator's save failed (PostGIS; the embedded store has one writer
    at a time and passed either way)."""
    alerts = AlertService(net.sites)
    errors: list[BaseException] = []

    def run(action) -> threading.Thread:  # type: ignore[no-untyped-def]
        def target() -> None:
            try:
                action()
            except BaseException as exc:
                errors.append(exc)
        thread = threading.Thread(target=target)
        thread.start()
        return thread

    computed, resume = pause_first_materialise(net)
    edit = run(lambda: net.sites.update_site(sid("near"), {"opening_hours": "Mo-Su 08:00-22:00"}, actor="alice"))
    try:
        assert computed.wait(60)
        declare = run(lambda: alerts.declare(admin(net), "cold_wave", "red", [DONGCHENG],
                                             NIGHT - dt.timedelta(hours=1), NIGHT + dt.timedelta(hours=9)))
        declare.join(3)  # without the lock it finishes here, ahead of the edit
    finally:
        resume.set()
        edit.join(60)
        declare.join(60)
    assert not errors
    assert first_open(net, NIGHT - dt.timedelta(days=1, hours=2)) == sid("near")  # 21:00, the edited hours
    assert first_open(net) == sid("near"), "the edit undid the alert's hours"


def test_alert_changes_go_into_the_change_feed(net: Services) -> None:
    alerts = AlertService(net.sites)
    head, _ = net.changes.head()
    alert = alerts.declare(admin(net), "cold_wave", "red", [DONGCHENG], NIGHT, NIGHT + dt.timedelta(hours=4))
    from geoservice.model import decode_cursor
    page = net.changes.page(decode_cursor(head), 100)
    assert [(e.site_id, e.alert_id, e.kind) for e in page.entries] == [
        (sid("near"), None, "alert_hours"), (None, alert.id, "alert")]


def test_alert_hours_come_from_layer_files_checked_as_opening_hours(store: Services, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import json

    from geoservice.layers import ServiceArea, read_site_file
    from geoservice.validation import ValidationFailed
    from tests.support.sites import offset

    def feature(source_id: str, rule: object) -> dict[str, object]:
        lon, lat = offset(100, 0)
        return {"type": "Feature", "geometry": {"type": "Point", "coordinates": [lon, lat]},
                "properties": {"source_id": source_id, "kind": "warm_station", "name_zh": "站点",
                               "opening_hours": "Mo-Su 08:00-20:00", "alert_hours": rule}}

    area = ServiceArea(store.sites.districts())
    good = tmp_path / "good.geojson"
    good.write_text(json.dumps({"type": "FeatureCollection", "features": [feature("g", COLD)]}), encoding="utf-8")
    (site,) = read_site_file(good, area).sites
    assert site.alert_hours == COLD
    store.sites.upsert_sites([site])
    stored = store.sites.get_site(site.id)
    assert stored is not None and stored.alert_hours == COLD
    # The syntax allows "SH" (school holidays), which China's calendar cannot answer: refused like opening_hours.
    bad = tmp_path / "bad.geojson"
    bad.write_text(json.dumps({"type": "FeatureCollection", "features": [
        feature("b1", {"hours": "Mo-Fr 08:00-20:00; SH off", "types": ["cold_wave"], "min_level": "red"}),
        feature("b2", {"hours": "24/7", "types": ["snowfall"], "min_level": "red"})]}), encoding="utf-8")
    with pytest.raises(ValidationFailed) as refused:
        read_site_file(bad, area)
    fields = [(p.field, p.reason.split(":")[0]) for p in refused.value.items]
    assert fields == [("alert_hours", "hours"), ("alert_hours", "types")]


def test_coverage_under_the_alert_is_higher_than_the_normal_night_per_district(net: Services,
                                                                              tmp_path: object) -> None:
    from pathlib import Path

    from geoservice import create_app
    from geoservice.settings import Settings
    from tests.support import LAYERS

    assert isinstance(tmp_path, Path)
    app = create_app(Settings(embedded_path=tmp_path / "unused.sqlite", layers_dir=LAYERS,
                              public_rate_per_minute=0, rate_limit_dir=tmp_path), services=net, prepare=False)
    client = app.test_client()
    query = {"at": NIGHT.replace(tzinfo=None).isoformat(), "kind": "warm_station", "walk_minutes": 15,
             "resolution": 7, "compare_normal": "true"}
    quiet = client.get("/api/v1/coverage", query_string=query).get_json()
    assert quiet["alerts"] == []
    assert all(d["area_share_difference"] in (0, None) for d in quiet["normal_hours"]["difference"])
    AlertService(net.sites).declare(admin(net), "cold_wave", "orange", [DONGCHENG], NIGHT - dt.timedelta(hours=2),
                                    NIGHT + dt.timedelta(hours=8))
    body = client.get("/api/v1/coverage", query_string=query).get_json()
    assert [a["type"] for a in body["alerts"]] == ["cold_wave"]
    diff = {d["adcode"]: d for d in body["normal_hours"]["difference"]}
    dongcheng = diff[DONGCHENG]
    # "near" opens by its alert hours: one more open station and more of Dongcheng covered than on a normal night.
    assert dongcheng["open_sites"] == dongcheng["open_sites_normal"] + 1
    assert dongcheng["area_share"] > dongcheng["area_share_normal"] and dongcheng["area_share_difference"] > 0
    assert diff["110000"]["area_share_difference"] > 0  # city-wide too
    # Xicheng's station has the same alert hours but the alert is not over Xicheng: no change there.
    assert diff[XICHENG]["open_sites"] == diff[XICHENG]["open_sites_normal"]
    assert diff[XICHENG]["area_share_difference"] in (0, None)


def test_the_week_profile_uses_alert_hours_only_in_the_alert_s_hours(net: Services) -> None:
    from geoservice.analysis.planner import Planner

    planner = Planner(net.sites, resolution=7)
    night = NIGHT.weekday() * 24 + NIGHT.hour  # hour of the week of Wednesday 23:00
    AlertService(net.sites).declare(admin(net), "cold_wave", "orange", [DONGCHENG], NIGHT - dt.timedelta(hours=2),
                                    NIGHT + dt.timedelta(hours=3))

    def open_sites(alert_hours: bool) -> dict[tuple[str, int], int]:
        week = planner.week(NIGHT.date(), kinds=("warm_station",), radius_m=1000, alert_hours=alert_hours)
        return {(a, h): n for a, h, n in zip(week["adcode"], week["hour_of_week"], week["open_sites"])}

    under, normal = open_sites(True), open_sites(False)
    # "near" is open by its alert hours through the alert's night (21:00-02:00), and by its normal hours after.
    for hour in (night - 1, night, night + 2):
        assert under[(DONGCHENG, hour)] == normal[(DONGCHENG, hour)] + 1, hour
    for hour in (night - 24, night + 3, night + 24):
        assert under[(DONGCHENG, hour)] == normal[(DONGCHENG, hour)], hour
    # Xicheng's station has the same alert hours, but the alert is not over Xicheng.
    assert all(under[(XICHENG, h)] == normal[(XICHENG, h)] for h in range(168))
    # The profile agrees with coverage at the alert's hour, as the couriers' answers do.
    at_night = planner.coverage(NIGHT.replace(tzinfo=None), ("warm_station",), radius_m=1000)
    row = at_night.districts.set_index("adcode").loc[DONGCHENG]
    assert row["open_sites"] == under[(DONGCHENG, night)]
