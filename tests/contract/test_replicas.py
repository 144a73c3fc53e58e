"""Read replicas against real servers: a primary, a hot standby of it and a PgBouncer, started for this module."""
from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from geoservice.bootstrap import load_districts
from geoservice.services import Services
from geoservice.store.postgis import PostgisStore
from geoservice.store.postgis import replicas as rp
from tests.support import LAYERS

pytestmark = pytest.mark.postgis


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[str, Any]]:
    from tools.pgcluster import Bouncer, HotStandby, ThrowawayCluster

    primary = ThrowawayCluster().start()
    standby = bouncer = None
    try:
        url = primary.create_database("gs_replicas")
        setup = Services.over(PostgisStore(url, max_size=2))
        setup.migrate()
        load_districts(setup, LAYERS)
        setup.close()
        standby = HotStandby(primary).start()
        bouncer = Bouncer(primary.port).start()
        yield {"primary": primary, "standby": standby, "bouncer": bouncer, "url": url,
               "read_url": standby.url("gs_replicas")}
    finally:
        for s in (bouncer, standby, primary):
            if s is not None:
                s.stop()


@pytest.fixture
def store(servers: dict[str, Any]) -> Iterator[PostgisStore]:
    s = PostgisStore(servers["url"], max_size=2, read_urls=[servers["read_url"]], replica_max_lag_s=2.0)
    yield s
    s.close()
    rp.set_account(None)


def _recovery(store: PostgisStore, read_only: bool = True) -> bool:
    with store.connection(read_only=read_only) as conn:
        row = conn.execute("SELECT pg_is_in_recovery()").fetchone()
    assert row is not None
    return bool(row[0])


def _count(store: PostgisStore) -> int:
    with store.connection(read_only=True) as conn:
        row = conn.execute("SELECT count(*) FROM rr_probe").fetchone()
    assert row is not None
    return int(row[0])


def test_public_reads_go_to_the_standby_and_writes_to_the_primary(store: PostgisStore) -> None:
    assert _recovery(store) is True
    assert _recovery(store, read_only=False) is False
    servers = store.servers()
    assert [s["role"] for s in servers] == ["primary", "standby"]
    assert servers[1]["reachable"] and servers[1]["in_use"]


def test_writer_reads_its_write_at_once_while_replay_is_paused(store: PostgisStore,
                                                               servers: dict[str, Any]) -> None:
    with store.connection() as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS rr_probe (x int)")
    time.sleep(1.2)
    servers["standby"].pause_replay()
    try:
        rp.set_account("operator:alice")
        with store.connection() as conn:
            conn.execute("INSERT INTO rr_probe VALUES (1)")
        n = _count(store)  # pinned to the primary: sees its own row
        assert n >= 1
        assert _recovery(store) is False
        rp.set_account(None)  # anonymous: the standby, still within the lag bound
        time.sleep(1.1)
        assert _recovery(store) is True
        assert _count(store) == n - 1
        time.sleep(2.5)  # past the bound: the standby is skipped
        assert _recovery(store) is False
        assert store.servers()[1]["in_use"] is False
    finally:
        servers["standby"].resume_replay()
    time.sleep(1.5)
    assert _recovery(store) is True


def test_a_token_client_reads_its_write_through_another_worker_process(servers: dict[str, Any],
                                                                      tmp_path: Path) -> None:
    """A client that keeps no cookie (a script with a bearer token) writes through one worker process and reads
    through another: every worker of the host shares the account's last write position, so the read goes to
    the primary while the standby has not replayed the write. A worker that does not share it (each process on
    its own, as before) reads the standby's stale copy."""
    def worker(shared: Path | None) -> PostgisStore:
        return PostgisStore(servers["url"], max_size=2, read_urls=[servers["read_url"]], replica_max_lag_s=30.0,
                            shared_state_dir=shared)

    a, b, alone = worker(tmp_path), worker(tmp_path), worker(tmp_path / "elsewhere")
    try:
        with a.connection() as conn:
            conn.execute("CREATE TABLE IF NOT EXISTS rr_token_probe (x int)")
        time.sleep(1.2)
        servers["standby"].pause_replay()
        try:
            rp.set_account("token:partner-script")
            with a.connection() as conn:
                conn.execute("INSERT INTO rr_token_probe VALUES (1)")
            for store, sees_it in ((b, True), (alone, False)):
                with store.connection(read_only=True) as conn:
                    row = conn.execute("SELECT count(*), pg_is_in_recovery() FROM rr_token_probe").fetchone()
                assert row is not None
                assert (row[1] is False) is sees_it
                with a.connection(read_only=True) as conn:
                    primary_count = conn.execute("SELECT count(*) FROM rr_token_probe").fetchone()
                assert primary_count is not None
                assert (row[0] == primary_count[0]) is sees_it
        finally:
            servers["standby"].resume_replay()
    finally:
        for store in (a, b, alone):
            store.close()
        rp.set_account(None)


