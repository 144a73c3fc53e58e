"""PostGIS keeps open intervals by Beijing day (migration 014): each interval in the partition of every day it
overlaps, and an "open at t" query reads t's day only, on a plan that walks the KNN index whatever the
statistics say (migration 015). The answers themselves are the shared contract's (test_store_contract.py,
test_nearest_oracle.py); this checks what only the partitioned table and its plan can get wrong."""
from __future__ import annotations

import datetime as dt
from typing import Any

import psycopg
import pytest

from geoservice.hours import TZ
from geoservice.model import NearestQuery
from geoservice.services import Services
from geoservice.store.postgis.store import nearest_open_params, nearest_open_statement
from tests.support import TIANANMEN
from tests.support.sites import make_sites, sid

pytestmark = pytest.mark.postgis

SLOTS = 32
WINDOW = (dt.datetime(2026, 12, 1, tzinfo=TZ), dt.datetime(2026, 12, 15, tzinfo=TZ))
SPECS = [
    ("always", 100, 0, "24/7", "warm_station", ["toilet"]),
    ("night", 200, 0, "Mo-Su 22:00-02:00", "warm_station", ["toilet"]),  # every night across midnight
    ("day", 300, 0, "Mo-Fr 09:00-17:00", "warm_station", ["toilet"]),
]


def _copies_expected(site_id: str, lower: dt.datetime, upper: dt.datetime) -> set[tuple[Any, ...]]:
    """The oracle: one copy of [lower, upper) per Beijing calendar day it overlaps, from its first to its last
    instant, in that day's slot (day number mod 32), clipped to that day and the next (migration 016)."""
    first, last = lower.astimezone(TZ).date(), (upper - dt.timedelta(microseconds=1)).astimezone(TZ).date()
    epoch = dt.date(1970, 1, 1)
    out = set()
    for i in range((last - first).days + 1):
        day = first + dt.timedelta(days=i)
        start = dt.datetime.combine(day, dt.time(), tzinfo=TZ)
        out.add((site_id, max(lower, start), min(upper, start + dt.timedelta(days=2)), (day - epoch).days % SLOTS))
    return out


def _rows(store: Services, sql: str, params: dict[str, Any] | None = None) -> list[Any]:
    with store.spatial.connection() as conn:  # type: ignore[attr-defined]
        return conn.execute(sql, params or {}).fetchall()


def _rows_changed(store: Services, sql: str) -> None:
    with store.spatial.connection() as conn:  # type: ignore[attr-defined]
        conn.execute(sql)


def _executed_plans(store: Services, sql: str, params: dict[str, Any], runs: int = 1,
                    costs: tuple[str, ...] = ()) -> list[str]:
    """The plans PostgreSQL really ran for ``sql`` on a new session with the planner ``costs`` set, statements
    inside functions included (auto_explain, its log sent to this client as notices), one text per statement
    of the last of ``runs``."""
    with store.spatial.connection() as pooled:  # type: ignore[attr-defined]
        dsn = pooled.info.dsn
    plans: list[str] = []
    with psycopg.connect(dsn) as conn:
        for setting in costs:
            conn.execute("SET " + setting)
        for _ in range(runs - 1):
            conn.execute(sql, params).fetchall()
        conn.execute("LOAD 'auto_explain'")
        for setting in ("auto_explain.log_min_duration = 0", "auto_explain.log_nested_statements = on",
                        "auto_explain.log_level = notice", "client_min_messages = notice"):
            conn.execute("SET " + setting)
        conn.add_notice_handler(lambda diag: plans.append(diag.message_primary or ""))
        conn.execute(sql, params).fetchall()
    return plans


def _knn_plan(store: Services, q: NearestQuery, runs: int = 1, costs: tuple[str, ...] = ()) -> str:
    """The executed plan of the statement inside the nearest_open_* function that reads the open intervals."""
    plans = _executed_plans(store, nearest_open_statement(q), nearest_open_params(q, 10), runs, costs)
    found = [p for p in plans if "site_open_intervals" in p]
    assert len(found) == 1, plans
    return found[0]


