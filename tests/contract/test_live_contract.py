"""Live status on both stores (issue 14, item 2): what operators post changes what couriers are told, until it
expires by itself; three couriers' "closed when I arrived" reports from different clients mark a site.

A row of warm stations east of Tiananmen, all open all day, so only the live status decides who is answered.
"""
from __future__ import annotations

import datetime as dt

import pytest

from geoservice.hours import TZ
from geoservice.model import FULL_TOLERANCE_M, LiveView, NearestQuery, Report, SiteFilter
from geoservice.services import Services
from tests.support import TIANANMEN
from tests.support.sites import Spec, make_sites, sid

WINDOW = (dt.datetime(2026, 9, 18, tzinfo=TZ), dt.datetime(2026, 10, 14, tzinfo=TZ))
OUTSIDE = (dt.datetime(2027, 3, 1, tzinfo=TZ), dt.datetime(2027, 3, 10, tzinfo=TZ))
AT = dt.datetime(2026, 10, 9, 14, 0, tzinfo=TZ)  # a Friday afternoon inside the window
HOUR = dt.timedelta(hours=1)

ROW: list[Spec] = [
    ("w100", 100, 0, "24/7", "warm_station", ["drinking_water"]),
    ("w250", 250, 0, "24/7", "warm_station", ["drinking_water"]),
    ("w500", 500, 0, "24/7", "warm_station", ["drinking_water"]),
    ("w900", 900, 0, "24/7", "warm_station", ["drinking_water"]),
    ("w1500", 1500, 0, "24/7", "warm_station", ["drinking_water"]),
]


@pytest.fixture
def row(store: Services) -> Services:
    store.sites.upsert_sites(make_sites(store, ROW))
    store.sites.refresh_intervals(WINDOW)
    return store


def query(**kw) -> NearestQuery:  # type: ignore[no-untyped-def]
    base = {"lon": TIANANMEN[0], "lat": TIANANMEN[1], "at": AT, "limit": 3}
    return NearestQuery(**(base | kw))


def ids(hits: list) -> list[str]:  # type: ignore[type-arg]
    assert hits, "the query answered nothing"
    return [h.site.id for h in hits]


def test_a_full_station_ranks_after_a_non_full_one_at_similar_distance(row: Services) -> None:
    row.live.post(sid("w100"), "full", "op", AT - dt.timedelta(minutes=10), seats_free=0, capacity=6)
    hits = row.sites.nearest(query())
    # w100 (full) counts as 400 m: after w250, before w500.
    assert ids(hits) == [sid("w250"), sid("w100"), sid("w500")]
    full = hits[1]
    assert full.live.status is not None and full.live.status.state == "full"
    assert full.live.status.capacity == 6 and full.distance_m == pytest.approx(100, rel=0.02)
    assert hits[0].live.status is None


def test_a_full_station_keeps_its_place_beyond_the_tolerance_and_a_limit_of_one_looks_further(
        row: Services) -> None:
    row.live.post(sid("w500"), "full", "op", AT - HOUR)
    assert ids(row.sites.nearest(query(limit=5))) == [sid("w100"), sid("w250"), sid("w500"), sid("w900"),
                                                      sid("w1500")]
    row.live.post(sid("w100"), "full", "op", AT - HOUR)
    # Asked for one site, the answer is not the nearest (full) one but the non-full one 150 m behind it.
    assert ids(row.sites.nearest(query(limit=1))) == [sid("w250")]
    assert FULL_TOLERANCE_M > 250 - 100  # the non-full site is within the tolerance


def test_closed_now_is_left_out_inside_the_search_so_a_page_is_not_short(row: Services) -> None:
    row.live.post(sid("w100"), "closed_now", "op", AT - HOUR)
    row.live.post(sid("w250"), "closed_now", "op", AT - HOUR)
    assert ids(row.sites.nearest(query(limit=3))) == [sid("w500"), sid("w900"), sid("w1500")]
    # Shown (marked) when the courier asks for closed sites too.
    everything = row.sites.nearest(query(limit=5, open_only=False))
    assert ids(everything)[:2] == [sid("w100"), sid("w250")]
    assert everything[0].live.status is not None and everything[0].live.status.state == "closed_now"


def test_an_expired_closed_now_no_longer_hides_a_site(row: Services) -> None:
    row.live.post(sid("w100"), "closed_now", "op", AT - 3 * HOUR, ttl=2 * HOUR)  # expired at 13:00
    hits = row.sites.nearest(query(limit=1))
    assert ids(hits) == [sid("w100")]
    assert hits[0].live.status is None
    # At 12:30 it was in force.
    assert ids(row.sites.nearest(query(limit=1, at=AT - 1.5 * HOUR))) == [sid("w250")]


def test_a_cleared_status_ends_at_once(row: Services) -> None:
    row.live.post(sid("w100"), "closed_now", "op", AT - HOUR, ttl=6 * HOUR)
    assert ids(row.sites.nearest(query(limit=1))) == [sid("w250")]
    row.live.clear(sid("w100"), "op", AT - dt.timedelta(minutes=1))
    assert ids(row.sites.nearest(query(limit=1))) == [sid("w100")]


def test_closed_now_also_leaves_listings_open_at_a_time_and_the_engine_fallback(row: Services) -> None:
    row.live.post(sid("w100"), "closed_now", "op", AT - HOUR)
    listed, total = row.sites.list_sites(SiteFilter(open_at=AT))
    assert total == 4 and sid("w100") not in [s.id for s in listed]
    _, total = row.sites.list_sites(SiteFilter())
    assert total == 5
    # Outside the materialised window the hours engine decides; the status still counts.
    row.sites.refresh_intervals(OUTSIDE)
    assert ids(row.sites.nearest(query(limit=1))) == [sid("w250")]
    listed, total = row.sites.list_sites(SiteFilter(open_at=AT))
    assert total == 4 and sid("w100") not in [s.id for s in listed]


