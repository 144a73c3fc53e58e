"""Password sign-in on both stores: the session cookie, CSRF, the throttle, lockout, rotation, expiry, password
changes and setup codes, and no password or session id anywhere it could leak."""
from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path
from typing import Any

import pytest

from geoservice import create_app, passwords
from geoservice.auth import token_hash
from geoservice.settings import Settings
from geoservice.store import relational
from tests.support import LAYERS
from tests.support.sites import sid
from tests.support.world import World, rows_of_every_table

PASSWORD = "alice-的密码-2026"
COOKIE = "gs_session"


def problem(resp: Any, status: int) -> dict[str, Any]:
    assert resp.status_code == status, (resp.status_code, resp.get_data(as_text=True))
    assert resp.mimetype == "application/problem+json"
    body: dict[str, Any] = resp.get_json()
    return body


@pytest.fixture
def alice(world: World) -> World:
    """The world with alice able to sign in as ``Alice`` (any case) with :data:`PASSWORD`."""
    op = world.store.accounts.give_login("alice", "Alice")
    world.store.accounts.set_password(op, PASSWORD)
    return world


def app_with(world: World, tmp_path: Path, **settings: Any) -> Any:
    """Another app (a "worker") over the same store and the same shared limiter folder, with these settings."""
    app = create_app(Settings(embedded_path=tmp_path / "unused.sqlite", layers_dir=LAYERS, **settings),
                     services=world.store, prepare=False)
    app.config["TESTING"] = True
    return app


def sign_in(client: Any, login: str = "alice", password: str = PASSWORD) -> Any:
    return client.post("/api/v1/session", json={"login": login, "password": password})


def cookie(client: Any) -> str | None:
    found = client.get_cookie(COOKIE)
    return found.value if found else None


def edit(client: Any, body: dict[str, Any], csrf: str | None, site: str = sid("op-a")) -> Any:
    etag = client.get(f"/api/v1/sites/{site}").headers["ETag"]
    headers = {"If-Match": etag} | ({"X-CSRF-Token": csrf} if csrf is not None else {})
    return client.patch(f"/api/v1/sites/{site}", json=body, headers=headers)


def test_sign_in_edit_and_sign_out(alice: World) -> None:
    c = alice.client
    assert c.get("/api/v1/session").get_json()["signed_in"] is False
    resp = sign_in(c, "ALICE")  # the login is not case-sensitive
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    assert body["signed_in"] and body["via"] == "session" and body["account"]["name"] == "alice"
    assert body["account"]["login"] == "alice" and body["csrf_token"]
    assert resp.headers["Cache-Control"] == "no-store"
    [set_cookie] = resp.headers.getlist("Set-Cookie")
    attrs = {a.strip().split("=")[0].lower() for a in set_cookie.split(";")}
    assert {"httponly", "path", "max-age"} <= attrs and "SameSite=Strict" in set_cookie and "Path=/" in set_cookie
    assert "secure" not in attrs  # plain HTTP here; see the HTTPS test
    assert c.get("/api/v1/session").get_json()["csrf_token"] == body["csrf_token"]
    assert c.get("/api/v1/operator/me").get_json()["name"] == "alice"

    saved = edit(c, {"opening_hours": "Mo-Su 07:00-21:00"}, body["csrf_token"])
    assert saved.status_code == 200, saved.get_json()
    assert alice.store.sites.get_site(sid("op-a")).opening_hours == "Mo-Su 07:00-21:00"  # type: ignore[union-attr]
    history = c.get(f"/api/v1/sites/{sid('op-a')}/history").get_json()
    assert history["items"][0]["actor"] == "alice"
    problem(edit(c, {"notes": "not mine"}, body["csrf_token"], sid("op-c")), 403)  # still only her sites

    old = cookie(c)
    signed_out = c.delete("/api/v1/session", headers={"X-CSRF-Token": body["csrf_token"]})
    assert signed_out.status_code == 204 and cookie(c) is None
    problem(c.get("/api/v1/operator/me"), 401)
    assert old is not None
    c.set_cookie(COOKIE, old)  # the old id is dead on the server, not only forgotten by the browser
    problem(c.get("/api/v1/operator/me"), 401)


