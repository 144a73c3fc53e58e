"""When nothing matching is open: both stores name the same alternatives (issue 17, item 4).

At 23:45 near Tiananmen no mother-and-baby room is open. The courier is told the matching site nearby that opens
soonest (closed now, earliest ``next_open``, ties to the nearer, within the query's radius and never beyond
5 km) and the nearest site open now of any kind and distance.
"""
from __future__ import annotations

import datetime as dt

import pytest

from geoservice.hours import TZ
from geoservice.model import ALTERNATIVE_RADIUS_M, Closure, NearestQuery, Report
from geoservice.services import Services
from tests.support import TIANANMEN
from tests.support.sites import Spec, make_sites, sid

WINDOW = (dt.datetime(2026, 9, 18, tzinfo=TZ), dt.datetime(2026, 10, 14, tzinfo=TZ))
OUTSIDE = (dt.datetime(2027, 3, 1, tzinfo=TZ), dt.datetime(2027, 3, 10, tzinfo=TZ))
NIGHT = dt.datetime(2026, 10, 9, 23, 45, tzinfo=TZ)  # a Friday
ROOMS = ("mother_baby_room",)

# (source_id, metres east, metres north, hours, kind, amenities)
NETWORK: list[Spec] = [
    ("room-7", 200, 0, "Mo-Su 07:00-23:30", "mother_baby_room", ["nursing_chair"]),  # nearest, opens 07:00
    ("room-5", 600, 0, "Mo-Su 05:00-23:00", "mother_baby_room", ["nursing_chair", "sink"]),  # opens 05:00
    ("room-5-far", 0, 900, "Mo-Su 05:00-22:00", "mother_baby_room", ["nursing_chair", "sink"]),  # 05:00, farther
    ("room-4-closed", -800, 0, "Mo-Su 04:00-23:00", "mother_baby_room", ["nursing_chair"]),  # closed tomorrow
    ("room-3-beyond", 0, -7000, "Mo-Su 03:00-23:00", "mother_baby_room", ["nursing_chair"]),  # beyond 5 km
    ("warm-day", 300, 300, "Mo-Fr 08:00-18:00", "warm_station", ["drinking_water"]),  # other kind, closed
    ("warm-24", 0, 1200, "24/7", "warm_station", ["drinking_water", "toilet"]),  # open now, other kind
    ("home-24", 0, -20000, "24/7", "worker_home", ["wifi"]),  # open now, farther
]


@pytest.fixture
def night(store: Services) -> Services:
    store.sites.upsert_sites(make_sites(store, NETWORK))
    store.sites.add_closure(Closure(sid("room-4-closed"), dt.date(2026, 10, 10), dt.date(2026, 10, 10), "repairs"),
                            actor="system")
    store.sites.refresh_intervals(WINDOW)
    return store


def query(**kw) -> NearestQuery:  # type: ignore[no-untyped-def]
    base = {"lon": TIANANMEN[0], "lat": TIANANMEN[1], "at": NIGHT, "kinds": ROOMS, "limit": 5}
    return NearestQuery(**(base | kw))


def at_local(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=TZ)


def test_nothing_open_names_the_soonest_opening_and_the_nearest_open_site(night: Services) -> None:
    hits, alt = night.sites.nearest_with_alternatives(query())
    assert hits == []
    assert alt is not None and alt.opens_soonest is not None and alt.nearest_open_any is not None
    soon = alt.opens_soonest
    # 05:00 beats room-7's 07:00; room-5-far opens at 05:00 too but is farther; room-4-closed's 04:00 is closed
    # by its closure tomorrow; room-3-beyond opens at 03:00 but lies beyond the 5 km cap.
    assert soon.site.id == sid("room-5")
    assert not soon.state.is_open and soon.state.next_open == at_local("2026-10-10T05:00")
    assert soon.distance_m == pytest.approx(600, rel=0.02)
    open_any = alt.nearest_open_any
    assert open_any.site.id == sid("warm-24") and open_any.site.kind == "warm_station"
    assert open_any.state.is_open and open_any.distance_m == pytest.approx(1200, rel=0.02)


