"""One contract, both stores: the embedded default and PostGIS must answer alike."""
from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from geoservice.calendar import CalendarDay
from geoservice.geo import geodesic_distance_m
from geoservice.hours import TZ
from geoservice.layers import ServiceArea
from geoservice.model import Closure, NearestQuery, Operator, Report, Site, SiteFilter, site_id_for
from geoservice.services import Services
from tests.support import TIANANMEN
from tests.support.sites import BASIC, make_sites

# A fixed window around the 2026 National Day holidays, including the make-up Sunday 20 Sep.
WINDOW = (dt.datetime(2026, 9, 18, tzinfo=TZ), dt.datetime(2026, 10, 14, tzinfo=TZ))


def t(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=TZ)


@pytest.fixture
def loaded(store: Services) -> Services:
    store.sites.upsert_sites(make_sites(store, BASIC))
    store.sites.refresh_intervals(WINDOW)
    return store


def names(hits) -> list[str]:  # type: ignore[no-untyped-def]
    return [h.site.source_id for h in hits]


def query(**kw) -> NearestQuery:  # type: ignore[no-untyped-def]
    base = {"lon": TIANANMEN[0], "lat": TIANANMEN[1], "at": t("2026-10-09T10:00"), "limit": 10}
    return NearestQuery(**(base | kw))


def test_upsert_is_idempotent_and_versioned(store: Services) -> None:
    first = store.sites.upsert_sites(make_sites(store, BASIC))
    assert len(first.inserted) == 5 and not first.updated
    again = store.sites.upsert_sites(make_sites(store, BASIC))
    assert len(again.unchanged) == 5 and not again.inserted and not again.updated
    changed = make_sites(store, BASIC)
    changed[0] = dataclasses.replace(changed[0], opening_hours="Mo-Su 07:00-23:00")
    third = store.sites.upsert_sites(changed)
    assert third.updated == [site_id_for("a")]
    site = store.sites.get_site(site_id_for("a"))
    assert site is not None and site.opening_hours == "Mo-Su 07:00-23:00" and site.version == 2
    assert store.sites.get_site(site_id_for("b")).version == 1  # type: ignore[union-attr]


def test_site_round_trips_every_field(store: Services) -> None:
    [site] = make_sites(store, BASIC[:1])
    site = dataclasses.replace(site, name_en="Station A", address="东城区东长安街1号", operator="工会", phone="010-1",
                               notes="near the gate")
    store.sites.upsert_sites([site])
    got = store.sites.get_site(site.id)
    assert got is not None
    for field in ("source_id", "kind", "name_zh", "name_en", "address", "district_adcode", "opening_hours",
                  "operator", "phone", "notes"):
        assert getattr(got, field) == getattr(site, field), field
    assert sorted(got.amenities) == sorted(site.amenities)
    assert abs(got.lon - site.lon) < 1e-7 and abs(got.lat - site.lat) < 1e-7
    assert got.district_adcode == "110101"
    assert got.updated_at is not None
    assert store.sites.get_site("nope") is None


def test_nearest_orders_by_geodesic_distance(loaded: Services) -> None:
    hits = loaded.sites.nearest(query(at=t("2026-10-09T09:30")))  # a Friday
    assert names(hits) == ["a", "b", "c", "d", "e"]
    for h in hits:
        expected = float(geodesic_distance_m(TIANANMEN[0], TIANANMEN[1], h.site.lon, h.site.lat))
        assert h.distance_m == pytest.approx(expected, abs=0.05)
    assert [h.distance_m for h in hits] == sorted(h.distance_m for h in hits)


def test_only_open_sites_unless_closed_ones_are_asked_for(loaded: Services) -> None:
    monday_7 = t("2026-10-12T07:00")
    assert names(loaded.sites.nearest(query(at=monday_7))) == ["a", "d"]
    everything = loaded.sites.nearest(query(at=monday_7, open_only=False))
    assert names(everything) == ["a", "b", "c", "d", "e"]
    state = {h.site.source_id: h.state for h in everything}
    assert state["b"].next_open == t("2026-10-12T08:30")
    assert state["c"].next_open == t("2026-10-13T09:00")  # Tu-Su: closed all Monday
    assert state["a"].is_open and state["a"].open_until is None


def test_public_holiday_and_make_up_workday(loaded: Services) -> None:
    assert "b" not in names(loaded.sites.nearest(query(at=t("2026-10-01T10:00"))))
    assert "b" in names(loaded.sites.nearest(query(at=t("2026-09-20T10:00"))))  # make-up Sunday


