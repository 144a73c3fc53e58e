"""The station operators' API: their sites, edits with no lost updates, closures, audit, bulk, reports.

Every route here needs ``Authorization: Bearer <token>`` (see :mod:`geoservice.auth`) except the hours preview,
which only evaluates an expression. Writes are conditional: ``PATCH``, closure ``POST``/``DELETE`` and
``verify`` need ``If-Match`` with the site's ``ETag`` (428 without it, 412 when the site changed meanwhile).
The ETag is the stored version, ``"<version>"``, one per site, the same for every representation of it.

Handlers only parse, call the store, and write: the version check, the write, the re-materialised open
intervals and the audit entry are one transaction in the store (``Store.apply_edits``).
"""
from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from flask import Blueprint, Flask, Response, current_app, g, json, request, send_from_directory, url_for
from werkzeug.routing import BaseConverter

from geoservice.api import params as P
from geoservice.api.body import UnsupportedMediaType, json_object
from geoservice.api.errors import problem
from geoservice.api.public import calendar_warnings, site_feature
from geoservice.auth import Forbidden, Unauthorized, authenticate, require_admin, site_for
from geoservice.errors import GeoserviceError, InvalidInput, NotFound, Unprocessable
from geoservice.hours import DAY, TZ, HoursSyntaxError, now_local, validate_hours
from geoservice.model import AMENITIES, EDITABLE_FIELDS, SITE_STATUSES, Closure, Site
from geoservice.phone import PhoneInvalid, validate_phone
from geoservice.store.base import (
    EditResult,
    Operator,
    Report,
    SiteChange,
    Store,
    VersionConflict,
    closure_json,
    effective_closures,
)
from geoservice.store.bulk import BulkInvalid, check_closure, describe, hours_problem, parse_bulk_csv

LOGGER = logging.getLogger(__name__)
bp = Blueprint("operators", __name__)

JSON_TYPES = ("application/json", "application/merge-patch+json")
CSV_TYPES = ("text/csv", "text/plain", "application/csv")
MAX_NAME = 200
MAX_PHONE = 40
MAX_NOTES = 2000
MAX_NOTE = 500
PREVIEW_DAYS = 7


class PreconditionRequired(GeoserviceError):
    """A write without ``If-Match`` (428): the client must say which version it is changing."""

    status = 428
    title = "Precondition required"


# ---- plumbing ---------------------------------------------------------------------------------------------
def store() -> Store:
    """The app's store."""
    return current_app.extensions["geoservice.store"]


def me() -> Operator:
    """The authenticated operator of this request (401 otherwise)."""
    if "operator" not in g:
        g.operator = authenticate(store(), request.headers.get("Authorization"))
    return g.operator


def etag(version: int) -> str:
    """The ETag of a site at ``version``."""
    return f'"{version}"'


def expected_version(site: Site) -> int:
    """The version the client's ``If-Match`` names: 428 when absent, 412 when it is not the stored one.

    This early check is a courtesy; the store checks again atomically with the write.
    """
    raw = request.headers.get("If-Match")
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
        tag = tag.removeprefix("W/").strip('"')
        if tag.isdigit() and len(tag) < 10:
            versions.append(int(tag))
    if site.version in versions:
        return site.version
    raise VersionConflict(site.id, versions[0] if versions else -1, site.version)


MAX_LISTED = 20  # unknown fields named in one problem: a hostile body may hold thousands


def reject_unknown(body: dict[str, Any], allowed: tuple[str, ...]) -> None:
    """422 naming the fields the endpoint does not know (the first ``MAX_LISTED`` of them)."""
    unknown = [k for k in body if k not in allowed]
    if unknown:
        shown = unknown[:MAX_LISTED]
        more = f" and {len(unknown) - len(shown)} more" if len(unknown) > len(shown) else ""
        raise Unprocessable(f"unknown field(s): {', '.join(repr(k)[:70] for k in shown)}{more}; allowed: "
                            f"{', '.join(allowed)}",
                            [{"field": str(k)[:70], "reason": f"unknown field; allowed: {', '.join(allowed)}"}
                             for k in shown])


