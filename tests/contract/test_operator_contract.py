"""One contract for the operators' store methods, on both stores: accounts, tokens, edits, audit, reports."""
from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from geoservice.auth import new_token, token_hash
from geoservice.errors import Conflict, NotFound, Unprocessable, VersionConflict
from geoservice.hours import TZ, now_local
from geoservice.layers import ServiceArea
from geoservice.model import Closure, NearestQuery, Report, Site, SiteEdit, SiteFilter, site_id_for
from geoservice.services import Services

TIANANMEN = (116.3975, 39.9087)
SPECS = [("a", 100, 0, "24/7"), ("b", 300, 0, "Mo-Su 06:00-22:00"), ("c", 0, 500, "Mo-Su 08:00-20:00")]


def sid(source: str) -> str:
    return site_id_for("k-" + source)


def seed(store: Services) -> list[Site]:
    area = ServiceArea(store.sites.districts())
    sites = []
    for source, dx, dy, hours in SPECS:
        lon, lat = TIANANMEN[0] + dx / 85_300.0, TIANANMEN[1] + dy / 111_000.0
        sites.append(Site(id=sid(source), source_id="k-" + source, kind="warm_station", name_zh=f"驿站{source}",
                          lon=lon, lat=lat, opening_hours=hours, amenities=["drinking_water"],
                          district_adcode=area.lookup([lon], [lat])[0]))
    store.sites.upsert_sites(sites)
    return sites


def tomorrow(hour: int) -> dt.datetime:
    return dt.datetime.combine(now_local().date() + dt.timedelta(days=1), dt.time(hour), tzinfo=TZ)


def nearest_ids(store: Services, at: dt.datetime) -> list[str]:
    return [h.site.id for h in store.sites.nearest(NearestQuery(TIANANMEN[0], TIANANMEN[1], at, limit=10))]


