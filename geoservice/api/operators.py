"""The station operators' API: their sites, edits with no lost updates, closures, audit, bulk, reports, preview.

Every route here needs ``Authorization: Bearer <token>`` (:mod:`geoservice.auth`) or the operators' page's
session cookie (with ``X-CSRF-Token`` on writes, :mod:`geoservice.api.session`) except the hours preview,
which only evaluates an expression. Writes are conditional: ``PATCH``, closure ``POST``/``DELETE`` and
``verify`` need ``If-Match`` with the site's ``ETag`` (428 without it, 412 when the site changed meanwhile).
The ETag is the stored version, ``"<version>"``, one per site, the same for every representation of it.

Handlers parse (the declarations below), call the services, and serialise: the version check, the write, the
re-materialised open intervals and the audit entry are one transaction (``SiteService.apply_edits``).
"""
from __future__ import annotations

import datetime as dt
import logging
import re
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, Response, g, json, request, url_for

from geoservice import serialize as S
from geoservice.api import spec as P
from geoservice.api.body import json_object
from geoservice.api.context import services
from geoservice.api.jsonprovider import json_response
from geoservice.api.public import GEOJSON, SITE_LINKS, calendar_warnings, feature
from geoservice.api.session import CREDENTIALS, current_operator
from geoservice.errors import (
    Forbidden,
    InvalidInput,
    NotFound,
    PreconditionRequired,
    UnsupportedMediaType,
    VersionConflict,
)
from geoservice.hours import DAY, TZ, HoursEvaluationError, now_local, validate_hours
from geoservice.model import AMENITIES, ROLES, SITE_STATUSES, EditResult, LiveView, Operator, Site
from geoservice.phone import validate_phone
from geoservice.services.bulk import MAX_REASON, check_closure, describe, parse_bulk_csv
from geoservice.validation import Problem, ValidationFailed, validate_alert_hours

LOGGER = logging.getLogger(__name__)
bp = Blueprint("operators", __name__)
API = P.Api()

JSON_TYPES = ("application/json", "application/merge-patch+json")
CSV_TYPES = ("text/csv", "text/plain", "application/csv")
PREVIEW_DAYS = 7
TAGS = ("operators",)
# A bearer token, or the operators' page's session cookie (writes with X-CSRF-Token): geoservice.api.session.
TOKEN = CREDENTIALS


# One or more of the ETags this service gives sites ("7"); a weak W/"7" is taken as "7".
ETAGS_PATTERN = r'^\s*(?:W/)?"[0-9]{1,18}"\s*(?:,\s*(?:W/)?"[0-9]{1,18}"\s*)*$'


class IfMatch(P.Param):
    """``If-Match``: documented as required; its absence (or ``*``) is answered 428 after the site is found and
    yours, and anything that is not a list of this service's ETags is a 400 naming the header."""

    def schema(self) -> dict[str, Any]:
        return {"type": "string", "pattern": ETAGS_PATTERN}

    def parse(self, values: Any, out_of_range: int = 422) -> Any:
        if not values:
            return None
        raw: str = values[0]
        if raw.strip() in ("", "*") or re.match(ETAGS_PATTERN, raw):
            return raw
        raise InvalidInput(f"If-Match must be the site's ETag as GET returned it, such as \"7\" (got {raw[:40]!r})",
                           [{"field": "If-Match", "reason": "is not an ETag of this service"}])


IF_MATCH = IfMatch("If-Match", "The site's ETag as last read (e.g. \"7\"): the write happens only if the site is "
                               "still at that version. 428 without it, 412 (with the current ETag) when the site "
                               "changed meanwhile.", required=True, where="header")
SITE_ID = P.PathId("site_id", "Site id", what="site")
PAGE = (P.Integer("limit", "Page size", lo=1, hi=200, fallback=50), P.Integer("offset", "Page start", lo=0,
                                                                              hi=10_000_000, fallback=0))

HOURS_FIELD = P.CheckedField("opening_hours", "OSM opening_hours; a refusal names the 1-based `column`, what was "
                             "`expected` and, for what China's calendar cannot answer, the `construct`",
                             format="opening-hours", validator=validate_hours, max_length=1000)
