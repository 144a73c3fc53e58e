"""OpenAPI entries for the operators' API, the couriers' reports and the hours preview.

``add_operator_paths(doc)`` is called by :func:`geoservice.api.openapi.document`, so the served document and
the one the fuzz tests read are the same. The couriers' page looks for ``POST /api/v1/sites/{id}/reports``
here to turn its report button on.
"""
from __future__ import annotations

from typing import Any

from geoservice.model import AMENITIES, EDITABLE_FIELDS, REPORT_TYPES, SITE_STATUSES

PROBLEM = {"description": "Problem details (RFC 9457)", "content": {"application/problem+json": {
    "schema": {"$ref": "#/components/schemas/Problem"}}}}
BEARER: list[dict[str, list[str]]] = [{"operatorToken": []}]
DATE = r"^\d{4}-\d{2}-\d{2}$"


def _p(name: str, schema: dict[str, Any], description: str, required: bool = False,
       where: str = "query") -> dict[str, Any]:
    return {"name": name, "in": where, "required": required, "schema": schema, "description": description}


def _problems(*codes: int) -> dict[str, Any]:
    return {str(c): PROBLEM for c in codes}


SITE_ID = _p("id", {"type": "string"}, "Site id", True, "path")
LIMIT_OFFSET = [_p("limit", {"type": "integer", "minimum": 1, "maximum": 200, "default": 50}, "Page size"),
                _p("offset", {"type": "integer", "minimum": 0, "default": 0}, "Page start")]
IF_MATCH = _p("If-Match", {"type": "string"},
              "The site's ETag as last read (e.g. \"7\"): the write happens only if the site is still at that "
              "version. Required: 428 without it, 412 when the site changed meanwhile (the 412 carries the "
              "current ETag).", True, "header")
ETAG_HEADER = {"ETag": {"description": "The site's new version, for the next If-Match", "schema": {"type": "string"}}}
SITE_OUT = {"application/geo+json": {"schema": {"$ref": "#/components/schemas/Site"}}}
WRITE_ERRORS = _problems(400, 401, 403, 404, 412, 415, 422, 428, 503)