def test_every_interval_is_in_the_partition_of_each_day_it_overlaps(postgis_store: Services) -> None:
    sites = make_sites(postgis_store, SPECS)
    postgis_store.sites.upsert_sites(sites)
    postgis_store.sites.refresh_intervals(WINDOW)
    intervals = postgis_store.sites.materialise(sites, {}, WINDOW).rows
    expected = set().union(*(_copies_expected(*row) for row in intervals))
    rows = _rows(postgis_store, "SELECT site_id, lower(during), upper(during), day_slot, tableoid::regclass::text "
                                "FROM site_open_intervals")
    assert {r[:4] for r in rows} == expected and len(rows) == len(expected)
    assert all(table == f"site_open_intervals_{slot:02d}" for *_, slot, table in rows)  # where its slot says
    days = {name: {r[3] for r in rows if r[0] == sid(name)} for name in ("always", "night", "day")}
    assert len(days["always"]) >= 14 and len(days["day"]) == 10  # 24/7 each day; weekdays of two weeks
    night = {(r[1].day, r[1].hour, r[2].day, r[2].hour) for r in rows if r[0] == sid("night")}
    assert {(8, 22, 9, 2), (9, 0, 9, 2)} <= night  # 22:00-02:00: whole in its evening's copy, 00:00-02:00 next
    # a 24/7 site's copies are clipped to two days, not the whole window
    assert all(r[2] - r[1] <= dt.timedelta(days=2) for r in rows if r[0] == sid("always"))


STORED = ("SELECT s.source_id, lower(i.during), upper(i.during), i.day_slot, i.xmin::text, i.ctid::text "
          "FROM site_open_intervals i JOIN sites s ON s.id = i.site_id")


def _stored(store: Services) -> dict[tuple[Any, ...], tuple[str, str]]:
    """Each stored interval row (site, lower, upper, slot) with the transaction that wrote it and its place."""
    return {tuple(r[:4]): (r[4], r[5]) for r in _rows(store, STORED)}


def test_a_refresh_writes_only_the_intervals_that_changed(postgis_store: Services) -> None:
    """Refreshing an unchanged window rewrites no row (deleting and re-inserting every interval grew the
    partitions and their indexes by half at each nightly refresh); a refresh after an edit and a day later
    writes the difference — a day's copy changes only with its own days' hours (migration 016) — and what is
    stored is exactly what a refresh into an empty table stores."""
    svc = postgis_store.sites
    svc.upsert_sites(make_sites(postgis_store, SPECS))
    svc.refresh_intervals(WINDOW)
    first = _stored(postgis_store)
    svc.refresh_intervals(WINDOW)
    svc.refresh_intervals(WINDOW)
    assert _stored(postgis_store) == first  # same rows, same writers, same places

    svc.update_site(sid("day"), {"opening_hours": "Mo-Fr 10:00-18:00"}, actor="system")
    later = (WINDOW[0] + dt.timedelta(days=1), WINDOW[1] + dt.timedelta(days=1))
    svc.refresh_intervals(later)
    after = _stored(postgis_store)
    kept = {k for k in after if k in first and after[k] == first[k]}
    assert kept and all(k[0] != "day" for k in kept)  # the edited site's intervals are all new
    # The 24/7 site has one interval over each window, but its copies of the 13 days both windows hold are
    # kept, except the old last day's (it was clipped at that window's end): 12 of them.
    assert len([k for k in kept if k[0] == "always"]) == 12
    assert {k[0] for k in after} == {"always", "night", "day"}
    assert min(k[1] for k in after) >= later[0] - dt.timedelta(hours=4)  # days before the window are gone

    _rows_changed(postgis_store, "DELETE FROM site_open_intervals")
    svc.refresh_intervals(later)
    assert set(_stored(postgis_store)) == set(after)