PATCH_BODY = P.JsonBody((
    HOURS_FIELD,
    P.ListField("amenities", "Amenity codes (see /api/v1/vocabulary); null clears them", nullable=True,
                values=AMENITIES),
    P.CheckedField("phone", "A Chinese mobile, landline, 400 or short number, extension after 转 or ext.; null or "
                            "empty clears it", nullable=True, format="phone-cn", validator=validate_phone,
                   max_length=40),
    P.TextField("notes", "Notes for couriers; null or empty clears them", nullable=True, max_length=2000,
                multiline=True),
    P.EnumField("status", "temporarily_closed: closed for every query until set back to open",
                values=SITE_STATUSES),
    P.TextField("name_zh", "Chinese name", max_length=200),
    P.TextField("name_en", "English name; null or empty clears it", nullable=True, max_length=200),
    P.ObjectField("alert_hours", "Hours that replace opening_hours while a weather alert of one of `types` at "
                                 "`min_level` or above covers the site's district (hours checked as opening_hours "
                                 "are; preview them with /api/v1/hours/preview); null clears them", nullable=True,
                  object_schema=S.ALERT_HOURS_SCHEMA, validator=validate_alert_hours),
), "JSON merge patch of the editable fields; any other field is a 422 naming it.", JSON_TYPES)
CLOSURE_BODY = P.JsonBody((
    P.DateField("start", "First closed day (Beijing date)", required=True),
    P.DateField("end", "Last closed day, inclusive; not before start, not in the past, at most 366 days after "
                       "start (for longer, set status temporarily_closed)", required=True),
    P.TextField("reason", "Why (shown to couriers)", max_length=MAX_REASON, min_length=0),
), "Whole days start..end, both inclusive. A closure equal to one the site has is not added twice.")
PREVIEW_HOURS = P.JsonBody((HOURS_FIELD,))
RESOLVE_BODY = P.JsonBody((P.TextField("note", "What was done", max_length=500, min_length=0, multiline=True),))

SITE_OUT = {GEOJSON: {"$ref": "#/components/schemas/Site"}}
ETAG_OUT = {"ETag": {"description": "The site's new version, for the next If-Match", "schema": {"type": "string"}}}
WRITE_ERRORS = (403, 404, 412, 415, 422, 428)
CHANGE_LIST = {"type": "object", "required": ["items", "total", "limit", "offset", "links"], "properties": {
    "items": {"type": "array", "items": {"$ref": "#/components/schemas/Change"}}, "site_id": {"type": "string"},
    "total": {"type": "integer"}, "limit": {"type": "integer"}, "offset": {"type": "integer"},
    "links": {"type": "array", "items": {"$ref": "#/components/schemas/Link"}}}}
REPORT_LIST = {"type": "object", "required": ["items", "total", "limit", "offset", "links"], "properties": {
    "items": {"type": "array", "items": {"$ref": "#/components/schemas/Report"}},
    "total": {"type": "integer"}, "limit": {"type": "integer"}, "offset": {"type": "integer"},
    "links": {"type": "array", "items": {"$ref": "#/components/schemas/Link"}}}}


# ---- plumbing ---------------------------------------------------------------------------------------------
# What a token limited to one site (``geoservice operators token issue NAME --site ID``) may do.
SITE_TOKEN_ENDPOINTS = frozenset({"live.put_status", "live.clear_status"})


def me() -> Operator:
    """The authenticated operator of this request (401 otherwise); 403 when the token is limited to one site
    and this is not that site's live status."""
    if "operator" not in g:
        g.operator = current_operator()
    found: Operator = g.operator
    if found.token_site is not None and request.endpoint not in SITE_TOKEN_ENDPOINTS:
        raise Forbidden(f"this token is limited to the live status of site {found.token_site}")
    return found


def my_site(operator: Operator, site_id: str) -> Site:
    """The site if it is in the operator's scope: 404 when no such site, 403 when it is outside the scope."""
    svc = services()
    return svc.scope(operator).site(svc.sites.get_site(site_id), site_id)


def etag(version: int) -> str:
    """The ETag of a site at ``version``."""
    return f'"{version}"'


