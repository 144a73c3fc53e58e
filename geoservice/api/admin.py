"""The admin API: union staff of the city (``admin``) and of districts (``district_admin``) manage accounts,
tokens, site assignments, the couriers' reports queue, stale sites with "please verify" requests and the change
log. Every route needs a manager's bearer token or session (CSRF on writes); what each sees and touches is its
scope (:mod:`geoservice.services.scope`): a site, report or account outside it is a 403, one that does not exist a
404. Handlers parse, call the services and serialise; nothing here decides scope.
"""
from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from flask import Blueprint, Response

from geoservice import serialize as S
from geoservice.api import spec as P
from geoservice.api.body import json_object
from geoservice.api.context import services, settings
from geoservice.api.operators import CHANGE_LIST, PAGE, REPORT_LIST, SITE_ID, as_json, me, page_links
from geoservice.api.session import CREDENTIALS, LOGIN_PATH
from geoservice.errors import NotFound
from geoservice.hours import TZ, utc_now
from geoservice.model import REPORT_TYPES, ROLES, Operator, TokenInfo, verification_stale
from geoservice.passwords import normal_login
from geoservice.services.scope import Scope

LOGGER = logging.getLogger(__name__)
bp = Blueprint("admin", __name__)
API = P.Api()
TAGS = ("admin",)
ADCODE_PATTERN = r"^[0-9]{6}$"
DISTRICT = P.Text("district", "A district adcode (a district admin: one of its own)", max_length=6,
                  pattern=ADCODE_PATTERN)
ACCOUNT_OUT = {"application/json": {"$ref": "#/components/schemas/Account"}}
TOKEN_SCHEMA = {"type": "object", "required": ["id", "label", "created_at", "revoked_at", "site_id"], "properties": {
    "id": {"type": "integer"}, "label": {"type": "string"}, "created_at": S.TIME, "revoked_at": S.TIME,
    "site_id": {"type": ["string", "null"]}}}
ADMIN_SITE = {"type": "object", "required": ["id", "name_zh", "district", "assigned_to", "verified_at", "stale",
                                             "verify_request"], "properties": {
    "id": {"type": "string"}, "name_zh": {"type": "string"}, "name_en": {"type": ["string", "null"]},
    "district": {"type": ["string", "null"]}, "assigned_to": {"type": "array", "items": {"type": "string"}},
    "verified_at": S.TIME, "stale": {"type": "boolean"},
    "verify_request": {"anyOf": [{"type": "null"}, {"type": "object"}]}}}
SITE_LIST = {"type": "object", "required": ["items", "total", "limit", "offset", "links"], "properties": {
    "items": {"type": "array", "items": ADMIN_SITE}, "total": {"type": "integer"}, "limit": {"type": "integer"},
    "offset": {"type": "integer"}, "links": {"type": "array", "items": {"$ref": "#/components/schemas/Link"}}}}


class Adcodes(P.Field):
    """A list of district adcodes (six digits each; the service checks they are loaded districts)."""

    def schema(self) -> dict[str, Any]:
        return {"type": "array", "maxItems": 16, "items": {"type": "string", "pattern": ADCODE_PATTERN}}

    def check(self, value: Any) -> Any:
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value) or len(value) > 16:
            raise ValueError("must be a list of at most 16 six-digit adcodes")
        return list(dict.fromkeys(value))


CREATE_BODY = P.JsonBody((
    P.TextField("name", "Display name, any script (e.g. 某银行东城支行)", required=True, max_length=64),
    P.TextField("login", "Login name (ASCII letters, digits, . _ -)", required=True, max_length=64),
    P.EnumField("role", "operator (default); only admins create district_admin and admin accounts", values=ROLES),
    Adcodes("districts", "A district_admin's districts"),
), "A new account; then reset its password to get a one-time setup code for its holder.")
TOKEN_BODY = P.JsonBody((P.TextField("label", "What the token is for", max_length=100, min_length=0),))


def scope() -> Scope:
    """The caller's scope; 403 unless a manager."""
    found = services().scope(me())
    found.require_manager()
    return found


def account_in_scope(login: str) -> Operator:
    """An account by login, if the caller manages it (404 / 403)."""
    return scope().account(services().accounts.by_login(normal_login(login)), login)


def token_out(t: TokenInfo) -> dict[str, Any]:
    """A token's bookkeeping (never the token)."""
    return {"id": t.id, "label": t.label, "created_at": S.iso(t.created_at), "revoked_at": S.iso(t.revoked_at),
            "site_id": t.site_id}