def test_the_alternatives_are_the_same_outside_the_materialised_window(night: Services) -> None:
    inside = night.sites.alternatives(query())
    night.sites.refresh_intervals(OUTSIDE)  # the hours engine answers now, walking candidates
    outside = night.sites.alternatives(query())
    assert inside == outside
    assert outside.opens_soonest is not None and outside.opens_soonest.site.id == sid("room-5")
    assert outside.nearest_open_any is not None and outside.nearest_open_any.site.id == sid("warm-24")


def test_opens_soonest_keeps_the_query_radius_and_filters(night: Services) -> None:
    # Within 500 m only room-7 matches: it is the one, whatever opens sooner farther away.
    alt = night.sites.alternatives(query(max_distance_m=500))
    assert alt.opens_soonest is not None and alt.opens_soonest.site.id == sid("room-7")
    assert alt.opens_soonest.state.next_open == at_local("2026-10-10T07:00")
    # The amenity filter holds for the soonest opening, not for the site open now.
    alt = night.sites.alternatives(query(amenities=("sink",), max_distance_m=500))
    assert alt.opens_soonest is None
    assert alt.nearest_open_any is not None and alt.nearest_open_any.site.id == sid("warm-24")
    # Without the cap room-3-beyond (03:00) would win: the search never goes past ALTERNATIVE_RADIUS_M.
    assert ALTERNATIVE_RADIUS_M < 7000
    alt = night.sites.alternatives(query(max_distance_m=50_000))
    assert alt.opens_soonest is not None and alt.opens_soonest.site.id == sid("room-5")


def test_nearest_open_any_has_no_distance_cap(night: Services) -> None:
    night.sites.update_site(sid("warm-24"), {"status": "temporarily_closed"}, actor="system")
    hits, alt = night.sites.nearest_with_alternatives(query(kinds=("warm_station",), arrive_within_s=60 * 60))
    assert hits == []
    assert alt is not None and alt.nearest_open_any is not None
    assert alt.nearest_open_any.site.id == sid("home-24")  # 20 km away, a worker's home
    assert alt.nearest_open_any.distance_m == pytest.approx(20_000, rel=0.02)
    # warm-day (Mo-Fr) opens on Saturday at 08:00: 10 Oct 2026 is a make-up working day after National Day.
    # warm-24 is closed until further notice: it never opens "soonest".
    assert alt.opens_soonest is not None and alt.opens_soonest.site.id == sid("warm-day")
    assert alt.opens_soonest.state.next_open == at_local("2026-10-10T08:00")


def test_alternatives_carry_unresolved_report_counts(night: Services) -> None:
    night.reports.add(Report(sid("room-5"), "closed_on_arrival", NIGHT))
    alt = night.sites.alternatives(query())
    assert alt.opens_soonest is not None and alt.opens_soonest.unresolved_reports == 1
    assert alt.nearest_open_any is not None and alt.nearest_open_any.unresolved_reports == 0


def test_no_alternatives_when_something_matches(night: Services) -> None:
    hits, alt = night.sites.nearest_with_alternatives(query(at=at_local("2026-10-09T12:00")))
    assert [h.site.id for h in hits][:1] == [sid("room-7")]
    assert alt is None
    # And when nothing is open anywhere there is no site open now to name.
    for s in make_sites(night, NETWORK):
        if s.opening_hours == "24/7":
            night.sites.update_site(s.id, {"status": "temporarily_closed"}, actor="system")
    hits, alt = night.sites.nearest_with_alternatives(query())
    assert hits == [] and alt is not None
    assert alt.nearest_open_any is None
    assert alt.opens_soonest is not None and alt.opens_soonest.site.id == sid("room-5")