def expected_version(site: Site, raw: str | None) -> int:
    """The version the client's ``If-Match`` names: 428 when absent, 412 when it is not the stored one.

    This early check is a courtesy; the write checks again atomically.
    """
    if raw is None or not raw.strip():
        raise PreconditionRequired(
            f"send If-Match with the site's ETag to change it (e.g. If-Match: {etag(site.version)} as given by "
            f"GET /api/v1/sites/{site.id}), so that a change made meanwhile by someone else is not overwritten",
            [{"field": "If-Match", "reason": "is required"}])
    versions: list[int] = []
    for part in raw.split(","):
        tag = part.strip()
        if tag == "*":
            raise PreconditionRequired("If-Match: * is not accepted here; send the site's ETag",
                                       [{"field": "If-Match", "reason": "'*' is not accepted"}])
        versions.append(int(tag.removeprefix("W/").strip('"')))  # the pattern checked each tag's shape
    if site.version in versions:
        return site.version
    raise VersionConflict(site.id, versions[0], site.version)


def operator_feature(site: Site, at: dt.datetime, closures: list[Any] | None = None,
                     reports: int | None = None, live: LiveView | None = None,
                     verify_requests: dict[str, tuple[str, dt.datetime]] | None = None) -> dict[str, Any]:
    """A site as an operator sees it: the public feature plus closures, ETag, open reports and union staff's
    verify request."""
    svc = services()
    if verify_requests is None:
        verify_requests = svc.accounts.verify_requests([site.id])
    if live is None:
        live = svc.live.view(site.id, at)
    if closures is None:
        closures = svc.sites.closures_for([site.id]).get(site.id, [])
    if reports is None:
        reports = svc.reports.unresolved_counts([site.id]).get(site.id, 0)
    return feature(site, "wgs84", state=svc.sites.state(site, at, closures), at=at, unresolved_reports=reports,
                   closures=closures, etag=etag(site.version), live=live,
                   verify_request=verify_requests.get(site.id))


def site_response(result: EditResult, status: int = 200, extra: dict[str, Any] | None = None) -> Response:
    """The site after a write, with its new ETag."""
    body = operator_feature(result.after, now_local(), result.closures)
    body.update(extra or {})
    resp = json_response(body, status=status, mimetype=GEOJSON)
    resp.headers["ETag"] = etag(result.after.version)
    return resp


def as_json(body: Any, status: int = 200) -> Response:
    """A JSON response (Chinese kept readable)."""
    return json_response(body, status=status)


def page_links(limit: int, offset: int, returned: int, total: int) -> list[dict[str, str]]:
    """next/prev links of a paginated listing, keeping the request's other parameters."""
    base = [(k, v) for k, v in request.args.items(multi=True) if k not in ("offset", "limit")]
    links = []
    if offset + returned < total:
        links.append({"rel": "next", "href": request.path + "?" + urlencode(
            base + [("limit", str(limit)), ("offset", str(offset + limit))])})
    if offset > 0:
        links.append({"rel": "prev", "href": request.path + "?" + urlencode(
            base + [("limit", str(limit)), ("offset", str(max(0, offset - limit)))])})
    return links


# ---- who am I, my sites ----------------------------------------------------------------------------------
@API.route(bp, P.Operation(
    "GET", "/api/v1/operator/me", "Who am I", tags=TAGS, security=TOKEN,
    ok={200: P.Response("The account", {"application/json": {
        "type": "object", "required": ["name", "role", "sites"],
        "properties": {"name": {"type": "string"}, "role": {"type": "string", "enum": list(ROLES)},
                       "sites": {"type": "integer"}}}})}))
def whoami(args: dict[str, Any]) -> Response:
    """The authenticated account."""
    op = me()
    total = services().sites.operator_sites(op, 1, 0)[1]
    return as_json({"name": op.name, "role": op.role, "sites": total})


@API.route(bp, P.Operation(
    "GET", "/api/v1/operator/sites", "My sites (admins: every site), with closures, ETag and open reports",
    params=(P.Integer("limit", "Page size", lo=1, hi=500, fallback=100), PAGE[1]), tags=TAGS, security=TOKEN,
    ok={200: P.Response("A page of sites", {GEOJSON: {"type": "object", "required": ["type", "features"],
                                                      "properties": {
        "type": {"const": "FeatureCollection"},
        "features": {"type": "array", "items": {"$ref": "#/components/schemas/Site"}},
        "numberMatched": {"type": "integer"}, "numberReturned": {"type": "integer"},
        "links": {"type": "array", "items": {"$ref": "#/components/schemas/Link"}}}}})},
    errors=(422,)))