# ---- accounts --------------------------------------------------------------------------------------------------
@API.route(bp, P.Operation(
    "GET", "/api/v1/admin/accounts", "The accounts I manage (admins: all; district admins: their districts')",
    tags=TAGS, security=CREDENTIALS, ok={200: P.Response("Accounts by name", {"application/json": {
        "type": "object", "required": ["items"], "properties": {
            "items": {"type": "array", "items": {"$ref": "#/components/schemas/Account"}}}}})}, errors=(403,)))
def list_accounts(args: dict[str, Any]) -> Response:
    """The accounts in my scope."""
    return as_json({"items": [S.account(a) for a in scope().accounts_in_scope()]})


@API.route(bp, P.Operation(
    "POST", "/api/v1/admin/accounts", "Create an account",
    description="A district admin creates operator accounts of its district; admins any role.",
    body=CREATE_BODY.body(), tags=TAGS, security=CREDENTIALS,
    ok={201: P.Response("The new account", ACCOUNT_OUT)}, errors=(403, 409, 415, 422)))
def create_account(args: dict[str, Any]) -> Response:
    """Create an account in my scope."""
    mine = scope()
    body = CREATE_BODY.parse(json_object())
    role = body.get("role") or "operator"
    if role != "operator":
        mine.require_admin()
    svc = services()
    made = svc.accounts.create(body["name"], role, body["login"], body.get("districts") or [])
    if mine.operator.role == "district_admin":
        svc.accounts.set_home_district(made.id, mine.operator.districts[0])
    found = svc.accounts.by_id(made.id)
    assert found is not None
    LOGGER.info("account %r (%s) created by %r", found.name, role, mine.operator.name)
    return as_json(S.account(found), 201)


def _set_disabled(login: str, disabled: bool) -> Response:
    account = account_in_scope(login)
    svc = services()
    svc.accounts.set_disabled(account.id, disabled)
    found = svc.accounts.by_id(account.id)
    assert found is not None
    return as_json(S.account(found))


@API.route(bp, P.Operation(
    "POST", "/api/v1/admin/accounts/{login}/disable", "Disable an account (its tokens, password, sessions stop)",
    params=(LOGIN_PATH,), tags=TAGS, security=CREDENTIALS, ok={200: P.Response("The account", ACCOUNT_OUT)},
    errors=(403, 404)))
def disable_account(args: dict[str, Any], login: str) -> Response:
    """Disable an account in my scope."""
    return _set_disabled(login, True)


@API.route(bp, P.Operation(
    "POST", "/api/v1/admin/accounts/{login}/enable", "Enable a disabled account again",
    params=(LOGIN_PATH,), tags=TAGS, security=CREDENTIALS, ok={200: P.Response("The account", ACCOUNT_OUT)},
    errors=(403, 404)))
def enable_account(args: dict[str, Any], login: str) -> Response:
    """Enable an account in my scope."""
    return _set_disabled(login, False)


@API.route(bp, P.Operation(
    "GET", "/api/v1/admin/accounts/{login}/tokens", "An account's API tokens (never the tokens themselves)",
    params=(LOGIN_PATH,), tags=TAGS, security=CREDENTIALS, ok={200: P.Response("Tokens, newest first", {
        "application/json": {"type": "object", "required": ["items"], "properties": {
            "items": {"type": "array", "items": TOKEN_SCHEMA}}}})}, errors=(403, 404)))
def list_tokens(args: dict[str, Any], login: str) -> Response:
    """An account's tokens."""
    account = account_in_scope(login)
    return as_json({"items": [token_out(t) for t in services().accounts.tokens(account.name)]})


@API.route(bp, P.Operation(
    "POST", "/api/v1/admin/accounts/{login}/tokens", "Issue an API token (shown once, in this answer)",
    params=(LOGIN_PATH,), body=TOKEN_BODY.body(required=False), tags=TAGS, security=CREDENTIALS,
    ok={201: P.Response("The token, once", {"application/json": {
        "type": "object", "required": ["token", "info"], "properties": {
            "token": {"type": "string"}, "info": TOKEN_SCHEMA}}})}, errors=(403, 404, 415, 422)))
def issue_token(args: dict[str, Any], login: str) -> Response:
    """Issue a token for an account in my scope."""
    account = account_in_scope(login)
    label = TOKEN_BODY.parse(json_object(optional=True)).get("label") or ""
    token, info = services().accounts.issue_token(account.name, label)
    return as_json({"token": token, "info": token_out(info)}, 201)