def test_a_stopped_standby_is_skipped_without_an_error(store: PostgisStore, servers: dict[str, Any]) -> None:
    assert _recovery(store) is True
    servers["standby"].pause()
    try:
        time.sleep(1.1)
        assert _recovery(store) is False
        status = store.servers()[1]
        assert status["reachable"] is False and status["in_use"] is False
    finally:
        servers["standby"].resume()
    deadline = time.monotonic() + 15  # its pool reconnects in the background; until then reads use the primary
    while not _recovery(store) and time.monotonic() < deadline:
        time.sleep(0.3)
    assert _recovery(store) is True


def test_the_store_works_through_pgbouncer_in_transaction_mode(servers: dict[str, Any]) -> None:
    import dataclasses

    from geoservice.hours import now_local
    from geoservice.model import NearestQuery
    from tests.support import TIANANMEN
    from tests.support.sites import make_sites

    s = Services.over(PostgisStore(servers["bouncer"].url("gs_replicas") + "?pgbouncer=1", max_size=2))
    try:
        (site,) = make_sites(s, [("pgb", 50, 0, "24/7", "warm_station", ["heating"])])
        for i in range(8):  # more of each statement than psycopg's prepare threshold (5)
            assert s.health()["sites"] >= 0
            assert len(s.spatial.districts()) > 0
            s.sites.upsert_sites([dataclasses.replace(site, name_zh=f"经连接池写入 {i}")])  # a write
            hits = s.sites.nearest(NearestQuery(lon=TIANANMEN[0], lat=TIANANMEN[1], at=now_local(), limit=1))
            assert [h.site.id for h in hits] == [site.id] and hits[0].site.name_zh == f"经连接池写入 {i}"
    finally:
        s.close()


def test_healthz_reports_each_server(servers: dict[str, Any]) -> None:
    from geoservice.app import create_app
    from geoservice.settings import Settings

    settings = Settings(database_url=servers["url"], read_urls=servers["read_url"], autoload_layers=False,
                        replica_max_lag_s=5.0)
    app = create_app(settings)
    body = app.test_client().get("/healthz").get_json()
    assert [s["role"] for s in body["servers"]] == ["primary", "standby"]
    assert body["servers"][1]["reachable"] is True and body["servers"][1]["in_use"] is True