def test_the_cookie_is_secure_over_https_also_behind_a_proxy(alice: World, tmp_path: Path) -> None:
    resp = alice.app.test_client().post("/api/v1/session", json={"login": "alice", "password": PASSWORD},
                                        base_url="https://ops.example")
    assert resp.status_code == 200 and "Secure" in resp.headers["Set-Cookie"]
    proxied = app_with(alice, tmp_path, proxy_hops=1).test_client()
    resp = proxied.post("/api/v1/session", json={"login": "alice", "password": PASSWORD},
                        headers={"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"})
    assert resp.status_code == 200 and "Secure" in resp.headers["Set-Cookie"]


def test_a_cookie_without_the_csrf_token_changes_nothing_and_bearer_tokens_need_none(alice: World) -> None:
    c = alice.client
    csrf = sign_in(c).get_json()["csrf_token"]
    before = alice.store.sites.get_site(sid("op-a"))
    for sent in (None, "", csrf[:-2] + "xx", csrf + "x"):
        body = problem(edit(c, {"notes": "forged"}, sent), 403)
        assert body["errors"] == [{"field": "X-CSRF-Token", "reason": "missing or wrong"}]
    site = sid("op-a")
    problem(c.post(f"/api/v1/sites/{site}/verify", headers={"If-Match": '"1"'}), 403)
    problem(c.post(f"/api/v1/sites/{site}/closures", json={"start": "2099-01-01", "end": "2099-01-02"},
                   headers={"If-Match": '"1"'}), 403)
    problem(c.delete("/api/v1/session"), 403)  # signing out is a change too
    assert alice.store.sites.get_site(site) == before
    assert c.get("/api/v1/operator/sites").status_code == 200  # reads need no CSRF token
    # A machine client with a bearer token sends no CSRF token (a cross-site page cannot send Authorization).
    other = alice.client
    etag = other.get(f"/api/v1/sites/{site}").headers["ETag"]
    resp = other.patch(f"/api/v1/sites/{site}", json={"notes": "by token"}, headers=alice.auth("alice", **{
        "If-Match": etag}))
    assert resp.status_code == 200
    # and a bearer header wins over a cookie (the token's account, no CSRF needed)
    resp = c.patch(f"/api/v1/sites/{sid('op-c')}", json={"notes": "bob's token"}, headers=alice.auth("bob", **{
        "If-Match": c.get(f"/api/v1/sites/{sid('op-c')}").headers["ETag"]}))
    assert resp.status_code == 200


