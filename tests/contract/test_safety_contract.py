"""Issue 12 on both stores: no single site's hours break a refresh or a query, a refresh never undoes a save made
while it runs, and a reload keeps what operators edited since the last load."""
from __future__ import annotations

import dataclasses
import datetime as dt
import threading
from typing import Any

import pytest

from geoservice.errors import StoreUnavailable
from geoservice.hours import TZ, now_local
from geoservice.layers import ServiceArea
from geoservice.model import Closure, NearestQuery, Site, SiteEdit, SiteFilter, site_id_for
from geoservice.services import Services
from tests.support.pause import pause_first_materialise

TIANANMEN = (116.3975, 39.9087)
# An expression that parses but cannot be evaluated on public holidays: data written before validation refused
# it (a holiday selector directly before a weekday range). It must never break anything for other sites.
UNEVALUABLE = "PH Mo-Fr 10:00-12:00"
GOLDEN_WEEK = (dt.datetime(2026, 9, 28, tzinfo=TZ), dt.datetime(2026, 10, 12, tzinfo=TZ))


def sid(source: str) -> str:
    return site_id_for("safe-" + source)


def make(store: Services, specs: list[tuple[str, int, str]], **fields: Any) -> list[Site]:
    area = ServiceArea(store.sites.districts())
    out = []
    for source, dx, hours in specs:
        lon, lat = TIANANMEN[0] + dx / 85_300.0, TIANANMEN[1]
        out.append(Site(id=sid(source), source_id="safe-" + source, kind="warm_station", name_zh=f"驿站{source}",
                        lon=lon, lat=lat, opening_hours=hours, amenities=["drinking_water"], phone="010-6512 3456",
                        district_adcode=area.lookup([lon], [lat])[0], **fields))
    return out


def open_ids(store: Services, at: dt.datetime) -> list[str]:
    return [h.site.id for h in store.sites.nearest(NearestQuery(TIANANMEN[0], TIANANMEN[1], at, limit=10))]


def interval_count(store: Services, site_id: str) -> int:
    """Rows of the materialised interval table for one site (what open-only answers read)."""
    if store.backend == "embedded":
        return int(store.spatial.connection().execute(  # type: ignore[attr-defined]
            "SELECT count(*) FROM site_open_intervals WHERE site_id = ?", (site_id,)).fetchone()[0])
    import psycopg

    with psycopg.connect(store.spatial.url) as conn:  # type: ignore[attr-defined]
        row = conn.execute("SELECT count(*) FROM site_open_intervals WHERE site_id = %s", (site_id,)).fetchone()
    return int(row[0]) if row else 0


# ---- item 2: hours the engine cannot evaluate ------------------------------------------------------------
def test_one_unevaluable_site_is_skipped_flagged_and_reported_the_rest_goes_on(store: Services) -> None:
    store.sites.upsert_sites(make(store, [("ok", 100, "24/7"), ("bad", 50, UNEVALUABLE), ("also", 300, "24/7")]))
    result = store.sites.refresh_intervals(GOLDEN_WEEK)
    assert set(result.problems) == {sid("bad")}
    assert interval_count(store, sid("ok")) > 0 and interval_count(store, sid("also")) > 0
    bad = store.sites.get_site(sid("bad"))
    assert bad is not None and bad.hours_problem
    assert store.sites.get_site(sid("ok")).hours_problem is None  # type: ignore[union-attr]
    national_day = dt.datetime(2026, 10, 1, 11, tzinfo=TZ)
    assert open_ids(store, national_day) == [sid("ok"), sid("also")]
    everything = store.sites.nearest(NearestQuery(TIANANMEN[0], TIANANMEN[1], national_day, limit=10, open_only=False))
    states = {h.site.id: h.state for h in everything}
    assert not states[sid("bad")].is_open and states[sid("bad")].problem
    assert states[sid("ok")].is_open and states[sid("ok")].problem is None
    # listings and the engine fallback outside the window answer too
    assert store.sites.list_sites(SiteFilter(open_at=national_day))[1] == 2
    outside = dt.datetime(2026, 5, 1, 11, tzinfo=TZ)  # Labour Day, outside the materialised window
    assert store.sites.list_sites(SiteFilter(open_at=outside))[1] == 2
    assert open_ids(store, outside) == [sid("ok"), sid("also")]