def test_kind_and_amenity_filters(loaded: Services) -> None:
    at = t("2026-10-09T09:30")
    assert names(loaded.sites.nearest(query(at=at, kinds=("mother_baby_room",)))) == ["c"]
    assert names(loaded.sites.nearest(query(at=at, kinds=("worker_home", "mother_baby_room")))) == ["c", "d"]
    assert names(loaded.sites.nearest(query(at=at, amenities=("toilet",)))) == ["a", "d"]
    assert names(loaded.sites.nearest(query(at=at, amenities=("toilet", "wifi")))) == ["d"]
    assert names(loaded.sites.nearest(query(at=at, limit=2))) == ["a", "b"]


def test_radius_limits_results(loaded: Services) -> None:
    assert names(loaded.sites.nearest(query(at=t("2026-10-09T09:30"), max_distance_m=600))) == ["a", "b", "c"]


def test_arrive_within_drops_sites_that_close_before_the_walker_arrives(loaded: Services) -> None:
    # e is 1.5 km away (about 26 minutes on foot) and closes at 10:05.
    at = t("2026-10-09T09:50")
    assert "e" in names(loaded.sites.nearest(query(at=at)))
    reachable = names(loaded.sites.nearest(query(at=at, arrive_within_s=60 * 60)))
    assert "e" not in reachable and "a" in reachable
    # within 12 minutes only sites up to ~690 m qualify
    assert names(loaded.sites.nearest(query(at=at, arrive_within_s=12 * 60))) == ["a", "b", "c"]


def test_closure_takes_effect_immediately(loaded: Services) -> None:
    at = t("2026-10-09T10:00")
    assert names(loaded.sites.nearest(query(at=at)))[0] == "a"
    loaded.sites.add_closure(Closure(site_id_for("a"), dt.date(2026, 10, 9), dt.date(2026, 10, 10), "repairs"),
                             actor="system")
    assert "a" not in names(loaded.sites.nearest(query(at=at)))
    assert "a" in names(loaded.sites.nearest(query(at=t("2026-10-11T10:00"))))
    [c] = loaded.sites.closures_for([site_id_for("a")])[site_id_for("a")]
    assert (c.start, c.end, c.reason) == (dt.date(2026, 10, 9), dt.date(2026, 10, 10), "repairs")


def test_an_upcoming_closure_shortens_open_until_in_nearest_results(loaded: Services) -> None:
    # "a" is 24/7: open with no end in sight, until a closure from tomorrow makes tonight's midnight its end.
    at = t("2026-10-09T22:00")
    [hit] = [h for h in loaded.sites.nearest(query(at=at)) if h.site.source_id == "a"]
    assert hit.state.is_open and hit.state.open_until is None
    loaded.sites.add_closure(Closure(site_id_for("a"), dt.date(2026, 10, 10), dt.date(2026, 10, 11), "repairs"),
                             actor="system")
    for q in (query(at=at), query(at=at, kinds=("warm_station",)), query(at=at, max_distance_m=1000)):
        [hit] = [h for h in loaded.sites.nearest(q) if h.site.source_id == "a"]
        assert hit.state.is_open and hit.state.open_until == t("2026-10-10T00:00")


def test_nearest_results_carry_unresolved_report_counts(loaded: Services) -> None:
    at = t("2026-10-09T10:00")
    a, b = site_id_for("a"), site_id_for("b")
    for _ in range(2):
        loaded.reports.add(Report(a, "closed_on_arrival", at))
    loaded.reports.add(Report(b, "closed_on_arrival", at))
    # open-only inside the window (the store's fast path), outside it (engine), and with closed sites too
    for q in (query(at=at), query(at=t("2027-03-01T10:00")), query(at=at, open_only=False)):
        counts = {h.site.source_id: h.unresolved_reports for h in loaded.sites.nearest(q)}
        assert counts["a"] == 2 and counts["b"] == 1 and counts["d"] == 0
    newest = loaded.reports.page(Operator(0, "staff", "admin"))[0][0]
    assert newest.id is not None
    loaded.reports.resolve(newest.id, "staff")
    assert sum(h.unresolved_reports for h in loaded.sites.nearest(query(at=at))) == 2


def test_materialised_window_and_engine_fallback_agree(loaded: Services) -> None:
    times = [t("2026-10-01T10:00"), t("2026-10-09T09:55"), t("2026-10-12T07:00"), t("2026-09-20T18:00")]
    inside = [names(loaded.sites.nearest(query(at=x, arrive_within_s=40 * 60))) for x in times]
    loaded.sites.refresh_intervals((dt.datetime(2027, 3, 1, tzinfo=TZ), dt.datetime(2027, 3, 10, tzinfo=TZ)))
    outside = [names(loaded.sites.nearest(query(at=x, arrive_within_s=40 * 60))) for x in times]
    assert inside == outside