def test_unknown_and_known_logins_get_the_same_answer_and_the_same_work(alice: World,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    real = passwords._scrypt

    def counted(*args: Any) -> bytes:
        calls.append(1)
        return real(*args)

    monkeypatch.setattr(passwords, "_scrypt", counted)
    alice.store.accounts.create("nopass", login="nopass")  # an account without a password
    answers = []
    for login in ("alice", "nobody-here", "nopass", "x"):
        calls.clear()
        resp = sign_in(alice.app.test_client(), login, "wrong password 123")
        body = problem(resp, 401)
        answers.append((body, resp.headers["WWW-Authenticate"]))
        assert len(calls) == 1, f"{login}: the password must be checked exactly once, with the same cost"
    assert all(a == answers[0] for a in answers)
    assert "wrong" in answers[0][0]["detail"] and "错误" in answers[0][0]["detail"]


def test_the_sixth_wrong_password_in_a_row_is_throttled_in_every_worker(alice: World, tmp_path: Path) -> None:
    worker1 = app_with(alice, tmp_path).test_client()
    worker2 = app_with(alice, tmp_path).test_client()
    for i in range(5):
        problem(sign_in(worker1 if i % 2 else worker2, "alice", f"wrong {i} password"), 401)
    sixth = problem(sign_in(worker1, "Alice", "wrong again, 6th"), 429)
    assert "try again" in sixth["detail"]
    assert int(worker1.post("/api/v1/session", json={"login": "alice", "password": PASSWORD}
                            ).headers["Retry-After"]) >= 1  # even the right password waits
    assert problem(sign_in(worker2, "alice", PASSWORD), 429)
    assert sign_in(worker2, "bob", "wrong for bob").status_code == 401  # another login is not throttled


def test_many_logins_from_one_address_are_throttled(alice: World, tmp_path: Path) -> None:
    c = app_with(alice, tmp_path, login_address_failures=3).test_client()
    for login in ("a1x", "a2x", "a3x"):
        problem(sign_in(c, login, "guess guess guess"), 401)
    problem(sign_in(c, "alice", PASSWORD), 429)


def test_lockout_needs_an_admin_unlock(alice: World, tmp_path: Path) -> None:
    c = app_with(alice, tmp_path, login_lockout_failures=3, login_failures_per_window=100).test_client()
    for i in range(3):
        problem(sign_in(c, "alice", f"wrong {i} password"), 401)
    locked = problem(sign_in(c, "alice", PASSWORD), 423)  # said only to whoever knows the password
    assert "locked" in locked["detail"] and "锁定" in locked["detail"]
    problem(sign_in(c, "alice", "still wrong!!"), 401)
    assert alice.store.accounts.get("alice").locked  # type: ignore[union-attr]
    problem(c.post("/api/v1/admin/accounts/alice/unlock", headers=alice.auth("bob")), 403)
    problem(c.post("/api/v1/admin/accounts/nobody/unlock", headers=alice.auth("carol")), 404)
    unlocked = c.post("/api/v1/admin/accounts/alice/unlock", headers=alice.auth("carol"))
    assert unlocked.status_code == 200 and unlocked.get_json()["locked"] is False
    assert sign_in(c, "alice", PASSWORD).status_code == 200


def test_the_session_id_rotates_at_sign_in(alice: World) -> None:
    c = alice.client
    c.set_cookie(COOKIE, "planted-by-an-attacker-0123456789")  # fixation: a planted id is never adopted
    first = sign_in(c).get_json()
    a = cookie(c)
    assert a and a != "planted-by-an-attacker-0123456789"
    second = sign_in(c).get_json()
    b = cookie(c)
    assert b and b != a and second["csrf_token"] != first["csrf_token"]
    c.set_cookie(COOKIE, a)
    problem(c.get("/api/v1/operator/me"), 401)  # the previous session ended with the new sign-in
    c.set_cookie(COOKIE, b)
    assert c.get("/api/v1/operator/me").status_code == 200


def test_sessions_end_when_idle_and_at_their_absolute_end(alice: World, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    real_now = relational._now

    def later(minutes: float) -> None:
        monkeypatch.setattr(relational, "_now", lambda: real_now() + dt.timedelta(minutes=minutes))

    c = app_with(alice, tmp_path, session_idle_minutes=10, session_absolute_hours=1).test_client()
    assert sign_in(c).status_code == 200
    later(5)
    assert c.get("/api/v1/operator/me").status_code == 200  # used within the idle time: still on
    later(16)
    problem(c.get("/api/v1/operator/me"), 401)  # 11 minutes unused
    monkeypatch.setattr(relational, "_now", real_now)

    c = app_with(alice, tmp_path, session_idle_minutes=24 * 60, session_absolute_hours=1).test_client()
    assert sign_in(c).status_code == 200
    later(59)
    assert c.get("/api/v1/operator/me").status_code == 200
    later(61)
    body = problem(c.get("/api/v1/operator/me"), 401)
    assert "sign in again" in body["detail"]
    assert c.get("/api/v1/session").get_json()["signed_in"] is False


def test_no_password_or_session_id_in_logs_tables_or_error_bodies(alice: World,
                                                                    caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    for name in ("geoservice", "geoservice.access", "werkzeug", "psycopg", "psycopg.pool"):
        logging.getLogger(name).setLevel(logging.DEBUG)
    c = alice.client
    wrong = "Wrong-Password-Only-Here-7f3a"
    bodies = [sign_in(c, "alice", wrong).get_data(as_text=True)]
    resp = sign_in(c)
    bodies.append(resp.get_data(as_text=True))
    sid_value = cookie(c)
    assert sid_value
    csrf = resp.get_json()["csrf_token"]
    new = "A-New-Password-Never-Shown-91"
    bodies.append(c.put("/api/v1/session/password", json={"old_password": PASSWORD, "new_password": "short"},
                        headers={"X-CSRF-Token": csrf}).get_data(as_text=True))
    bodies.append(c.put("/api/v1/session/password", json={"old_password": wrong, "new_password": new},
                        headers={"X-CSRF-Token": csrf}).get_data(as_text=True))
    changed = c.put("/api/v1/session/password", json={"old_password": PASSWORD, "new_password": new},
                    headers={"X-CSRF-Token": csrf})
    assert changed.status_code == 200
    sid_after = cookie(c)
    assert sid_after and sid_after != sid_value  # a new session after the change
    kept = rows_of_every_table(alice.store)
    assert token_hash(sid_after) in kept and "scrypt$" in kept  # what is kept: hashes
    code = c.post("/api/v1/admin/accounts/alice/setup-code", headers=alice.auth("carol")).get_json()["setup_code"]
    bodies.append(c.post("/api/v1/session/setup", json={"login": "alice", "setup_code": code + "x",
                                                        "password": "Third-Password-42"}).get_data(as_text=True))
    assert caplog.records
    logged = "\n".join(f"{r.getMessage()} {r.args!r} {r.exc_text or ''}" for r in caplog.records)
    dump = rows_of_every_table(alice.store)
    secrets = (PASSWORD, wrong, new, "short", sid_value, sid_after, code)
    for secret in secrets:
        assert secret not in logged, secret
        assert secret not in dump, secret
    for body in bodies:
        for secret in (PASSWORD, wrong, new, sid_value, code):
            assert secret not in body


def test_changing_my_password(alice: World) -> None:
    c, elsewhere = alice.client, alice.app.test_client()
    csrf = sign_in(c).get_json()["csrf_token"]
    assert sign_in(elsewhere).status_code == 200
    put = lambda body: c.put("/api/v1/session/password", json=body, headers={"X-CSRF-Token": csrf})  # noqa: E731
    problem(put({"old_password": "not it at all", "new_password": "long enough 123"}), 403)
    weak = problem(put({"old_password": PASSWORD, "new_password": "Alice"}), 422)
    reasons = " ".join(e["reason"] for e in weak["errors"])
    assert "at least 10" in reasons and "至少 10" in reasons and "login" in reasons and "登录名" in reasons
    problem(put({"old_password": PASSWORD, "new_password": "x" * 5000}), 422)
    problem(c.put("/api/v1/session/password", json={"old_password": PASSWORD, "new_password": "long enough 123"}),
            403)  # no CSRF token
    changed = put({"old_password": PASSWORD, "new_password": "long enough 123"})
    assert changed.status_code == 200 and changed.get_json()["csrf_token"] != csrf
    new_csrf = changed.get_json()["csrf_token"]
    assert c.get("/api/v1/session").get_json()["csrf_token"] == new_csrf
    problem(elsewhere.get("/api/v1/operator/me"), 401)  # every other session ended
    problem(sign_in(alice.app.test_client()), 401)
    assert sign_in(alice.app.test_client(), "alice", "long enough 123").status_code == 200


def test_an_admin_reset_gives_a_one_time_setup_code(alice: World) -> None:
    c = alice.client
    assert sign_in(c).status_code == 200
    problem(c.post("/api/v1/admin/accounts/alice/setup-code", headers=alice.auth("bob")), 403)
    issued = alice.app.test_client().post("/api/v1/admin/accounts/ALICE/setup-code", headers=alice.auth("carol"))
    assert issued.status_code == 201
    out = issued.get_json()
    code = out["setup_code"]
    assert out["account"]["has_password"] is False and out["expires_at"]
    problem(c.get("/api/v1/operator/me"), 401)  # her sessions ended
    problem(sign_in(alice.app.test_client()), 401)  # the old password stopped working
    setup = alice.app.test_client()
    problem(setup.post("/api/v1/session/setup", json={"login": "alice", "setup_code": "guess" + code[5:],
                                                      "password": "brand new one 1"}), 401)
    problem(setup.post("/api/v1/session/setup", json={"login": "bob", "setup_code": code,
                                                      "password": "brand new one 1"}), 401)  # not bob's code
    weak = problem(setup.post("/api/v1/session/setup", json={"login": "alice", "setup_code": code,
                                                             "password": "short"}), 422)
    assert "至少" in weak["errors"][0]["reason"]
    done = setup.post("/api/v1/session/setup", json={"login": "alice", "setup_code": code,
                                                     "password": "brand new one 1"})
    assert done.status_code == 204
    problem(setup.post("/api/v1/session/setup", json={"login": "alice", "setup_code": code,
                                                      "password": "and again one 2"}), 401)  # once only
    assert sign_in(setup, "alice", "brand new one 1").status_code == 200


def test_an_expired_setup_code_is_refused(alice: World, monkeypatch: pytest.MonkeyPatch) -> None:
    code, _, expires = alice.store.accounts.reset_password("alice", dt.timedelta(hours=1))
    real = dt.datetime

    class Later(dt.datetime):
        @classmethod
        def now(cls, tz: Any = None) -> Any:  # type: ignore[override]
            return real.now(tz) + dt.timedelta(hours=2)

    assert dt.timedelta(minutes=59) < expires - real.now(dt.UTC) <= dt.timedelta(hours=1)
    redeem = {"login": "alice", "setup_code": code, "password": "brand new one 1"}
    monkeypatch.setattr("geoservice.services.accounts.dt.datetime", Later)
    problem(alice.client.post("/api/v1/session/setup", json=redeem), 401)
    monkeypatch.undo()
    assert alice.client.post("/api/v1/session/setup", json=redeem).status_code == 204  # the same code, in time


def test_district_admins_are_stored_with_their_districts_and_are_not_city_admins(world: World) -> None:
    accounts = world.store.accounts
    districts = [d.adcode for d in world.store.sites.districts()][:2]
    assert len(districts) == 2
    op = accounts.create("东城区总工会", "district_admin", login="dongcheng", districts=districts)
    assert op.role == "district_admin" and op.districts == tuple(sorted(districts)) and op.login == "dongcheng"
    assert accounts.get("东城区总工会").districts == tuple(sorted(districts))  # type: ignore[union-attr]
    with pytest.raises(Exception, match="at least one district"):
        accounts.create("无区", "district_admin", login="nodistrict")
    with pytest.raises(Exception, match="no district 999999"):
        accounts.create("错区", "district_admin", districts=["999999"])
    with pytest.raises(Exception, match="only a district_admin"):
        accounts.create("普通", "operator", districts=districts)
    with pytest.raises(Exception, match="login"):
        accounts.create("坏登录", login="ｄｏｒａ")  # look-alike letters are refused
    with pytest.raises(Exception, match="taken"):
        accounts.create("同名登录", login="DongCheng")
    accounts.set_password(op, "district pass 1")
    c = world.client
    assert sign_in(c, "dongcheng", "district pass 1").get_json()["account"]["districts"] == sorted(districts)
    assert c.get("/api/v1/admin/changes").status_code == 200  # its districts' change log (issue 16, item 2) ...
    problem(c.get("/api/v1/admin/changes?district=999999"), 403)  # ... and not another district's


def test_openapi_documents_the_session_endpoints(world: World) -> None:
    doc = world.client.get("/api/v1/openapi.json").get_json()
    session = doc["paths"]["/api/v1/session"]
    assert set(session) == {"get", "post", "delete"}
    assert "429" in session["post"]["responses"] and "Set-Cookie" in session["post"]["responses"]["200"]["headers"]
    assert {"/api/v1/session/password", "/api/v1/session/setup", "/api/v1/admin/accounts/{login}/setup-code",
            "/api/v1/admin/accounts/{login}/unlock"} <= set(doc["paths"])
    scheme = doc["components"]["securitySchemes"]["operatorSession"]
    assert scheme == {**scheme, "type": "apiKey", "in": "cookie", "name": COOKIE}
    assert "X-CSRF-Token" in scheme["description"]
    patch = doc["paths"]["/api/v1/sites/{site_id}"]["patch"]
    assert patch["security"] == [{"operatorToken": []}, {"operatorSession": []}]