def my_sites(args: dict[str, Any]) -> Response:
    """My sites (an admin: every site), paginated, each with closures, ETag and open reports."""
    op = me()
    svc = services()
    limit, offset = args["limit"], args["offset"]
    sites, total = svc.sites.operator_sites(op, limit, offset)
    ids = [s.id for s in sites]
    closures, reports = svc.sites.closures_for(ids), svc.reports.unresolved_counts(ids)
    at = now_local()
    live = svc.live.views(ids, at)
    asks = svc.accounts.verify_requests(ids)
    features = [operator_feature(s, at, closures.get(s.id, []), reports.get(s.id, 0), live.get(s.id, LiveView()),
                                 asks) for s in sites]
    return Response(json.dumps({
        "type": "FeatureCollection", "features": features, "numberMatched": total, "numberReturned": len(features),
        "links": page_links(limit, offset, len(features), total)}, ensure_ascii=False), mimetype=GEOJSON)


# ---- edits -----------------------------------------------------------------------------------------------
@API.route(bp, P.Operation(
    "PATCH", "/api/v1/sites/{site_id:site_id}", "Change my site (JSON merge patch)",
    description="The change, the refreshed open intervals (the public nearest query sees it at once) and the "
                "audit entry are one transaction.",
    params=(SITE_ID, IF_MATCH), body=PATCH_BODY.body(), tags=TAGS, security=TOKEN, operation_id="update_site",
    ok={200: P.Response("The site after the change", SITE_OUT, ETAG_OUT, SITE_LINKS)}, errors=WRITE_ERRORS))
def patch_site(args: dict[str, Any], site_id: str) -> Response:
    """Change my site's hours, amenities, phone, notes, status or names (JSON merge patch, If-Match)."""
    op = me()
    site = my_site(op, site_id)
    fields = PATCH_BODY.parse(json_object(JSON_TYPES))
    version = expected_version(site, args["If-Match"])
    result = services().sites.update_site(site.id, fields, actor=op.name, expected_version=version)
    LOGGER.info("site %s changed by %r: %s", site.id, op.name, ", ".join(result.changes) or "nothing")
    return site_response(result)


@API.route(bp, P.Operation(
    "POST", "/api/v1/sites/{site_id}/closures", "Close my site on whole days",
    description="Beijing dates, both inclusive; the closure overrides the weekly hours.",
    params=(SITE_ID, IF_MATCH), body=CLOSURE_BODY.body(), tags=TAGS, security=TOKEN, operation_id="add_closure",
    ok={201: P.Response("The site after the change; the new closure in `closure`", SITE_OUT, {
        **ETAG_OUT, "Location": {"description": "The new closure (for DELETE)", "schema": {"type": "string"}}},
        {**SITE_LINKS, "delete_closure": {
            "operationId": "delete_closure", "description": "Remove the closure just added",
            "parameters": {"path.site_id": "$request.path.site_id", "path.closure_id": "$response.body#/closure/id",
                           "header.If-Match": "$response.header.ETag"}}}),
        200: P.Response("An equal closure was already there: nothing changed", SITE_OUT, ETAG_OUT, SITE_LINKS)},
    errors=WRITE_ERRORS))
def add_closure(args: dict[str, Any], site_id: str) -> Response:
    """Close my site on whole days ``start``..``end`` (inclusive, Beijing dates), with a reason."""
    op = me()
    site = my_site(op, site_id)
    body = CLOSURE_BODY.parse(json_object(JSON_TYPES))
    closure, problems = check_closure(site.id, body["start"].isoformat(), body["end"].isoformat(),
                                      body.get("reason"), now_local().date())
    if closure is None:
        raise ValidationFailed([Problem(f, r) for f, r in problems])
    version = expected_version(site, args["If-Match"])
    result = services().sites.add_closure(closure, actor=op.name, expected_version=version)
    if not result.added:
        return site_response(result, 200)
    added = result.added[0]
    resp = site_response(result, 201, {"closure": S.closure(added)})
    resp.headers["Location"] = url_for("operators.delete_closure", site_id=site.id, closure_id=added.id)
    return resp


