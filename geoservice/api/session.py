"""Signing in with a password: the session cookie, its CSRF token, password changes, setup codes, unlocking.

``POST /api/v1/session`` (login and password) starts a session: a fresh random id in the ``gs_session`` cookie
(``HttpOnly``, ``SameSite=Strict``, ``Path=/``, ``Secure`` when the request came over HTTPS — behind a proxy,
``GEOSERVICE_PROXY_HOPS`` makes ``X-Forwarded-Proto`` count), stored server-side only as its SHA-256, so every
worker sees it. A sign-in always issues a new id and ends the browser's previous session (no fixation). It ends
after ``session_idle_minutes`` unused and ``session_absolute_hours`` after sign-in whatever happens.

Every state-changing request authenticated by the cookie needs ``X-CSRF-Token`` (from the sign-in answer or
``GET /api/v1/session``): without it, 403. Bearer tokens (``Authorization``) keep working without one: a
cross-site page cannot make a browser send that header.

Wrong passwords: an unknown login, a wrong password and an account without one get the same 401 after the same
scrypt work; failures are counted per login name and per client address in the shared limiter (429 with
``Retry-After`` past ``login_failures_per_window``), and ``login_lockout_failures`` in a row lock the account
until an admin unlocks it (``POST /api/v1/admin/accounts/{login}/unlock`` or ``geoservice operators unlock``).
Passwords, session ids and setup codes are never logged, stored or put in an answer (only the code, once, to the
admin who asked for it).
"""
from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from flask import Blueprint, Response, current_app, g, request

from geoservice import serialize as S
from geoservice.api import spec as P
from geoservice.api.body import json_object
from geoservice.api.context import services, settings
from geoservice.api.jsonprovider import json_response
from geoservice.api.ratelimit import shared_limiter
from geoservice.auth import (
    authenticate,
    csrf_matches,
    csrf_token,
    new_session_id,
    plausible_session_id,
    token_hash,
)
from geoservice.errors import Forbidden, TooManyRequests, Unauthorized
from geoservice.limiter import SharedLimiter
from geoservice.model import Operator
from geoservice.passwords import LOGIN_PATTERN, MAX_PASSWORD, normal_login
from geoservice.services.accounts import SESSION_REALM
from geoservice.store.caller import set_account

bp = Blueprint("session", __name__)
API = P.Api()

COOKIE = "gs_session"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
TAGS = ("operators",)
# Either credential: a bearer token (machines) or the session cookie (the operators' page, with X-CSRF-Token).
CREDENTIALS = ("operatorToken", "operatorSession")
TOUCH_EVERY = dt.timedelta(seconds=60)
SESSION_OUT = {"application/json": {"$ref": "#/components/schemas/Session"}}
ACCOUNT_OUT = {"application/json": {"$ref": "#/components/schemas/Account"}}
SET_COOKIE = {"Set-Cookie": {"description": f"`{COOKIE}=…; HttpOnly; SameSite=Strict; Path=/` (and `Secure` over "
                                            "HTTPS): the new session", "schema": {"type": "string"}}}


@dataclasses.dataclass(frozen=True)
class SecretField(P.Field):
    """A password or code, taken exactly as typed (never trimmed, never echoed in a problem)."""

    max_length: int = MAX_PASSWORD

    def schema(self) -> dict[str, Any]:
        # Any character but U+0000 (every body refuses it: geoservice.api.body).
        return {"type": "string", "minLength": 1, "maxLength": self.max_length, "format": "password",
                "pattern": "^[^\\x00]+$"}

    def check(self, value: Any) -> Any:
        if not isinstance(value, str) or not value:
            raise ValueError("must be a non-empty string")
        if len(value) > self.max_length:
            raise ValueError(f"at most {self.max_length} characters")
        return value