def test_an_operator_reads_its_edit_from_another_worker_process(servers: dict[str, Any]) -> None:
    """Read-your-writes across processes: the edit is made through one app (one worker process, its own store
    and replica router) and read back through another. The answer to the edit carries the primary's WAL
    position in the signed ``gs_wal`` cookie; with it, the second worker sends the operator's reads to the
    primary while the standby has not replayed the edit. Without the cookie (as before) the same session reads
    the standby's stale copy; a forged position is ignored."""
    from geoservice.app import create_app
    from geoservice.bootstrap import load_bundled_calendar
    from geoservice.settings import Settings
    from tests.support.sites import sid
    from tests.support.world import operator_sites

    def worker() -> tuple[Services, Any]:
        svc = Services.over(PostgisStore(servers["url"], max_size=2, read_urls=[servers["read_url"]],
                                         replica_max_lag_s=30.0))
        app = create_app(Settings(database_url=servers["url"], read_urls=servers["read_url"], autoload_layers=False,
                                  layers_dir=LAYERS, replica_max_lag_s=30.0), services=svc, prepare=False)
        app.config["TESTING"] = True
        return svc, app

    (svc_a, app_a), (svc_b, app_b) = worker(), worker()
    try:
        rp.set_account("setup")  # the setup reads what it writes, like the CLI
        load_bundled_calendar(svc_a)
        svc_a.sites.upsert_sites(operator_sites(svc_a))
        if svc_a.accounts.get("rr-alice") is None:
            svc_a.accounts.create("rr-alice", login="rr-alice")
        alice = svc_a.accounts.get("rr-alice")
        assert alice is not None
        svc_a.accounts.set_password(alice, "rr-alice-的密码-2026")
        svc_a.accounts.assign("rr-alice", [sid("op-a")])
        first = app_a.test_client()
        signed = first.post("/api/v1/session", json={"login": "rr-alice", "password": "rr-alice-的密码-2026"})
        assert signed.status_code == 200, signed.get_data(as_text=True)
        csrf = signed.get_json()["csrf_token"]
        rp.set_account(None)
        time.sleep(1.5)  # the standby has the account, the session and the site
        servers["standby"].pause_replay()
        try:
            etag = first.get(f"/api/v1/sites/{sid('op-a')}").headers["ETag"]
            new_name = f"跨进程读己之写 {time.time_ns()}"
            edited = first.patch(f"/api/v1/sites/{sid('op-a')}", json={"name_zh": new_name},
                                 headers={"If-Match": etag, "X-CSRF-Token": csrf})
            assert edited.status_code == 200, edited.get_data(as_text=True)
            position = first.get_cookie("gs_wal")
            assert position is not None and rp.lsn_value(position.value.split("~")[0]) is not None

            def public_name(client: Any) -> str:  # the public listing: a read the standbys serve
                resp = client.get("/api/v1/sites?limit=500")
                assert resp.status_code == 200, resp.get_data(as_text=True)
                (found,) = [f for f in resp.get_json()["features"] if f["id"] == sid("op-a")]
                return str(found["properties"]["name_zh"])

            session = first.get_cookie("gs_session")
            assert session is not None
            with_position, without, forged = app_b.test_client(), app_b.test_client(), app_b.test_client()
            for client in (with_position, without, forged):
                client.set_cookie("gs_session", session.value)
            with_position.set_cookie("gs_wal", position.value)
            _lsn, until, mac = position.value.split("~")
            forged.set_cookie("gs_wal", f"FFFFFFFF/0~{until}~{mac}")
            # The other worker: the site as saved (the primary).
            assert public_name(with_position) == new_name
            assert public_name(first) == new_name  # and the worker that saved it
            # Without the position (as before this change) the other worker reads the standby's stale copy; a
            # position the service did not sign steers nothing.
            assert public_name(without) != new_name
            assert public_name(forged) != new_name
        finally:
            servers["standby"].resume_replay()
    finally:
        svc_a.close()
        svc_b.close()
        rp.set_account(None)


def test_accounts_sessions_and_tokens_are_read_from_the_primary(servers: dict[str, Any]) -> None:
    """A new token works, and a revoked one is refused, at once — not after a standby's lag: account reads
    never go to a standby (before, the standby still knew the revoked token and not yet the new one)."""
    from geoservice.auth import token_hash

    svc = Services.over(PostgisStore(servers["url"], max_size=2, read_urls=[servers["read_url"]],
                                     replica_max_lag_s=30.0))
    try:
        if svc.accounts.get("rr-bob") is None:
            svc.accounts.create("rr-bob")
        time.sleep(1.5)
        assert _recovery(svc.spatial) is True  # type: ignore[arg-type]  # public reads: the standby
        servers["standby"].pause_replay()
        try:
            svc.accounts.add_token("rr-bob", token_hash("gso_rr_new"), "test")
            found = svc.accounts.for_token(token_hash("gso_rr_new"))
            assert found is not None and found.name == "rr-bob"
            assert svc.accounts.revoke("rr-bob") >= 1
            assert svc.accounts.for_token(token_hash("gso_rr_new")) is None
        finally:
            servers["standby"].resume_replay()
    finally:
        svc.close()


def test_a_new_service_secret_is_read_back_while_the_standby_lags(servers: dict[str, Any]) -> None:
    """The first use of a service secret (the write-position cookie's key, the couriers' report key) writes it
    on the primary and reads it back there; before, the read went to a standby that did not have it yet and the
    request failed."""
    svc = Services.over(PostgisStore(servers["url"], max_size=2, read_urls=[servers["read_url"]],
                                     replica_max_lag_s=30.0))
    try:
        time.sleep(1.5)
        assert _recovery(svc.spatial) is True  # type: ignore[arg-type]
        servers["standby"].pause_replay()
        try:
            name = f"rr-secret-{time.time_ns()}"
            made = svc.reports.secret(name, lambda: "made-once")
            assert made == "made-once" and svc.reports.secret(name, lambda: "not again") == "made-once"
        finally:
            servers["standby"].resume_replay()
    finally:
        svc.close()