@API.route(bp, P.Operation(
    "DELETE", "/api/v1/sites/{site_id}/closures/{closure_id:int}", "Remove one of my site's closures",
    params=(SITE_ID, P.PathInt("closure_id", "Closure id"), IF_MATCH), tags=TAGS, security=TOKEN,
    operation_id="delete_closure",
    ok={200: P.Response("The site after the change", SITE_OUT, ETAG_OUT, SITE_LINKS)}, errors=WRITE_ERRORS))
def delete_closure(args: dict[str, Any], site_id: str, closure_id: int) -> Response:
    """Remove one of my site's closures."""
    op = me()
    site = my_site(op, site_id)
    version = expected_version(site, args["If-Match"])
    return site_response(services().sites.delete_closure(site.id, closure_id, actor=op.name,
                                                         expected_version=version))


@API.route(bp, P.Operation(
    "POST", "/api/v1/sites/{site_id}/verify", "Confirm my site's record is current (sets verified_at)",
    params=(SITE_ID, IF_MATCH), tags=TAGS, security=TOKEN, operation_id="verify_site",
    ok={200: P.Response("The site after the change", SITE_OUT, ETAG_OUT, SITE_LINKS)}, errors=WRITE_ERRORS))
def verify(args: dict[str, Any], site_id: str) -> Response:
    """Confirm my site's record is current (sets ``verified_at``)."""
    op = me()
    site = my_site(op, site_id)
    version = expected_version(site, args["If-Match"])
    return site_response(services().sites.verify(site.id, actor=op.name, expected_version=version))


# ---- audit -----------------------------------------------------------------------------------------------
@API.route(bp, P.Operation(
    "GET", "/api/v1/sites/{site_id}/history", "Every change to my site, newest first",
    params=(SITE_ID, *PAGE), tags=TAGS, security=TOKEN,
    ok={200: P.Response("Audit entries", {"application/json": CHANGE_LIST})}, errors=(403, 404, 422)))
def history(args: dict[str, Any], site_id: str) -> Response:
    """Every change to my site, newest first."""
    site = my_site(me(), site_id)
    limit, offset = args["limit"], args["offset"]
    items, total = services().audit.site_history(site.id, limit, offset)
    return as_json({"site_id": site.id, "items": [S.change(c) for c in items], "total": total, "limit": limit,
                    "offset": offset, "links": page_links(limit, offset, len(items), total)})


# ---- bulk ------------------------------------------------------------------------------------------------
def _bulk_text() -> tuple[str, bool | None]:
    """The CSV text, and ``dry_run`` when given as a multipart form field."""
    form_dry_run: bool | None = None
    if request.mimetype == "multipart/form-data":
        upload = request.files.get("file") or next(iter(request.files.values()), None)
        if upload is not None:
            raw = upload.read()
        elif "file" in request.form:  # a part without a filename arrives as a form field: the same CSV text
            raw = request.form["file"].encode("utf-8")
        else:
            raise InvalidInput("send the CSV as the multipart field 'file'", [{"field": "file",
                                                                              "reason": "is required"}])
        if "dry_run" in request.form:
            form_dry_run = P.Boolean("dry_run", "").parse([request.form["dry_run"].strip()])
    elif request.mimetype in CSV_TYPES:
        raw = request.get_data()
    else:
        raise UnsupportedMediaType("send the CSV as text/csv or as the multipart/form-data field 'file'",
                                   [{"field": "Content-Type", "reason": "must be text/csv or multipart/form-data"}])
    try:
        return raw.decode("utf-8-sig"), form_dry_run
    except UnicodeDecodeError:
        raise InvalidInput("the file is not UTF-8 text", [{"field": "file", "reason": "not UTF-8"}]) from None


BULK_RESULT = {
    "type": "object", "required": ["dry_run", "applied", "sites", "changed", "changes"],
    "properties": {"dry_run": {"type": "boolean"}, "applied": {"type": "boolean"}, "sites": {"type": "integer"},
                   "changed": {"type": "integer"},
                   "changes": {"type": "array", "items": {"type": "object", "properties": {
                       "site_id": {"type": "string"}, "name_zh": {"type": "string"},
                       "lines": {"type": "array", "items": {"type": "integer"}},
                       "version": {"type": "integer"},
                       "changes": {"type": "object", "description": "{field: {before, after}}"}}}}}}