@API.route(bp, P.Operation(
    "DELETE", "/api/v1/admin/accounts/{login}/tokens/{token_id:int}", "Revoke one of an account's tokens",
    params=(LOGIN_PATH, P.PathInt("token_id", "Token id")), tags=TAGS, security=CREDENTIALS,
    ok={204: P.Response("Revoked")}, errors=(403, 404)))
def revoke_token(args: dict[str, Any], login: str, token_id: int) -> Response:
    """Revoke a token of an account in my scope."""
    account = account_in_scope(login)
    if not services().accounts.revoke(account.name, [token_id]):
        raise NotFound(f"{account.name} has no active token {token_id}")
    return Response(status=204)


# ---- site assignments ------------------------------------------------------------------------------------------
def _assignment(login: str, site_id: str, assign: bool) -> Response:
    account = account_in_scope(login)
    svc = services()
    site = svc.scope(me()).site(svc.sites.get_site(site_id), site_id)
    if assign:
        svc.accounts.assign(account.name, [site.id])
    else:
        svc.accounts.unassign(account.name, [site.id])
    found = svc.accounts.by_id(account.id)
    assert found is not None
    return as_json(S.account(found) | {"site_count": found.site_count})


ASSIGNED = {200: P.Response("The account", {"application/json": {"type": "object"}})}


@API.route(bp, P.Operation(
    "PUT", "/api/v1/admin/accounts/{login}/sites/{site_id}", "Assign a site to an account",
    params=(LOGIN_PATH, SITE_ID), tags=TAGS, security=CREDENTIALS, ok=ASSIGNED, errors=(403, 404)))
def assign_site(args: dict[str, Any], login: str, site_id: str) -> Response:
    """Assign a site in my scope to an account in my scope (idempotent)."""
    return _assignment(login, site_id, True)


@API.route(bp, P.Operation(
    "DELETE", "/api/v1/admin/accounts/{login}/sites/{site_id}", "Take a site away from an account",
    params=(LOGIN_PATH, SITE_ID), tags=TAGS, security=CREDENTIALS, ok=ASSIGNED, errors=(403, 404)))
def unassign_site(args: dict[str, Any], login: str, site_id: str) -> Response:
    """Unassign a site in my scope from an account in my scope (idempotent)."""
    return _assignment(login, site_id, False)


# ---- sites: search, stale, verify requests ---------------------------------------------------------------------
def _site_items(ids: list[str]) -> list[dict[str, Any]]:
    svc = services()
    sites = svc.sites.spatial.sites_by_id(ids)
    owners, asks = svc.accounts.assignees(ids), svc.accounts.verify_requests(ids)
    now, days = utc_now(), settings().stale_after_days
    out = []
    for s in sites:
        ask = asks.get(s.id)
        out.append({"id": s.id, "name_zh": s.name_zh, "name_en": s.name_en, "district": s.district_adcode,
                    "assigned_to": owners.get(s.id, []), "verified_at": S.iso(s.verified_at),
                    "stale": verification_stale(s.verified_at, now, days),
                    "verify_request": {"requested_by": ask[0], "requested_at": S.iso(ask[1])} if ask else None})
    return out


@API.route(bp, P.Operation(
    "GET", "/api/v1/admin/sites", "Search the sites I manage (by a piece of the id or a name, and district)",
    params=(P.Text("q", "A piece of the id, Chinese or English name", max_length=100), DISTRICT, *PAGE),
    tags=TAGS, security=CREDENTIALS, ok={200: P.Response("Sites by id", {"application/json": SITE_LIST})},
    errors=(403, 422)))
def search_sites(args: dict[str, Any]) -> Response:
    """Sites in my scope matching the search."""
    mine = scope()
    limit, offset = args["limit"], args["offset"]
    ids, total = services().accounts.site_ids_page(mine.operator, limit, offset, mine.district(args["district"]),
                                                   args["q"])
    items = _site_items(ids)
    return as_json({"items": items, "total": total, "limit": limit, "offset": offset,
                    "links": page_links(limit, offset, len(items), total)})


@API.route(bp, P.Operation(
    "GET", "/api/v1/admin/stale", "Sites I manage not verified for N days (or never)",
    description="N defaults to GEOSERVICE_STALE_AFTER_DAYS. Each item says whether a verify request is pending.",
    params=(P.Integer("days", "Not verified for this many days", lo=1, hi=3650), DISTRICT, *PAGE),
    tags=TAGS, security=CREDENTIALS, ok={200: P.Response("Stale sites by id", {"application/json": SITE_LIST})},
    errors=(403, 422)))