def _write(summary: str, description: str, body: dict[str, Any] | None, ok: str = "200",
           extra_params: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    op: dict[str, Any] = {
        "summary": summary, "description": description, "security": BEARER, "tags": ["operators"],
        "parameters": [SITE_ID, *(extra_params or []), IF_MATCH],
        "responses": {ok: {"description": "The site after the change", "headers": ETAG_HEADER, "content": SITE_OUT},
                      **WRITE_ERRORS},
    }
    if body is not None:
        op["requestBody"] = {"required": True, "content": body}
    return op


def add_operator_paths(doc: dict[str, Any]) -> dict[str, Any]:
    """Add the operators' paths, schemas and the bearer security scheme to ``doc`` (in place)."""
    paths = doc.setdefault("paths", {})
    components = doc.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    components.setdefault("securitySchemes", {})["operatorToken"] = {
        "type": "http", "scheme": "bearer",
        "description": "An operator's token, issued once by `geoservice operators token issue NAME`. Operators "
                       "reach their assigned sites; admins (union staff) every site and /api/v1/admin/*."}
    doc.setdefault("tags", []).append({"name": "operators", "description": "Station operators keep their sites "
                                                                          "current (token required)"})
    props = schemas.get("Site", {}).get("properties", {}).get("properties", {}).get("properties")
    if isinstance(props, dict):
        props.update({
            "status": {"type": "string", "enum": list(SITE_STATUSES),
                       "description": "temporarily_closed: closed for every query until set back to open"},
            "unresolved_reports": {"type": "integer", "minimum": 0,
                                   "description": "Couriers' problem reports not yet resolved by the operator"},
            "closures": {"type": "array", "items": {"type": "object"},
                         "description": "The operator's closures (whole days, inclusive, Beijing dates)"},
            "etag": {"type": "string", "description": "Operators' views: the ETag to send in If-Match"},
        })

    schemas["SitePatch"] = {
        "type": "object", "additionalProperties": False,
        "description": "JSON merge patch of the editable fields; any other field is a 422 naming it.",
        "properties": {
            "opening_hours": {"type": "string", "minLength": 1, "maxLength": 1000,
                              "description": "OSM opening_hours; a parse error is a 422 giving the character "
                                             "position and what was expected"},
            "amenities": {"type": ["array", "null"], "items": {"type": "string", "enum": list(AMENITIES)}},
            "phone": {"type": ["string", "null"], "maxLength": 40},
            "notes": {"type": ["string", "null"], "maxLength": 2000},
            "status": {"type": "string", "enum": list(SITE_STATUSES)},
            "name_zh": {"type": "string", "minLength": 1, "maxLength": 200},
            "name_en": {"type": ["string", "null"], "maxLength": 200},
        }}
    assert set(schemas["SitePatch"]["properties"]) == set(EDITABLE_FIELDS)
    schemas["ClosureIn"] = {
        "type": "object", "additionalProperties": False, "required": ["start", "end"],
        "properties": {"start": {"type": "string", "pattern": DATE, "description": "First closed day (Beijing)"},
                       "end": {"type": "string", "pattern": DATE, "description": "Last closed day, inclusive"},
                       "reason": {"type": "string", "maxLength": 200}}}
    schemas["Change"] = {
        "type": "object", "required": ["id", "site_id", "actor", "at", "action", "changes"],
        "properties": {"id": {"type": "integer"}, "site_id": {"type": "string"}, "actor": {"type": "string"},
                       "at": {"type": "string", "format": "date-time"},
                       "action": {"type": "string", "description": "update, add_closure, delete_closure, verify, "
                                                                   "bulk or load"},
                       "changes": {"type": "object", "description": "{field: {before, after}}"},
                       "version": {"type": ["integer", "null"], "description": "The site version it produced"}}}
    page = {"total": {"type": "integer"}, "limit": {"type": "integer"}, "offset": {"type": "integer"},
            "links": {"type": "array", "items": {"type": "object"}}}
    schemas["ChangeList"] = {"type": "object", "required": ["items", "total"], "properties": {
        "items": {"type": "array", "items": {"$ref": "#/components/schemas/Change"}}, "site_id": {"type": "string"},
        **page}}
    schemas["ReportIn"] = {
        "type": "object", "additionalProperties": False, "required": ["type"],
        "properties": {"type": {"type": "string", "enum": list(REPORT_TYPES)},
                       "amenity": {"type": "string", "enum": list(AMENITIES),
                                   "description": "Required with amenity_missing, not allowed otherwise"},
                       "note": {"type": "string", "maxLength": 500},
                       "observed_at": {"type": "string", "format": "date-time",
                                       "description": "When it was observed (within the last 7 days); default now"},
                       "lang": {"type": "string", "enum": ["zh", "en"]}}}
    schemas["Report"] = {
        "type": "object", "required": ["id", "site_id", "type"],
        "properties": {"id": {"type": "integer"}, "site_id": {"type": "string"},
                       "type": {"type": "string", "enum": list(REPORT_TYPES)},
                       "amenity": {"type": ["string", "null"]}, "note": {"type": ["string", "null"]},
                       "lang": {"type": ["string", "null"]}, "observed_at": {"type": ["string", "null"]},
                       "received_at": {"type": ["string", "null"]}, "resolved_at": {"type": ["string", "null"]},
                       "resolved_by": {"type": ["string", "null"]}, "resolution_note": {"type": ["string", "null"]},
                       "status": {"type": "string"}}}
    schemas["ReportList"] = {"type": "object", "required": ["items", "total"], "properties": {
        "items": {"type": "array", "items": {"$ref": "#/components/schemas/Report"}}, **page}}
    interval = {"type": "object", "properties": {"start": {"type": "string", "format": "date-time"},
                                                 "end": {"type": "string", "format": "date-time"}}}
    schemas["HoursPreview"] = {
        "type": "object", "required": ["opening_hours", "from", "to", "intervals", "days", "warnings"],
        "properties": {
            "opening_hours": {"type": "string"}, "from": {"type": "string"}, "to": {"type": "string"},
            "state": {"type": "object"}, "intervals": {"type": "array", "items": interval},
            "days": {"type": "array", "items": {"type": "object", "properties": {
                "date": {"type": "string"}, "weekday": {"type": "integer", "description": "1 = Monday"},
                "day_type": {"type": "string", "enum": ["normal", "holiday", "workday"]},
                "holiday": {"type": ["object", "null"]}, "calendar_known": {"type": "boolean"},
                "intervals": {"type": "array", "items": interval}}}},
            "warnings": {"type": "array", "items": {"type": "object"}}}}
    schemas["BulkResult"] = {
        "type": "object", "required": ["dry_run", "applied", "changes"],
        "properties": {"dry_run": {"type": "boolean"}, "applied": {"type": "boolean"}, "sites": {"type": "integer"},
                       "changed": {"type": "integer"},
                       "changes": {"type": "array", "items": {"type": "object", "properties": {
                           "site_id": {"type": "string"}, "name_zh": {"type": "string"},
                           "lines": {"type": "array", "items": {"type": "integer"}},
                           "version": {"type": "integer"},
                           "changes": {"type": "object", "description": "{field: {before, after}}"}}}}}}

    site_path = paths.setdefault("/api/v1/sites/{id}", {})
    site_path["patch"] = _write(
        "Change my site (JSON merge patch)",
        f"Editable: {', '.join(EDITABLE_FIELDS)}. The change, the refreshed open intervals (the public nearest "
        "query sees it at once) and the audit entry are one transaction.",
        {"application/merge-patch+json": {"schema": {"$ref": "#/components/schemas/SitePatch"}},
         "application/json": {"schema": {"$ref": "#/components/schemas/SitePatch"}}})
    paths["/api/v1/sites/{id}/closures"] = {"post": _write(
        "Close my site on whole days",
        "Dates are Beijing dates, both inclusive; the closure overrides the weekly hours.",
        {"application/json": {"schema": {"$ref": "#/components/schemas/ClosureIn"}}}, "201")}
    paths["/api/v1/sites/{id}/closures"]["post"]["responses"]["201"]["headers"] = {
        **ETAG_HEADER, "Location": {"description": "The new closure (for DELETE)", "schema": {"type": "string"}}}
    paths["/api/v1/sites/{id}/closures/{closure_id}"] = {"delete": _write(
        "Remove one of my site's closures", "", None,
        extra_params=[_p("closure_id", {"type": "integer", "minimum": 1}, "Closure id", True, "path")])}
    paths["/api/v1/sites/{id}/verify"] = {"post": _write(
        "Confirm my site's record is current", "Sets verified_at to now.", None)}
    paths["/api/v1/sites/{id}/history"] = {"get": {
        "summary": "Every change to my site, newest first", "security": BEARER, "tags": ["operators"],
        "parameters": [SITE_ID, *LIMIT_OFFSET],
        "responses": {"200": {"description": "Audit entries", "content": {"application/json": {
            "schema": {"$ref": "#/components/schemas/ChangeList"}}}}, **_problems(400, 401, 403, 404, 422, 503)}}}
    paths["/api/v1/sites/{id}/reports"] = {"post": {
        "summary": "Report a problem with a site (couriers; no account)",
        "description": "\"Closed when I arrived\" or \"amenity missing\". Rate-limited per client address "
                       "(5 a minute, 30 a day): past it, 429 with Retry-After. Nothing about the reporter is "
                       "stored.",
        "parameters": [SITE_ID],
        "requestBody": {"required": True, "content": {"application/json": {
            "schema": {"$ref": "#/components/schemas/ReportIn"}}}},
        "responses": {"201": {"description": "Received", "content": {"application/json": {
            "schema": {"$ref": "#/components/schemas/Report"}}}},
            "429": {**PROBLEM, "headers": {"Retry-After": {"description": "Seconds to wait",
                                                           "schema": {"type": "string"}}}},
            **_problems(400, 404, 415, 422, 503)}}}
    paths["/api/v1/operator/me"] = {"get": {
        "summary": "Who am I", "security": BEARER, "tags": ["operators"],
        "responses": {"200": {"description": "The account", "content": {"application/json": {"schema": {
            "type": "object", "properties": {"name": {"type": "string"}, "role": {"type": "string"},
                                             "sites": {"type": "integer"}}}}}}, **_problems(400, 401, 503)}}}
    paths["/api/v1/operator/sites"] = {"get": {
        "summary": "My sites (admins: every site), with closures, ETag and open reports", "security": BEARER,
        "tags": ["operators"],
        "parameters": [_p("limit", {"type": "integer", "minimum": 1, "maximum": 500, "default": 100}, "Page size"),
                       _p("offset", {"type": "integer", "minimum": 0, "default": 0}, "Page start")],
        "responses": {"200": {"description": "A page of sites", "content": {"application/geo+json": {
            "schema": {"$ref": "#/components/schemas/SiteCollection"}}}}, **_problems(400, 401, 422, 503)}}}
    paths["/api/v1/operator/bulk"] = {"post": {
        "summary": "Hours and closures for many of my sites from one CSV, all or nothing",
        "description": "Columns site_id,opening_hours,closed_from,closed_to,reason. The whole file is validated "
                       "first; every bad line is listed in the problem's errors as `line N: field: reason` (422; "
                       "403 when the only problems are sites that are not yours). dry_run=true returns what "
                       "would change, per site before → after, and writes nothing.",
        "security": BEARER, "tags": ["operators"],
        "parameters": [_p("dry_run", {"type": "boolean", "default": False}, "Validate and report only")],
        "requestBody": {"required": True, "content": {
            "text/csv": {"schema": {"type": "string"}},
            "multipart/form-data": {"schema": {"type": "object", "required": ["file"], "properties": {
                "file": {"type": "string", "format": "binary"}, "dry_run": {"type": "string"}}}}}},
        "responses": {"200": {"description": "Applied (or, in a dry run, would apply)", "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/BulkResult"}}}},
            **_problems(400, 401, 403, 413, 415, 422, 503)}}}
    paths["/api/v1/operator/reports"] = {"get": {
        "summary": "Couriers' reports on my sites (admins: all), newest first", "security": BEARER,
        "tags": ["operators"],
        "parameters": [_p("status", {"type": "string", "enum": ["open", "all"], "default": "open"},
                          "open: unresolved only"), *LIMIT_OFFSET],
        "responses": {"200": {"description": "Reports", "content": {"application/json": {
            "schema": {"$ref": "#/components/schemas/ReportList"}}}}, **_problems(400, 401, 422, 503)}}}
    paths["/api/v1/operator/reports/{id}/resolve"] = {"post": {
        "summary": "Mark a report on my site resolved", "security": BEARER, "tags": ["operators"],
        "parameters": [_p("id", {"type": "integer", "minimum": 1}, "Report id", True, "path")],
        "requestBody": {"required": False, "content": {"application/json": {"schema": {
            "type": "object", "additionalProperties": False,
            "properties": {"note": {"type": "string", "maxLength": 500}}}}}},
        "responses": {"200": {"description": "The resolved report", "content": {"application/json": {
            "schema": {"$ref": "#/components/schemas/Report"}}}},
            **_problems(400, 401, 403, 404, 409, 415, 422, 503)}}}
    paths["/api/v1/admin/changes"] = {"get": {
        "summary": "Recent changes across the network (admins)", "security": BEARER, "tags": ["operators"],
        "parameters": LIMIT_OFFSET,
        "responses": {"200": {"description": "Audit entries, newest first", "content": {"application/json": {
            "schema": {"$ref": "#/components/schemas/ChangeList"}}}}, **_problems(400, 401, 403, 422, 503)}}}
    paths["/api/v1/hours/preview"] = {"get": {
        "summary": "Preview an opening_hours expression: the next 7 days of open intervals",
        "description": "Evaluated with China's official calendar (holidays, make-up working days); `warnings` "
                       "says when a year has no loaded calendar. A parse error is a 422 whose errors give "
                       "`column` (1-based character) and `expected`. No account needed.",
        "parameters": [
            _p("opening_hours", {"type": "string", "minLength": 1, "maxLength": 1000}, "OSM opening_hours", True),
            _p("from", {"type": "string"}, "Start: a date (YYYY-MM-DD, from 00:00 Beijing) or an ISO 8601 time; "
                                           "default now")],
        "responses": {"200": {"description": "Open intervals, day by day", "content": {"application/json": {
            "schema": {"$ref": "#/components/schemas/HoursPreview"}}}}, **_problems(400, 422, 503)}}}
    return doc