def test_a_walk_longer_than_a_day_is_still_checked_on_arrival(postgis_store: Services) -> None:
    """A day's copy of an interval holds that day and the next only, so a walk from 23:00 that arrives after
    midnight of the day after next cannot be checked on it: such a query goes to the hours engine, and a site
    open all the time is still found open on arrival (the API allows 3 hours; Python callers may ask more)."""
    walk = NearestQuery(lon=0, lat=0, at=WINDOW[0]).walk
    metres = 26 * 3600 * walk.speed_m_per_s / walk.detour_factor  # 26 hours on foot, due north
    postgis_store.sites.upsert_sites(make_sites(postgis_store, [("far", 0, metres, "24/7", "warm_station", [])]))
    postgis_store.sites.refresh_intervals(WINDOW)
    at = dt.datetime(2026, 12, 8, 23, 0, tzinfo=TZ)
    q = NearestQuery(lon=TIANANMEN[0], lat=TIANANMEN[1], at=at, kinds=("warm_station",), arrive_within_s=27 * 3600)
    assert [h.site.source_id for h in postgis_store.sites.nearest(q)] == ["far"]


@pytest.mark.parametrize("at", ["2026-12-08T01:00", "2026-12-08T23:30", "2026-12-09T10:00"])
def test_an_open_at_query_reads_the_partition_of_its_day_only(postgis_store: Services, at: str) -> None:
    postgis_store.sites.upsert_sites(make_sites(postgis_store, SPECS))
    postgis_store.sites.refresh_intervals(WINDOW)
    when = dt.datetime.fromisoformat(at).replace(tzinfo=TZ)
    q = NearestQuery(lon=TIANANMEN[0], lat=TIANANMEN[1], at=when, kinds=("warm_station",), limit=5)
    plan = _knn_plan(postgis_store, q)
    day_slot = (when.date() - dt.date(1970, 1, 1)).days % SLOTS
    scanned = {int(p.split("site_open_intervals_")[1][:2]) for p in plan.split() if "site_open_intervals_" in p}
    assert scanned == {day_slot}, plan
    open_now = {h.site.source_id for h in postgis_store.sites.nearest(q)}
    expected = {"always"} | ({"night"} if when.hour in (23, 0, 1) else set()) | (
        {"day"} if 9 <= when.hour < 17 and when.weekday() < 5 else set())
    assert open_now == expected


# Costs that make any index scan look ruinous: left to itself, the planner reads the table whole and sorts it.
INDEX_SCANS_RUINOUS = ("random_page_cost = 1000000", "cpu_index_tuple_cost = 1000")


@pytest.mark.parametrize("kinds", [("warm_station",), (), ("mother_baby_room", "warm_station")])
@pytest.mark.parametrize("costs", [(), INDEX_SCANS_RUINOUS], ids=["default costs", "index scans ruinous"])
def test_the_nearest_plan_walks_the_knn_index_whatever_the_estimates(postgis_store: Services,
                                                                     kinds: tuple[str, ...],
                                                                     costs: tuple[str, ...]) -> None:
    # The plan of migration 015 walks one day's KNN index in distance order whatever the planner estimates
    # (standing in for statistics that mislead it): before and after ANALYZE, on a session's first run and once
    # the plan is cached (psycopg prepares the outer statement from the fifth), with a radius or not.
    postgis_store.sites.upsert_sites(make_sites(postgis_store, SPECS))
    postgis_store.sites.refresh_intervals(WINDOW)
    at = dt.datetime(2026, 12, 9, 10, tzinfo=TZ)
    for analyzed in (False, True):
        if analyzed:
            with postgis_store.spatial.connection() as conn:  # type: ignore[attr-defined]
                conn.execute("ANALYZE site_open_intervals")
        for radius in (None, 2000.0):
            q = NearestQuery(lon=TIANANMEN[0], lat=TIANANMEN[1], at=at, kinds=kinds, limit=5, max_distance_m=radius)
            for runs in (1, 7):
                plan = _knn_plan(postgis_store, q, runs, costs)
                assert "Order By: (geog <-> " in plan and "Index Scan using site_open_intervals_" in plan, plan
                assert "Seq Scan on site_open_intervals" not in plan and "Bitmap" not in plan, plan
                assert plan.count("Sort Key") == 1, plan  # the exact re-ranking of the candidates only
                assert [h.site.source_id for h in postgis_store.sites.nearest(q)][:1] == ["always"]