def check_hours(value: Any, field: str = "opening_hours") -> str:
    """A valid ``opening_hours`` expression, or 422 saying at which character and what was expected."""
    if not isinstance(value, str):
        raise Unprocessable(f"{field}: must be a string", [{"field": field, "reason": "must be a string"}])
    try:
        return validate_hours(value)
    except HoursSyntaxError as exc:
        reason = hours_problem(exc)
        problem = {"field": field, "reason": reason, "column": exc.column, "expected": exc.expected}
        if exc.construct:
            problem["construct"] = exc.construct
        raise Unprocessable(f"{field}: {reason}", [problem]) from None
    except BaseException as exc:  # the Rust parser can panic on odd input: still a 422, never a 500
        if isinstance(exc, (KeyboardInterrupt, SystemExit, GeneratorExit)):
            raise
        LOGGER.warning("opening_hours parser failed on %r: %s", value[:80], type(exc).__name__)
        raise Unprocessable(f"{field}: cannot be evaluated", [{"field": field,
                                                               "reason": "cannot be evaluated"}]) from None


def site_body(site: Site, closures: list[Closure] | None = None, reports: int | None = None,
              at: dt.datetime | None = None) -> dict[str, Any]:
    """A site as an operator sees it: the public feature plus closures, ETag, open reports."""
    s = store()
    at = at or now_local()
    if closures is None:
        closures = s.closures_for([site.id]).get(site.id, [])
    if reports is None:
        reports = s.unresolved_report_counts([site.id]).get(site.id, 0)
    state = s.engine.state(site.opening_hours, at, effective_closures(site, closures))
    feature = site_feature(site, "wgs84", state, at=at, unresolved_reports=reports)
    feature["properties"]["closures"] = [closure_json(c) for c in closures if c.id is not None]
    feature["properties"]["etag"] = etag(site.version)
    return feature


def site_response(result: EditResult, status: int = 200, extra: dict[str, Any] | None = None) -> Response:
    """The site after a write, with its new ETag."""
    body = site_body(result.after, result.closures)
    body.update(extra or {})
    resp = Response(json.dumps(body, ensure_ascii=False), status=status, mimetype="application/geo+json")
    resp.headers["ETag"] = etag(result.after.version)
    return resp


def as_json(body: Any, status: int = 200) -> Response:
    """A JSON response (Chinese kept readable)."""
    return Response(json.dumps(body, ensure_ascii=False), status=status, mimetype="application/json")


def _iso(t: dt.datetime | None) -> str | None:
    return t.astimezone(TZ).isoformat(timespec="seconds") if t else None


def change_json(c: SiteChange) -> dict[str, Any]:
    """An audit entry."""
    return {"id": c.id, "site_id": c.site_id, "actor": c.actor, "at": _iso(c.at), "action": c.action,
            "changes": c.changes, "version": c.version}


def report_json(r: Report) -> dict[str, Any]:
    """A courier's report."""
    return {"id": r.id, "site_id": r.site_id, "type": r.type, "amenity": r.amenity, "note": r.note,
            "lang": r.lang, "observed_at": _iso(r.observed_at), "received_at": _iso(r.received_at),
            "resolved_at": _iso(r.resolved_at), "resolved_by": r.resolved_by, "resolution_note": r.resolution_note}


def page_args(default: int, most: int) -> tuple[int, int]:
    """``limit`` and ``offset``."""
    return P.get_int(request, "limit", default, 1, most), P.get_int(request, "offset", 0, 0, 10_000_000)


def page_links(endpoint: str, limit: int, offset: int, returned: int, total: int, **values: Any) -> list[dict]:
    """next/prev links of a paginated listing."""
    links = []
    if offset + returned < total:
        links.append({"rel": "next", "href": url_for(endpoint, limit=limit, offset=offset + limit, **values)})
    if offset > 0:
        links.append({"rel": "prev", "href": url_for(endpoint, limit=limit, offset=max(0, offset - limit),
                                                     **values)})
    return links


# ---- who am I, my sites ----------------------------------------------------------------------------------
@bp.get("/api/v1/operator/me")
def whoami() -> Response:
    """The authenticated account."""
    P.check_known(request, ())
    op = me()
    total = store().list_operator_sites(op, 1, 0)[1]
    return as_json({"name": op.name, "role": op.role, "sites": total})


@bp.get("/api/v1/operator/sites")
def my_sites() -> Response:
    """My sites (an admin: every site), paginated, each with closures, ETag and open reports."""
    P.check_known(request, ("limit", "offset"))
    op = me()
    limit, offset = page_args(100, 500)
    sites, total = store().list_operator_sites(op, limit, offset)
    ids = [s.id for s in sites]
    closures = store().closures_for(ids)
    reports = store().unresolved_report_counts(ids)
    at = now_local()
    features = [site_body(s, closures.get(s.id, []), reports.get(s.id, 0), at) for s in sites]
    return Response(json.dumps({
        "type": "FeatureCollection", "features": features, "numberMatched": total, "numberReturned": len(features),
        "links": page_links("operators.my_sites", limit, offset, len(features), total)}, ensure_ascii=False),
        mimetype="application/geo+json")