@API.route(bp, P.Operation(
    "POST", "/api/v1/operator/bulk", "Hours and closures for many of my sites from one CSV, all or nothing",
    description="Columns site_id,opening_hours,closed_from,closed_to,reason. The whole file is validated first; "
                "every bad line is listed in the problem's errors (`where`: `line N`, `field`, `reason`; 422; 403 "
                "when the only problems are sites that are not yours). dry_run=true returns what would change, per "
                "site before → after, and writes nothing. A retried file adds no closure twice.",
    params=(P.Boolean("dry_run", "Validate and report only"),), tags=TAGS, security=TOKEN,
    body=P.Body({"text/csv": {"type": "string"},
                 "multipart/form-data": {"type": "object", "required": ["file"], "properties": {
                     "file": {"type": "string", "contentMediaType": "text/csv",
                              "description": "The CSV file, UTF-8"},
                     "dry_run": {"type": "string", "enum": ["true", "false"]}}}}),
    ok={200: P.Response("Applied (or, in a dry run, would apply)", {"application/json": BULK_RESULT})},
    errors=(403, 413, 415, 422)))
def bulk(args: dict[str, Any]) -> Response:
    """Hours and closures for many of my sites from one CSV: validated as a whole, applied all or nothing."""
    op = me()
    text, form_dry_run = _bulk_text()
    dry_run = args["dry_run"] if form_dry_run is None else form_dry_run
    svc = services()
    plan = parse_bulk_csv(text, svc, op, now_local().date())
    results = svc.sites.apply_edits(plan.edits, actor=op.name, action="bulk", dry_run=dry_run)
    LOGGER.info("bulk by %r: %d site(s)%s", op.name, len(results), " (dry run)" if dry_run else "")
    changes = describe(results, plan)
    return as_json({"dry_run": dry_run, "applied": not dry_run, "sites": len(changes),
                    "changed": sum(1 for c in changes if c["changes"]), "changes": changes})


# ---- couriers' reports, operators' side ------------------------------------------------------------------
@API.route(bp, P.Operation(
    "GET", "/api/v1/operator/reports", "Couriers' reports on my sites (admins: all), newest first",
    params=(P.Enum("status", "open: unresolved only", values=("open", "all"), fallback="open"), *PAGE),
    tags=TAGS, security=TOKEN, ok={200: P.Response("Reports", {"application/json": REPORT_LIST})},
    errors=(422,)))
def my_reports(args: dict[str, Any]) -> Response:
    """Reports on my sites (an admin: all), newest first; ``status=all`` includes resolved ones."""
    op = me()
    limit, offset = args["limit"], args["offset"]
    items, total = services().reports.page(op, include_resolved=args["status"] == "all", limit=limit,
                                           offset=offset)
    return as_json({"items": [S.report(r) for r in items], "total": total, "limit": limit, "offset": offset,
                    "links": page_links(limit, offset, len(items), total)})


@API.route(bp, P.Operation(
    "POST", "/api/v1/operator/reports/{report_id:int}/resolve", "Mark a report on my site resolved",
    params=(P.PathInt("report_id", "Report id"),), body=RESOLVE_BODY.body(required=False), tags=TAGS,
    security=TOKEN, ok={200: P.Response("The resolved report", {"application/json": {
        "$ref": "#/components/schemas/Report"}})}, errors=(403, 404, 409, 415, 422)))
def resolve_report(args: dict[str, Any], report_id: int) -> Response:
    """Mark a report on my site as dealt with (optional ``{"note": "..."}``)."""
    op = me()
    note = RESOLVE_BODY.parse(json_object(JSON_TYPES, optional=True)).get("note")
    svc = services()
    report = svc.reports.get(report_id)
    if report is None:
        raise NotFound(f"no report {report_id}")
    if not svc.scope(op).site_ids([report.site_id]):
        raise Forbidden(f"report {report_id} is about a site outside your scope / 该报告的站点不在您的管理范围内")
    return as_json(S.report(svc.reports.resolve(report_id, op.name, note or None)))