def test_each_post_is_in_the_audit_trail_and_the_version_does_not_move(row: Services) -> None:
    before = row.sites.get_site(sid("w100"))
    row.live.post(sid("w100"), "full", "小王", AT - HOUR, seats_free=0, capacity=4)
    row.live.clear(sid("w100"), "小王", AT - dt.timedelta(minutes=5))
    history, total = row.audit.site_history(sid("w100"))
    assert total == 2
    cleared, posted = history
    assert posted.action == "live_status" and posted.actor == "小王"
    assert posted.changes["live_status"]["before"] is None
    assert posted.changes["live_status"]["after"]["state"] == "full"
    assert cleared.action == "live_status_clear" and cleared.changes["live_status"]["after"] is None
    assert cleared.changes["live_status"]["before"]["capacity"] == 4
    after = row.sites.get_site(sid("w100"))
    assert before is not None and after is not None and after.version == before.version


def closed_report(site_id: str) -> Report:
    return Report(site_id=site_id, type="closed_on_arrival", observed_at=AT - HOUR)


def answered(row: Services, site_id: str, at: dt.datetime = AT) -> LiveView:
    """The live view a nearest answer gives ``site_id`` at ``at`` (PostGIS reads it in the nearest statement
    itself), checked to be the one the site's own view gives."""
    hit = next(h for h in row.sites.nearest(query(limit=5, at=at)) if h.site.id == site_id)
    assert hit.live == row.live.view(site_id, at)
    return hit.live


def test_three_reports_from_different_clients_mark_a_site_two_do_not(row: Services) -> None:
    w = sid("w100")
    for n, address in enumerate(("10.0.0.1", "10.0.0.2")):
        row.live.add_report(closed_report(w), address, now=AT - dt.timedelta(minutes=50 - n))
    row.live.add_report(closed_report(w), "10.0.0.2", now=AT - dt.timedelta(minutes=40))  # the same client again
    assert row.live.view(w, AT).may_be_closed is None
    assert answered(row, w).may_be_closed is None
    row.live.add_report(closed_report(w), "10.0.0.3", now=AT - dt.timedelta(minutes=30))
    mark = row.live.view(w, AT).may_be_closed
    assert mark is not None and mark.reports == 3
    assert mark.since == AT - dt.timedelta(minutes=50)
    hit = row.sites.nearest(query(limit=1))[0]
    assert hit.site.id == w and hit.live.may_be_closed == mark  # marked, still listed
    # Before the third report arrived, and after the marks expire (two hours after the first of the three:
    # one left then is not enough), the site is not marked.
    assert answered(row, w, AT - dt.timedelta(minutes=35)).may_be_closed is None
    assert row.live.view(w, AT + dt.timedelta(minutes=75)).may_be_closed is None
    assert answered(row, w, AT + dt.timedelta(minutes=75)).may_be_closed is None


def test_the_operator_confirms_a_marked_site_by_posting_a_status(row: Services) -> None:
    w = sid("w250")
    for n, address in enumerate(("10.0.0.1", "10.0.0.2", "10.0.0.3")):
        row.live.add_report(closed_report(w), address, now=AT - dt.timedelta(minutes=40 - n))
    assert row.live.view(w, AT).may_be_closed is not None
    assert answered(row, w).may_be_closed is not None
    row.live.post(w, "open", "op", AT - dt.timedelta(minutes=10))
    view = row.live.view(w, AT)
    assert view.may_be_closed is None and view.status is not None and view.status.state == "open"
    assert answered(row, w) == view
    # Reports after the confirmation count again.
    for n, address in enumerate(("10.0.0.4", "10.0.0.5", "10.0.0.6")):
        row.live.add_report(closed_report(w), address, now=AT - dt.timedelta(minutes=5 - n))
    again = row.live.view(w, AT).may_be_closed
    assert again is not None and again.reports == 3
    assert answered(row, w).may_be_closed == again


def test_no_client_address_is_stored(row: Services) -> None:
    w = sid("w500")
    row.live.add_report(closed_report(w), "192.0.2.77", now=AT - HOUR)
    with row.spatial.database.reading() as ex:
        cur = ex.execute("SELECT * FROM site_reports")
        stored = repr(cur.fetchall())
    assert "192.0.2.77" not in stored
    assert row.live.client_hash("192.0.2.77") in stored  # a keyed hash, to tell clients apart
    # After two hours the hash is forgotten (set when the next report arrives).
    row.live.add_report(closed_report(w), "192.0.2.78", now=AT + 2 * HOUR)
    with row.spatial.database.reading() as ex:
        stored = repr(ex.execute("SELECT * FROM site_reports").fetchall())
    assert row.live.client_hash("192.0.2.77") not in stored


def test_the_intervals_kept_for_offline_use_honour_closed_now(row: Services) -> None:
    """What the couriers' page keeps for offline use says closed until the operator's closed_now expires."""
    row.live.post(sid("w100"), "closed_now", "op", AT - HOUR)  # default 2 h: closed until AT + 1 h
    sites = [s for s in (row.sites.get_site(sid("w100")), row.sites.get_site(sid("w250"))) if s]
    ahead = row.sites.upcoming_intervals(sites, AT, 24)
    assert ahead[sid("w250")] == [(AT, AT + 24 * HOUR)]
    assert ahead[sid("w100")] == [(AT + HOUR, AT + 24 * HOUR)]