# ---- edits -----------------------------------------------------------------------------------------------
def validate_patch(body: dict[str, Any]) -> dict[str, Any]:
    """The editable fields of a JSON merge patch, checked and normalised; 422 lists every problem."""
    reject_unknown(body, EDITABLE_FIELDS)
    fields: dict[str, Any] = {}
    problems: list[dict[str, Any]] = []

    def bad(field: str, reason: str, **more: Any) -> None:
        problems.append({"field": field, "reason": reason, **more})

    def text(name: str, most: int, nullable: bool) -> None:
        value = body[name]
        if value is None or (isinstance(value, str) and not value.strip()):
            if nullable:
                fields[name] = None
            else:
                bad(name, "is required and cannot be empty")
        elif not isinstance(value, str):
            bad(name, "must be a string" + (" or null" if nullable else ""))
        elif len(value.strip()) > most:
            bad(name, f"at most {most} characters")
        elif any(ord(ch) < 32 and ch not in "\n\t" for ch in value):
            bad(name, "contains control characters")
        else:
            fields[name] = value.strip()

    if "opening_hours" in body:
        try:
            fields["opening_hours"] = check_hours(body["opening_hours"])
        except Unprocessable as exc:
            problems.extend(exc.problems)
    if "amenities" in body:
        value = body["amenities"]
        if value is None:
            fields["amenities"] = []
        elif not isinstance(value, list) or not all(isinstance(a, str) for a in value):
            bad("amenities", "must be a list of amenity codes")
        else:
            unknown = [a for a in value if a not in AMENITIES]
            if unknown:
                bad("amenities", f"unknown amenity {', '.join(repr(a)[:40] for a in unknown)}; allowed: "
                                 f"{', '.join(AMENITIES)}")
            else:
                fields["amenities"] = sorted(dict.fromkeys(value))
    if "status" in body:
        if body["status"] not in SITE_STATUSES:
            bad("status", f"must be one of {', '.join(SITE_STATUSES)}")
        else:
            fields["status"] = body["status"]
    for name, most, nullable in (("phone", MAX_PHONE, True), ("notes", MAX_NOTES, True),
                                 ("name_zh", MAX_NAME, False), ("name_en", MAX_NAME, True)):
        if name in body:
            text(name, most, nullable)
    if fields.get("phone"):
        try:
            fields["phone"] = validate_phone(fields["phone"])
        except PhoneInvalid as exc:
            bad("phone", str(exc))
    if problems:
        raise Unprocessable("; ".join(f"{p['field']}: {p['reason']}" for p in problems), problems)
    return fields


@bp.patch("/api/v1/sites/<site_id:site_id>")
def patch_site(site_id: str) -> Response:
    """Change my site's hours, amenities, phone, notes, status or names (JSON merge patch, If-Match)."""
    P.check_known(request, ())
    op = me()
    site = site_for(store(), op, site_id)
    version = expected_version(site)
    fields = validate_patch(json_object(JSON_TYPES))
    result = store().update_site(site.id, fields, actor=op.name, expected_version=version)
    LOGGER.info("site %s changed by %s: %s", site.id, op.name, ", ".join(result.changes) or "nothing")
    return site_response(result)


@bp.post("/api/v1/sites/<site_id>/closures")
def add_closure(site_id: str) -> Response:
    """Close my site on whole days ``start``..``end`` (inclusive, Beijing dates), with a reason."""
    P.check_known(request, ())
    op = me()
    site = site_for(store(), op, site_id)
    version = expected_version(site)
    body = json_object(JSON_TYPES)
    reject_unknown(body, ("start", "end", "reason"))
    closure, problems = check_closure(site.id, body.get("start"), body.get("end"), body.get("reason"),
                                      now_local().date())
    if closure is None:
        raise Unprocessable("; ".join(f"{f}: {r}" for f, r in problems),
                            [{"field": f, "reason": r} for f, r in problems])
    result = store().add_site_closure(closure, actor=op.name, expected_version=version)
    added = result.added[0]
    resp = site_response(result, 201, {"closure": closure_json(added)})
    resp.headers["Location"] = url_for("operators.delete_closure", site_id=site.id, closure_id=added.id)
    return resp


@bp.delete("/api/v1/sites/<site_id>/closures/<int:closure_id>")
def delete_closure(site_id: str, closure_id: int) -> Response:
    """Remove one of my site's closures."""
    P.check_known(request, ())
    op = me()
    site = site_for(store(), op, site_id)
    version = expected_version(site)
    return site_response(store().delete_site_closure(site.id, closure_id, actor=op.name, expected_version=version))


