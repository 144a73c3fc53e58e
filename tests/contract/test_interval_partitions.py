"""PostGIS keeps open intervals by Beijing day (migration 014): each interval in the partition of every day it
overlaps, and an "open at t" query reads t's day only. The answers themselves are the shared contract's
(test_store_contract.py, test_nearest_oracle.py); this checks what only the partitioned table can get wrong."""
from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from geoservice.hours import TZ
from geoservice.model import NearestQuery
from geoservice.services import Services
from geoservice.store.postgis.store import nearest_open_params, nearest_open_statement
from tests.support import TIANANMEN
from tests.support.sites import make_sites

pytestmark = pytest.mark.postgis

SLOTS = 32
WINDOW = (dt.datetime(2026, 12, 1, tzinfo=TZ), dt.datetime(2026, 12, 15, tzinfo=TZ))
SPECS = [
    ("always", 100, 0, "24/7", "warm_station", ["toilet"]),
    ("night", 200, 0, "Mo-Su 22:00-02:00", "warm_station", ["toilet"]),  # every night across midnight
    ("day", 300, 0, "Mo-Fr 09:00-17:00", "warm_station", ["toilet"]),
]


def _slots_expected(lower: dt.datetime, upper: dt.datetime) -> set[int]:
    """The oracle: Beijing calendar days from the first to the last instant of [lower, upper), mod 32."""
    first, last = lower.astimezone(TZ).date(), (upper - dt.timedelta(microseconds=1)).astimezone(TZ).date()
    epoch = dt.date(1970, 1, 1)
    return {((first - epoch).days + i) % SLOTS for i in range((last - first).days + 1)}


def _rows(store: Services, sql: str, params: dict[str, Any] | None = None) -> list[Any]:
    with store.spatial.connection() as conn:  # type: ignore[attr-defined]
        return conn.execute(sql, params or {}).fetchall()


def test_every_interval_is_in_the_partition_of_each_day_it_overlaps(postgis_store: Services) -> None:
    postgis_store.sites.upsert_sites(make_sites(postgis_store, SPECS))
    postgis_store.sites.refresh_intervals(WINDOW)
    rows = _rows(postgis_store, "SELECT s.source_id, lower(i.during), upper(i.during), "
                                "array_agg(i.day_slot ORDER BY i.day_slot), "
                                "array_agg(i.tableoid::regclass::text ORDER BY i.day_slot) "
                                "FROM site_open_intervals i JOIN sites s ON s.id = i.site_id "
                                "GROUP BY 1, 2, 3 ORDER BY 1, 2")
    assert {r[0] for r in rows} == {"always", "night", "day"}
    spans = dict.fromkeys(("always", "night", "day"), 0)
    for name, lower, upper, slots, tables in rows:
        assert set(slots) == _slots_expected(lower, upper) and len(slots) == len(set(slots)), (name, lower)
        assert tables == [f"site_open_intervals_{s:02d}" for s in slots]  # stored where its slot says
        spans[name] = max(spans[name], len(slots))
    assert spans["night"] == 2 and spans["day"] == 1 and spans["always"] >= 14  # 22:00-02:00 lies in two days


@pytest.mark.parametrize("at", ["2026-12-08T01:00", "2026-12-08T23:30", "2026-12-09T10:00"])
def test_an_open_at_query_reads_the_partition_of_its_day_only(postgis_store: Services, at: str) -> None:
    postgis_store.sites.upsert_sites(make_sites(postgis_store, SPECS))
    postgis_store.sites.refresh_intervals(WINDOW)
    when = dt.datetime.fromisoformat(at).replace(tzinfo=TZ)
    q = NearestQuery(lon=TIANANMEN[0], lat=TIANANMEN[1], at=when, kinds=("warm_station",), limit=5)
    plan = "\n".join(r[0] for r in _rows(postgis_store, "EXPLAIN " + nearest_open_statement(q),
                                         nearest_open_params(q, 10)))
    day_slot = (when.date() - dt.date(1970, 1, 1)).days % SLOTS
    scanned = {int(p.split("site_open_intervals_")[1][:2]) for p in plan.split() if "site_open_intervals_" in p}
    assert scanned == {day_slot}, plan
    open_now = {h.site.source_id for h in postgis_store.sites.nearest(q)}
    expected = {"always"} | ({"night"} if when.hour in (23, 0, 1) else set()) | (
        {"day"} if 9 <= when.hour < 17 and when.weekday() < 5 else set())
    assert open_now == expected