def test_loading_a_calendar_year_changes_answers(loaded: Services) -> None:
    jan1 = t("2027-01-01T10:00")  # a Friday; 2027 is not shipped
    assert "b" in names(loaded.sites.nearest(query(at=jan1)))
    assert 2027 not in loaded.calendars.calendar().years
    loaded.sites.load_calendar(2027, [CalendarDay(dt.date(2027, 1, 1), "holiday", "New Year's Day", "元旦")],
                              "test")
    assert 2027 in loaded.calendars.calendar().years
    assert "b" not in names(loaded.sites.nearest(query(at=jan1)))


def test_list_sites_filters_and_pages(loaded: Services) -> None:
    everything, total = loaded.sites.list_sites(SiteFilter(limit=2))
    assert total == 5 and len(everything) == 2
    rest, total2 = loaded.sites.list_sites(SiteFilter(limit=10, offset=2))
    assert total2 == 5 and len(rest) == 3
    assert {s.id for s in everything} | {s.id for s in rest} == {site_id_for(x[0]) for x in BASIC}
    kinds, n = loaded.sites.list_sites(SiteFilter(kinds=("warm_station",)))
    assert n == 3 and {s.kind for s in kinds} == {"warm_station"}
    box = (TIANANMEN[0] - 0.002, TIANANMEN[1] - 0.002, TIANANMEN[0] + 0.005, TIANANMEN[1] + 0.002)
    in_box, n = loaded.sites.list_sites(SiteFilter(bbox=box))
    assert {s.source_id for s in in_box} == {"a", "b"}
    open_now, n = loaded.sites.list_sites(SiteFilter(open_at=t("2026-10-12T07:00")))
    assert {s.source_id for s in open_now} == {"a", "d"}
    _, n_dist = loaded.sites.list_sites(SiteFilter(district="110101"))
    assert n_dist == sum(1 for s in make_sites(loaded, BASIC) if s.district_adcode == "110101")


def test_bbox_is_exact_in_longitude_and_latitude(store: Services) -> None:
    # Sites 20 m outside each edge of a 2 km box, and 20 m inside: a courier's map view shows exactly these.
    # (On PostGIS, `geog && box` alone compares geocentric boxes and lets the outside ones through.)
    w, s_, e, n = 116.38, 39.90, 116.40, 39.92
    dx, dy = 20 / 85_300.0, 20 / 111_000.0
    mid_x, mid_y = (w + e) / 2, (s_ + n) / 2
    points = {"out_n": (mid_x, n + dy), "out_s": (mid_x, s_ - dy), "out_e": (e + dx, mid_y), "out_w": (w - dx, mid_y),
              "in_n": (mid_x, n - dy), "in_s": (mid_x, s_ + dy), "in_e": (e - dx, mid_y), "in_w": (w + dx, mid_y),
              "corner": (e, n)}
    area = ServiceArea(store.sites.districts())
    store.sites.upsert_sites([Site(id=site_id_for(k), source_id=k, kind="warm_station", name_zh=k, lon=x, lat=y,
                             opening_hours="24/7", amenities=[], district_adcode=area.lookup([x], [y])[0])
                        for k, (x, y) in points.items()])
    found, n_found = store.sites.list_sites(SiteFilter(bbox=(w, s_, e, n)))
    assert {f.source_id for f in found} == {"in_n", "in_s", "in_e", "in_w", "corner"} and n_found == 5


def test_districts_and_counts(loaded: Services) -> None:
    districts = loaded.sites.districts()
    assert [d.adcode for d in districts][:2] == ["110101", "110102"] and len(districts) == 16
    assert sum(d.population_2020 for d in districts) == 21_893_095
    counts = loaded.sites.count_sites()
    assert sum(sum(v.values()) for v in counts.values()) == 5


def test_data_survives_reopening(store: Services) -> None:
    store.sites.upsert_sites(make_sites(store, BASIC))
    if store.backend == "embedded":
        from geoservice.store.embedded import EmbeddedStore

        reopened: Services = Services.over(EmbeddedStore(store.spatial.path))  # type: ignore[attr-defined]
    else:
        from geoservice.store.postgis import PostgisStore

        reopened = Services.over(PostgisStore(store.spatial.url, max_size=1))  # type: ignore[attr-defined]
    try:
        assert reopened.sites.get_site(site_id_for("c")) is not None
        assert len(reopened.sites.nearest(query(at=t("2026-10-09T10:00"), open_only=False))) == 5
    finally:
        reopened.close()


def test_health_reports_backend(loaded: Services) -> None:
    info = loaded.health()
    assert info["backend"] == loaded.backend and info["sites"] == 5