@bp.post("/api/v1/sites/<site_id>/verify")
def verify(site_id: str) -> Response:
    """Confirm my site's record is current (sets ``verified_at``)."""
    P.check_known(request, ())
    op = me()
    site = site_for(store(), op, site_id)
    version = expected_version(site)
    return site_response(store().verify_site(site.id, actor=op.name, expected_version=version))


# ---- audit -----------------------------------------------------------------------------------------------
@bp.get("/api/v1/sites/<site_id>/history")
def history(site_id: str) -> Response:
    """Every change to my site, newest first."""
    P.check_known(request, ("limit", "offset"))
    op = me()
    site = site_for(store(), op, site_id)
    limit, offset = page_args(50, 200)
    items, total = store().site_history(site.id, limit, offset)
    return as_json({"site_id": site.id, "items": [change_json(c) for c in items], "total": total, "limit": limit,
                    "offset": offset, "links": page_links("operators.history", limit, offset, len(items), total,
                                                          site_id=site.id)})


@bp.get("/api/v1/admin/changes")
def admin_changes() -> Response:
    """Recent changes across the network (admins)."""
    P.check_known(request, ("limit", "offset"))
    require_admin(me())
    limit, offset = page_args(50, 200)
    items, total = store().recent_changes(limit, offset)
    return as_json({"items": [change_json(c) for c in items], "total": total, "limit": limit, "offset": offset,
                    "links": page_links("operators.admin_changes", limit, offset, len(items), total)})


# ---- bulk ------------------------------------------------------------------------------------------------
def _bulk_text() -> str:
    if request.mimetype == "multipart/form-data":
        upload = request.files.get("file") or next(iter(request.files.values()), None)
        if upload is None:
            raise InvalidInput("send the CSV as the multipart field 'file'", [{"field": "file",
                                                                              "reason": "is required"}])
        raw = upload.read()
    elif request.mimetype in CSV_TYPES:
        raw = request.get_data()
    else:
        raise UnsupportedMediaType("send the CSV as text/csv or as the multipart/form-data field 'file'",
                                   [{"field": "Content-Type", "reason": "must be text/csv or multipart/form-data"}])
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidInput("the file is not UTF-8 text", [{"field": "file", "reason": "not UTF-8"}]) from None


@bp.post("/api/v1/operator/bulk")
def bulk() -> Response:
    """Hours and closures for many of my sites from one CSV: validated as a whole, applied all or nothing."""
    P.check_known(request, ("dry_run",))
    op = me()
    dry_run = P.get_bool(request, "dry_run", False)
    if request.mimetype == "multipart/form-data" and "dry_run" in request.form:
        dry_run = request.form["dry_run"].strip().lower() in ("1", "true", "yes", "on")
    text = _bulk_text()
    try:
        plan = parse_bulk_csv(text, store(), op, now_local().date())
    except BulkInvalid as exc:
        status, title = (403, "Forbidden") if exc.only_forbidden else (422, "Unprocessable input")
        shown = "; ".join(str(p) for p in exc.problems[:5]) + ("; …" if len(exc.problems) > 5 else "")
        return problem(status, title, f"{len(exc.problems)} problem(s), nothing was changed: {shown}",
                       [p.as_json() for p in exc.problems])
    results = store().apply_edits(plan.edits, actor=op.name, action="bulk", dry_run=dry_run)
    LOGGER.info("bulk by %s: %d site(s)%s", op.name, len(results), " (dry run)" if dry_run else "")
    changes = describe(results, plan)
    return as_json({"dry_run": dry_run, "applied": not dry_run, "sites": len(changes),
                    "changed": sum(1 for c in changes if c["changes"]), "changes": changes})


# ---- couriers' reports, operators' side ------------------------------------------------------------------
@bp.get("/api/v1/operator/reports")
def my_reports() -> Response:
    """Reports on my sites (an admin: all), newest first; ``status=all`` includes resolved ones."""
    P.check_known(request, ("status", "limit", "offset"))
    op = me()
    status = request.args.get("status", "open")
    if status not in ("open", "all"):
        raise Unprocessable("status: must be open or all", [{"field": "status", "reason": "must be open or all"}])
    limit, offset = page_args(50, 200)
    items, total = store().list_reports(op, include_resolved=status == "all", limit=limit, offset=offset)
    return as_json({"items": [report_json(r) for r in items], "total": total, "limit": limit, "offset": offset,
                    "links": page_links("operators.my_reports", limit, offset, len(items), total, status=status)})