LOGIN_FIELD = P.TextField("login", "Login name (not case-sensitive)", required=True, max_length=200)
SIGN_IN = P.JsonBody((LOGIN_FIELD, SecretField("password", "Password", required=True)))
CHANGE = P.JsonBody((SecretField("old_password", "The current password", required=True),
                     SecretField("new_password", "The new one: at least 10 characters, not the login name",
                                 required=True)))
SETUP = P.JsonBody((LOGIN_FIELD, SecretField("setup_code", "The one-time code union staff gave you", required=True,
                                             max_length=100),
                    SecretField("password", "The new password: at least 10 characters, not the login name",
                                required=True)))
LOGIN_PATH = P.PathId("login", "Login name", what="account", pattern=LOGIN_PATTERN)


# ---- who is calling ------------------------------------------------------------------------------------------
def _cookie() -> str | None:
    value = request.cookies.get(COOKIE)
    return value if plausible_session_id(value) else None


def session_of_request() -> tuple[Operator, dt.datetime, str] | None:
    """The live session of the request's cookie: ``(account, latest end, session id)``, else None."""
    if "gs_session" not in g:
        sid = _cookie()
        found = None
        if sid is not None:
            st = settings()
            live = services().accounts.session(token_hash(sid), dt.timedelta(minutes=st.session_idle_minutes),
                                               TOUCH_EVERY)
            found = (live[0], live[1], sid) if live else None
        g.gs_session = found
    result: tuple[Operator, dt.datetime, str] | None = g.gs_session
    return result


def require_csrf(sid: str) -> None:
    """403 unless a state-changing request carries the session's CSRF token."""
    if request.method not in SAFE_METHODS and not csrf_matches(sid, request.headers.get(CSRF_HEADER)):
        raise Forbidden(f"a change made with the session cookie needs the {CSRF_HEADER} header from "
                        "GET /api/v1/session / 缺少或错误的 CSRF 令牌，请刷新页面后重试",
                        [{"field": CSRF_HEADER, "reason": "missing or wrong"}])


@bp.before_app_request
def _anonymous_until_authenticated() -> None:
    set_account(None)  # worker threads serve many requests: forget the previous caller


def current_operator() -> Operator:
    """The caller: the bearer token's account when ``Authorization`` is sent (no CSRF token needed), else the
    session cookie's (a state-changing request also needs ``X-CSRF-Token``); 401 when neither is valid.
    Names the account for read-your-writes on read replicas (:mod:`geoservice.store.postgis.replicas`)."""
    found = _authenticated_operator()
    set_account(f"{found.id}:{found.name}")
    return found


def _authenticated_operator() -> Operator:
    header = request.headers.get("Authorization")
    if header is not None or COOKIE not in request.cookies:
        if header is None:
            raise Unauthorized("sign in (POST /api/v1/session) or send 'Authorization: Bearer <token>'")
        return authenticate(services().accounts, header)
    live = session_of_request()
    if live is None:
        raise Unauthorized("the session has ended: sign in again / 登录已过期，请重新登录", realm=SESSION_REALM)
    require_csrf(live[2])
    return live[0]


# ---- answers ------------------------------------------------------------------------------------------------
def _json(body: Any, status: int = 200) -> Response:
    resp = json_response(body, status=status)
    resp.headers["Cache-Control"] = "no-store"  # carries the CSRF token
    return resp


def _set_cookie(resp: Response, sid: str, expires: dt.datetime) -> None:
    seconds = max(1, int((expires - dt.datetime.now(dt.UTC)).total_seconds()))
    resp.set_cookie(COOKIE, sid, max_age=seconds, path="/", secure=request.is_secure, httponly=True,
                    samesite="Strict")


def _clear_cookie(resp: Response) -> None:
    resp.delete_cookie(COOKIE, path="/", secure=request.is_secure, httponly=True, samesite="Strict")


