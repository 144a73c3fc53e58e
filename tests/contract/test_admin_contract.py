"""Both stores: the scope of each role over sites, reports, changes and accounts, and union staff's verify
requests (stored per site, shown to the operator, cleared when the site is verified)."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

from geoservice.hours import now_local
from geoservice.model import Report
from geoservice.services import Services
from tests.support.districts import DONGCHENG, XICHENG, build_districts
from tests.support.sites import sid


def _op(store: Services, login: str):  # type: ignore[no-untyped-def]
    found = store.accounts.by_login(login)
    assert found is not None
    return found


def test_scoped_site_listings(store: Services, tmp_path: Path) -> None:
    d = build_districts(store, tmp_path)
    everything, total = store.accounts.site_ids_page(_op(store, "carol"), 100, 0)
    assert total == len(everything) == 5
    dc, dc_total = store.accounts.site_ids_page(_op(store, "dcadmin"), 100, 0)
    assert sid("op-a") in dc and sid("op-x") not in dc and dc_total == len(dc) == 4
    assert store.accounts.site_ids_page(_op(store, "xcadmin"), 100, 0) == ([sid("op-x")], 1)
    assert store.accounts.site_ids_page(_op(store, "alice"), 100, 0) == (sorted([sid("op-a"), sid("op-b")]), 2)
    # the managers' search: a piece of a name or the id, and a district
    found, n = store.accounts.site_ids_page(_op(store, "carol"), 100, 0, district=XICHENG)
    assert (found, n) == ([sid("op-x")], 1)
    named, _ = store.accounts.site_ids_page(_op(store, "dcadmin"), 100, 0, text="驿站b")
    assert named == [sid("op-b")]
    assert store.accounts.site_ids_page(_op(store, "dcadmin"), 100, 0, text="站点op-x") == ([], 0)
    assert d.site[XICHENG] == sid("op-x")


def test_scoped_reports_changes_and_accounts(store: Services, tmp_path: Path) -> None:
    build_districts(store, tmp_path)
    for site in (sid("op-a"), sid("op-x")):
        store.reports.add(Report(site_id=site, type="closed_on_arrival", observed_at=now_local()))
        store.sites.verify(site, actor="test")
    dc, xc, carol = _op(store, "dcadmin"), _op(store, "xcadmin"), _op(store, "carol")
    assert [r.site_id for r in store.reports.page(dc)[0]] == [sid("op-a")]
    assert [r.site_id for r in store.reports.page(xc)[0]] == [sid("op-x")]
    assert store.reports.page(carol)[1] == 2
    assert store.reports.page(carol, district=XICHENG)[1] == 1
    assert store.reports.page(carol, rtype="amenity_missing")[1] == 0
    assert store.reports.page(carol, site_id=sid("op-a"))[1] == 1
    assert {c.site_id for c in store.audit.recent(50, 0, dc)[0]} == {sid("op-a")}
    assert {c.site_id for c in store.audit.recent(50, 0, carol, district=XICHENG)[0]} == {sid("op-x")}
    assert store.audit.recent(50, 0, carol, actor="test")[1] == 2
    assert store.audit.recent(50, 0, carol, actor="nobody")[1] == 0
    future = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
    assert store.audit.recent(50, 0, carol, since=future)[1] == 0
    assert store.audit.recent(50, 0, carol, until=future)[1] >= 2
    names = {a.login for a in store.accounts.scoped(dc)}
    assert "alice" in names and "xop" not in names and "xcadmin" not in names and "carol" not in names
    assert {a.login for a in store.accounts.scoped(carol)} >= {"alice", "xop", "dcadmin", "xcadmin"}


def test_verify_requests_are_stored_and_cleared_by_verifying(store: Services, tmp_path: Path) -> None:
    build_districts(store, tmp_path)
    site = sid("op-a")
    assert store.accounts.verify_requests([site]) == {}
    store.accounts.request_verify(site, "东城区总工会")
    asked = store.accounts.verify_requests([site, sid("op-b")])
    assert list(asked) == [site] and asked[site][0] == "东城区总工会"
    store.sites.verify(site, actor="alice")
    assert store.accounts.verify_requests([site]) == {}


def test_disabled_accounts_cannot_use_tokens_or_sessions(store: Services, tmp_path: Path) -> None:
    d = build_districts(store, tmp_path)
    alice = _op(store, "alice")
    assert d.client.get("/api/v1/operator/me", headers=d.auth("alice")).status_code == 200
    store.accounts.set_disabled(alice.id, True)
    assert _op(store, "alice").disabled
    assert d.client.get("/api/v1/operator/me", headers=d.auth("alice")).status_code == 401
    store.accounts.set_disabled(alice.id, False)
    assert d.client.get("/api/v1/operator/me", headers=d.auth("alice")).status_code == 200
    assert DONGCHENG in _op(store, "dcadmin").districts