@bp.post("/api/v1/operator/reports/<int:report_id>/resolve")
def resolve_report(report_id: int) -> Response:
    """Mark a report on my site as dealt with (optional ``{"note": "..."}``)."""
    P.check_known(request, ())
    op = me()
    body = json_object(JSON_TYPES, optional=True)
    reject_unknown(body, ("note",))
    note = body.get("note")
    if note is not None and (not isinstance(note, str) or len(note) > MAX_NOTE):
        raise Unprocessable(f"note: a string of at most {MAX_NOTE} characters",
                            [{"field": "note", "reason": f"a string of at most {MAX_NOTE} characters"}])
    report = store().get_report(report_id)
    if report is None:
        raise NotFound(f"no report {report_id}")
    if not store().owned_site_ids(op, [report.site_id]):
        raise Forbidden(f"report {report_id} is about a site that is not yours")
    resolved = store().resolve_report(report_id, op.name, note.strip() if note else None)
    return as_json(report_json(resolved))


# ---- hours preview (no account needed) -------------------------------------------------------------------
def _preview_start() -> dt.datetime:
    raw = request.args.get("from")
    if raw is not None and len(raw.strip()) == 10:
        try:
            day = dt.date.fromisoformat(raw.strip())
        except ValueError:
            raise P._bad("from", f"{raw[:40]!r} is not a date (YYYY-MM-DD) or an ISO 8601 time") from None
        if not 2000 <= day.year <= 2099:
            raise P._bad("from", "year must be within 2000..2099", 422)
        return dt.datetime.combine(day, dt.time(), tzinfo=TZ)
    start = P.get_time(request, "from")
    assert start is not None
    if start.year > 2099:
        raise P._bad("from", "year must be within 2000..2099", 422)
    return start


@bp.get("/api/v1/hours/preview")
def hours_preview() -> Response:
    """The next 7 days of open intervals of an ``opening_hours`` expression, day by day, with China's calendar."""
    P.check_known(request, ("opening_hours", "from"))
    raw = request.args.get("opening_hours")
    if raw is None:
        raise P._bad("opening_hours", "is required")
    expression = check_hours(raw)
    start = _preview_start()
    end = start + PREVIEW_DAYS * DAY
    engine = store().engine
    try:
        intervals = engine.intervals(expression, start, end)
        state = engine.state(expression, start)
    except BaseException as exc:  # the Rust evaluator can panic on odd input: a 422, never a 500
        if isinstance(exc, (KeyboardInterrupt, SystemExit, GeneratorExit)):
            raise
        LOGGER.warning("opening_hours evaluation failed on %r: %s", expression[:80], type(exc).__name__)
        raise Unprocessable("opening_hours: cannot be evaluated", [{"field": "opening_hours",
                                                                     "reason": "cannot be evaluated"}]) from None
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
            "intervals": [{"start": _iso(max(a, d0)), "end": _iso(min(b, d1))}
                          for a, b in intervals if a < d1 and b > d0]})
    return as_json({
        "opening_hours": expression, "from": _iso(start), "to": _iso(end),
        "state": {"is_open": state.is_open, "open_until": _iso(state.open_until), "next_open": _iso(state.next_open)},
        "intervals": [{"start": _iso(a), "end": _iso(b)} for a, b in intervals],
        "days": days, "warnings": calendar_warnings(start, end)})


# ---- wiring ----------------------------------------------------------------------------------------------
def _problem_with_headers(exc: GeoserviceError) -> Response:
    headers = dict(getattr(exc, "headers", {}) or {})
    if isinstance(exc, VersionConflict):
        headers["ETag"] = etag(exc.current)
    return problem(exc.status, exc.title, exc.detail, exc.problems, headers)


class SiteIdConverter(BaseConverter):
    """A site id in a path, never the word ``nearest``: ``PATCH /api/v1/sites/<id>`` must not claim
    ``/api/v1/sites/nearest`` (its ``Allow`` header would then advertise PATCH there)."""

    regex = r"(?!nearest$)[^/]+"


def init_app(app: Flask, static_dir: Any) -> None:
    """Register the operators' and reports' routes, their error headers, and the page at ``/operator``."""
    from geoservice.api.ratelimit import TooManyRequests
    from geoservice.api.reports import bp as reports_bp

    app.url_map.converters["site_id"] = SiteIdConverter
    app.register_blueprint(bp)
    app.register_blueprint(reports_bp)
    for cls in (Unauthorized, VersionConflict, TooManyRequests):
        app.register_error_handler(cls, _problem_with_headers)

    @app.get("/operator")
    def operator_page() -> Any:
        """The operators' page."""
        return send_from_directory(static_dir, "operator.html")