def rows_of_every_table(store: Services) -> str:
    """Every row of every table of the store, as one text (to look for secrets)."""
    out: list[str] = []
    if store.backend == "embedded":
        import sqlite3

        with sqlite3.connect(store.spatial.path) as conn:  # type: ignore[attr-defined]
            tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
            for table in tables:
                out.extend(repr(r) for r in conn.execute(f'SELECT * FROM "{table}"'))
        conn.close()
    else:
        import psycopg
        from psycopg import sql

        with psycopg.connect(store.spatial.url) as conn:  # type: ignore[attr-defined]
            tables = [r[0] for r in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'spatial_ref_sys'")]
            for table in tables:
                out.extend(repr(r) for r in conn.execute(sql.SQL("SELECT * FROM {}").format(sql.Identifier(table))))
    return "\n".join(out)


def raw_execute(store: Services, statement: str) -> None:
    """Run one statement outside the store's code paths (as an attacker or a careless script would)."""
    if store.backend == "embedded":
        import sqlite3

        conn = sqlite3.connect(store.spatial.path)  # type: ignore[attr-defined]
        try:
            conn.execute(statement)
            conn.commit()
        finally:
            conn.close()
    else:
        import psycopg

        with psycopg.connect(store.spatial.url) as conn:  # type: ignore[attr-defined]
            conn.execute(statement)  # type: ignore[arg-type]


def test_accounts_and_assignments(store: Services) -> None:
    seed(store)
    alice = store.accounts.create("alice")
    assert (alice.name, alice.role, alice.is_admin) == ("alice", "operator", False)
    admin = store.accounts.create("union-staff", "admin")
    assert admin.is_admin
    with pytest.raises(Conflict):
        store.accounts.create("alice")
    # Names are shown to people and may be in any script (issue 12, item 9); values are always bound, so a name
    # that looks like SQL is just a name.
    bank = store.accounts.create("  某银行东城支行 ")
    assert bank.name == "某银行东城支行" and store.accounts.get("某银行东城支行") == bank
    bobby = store.accounts.create("robert'); DROP TABLE sites; --")
    assert store.accounts.get(bobby.name) == bobby and store.sites.get_site(sid("a")) is not None
    for bad in ("", " ", "x" * 65, "tab\there", "new\nline", "bidi\u202espoof", "zero\u200bwidth"):
        with pytest.raises(Unprocessable):
            store.accounts.create(bad)
    with pytest.raises(NotFound):
        store.accounts.assign("alice", [sid("a"), "no-such-site"])
    assert store.accounts.owned_site_ids(alice, [sid("a")]) == set()  # all or nothing
    assert store.accounts.assign("alice", [sid("a"), sid("b")]) == 2
    assert store.accounts.assign("alice", [sid("b")]) == 0
    assert store.accounts.owned_site_ids(alice, [sid("a"), sid("c"), "nope"]) == {sid("a")}
    assert store.accounts.owned_site_ids(admin, [sid("a"), sid("c"), "nope"]) == {sid("a"), sid("c")}
    page, total = store.sites.operator_sites(alice, limit=1)
    assert total == 2 and [s.id for s in page] == sorted([sid("a"), sid("b")])[:1]
    rest, _ = store.sites.operator_sites(alice, limit=5, offset=1)
    assert len(rest) == 1
    assert store.sites.operator_sites(admin, limit=10)[1] == 3
    assert store.sites.operator_sites(store.accounts.create("nobody"))[1] == 0
    assert {(o.name, o.site_count) for o in store.accounts.all()} == {
        ("alice", 2), ("union-staff", 0), ("nobody", 0), ("某银行东城支行", 0), ("robert'); DROP TABLE sites; --", 0)}
    assert store.accounts.unassign("alice", [sid("b"), sid("c")]) == 1
    assert store.accounts.owned_site_ids(store.accounts.get("alice"), [sid("a"), sid("b")]) == {sid("a")}  # type: ignore[arg-type]
    assert store.accounts.get("ghost") is None


def test_tokens_are_found_by_hash_revoked_at_once_and_never_stored(store: Services) -> None:
    seed(store)
    store.accounts.create("alice")
    first, second = new_token(), new_token()
    assert len(first) >= 43 and first != second
    t1 = store.accounts.add_token("alice", token_hash(first), "desk")
    store.accounts.add_token("alice", token_hash(second))
    assert store.accounts.for_token(token_hash(first)).name == "alice"  # type: ignore[union-attr]
    assert store.accounts.for_token(token_hash("gso_guess")) is None
    assert store.accounts.get("alice").active_tokens == 2  # type: ignore[union-attr]
    dump = rows_of_every_table(store)
    assert first not in dump and second not in dump
    assert first[4:] not in dump and first[4:20] not in dump  # not even a recognisable part of it
    assert token_hash(first) in dump  # what is kept is the hash
    assert store.accounts.revoke("alice", [t1.id]) == 1
    assert store.accounts.for_token(token_hash(first)) is None  # at once
    assert store.accounts.for_token(token_hash(second)) is not None
    assert store.accounts.revoke("alice", [t1.id]) == 0
    assert store.accounts.revoke("alice") == 1
    assert store.accounts.for_token(token_hash(second)) is None
    assert [t.revoked_at is not None for t in store.accounts.tokens("alice")] == [True, True]
    with pytest.raises(NotFound):
        store.accounts.add_token("ghost", token_hash(new_token()))


def test_edit_bumps_version_is_audited_and_reaches_nearest_at_once(store: Services) -> None:
    seed(store)
    ten = tomorrow(10)
    assert nearest_ids(store, ten)[0] == sid("a")
    result = store.sites.update_site(sid("a"), {"opening_hours": "Mo-Su 18:00-22:00", "notes": "evenings only"},
                               actor="alice", expected_version=1)
    assert result.after.version == 2 and result.before.version == 1
    assert set(result.changes) == {"opening_hours", "notes"}
    assert result.changes["opening_hours"] == {"before": "24/7", "after": "Mo-Su 18:00-22:00"}
    assert sid("a") not in nearest_ids(store, ten)  # the write has returned: the public query sees it
    assert sid("a") in nearest_ids(store, tomorrow(19))
    site = store.sites.get_site(sid("a"))
    assert site is not None and site.version == 2 and site.notes == "evenings only"
    [entry], total = store.audit.site_history(sid("a"))
    assert total == 1 and entry.actor == "alice" and entry.action == "update" and entry.version == 2
    assert entry.changes["notes"] == {"before": None, "after": "evenings only"}
    with pytest.raises(VersionConflict) as stale:
        store.sites.update_site(sid("a"), {"notes": "lost?"}, actor="bob", expected_version=1)
    assert stale.value.current == 2 and stale.value.status == 412
    assert store.sites.get_site(sid("a")).notes == "evenings only"  # type: ignore[union-attr]
    same = store.sites.update_site(sid("a"), {"notes": "evenings only"}, actor="alice", expected_version=2)
    assert same.changes == {} and same.after.version == 2  # a no-op writes nothing
    assert store.audit.site_history(sid("a"))[1] == 1
    amenities = store.sites.update_site(sid("a"), {"amenities": ["wifi", "toilet", "wifi"]}, actor="alice")
    assert store.sites.get_site(sid("a")).amenities == ["toilet", "wifi"]  # type: ignore[union-attr]
    assert amenities.after.version == 3
    with pytest.raises(NotFound):
        store.sites.update_site("no-such-site", {"notes": "x"}, actor="alice")


def test_temporarily_closed_is_closed_for_every_query_until_reopened(store: Services) -> None:
    seed(store)
    ten = tomorrow(10)
    store.sites.update_site(sid("a"), {"status": "temporarily_closed"}, actor="alice", expected_version=1)
    assert sid("a") not in nearest_ids(store, ten)
    # the engine fallback (outside the materialised window) and listings agree
    assert sid("a") not in nearest_ids(store, dt.datetime(2027, 3, 3, 10, tzinfo=TZ))
    assert sid("a") not in {s.id for s in store.sites.list_sites(SiteFilter(open_at=ten))[0]}
    assert sid("a") not in {s.id for s in store.sites.list_sites(SiteFilter(open_at=dt.datetime(2027, 3, 3, 10,
                                                                                         tzinfo=TZ)))[0]}
    [status_closure] = store.sites.closures_for([sid("a")])[sid("a")]
    assert status_closure.id is None and status_closure.end.year == 2100
    assert store.sites.get_site(sid("a")).status == "temporarily_closed"  # type: ignore[union-attr]
    all_hits = store.sites.nearest(NearestQuery(TIANANMEN[0], TIANANMEN[1], ten, limit=10, open_only=False))
    state = {h.site.id: h.state for h in all_hits}[sid("a")]
    assert not state.is_open and state.next_open is None
    store.sites.update_site(sid("a"), {"status": "open"}, actor="alice", expected_version=2)
    assert nearest_ids(store, ten)[0] == sid("a")
    assert store.sites.closures_for([sid("a")]) == {}


def test_closures_added_and_removed_take_effect_at_once(store: Services) -> None:
    seed(store)
    day = now_local().date() + dt.timedelta(days=2)
    at = dt.datetime.combine(day, dt.time(12), tzinfo=TZ)
    added = store.sites.add_closure(Closure(sid("b"), day, day + dt.timedelta(days=1), "repairs"), actor="alice",
                                   expected_version=1)
    closure = added.added[0]
    assert closure.id is not None and added.after.version == 2
    assert sid("b") not in nearest_ids(store, at)
    assert sid("b") in nearest_ids(store, at + dt.timedelta(days=2))
    with pytest.raises(NotFound):
        store.sites.delete_closure(sid("b"), closure.id + 1000, actor="alice")
    with pytest.raises(VersionConflict):
        store.sites.delete_closure(sid("b"), closure.id, actor="alice", expected_version=1)
    removed = store.sites.delete_closure(sid("b"), closure.id, actor="alice", expected_version=2)
    assert removed.after.version == 3 and removed.closures == []
    assert sid("b") in nearest_ids(store, at)
    verified = store.sites.verify(sid("b"), actor="alice", expected_version=3)
    assert verified.after.verified_at is not None and store.sites.get_site(sid("b")).verified_at is not None  # type: ignore[union-attr]
    actions = [c.action for c in store.audit.site_history(sid("b"))[0]]
    assert actions == ["verify", "delete_closure", "add_closure"]
    closures_change = store.audit.site_history(sid("b"))[0][2].changes["closures"]
    assert closures_change["before"] == [] and closures_change["after"][0]["reason"] == "repairs"
    # a closure added by the service itself is audited as the system; an unknown site is NotFound
    store.sites.add_closure(Closure(sid("c"), day, day, "inventory"), actor="system")
    assert store.audit.site_history(sid("c"))[0][0].actor == "system"
    with pytest.raises(NotFound):
        store.sites.add_closure(Closure("no-such-site", day, day), actor="system")


def test_edits_are_all_or_nothing_and_a_dry_run_writes_nothing(store: Services) -> None:
    seed(store)
    store.sites.update_site(sid("c"), {"notes": "moved on"}, actor="bob")  # c is now at version 2
    edits = [SiteEdit(sid("a"), fields={"opening_hours": "Mo-Fr 09:00-17:00"}, expected_version=1),
             SiteEdit(sid("c"), fields={"notes": "stale"}, expected_version=1)]
    with pytest.raises(VersionConflict):
        store.sites.apply_edits(edits, actor="alice", action="bulk")
    assert store.sites.get_site(sid("a")).opening_hours == "24/7"  # type: ignore[union-attr]
    assert store.audit.site_history(sid("a"))[1] == 0
    with pytest.raises(NotFound):
        store.sites.apply_edits([SiteEdit(sid("a"), fields={"notes": "x"}), SiteEdit("ghost", fields={"notes": "y"})],
                          actor="alice")
    assert store.sites.get_site(sid("a")).notes is None  # type: ignore[union-attr]
    day = now_local().date() + dt.timedelta(days=3)
    dry = store.sites.apply_edits([SiteEdit(sid("a"), fields={"opening_hours": "Mo-Fr 09:00-17:00"},
                                      add_closures=[Closure(sid("a"), day, day, "x")])], actor="alice", dry_run=True)
    assert dry[0].changes["opening_hours"] == {"before": "24/7", "after": "Mo-Fr 09:00-17:00"}
    assert len(dry[0].changes["closures"]["after"]) == 1 and dry[0].change is None
    assert store.sites.get_site(sid("a")).version == 1 and store.sites.closures_for([sid("a")]) == {}  # type: ignore[union-attr]
    assert store.audit.site_history(sid("a"))[1] == 0
    done = store.sites.apply_edits([SiteEdit(sid("a"), fields={"opening_hours": "Mo-Fr 09:00-17:00"}),
                              SiteEdit(sid("b"), add_closures=[Closure(sid("b"), day, day, "x")])], actor="alice",
                             action="bulk")
    assert [r.after.version for r in done] == [2, 2]
    assert [c.action for c in store.audit.recent()[0]][:2] == ["bulk", "bulk"]


def test_audit_trail_is_append_only(store: Services) -> None:
    seed(store)
    store.sites.update_site(sid("a"), {"notes": "x"}, actor="alice")
    for statement in ("UPDATE site_changes SET actor = 'mallory'", "DELETE FROM site_changes"):
        with pytest.raises(Exception, match="append-only"):
            raw_execute(store, statement)
    [entry] = store.audit.site_history(sid("a"))[0]
    assert entry.actor == "alice"


def test_reports_are_scoped_counted_and_resolved(store: Services) -> None:
    seed(store)
    alice, bob = store.accounts.create("alice"), store.accounts.create("bob")
    admin = store.accounts.create("staff", "admin")
    store.accounts.assign("alice", [sid("a")])
    store.accounts.assign("bob", [sid("b")])
    alice, bob = store.accounts.get("alice"), store.accounts.get("bob")
    now = now_local()
    r1 = store.reports.add(Report(sid("a"), "closed_on_arrival", now, lang="zh"))
    r2 = store.reports.add(Report(sid("a"), "amenity_missing", now, amenity="toilet", note="锁着"))
    r3 = store.reports.add(Report(sid("b"), "closed_on_arrival", now))
    assert r1.id is not None and r2.note == "锁着" and r2.amenity == "toilet" and r1.received_at is not None
    assert store.reports.unresolved_counts([sid("a"), sid("b"), sid("c")]) == {sid("a"): 2, sid("b"): 1}
    mine, total = store.reports.page(alice)  # type: ignore[arg-type]
    assert total == 2 and [r.id for r in mine] == [r2.id, r1.id]  # newest first, only alice's sites
    assert [r.id for r in store.reports.page(bob)[0]] == [r3.id]  # type: ignore[arg-type]
    assert store.reports.page(admin)[1] == 3
    done = store.reports.resolve(r1.id, "alice", "opened late today")  # type: ignore[arg-type]
    assert done.resolved_by == "alice" and done.resolved_at is not None and done.resolution_note == "opened late today"
    with pytest.raises(Conflict):
        store.reports.resolve(r1.id, "alice")  # type: ignore[arg-type]
    with pytest.raises(NotFound):
        store.reports.resolve(99999, "alice")
    assert store.reports.unresolved_counts([sid("a")]) == {sid("a"): 1}
    assert store.reports.page(alice)[1] == 1  # type: ignore[arg-type]
    assert store.reports.page(alice, include_resolved=True)[1] == 2  # type: ignore[arg-type]
    assert store.reports.get(r2.id).type == "amenity_missing"  # type: ignore[arg-type, union-attr]


def test_a_reload_keeps_the_operators_status_and_is_audited(store: Services) -> None:
    sites = seed(store)
    store.sites.update_site(sid("a"), {"status": "temporarily_closed"}, actor="alice")
    changed = [dataclasses.replace(s, opening_hours="Mo-Su 07:00-23:00") if s.id == sid("a") else s for s in sites]
    result = store.sites.upsert_sites(changed)
    assert result.updated == [sid("a")]
    site = store.sites.get_site(sid("a"))
    assert site is not None and site.status == "temporarily_closed" and site.version == 3
    assert sid("a") not in nearest_ids(store, tomorrow(10))
    entry = store.audit.site_history(sid("a"))[0][0]
    assert (entry.actor, entry.action, entry.version) == ("load", "load", 3)
    assert entry.changes == {"opening_hours": {"before": "24/7", "after": "Mo-Su 07:00-23:00"}}


def test_history_pages_newest_first(store: Services) -> None:
    seed(store)
    for i in range(5):
        store.sites.update_site(sid("a"), {"notes": f"n{i}"}, actor="alice")
    store.sites.update_site(sid("b"), {"notes": "b"}, actor="bob")
    page, total = store.audit.site_history(sid("a"), limit=2, offset=1)
    assert total == 5 and [c.changes["notes"]["after"] for c in page] == ["n3", "n2"]
    assert store.audit.site_history(sid("a"), limit=2, offset=10) == ([], 5)
    recent, n = store.audit.recent(limit=2)
    assert n == 6 and [(c.site_id, c.actor) for c in recent] == [(sid("b"), "bob"), (sid("a"), "alice")]
    assert all(isinstance(c.at, dt.datetime) and c.at.tzinfo is not None for c in recent)