def stale_sites(args: dict[str, Any]) -> Response:
    """Stale sites in my scope: filtered in Python over the scope's ids (a network of thousands, not millions)."""
    mine = scope()
    days = args["days"] or settings().stale_after_days
    limit, offset = args["limit"], args["offset"]
    svc = services()
    ids, _ = svc.accounts.site_ids_page(mine.operator, 10_000_000, 0, mine.district(args["district"]))
    now = utc_now()
    stale = [s.id for s in svc.sites.spatial.sites_by_id(ids) if verification_stale(s.verified_at, now, days)]
    items = _site_items(stale[offset:offset + limit])
    return as_json({"items": items, "total": len(stale), "limit": limit, "offset": offset, "days": days,
                    "links": page_links(limit, offset, len(items), len(stale))})


@API.route(bp, P.Operation(
    "POST", "/api/v1/admin/sites/{site_id}/verify-request", "Ask the site's operator to verify it",
    description="Shown on the operators' page and in GET /api/v1/operator/sites until the site is verified.",
    params=(SITE_ID,), tags=TAGS, security=CREDENTIALS,
    ok={201: P.Response("The request", {"application/json": ADMIN_SITE})}, errors=(403, 404)))
def request_verify(args: dict[str, Any], site_id: str) -> Response:
    """Ask for a verification of a site in my scope."""
    mine = scope()
    svc = services()
    site = mine.site(svc.sites.get_site(site_id), site_id)
    svc.accounts.request_verify(site.id, mine.operator.name)
    return as_json(_site_items([site.id])[0], 201)


# ---- reports queue ---------------------------------------------------------------------------------------------
@API.route(bp, P.Operation(
    "GET", "/api/v1/admin/reports", "The couriers' reports queue of the sites I manage, newest first",
    params=(P.Enum("status", "open: unresolved only", values=("open", "all"), fallback="open"), DISTRICT,
            P.Text("site_id", "One site", max_length=64), P.Enum("type", "What was reported", values=REPORT_TYPES),
            *PAGE), tags=TAGS, security=CREDENTIALS,
    ok={200: P.Response("Reports", {"application/json": REPORT_LIST})}, errors=(403, 422)))
def reports_queue(args: dict[str, Any]) -> Response:
    """Reports in my scope with filters; resolve one with POST /api/v1/operator/reports/{id}/resolve."""
    mine = scope()
    limit, offset = args["limit"], args["offset"]
    items, total = services().reports.page(mine.operator, include_resolved=args["status"] == "all", limit=limit,
                                           offset=offset, site_id=args["site_id"],
                                           district=mine.district(args["district"]), rtype=args["type"])
    return as_json({"items": [S.report(r) for r in items], "total": total, "limit": limit, "offset": offset,
                    "links": page_links(limit, offset, len(items), total)})


# ---- the change log --------------------------------------------------------------------------------------------
def _day_start(day: dt.date | None) -> dt.datetime | None:
    return dt.datetime.combine(day, dt.time(), tzinfo=TZ) if day else None


@API.route(bp, P.Operation(
    "GET", "/api/v1/admin/changes", "The change log of the sites I manage, newest first, with before → after",
    params=(P.Text("site_id", "One site", max_length=64), P.Text("actor", "Who made the change", max_length=64),
            DISTRICT, P.Date("from", "First day (Beijing date)"), P.Date("to", "Last day, inclusive"), *PAGE),
    tags=TAGS, security=CREDENTIALS,
    ok={200: P.Response("Audit entries, newest first", {"application/json": CHANGE_LIST})}, errors=(403, 422)))
def admin_changes(args: dict[str, Any]) -> Response:
    """Changes in my scope, filtered by site, account (actor), district and dates."""
    mine = scope()
    limit, offset = args["limit"], args["offset"]
    until = _day_start(args["to"] + dt.timedelta(days=1)) if args["to"] else None
    items, total = services().audit.recent(limit, offset, mine.operator, site_id=args["site_id"],
                                           actor=args["actor"], district=mine.district(args["district"]),
                                           since=_day_start(args["from"]), until=until)
    return as_json({"items": [S.change(c) for c in items], "total": total, "limit": limit, "offset": offset,
                    "links": page_links(limit, offset, len(items), total)})