def test_fixing_the_hours_clears_the_flag(store: Services) -> None:
    store.sites.upsert_sites(make(store, [("bad", 50, UNEVALUABLE)]))
    store.sites.refresh_intervals(GOLDEN_WEEK)
    store.sites.update_site(sid("bad"), {"opening_hours": "Mo-Fr 10:00-12:00; PH off"}, actor="alice")
    fixed = store.sites.get_site(sid("bad"))
    assert fixed is not None and fixed.hours_problem is None
    assert store.sites.refresh_intervals(GOLDEN_WEEK).problems == {}


# ---- item 3: a refresh racing an operator's save -----------------------------------------------------------
@pytest.mark.parametrize("change, expect_open", [({"status": "temporarily_closed"}, False),
                                                 ({"opening_hours": "24/7"}, True)])
def test_a_save_made_while_the_refresh_runs_is_not_undone(store: Services, change: dict[str, str],
                                                          expect_open: bool) -> None:
    start = "24/7" if not expect_open else "Mo-Su 00:00-00:01"
    store.sites.upsert_sites(make(store, [("target", 100, start), ("other", 400, "24/7")]))
    store.sites.refresh_intervals()
    at = dt.datetime.combine(now_local().date() + dt.timedelta(days=1), dt.time(15), tzinfo=TZ)
    assert (sid("target") in open_ids(store, at)) is not expect_open
    evaluated, resume = pause_first_materialise(store)
    errors: list[BaseException] = []

    def refresh() -> None:
        try:
            store.sites.refresh_intervals()
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=refresh)
    thread.start()
    try:
        assert evaluated.wait(60)
        store.sites.update_site(sid("target"), change, actor="alice")  # committed while the refresh is paused
        assert (sid("target") in open_ids(store, at)) is expect_open
    finally:
        resume.set()
        thread.join(60)
    assert not errors
    assert (sid("target") in open_ids(store, at)) is expect_open, "the refresh undid the operator's save"
    assert (interval_count(store, sid("target")) > 0) is expect_open
    assert sid("other") in open_ids(store, at)