def _start(operator: Operator) -> Response:
    """A new session for ``operator`` (ending the browser's previous one), as the answer to a sign-in."""
    st = settings()
    old = _cookie()
    sid = new_session_id()
    expires = services().accounts.start_session(
        operator.id, token_hash(sid), dt.timedelta(hours=st.session_absolute_hours),
        dt.timedelta(minutes=st.session_idle_minutes), replaces=token_hash(old) if old else None)
    resp = _json(S.session(operator, "session", csrf_token(sid), expires))
    _set_cookie(resp, sid, expires)
    return resp


# ---- the throttle -------------------------------------------------------------------------------------------
def _limiters() -> tuple[SharedLimiter, SharedLimiter]:
    st = settings()
    window = float(st.login_window_s)
    return (shared_limiter(current_app, "login-account", ((st.login_failures_per_window, window),)),
            shared_limiter(current_app, "login-address", ((st.login_address_failures, window),)))


def _throttled(login: str) -> tuple[str, str]:
    """429 when this login name or this address has used up its failures; else the two limiter keys."""
    keys = (normal_login(login)[:200], request.remote_addr or "unknown")
    waits = [w for lim, key in zip(_limiters(), keys) if (w := lim.peek(key)) is not None]
    if waits:
        raise TooManyRequests(max(waits), "failed sign-ins for this login name or")
    return keys


def _failed(keys: tuple[str, str]) -> None:
    for lim, key in zip(_limiters(), keys):
        lim.hit(key)


# ---- the session ----------------------------------------------------------------------------------------------
@API.route(bp, P.Operation(
    "GET", "/api/v1/session", "Who is signed in (and the CSRF token of the session)",
    description="With the session cookie: the account, `via: session`, the `csrf_token` its writes need and when "
                "it ends at the latest. With a bearer token: the account, `via: token`. Otherwise "
                "`signed_in: false`.", tags=TAGS,
    ok={200: P.Response("The caller", SESSION_OUT)}, errors=(401,)))
def get_session(args: dict[str, Any]) -> Response:
    """Who is signed in."""
    header = request.headers.get("Authorization")
    if header is not None:
        return _json(S.session(authenticate(services().accounts, header), "token"))
    live = session_of_request()
    if live is None:
        resp = _json(S.session(None))
        if COOKIE in request.cookies:
            _clear_cookie(resp)
        return resp
    return _json(S.session(live[0], "session", csrf_token(live[2]), live[1]))


@API.route(bp, P.Operation(
    "POST", "/api/v1/session", "Sign in with login name and password (starts a session)",
    description="Sets the session cookie (a new id every time; the browser's previous session ends). A wrong "
                "password and an unknown login get the same 401. After `login_failures_per_window` failures for "
                "one login name or many from one address, 429 with Retry-After; after `login_lockout_failures` "
                "wrong passwords in a row the account is locked (423 once the right password is given) until "
                "an admin unlocks it.",
    body=SIGN_IN.body(), tags=TAGS, ok={200: P.Response("Signed in", SESSION_OUT, SET_COOKIE)},
    errors=(401, 415, 422, 423, 429)))
def sign_in(args: dict[str, Any]) -> Response:
    """Check the password (throttled) and start a session."""
    body = SIGN_IN.parse(json_object())
    keys = _throttled(body["login"])
    try:
        operator = services().accounts.sign_in(body["login"], body["password"], settings().login_lockout_failures)
    except Unauthorized:
        _failed(keys)
        raise
    _limiters()[0].reset(keys[0])
    return _start(operator)


@API.route(bp, P.Operation(
    "DELETE", "/api/v1/session", "Sign out (ends the session)",
    description="Ends the cookie's session (with X-CSRF-Token) and clears the cookie. Without a live session it "
                "only clears the cookie.", tags=TAGS,
    ok={204: P.Response("Signed out")}, errors=(403,)))
def sign_out(args: dict[str, Any]) -> Response:
    """End the session."""
    live = session_of_request()
    if live is not None:
        require_csrf(live[2])
        services().accounts.end_session(token_hash(live[2]))
    resp = Response(status=204)
    _clear_cookie(resp)
    return resp