# ---- hours preview (no account needed) -------------------------------------------------------------------
class DateOrTime(P.Param):
    """A Beijing date (from its 00:00) or an ISO 8601 time; absent means now."""

    def schema(self) -> dict[str, Any]:
        return {"type": "string", "pattern": f"(?:{P.DATE_PATTERN})|(?:{P.TIME_PATTERN})"}

    def default(self) -> Any:
        return now_local()

    def convert(self, raw: str, out_of_range: int) -> dt.datetime:
        if len(raw) == 10:
            try:
                return dt.datetime.combine(P.parse_date_text(raw), dt.time(), tzinfo=TZ)
            except ValueError:
                pass
        result = P.Time(self.name, self.description).convert(raw, out_of_range)
        return result if result is not None else now_local()


INTERVAL = {"type": "object", "required": ["start", "end"], "properties": {
    "start": {"type": "string", "format": "date-time"}, "end": {"type": "string", "format": "date-time"}}}
PREVIEW = {
    "type": "object", "required": ["opening_hours", "from", "to", "state", "intervals", "days", "warnings"],
    "properties": {
        "opening_hours": {"type": "string"}, "from": {"type": "string"}, "to": {"type": "string"},
        "state": {"type": "object", "required": ["is_open", "open_until", "next_open"], "properties": {
            "is_open": {"type": "boolean"}, "open_until": S.TIME, "next_open": S.TIME}},
        "intervals": {"type": "array", "items": INTERVAL},
        "days": {"type": "array", "items": {"type": "object", "properties": {
            "date": {"type": "string"}, "weekday": {"type": "integer", "description": "1 = Monday"},
            "day_type": {"type": "string", "enum": ["normal", "holiday", "workday"]},
            "holiday": {"type": ["object", "null"]}, "calendar_known": {"type": "boolean"},
            "intervals": {"type": "array", "items": INTERVAL}}}},
        "warnings": {"type": "array", "items": {"$ref": "#/components/schemas/Warning"}}}}


@API.route(bp, P.Operation(
    "GET", "/api/v1/hours/preview", "Preview an opening_hours expression: the next 7 days of open intervals",
    description="Evaluated with China's official calendar (holidays, make-up working days); `warnings` says when "
                "a year has no loaded calendar. A refused expression is a 422 whose errors give `column` (1-based "
                "character), `expected` and, for what the calendar cannot answer, `construct`. No account needed.",
    params=(P.Text("opening_hours", "OSM opening_hours", required=True, max_length=1000, format="opening-hours"),
            DateOrTime("from", "Start: a date (YYYY-MM-DD, from 00:00 Beijing) or an ISO 8601 time; default now")),
    ok={200: P.Response("Open intervals, day by day", {"application/json": PREVIEW})}, errors=(422,),
    public_read=True))
def hours_preview(args: dict[str, Any]) -> Response:
    """The next 7 days of open intervals of an ``opening_hours`` expression, day by day, with China's calendar."""
    expression: str = PREVIEW_HOURS.parse({"opening_hours": args["opening_hours"]})["opening_hours"]
    start: dt.datetime = args["from"]
    end = start + PREVIEW_DAYS * DAY
    sites = services().sites
    engine = sites.engine
    try:
        intervals = engine.intervals(expression, start, end)
    except HoursEvaluationError:
        raise ValidationFailed([Problem("opening_hours", "cannot be evaluated")]) from None
    state = engine.state(expression, start)
    days = []
    for i in range(PREVIEW_DAYS + (1 if start.time() != dt.time() else 0)):
        day = start.date() + i * DAY
        d0 = dt.datetime.combine(day, dt.time(), tzinfo=TZ)
        d1 = d0 + DAY
        special = engine.calendar.days.get(day)
        days.append({
            "date": day.isoformat(), "weekday": day.isoweekday(), "day_type": engine.calendar.day_type(day),
            "holiday": {"en": special.name_en, "zh": special.name_zh} if special else None,
            "calendar_known": engine.calendar.covers(day.year),
            "intervals": [{"start": S.iso(max(a, d0)), "end": S.iso(min(b, d1))}
                          for a, b in intervals if a < d1 and b > d0]})
    return as_json({
        "opening_hours": expression, "from": S.iso(start), "to": S.iso(end),
        "state": {"is_open": state.is_open, "open_until": S.iso(state.open_until),
                  "next_open": S.iso(state.next_open)},
        "intervals": [{"start": S.iso(a), "end": S.iso(b)} for a, b in intervals],
        "days": days, "warnings": calendar_warnings(sites, start, end)})