@pytest.mark.postgis
def test_two_saves_that_deadlock_are_told_to_try_again_and_the_other_is_kept(postgis_store: Services) -> None:
    """Two writers locking two sites in opposite orders: PostgreSQL rolls one back. Its caller hears that
    nothing was written and to try again (it used to hear that the database was not reachable)."""
    store = postgis_store
    store.sites.upsert_sites(make(store, [("a", 100, "24/7"), ("b", 200, "24/7")]))
    locked = {"a": threading.Event(), "b": threading.Event()}
    outcomes: list[str] = []

    def save(first: str, second: str) -> None:
        try:
            with store.spatial.writer() as w:
                w.lock_site(sid(first))
                locked[first].set()
                assert locked[second].wait(30)
                w.lock_site(sid(second))
            outcomes.append("committed")
        except StoreUnavailable as exc:
            outcomes.append(exc.detail)

    threads = [threading.Thread(target=save, args=pair) for pair in (("a", "b"), ("b", "a"))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(outcomes) == sorted(["committed", "another change to the same sites was being saved at the same "
                                                    "moment; nothing was written, try again"])
    assert store.sites.update_site(sid("a"), {"notes": "after"}, actor="alice").after.notes == "after"


# ---- item 4: reloading a file keeps operators' edits -------------------------------------------------------
def test_reload_keeps_every_field_an_operator_edited_and_reports_it(store: Services) -> None:
    original = make(store, [("a", 100, "Mo-Su 08:00-20:00"), ("b", 300, "Mo-Su 08:00-20:00")])
    store.sites.upsert_sites(original)
    store.sites.update_site(sid("a"), {"opening_hours": "24/7", "phone": "13812345678", "notes": "后门进入",
                                 "amenities": ["drinking_water", "heating"], "name_en": "Gate B station"},
                      actor="bank-clerk")
    result = store.sites.upsert_sites(make(store, [("a", 100, "Mo-Su 08:00-20:00"), ("b", 300, "Mo-Su 08:00-20:00")]))
    assert result.updated == [] and sorted(result.unchanged) == sorted([sid("a"), sid("b")])
    kept = {c.field: c for c in result.conflicts}
    assert set(kept) == {"opening_hours", "phone", "notes", "amenities", "name_en"}
    assert all(c.edited_by == "bank-clerk" and not c.overwritten for c in kept.values())
    assert kept["phone"].describe().startswith("phone: kept the operator's value (edited 20")
    after = store.sites.get_site(sid("a"))
    assert after is not None
    assert (after.opening_hours, after.phone, after.notes, after.name_en) == ("24/7", "13812345678", "后门进入",
                                                                               "Gate B station")
    at = dt.datetime.combine(now_local().date() + dt.timedelta(days=1), dt.time(23), tzinfo=TZ)
    assert sid("a") in open_ids(store, at)  # the operator's 24/7 is what couriers see


def test_reload_still_applies_the_files_other_changes(store: Services) -> None:
    store.sites.upsert_sites(make(store, [("a", 100, "Mo-Su 08:00-20:00")]))
    store.sites.update_site(sid("a"), {"phone": "13812345678"}, actor="bank-clerk")
    changed = [dataclasses.replace(s, address="东城区南锣鼓巷13号", opening_hours="Mo-Su 07:00-21:00")
               for s in make(store, [("a", 100, "Mo-Su 08:00-20:00")])]
    result = store.sites.upsert_sites(changed)
    assert result.updated == [sid("a")] and [c.field for c in result.conflicts] == ["phone"]
    after = store.sites.get_site(sid("a"))
    assert after is not None
    assert (after.address, after.opening_hours, after.phone) == ("东城区南锣鼓巷13号", "Mo-Su 07:00-21:00",
                                                                "13812345678")


def test_overwriting_operators_edits_needs_the_flag_and_is_audited(store: Services) -> None:
    store.sites.upsert_sites(make(store, [("a", 100, "Mo-Su 08:00-20:00")]))
    store.sites.update_site(sid("a"), {"opening_hours": "24/7"}, actor="bank-clerk")
    result = store.sites.upsert_sites(make(store, [("a", 100, "Mo-Su 08:00-20:00")]), overwrite_edits=True)
    assert result.updated == [sid("a")] and [c.overwritten for c in result.conflicts] == [True]
    after = store.sites.get_site(sid("a"))
    assert after is not None and after.opening_hours == "Mo-Su 08:00-20:00" and after.edited_fields == {}
    history, _ = store.audit.site_history(sid("a"))
    assert history[0].action == "load-overwrite"
    assert history[0].changes["opening_hours"] == {"before": "24/7", "after": "Mo-Su 08:00-20:00"}
    # the field belongs to the file again: its next change applies without a flag
    again = store.sites.upsert_sites(make(store, [("a", 100, "Mo-Su 09:00-20:00")]))
    assert again.updated == [sid("a")] and again.conflicts == []


def test_a_dry_run_reports_the_same_and_writes_nothing(store: Services) -> None:
    store.sites.upsert_sites(make(store, [("a", 100, "Mo-Su 08:00-20:00")]))
    store.sites.update_site(sid("a"), {"phone": "13812345678"}, actor="bank-clerk")
    file = make(store, [("a", 100, "Mo-Su 07:00-20:00"), ("new", 200, "24/7")])
    dry = store.sites.upsert_sites(file, dry_run=True)
    assert dry.inserted == [sid("new")] and dry.updated == [sid("a")] and [c.field for c in dry.conflicts] == [
        "phone"]
    assert store.sites.get_site(sid("new")) is None
    assert store.sites.get_site(sid("a")).opening_hours == "Mo-Su 08:00-20:00"  # type: ignore[union-attr]


# ---- item 7: a retried bulk adds no closure twice ----------------------------------------------------------
def test_adding_the_same_closure_again_is_a_no_op(store: Services) -> None:
    store.sites.upsert_sites(make(store, [("a", 100, "24/7")]))
    day = now_local().date() + dt.timedelta(days=3)
    edit = SiteEdit(sid("a"), add_closures=[Closure(sid("a"), day, day, "维修")])
    first = store.sites.apply_edits([edit], actor="alice", action="bulk")[0]
    second = store.sites.apply_edits([dataclasses.replace(edit)], actor="alice", action="bulk")[0]
    assert len(first.added) == 1 and second.added == [] and second.changes == {}
    assert len(store.sites.closures_for([sid("a")])[sid("a")]) == 1
    assert second.after.version == first.after.version