@API.route(bp, P.Operation(
    "PUT", "/api/v1/session/password", "Change my password",
    description="The current password and a new one (at least 10 characters, not the login name; reasons in "
                "English and Chinese). Every session of the account ends; with the cookie, a new session starts "
                "(new cookie, new CSRF token).",
    body=CHANGE.body(), tags=TAGS, security=CREDENTIALS,
    ok={200: P.Response("Changed; the caller afterwards", SESSION_OUT, SET_COOKIE)}, errors=(403, 415, 422)))
def change_password(args: dict[str, Any]) -> Response:
    """The account holder changes the password."""
    operator = current_operator()
    via_cookie = request.headers.get("Authorization") is None
    body = CHANGE.parse(json_object())
    services().accounts.change_password(operator, body["old_password"], body["new_password"])
    refreshed = services().accounts.by_id(operator.id) or operator
    return _start(refreshed) if via_cookie else _json(S.session(refreshed, "token"))


@API.route(bp, P.Operation(
    "POST", "/api/v1/session/setup", "Set a password with a one-time setup code",
    description="Union staff reset a password by issuing a setup code (shown to them once). The holder sets a "
                "new password with it, once, before it expires; then signs in. A wrong, used or expired code is "
                "the same 401 as a wrong password, and counts as a failure for the throttle.",
    body=SETUP.body(), tags=TAGS, ok={204: P.Response("The password is set")}, errors=(401, 415, 422, 429)))
def redeem_setup_code(args: dict[str, Any]) -> Response:
    """Set a password with a setup code."""
    body = SETUP.parse(json_object())
    keys = _throttled(body["login"])
    try:
        services().accounts.redeem_setup_code(body["login"], body["setup_code"], body["password"])
    except Unauthorized:
        _failed(keys)
        raise
    return Response(status=204)


# ---- admins -------------------------------------------------------------------------------------------------
def _account(login: str) -> Operator:
    """The account with this login if the caller manages it (:mod:`geoservice.services.scope`): 404 / 403."""
    svc = services()
    return svc.scope(current_operator()).account(svc.accounts.by_login(normal_login(login)), login)


@API.route(bp, P.Operation(
    "POST", "/api/v1/admin/accounts/{login}/setup-code", "Reset an account's password: a one-time setup code",
    description="Admins and district admins (their districts' operators). The old password stops working and "
                "the account's sessions end; the code (shown only in "
                "this answer) lets the holder set a new password until `expires_at`.",
    params=(LOGIN_PATH,), tags=TAGS, security=CREDENTIALS,
    ok={201: P.Response("The code, once", {"application/json": {
        "type": "object", "required": ["account", "setup_code", "expires_at"], "properties": {
            "account": {"$ref": "#/components/schemas/Account"}, "setup_code": {"type": "string"},
            "expires_at": S.TIME}}})}, errors=(403, 404)))
def issue_setup_code(args: dict[str, Any], login: str) -> Response:
    """An admin resets a password."""
    account = _account(login)
    code, updated, expires = services().accounts.reset_password(
        account.name, dt.timedelta(hours=settings().setup_code_hours))
    return _json({"account": S.account(updated), "setup_code": code, "expires_at": S.iso(expires)}, 201)


@API.route(bp, P.Operation(
    "POST", "/api/v1/admin/accounts/{login}/unlock", "Unlock an account locked after wrong passwords",
    description="Admins and district admins (their districts' operators). Clears the lock and the count of "
                "wrong passwords, and the login name's throttle.",
    params=(LOGIN_PATH,), tags=TAGS, security=CREDENTIALS,
    ok={200: P.Response("The account", ACCOUNT_OUT)}, errors=(403, 404)))
def unlock(args: dict[str, Any], login: str) -> Response:
    """An admin unlocks an account."""
    account = _account(login)
    unlocked = services().accounts.unlock(account.name)
    if account.login:
        _limiters()[0].reset(account.login)
    return _json(S.account(unlocked))
