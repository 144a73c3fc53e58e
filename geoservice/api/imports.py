"""Admins load site files from the browser (issue 16, item 3): ``POST /api/v1/admin/sites/import``.

The same workflow as ``geoservice load`` (:func:`geoservice.bootstrap.import_site_file`): GeoJSON, CSV,
GeoPackage or Excel .xlsx; all or nothing (422 naming every bad record by line, feature or sheet/row/column);
``dry_run`` previews the inserts, updates and operators' edits a load would keep; ``skip_invalid`` is the explicit
choice to load the valid records and leave out (and audit) the rest.
"""
from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, request

from geoservice.api import spec as P
from geoservice.api.context import services
from geoservice.api.jsonprovider import json_response
from geoservice.api.session import CREDENTIALS, current_operator
from geoservice.auth import require_admin
from geoservice.bootstrap import import_site_file
from geoservice.errors import InvalidInput, UnsupportedMediaType
from geoservice.geo import DATUMS
from geoservice.layers import FORMATS
from geoservice.model import KINDS
from geoservice.validation import Problem, ValidationFailed

bp = Blueprint("imports", __name__)
API = P.Api()

_PROBLEM = {"type": "object", "required": ["field", "reason"], "properties": {
    "field": {"type": "string"}, "reason": {"type": "string"}, "where": {"type": "string"}}}
IMPORT_RESULT = {
    "type": "object", "additionalProperties": False,
    "required": ["file", "dry_run", "applied", "inserted", "updated", "unchanged", "conflicts", "skipped",
                 "hours_problems"],
    "properties": {
        "file": {"type": "string"}, "dry_run": {"type": "boolean"}, "applied": {"type": "boolean"},
        "inserted": {"type": "array", "items": {"type": "string"}, "description": "Site ids added"},
        "updated": {"type": "array", "items": {"type": "string"}, "description": "Site ids changed"},
        "unchanged": {"type": "integer"},
        "conflicts": {"type": "array", "description": "Fields an operator edited since the last load: kept",
                      "items": {"type": "object", "required": ["site_id", "where", "field", "description"],
                                "properties": {"site_id": {"type": "string"}, "where": {"type": "string"},
                                               "field": {"type": "string"}, "description": {"type": "string"}}}},
        "skipped": {"type": "array", "description": "With skip_invalid: the records left out and why",
                    "items": {"type": "object", "required": ["source_id", "problems"], "properties": {
                        "source_id": {"type": ["string", "null"]},
                        "problems": {"type": "array", "items": _PROBLEM}}}},
        "hours_problems": {"type": "array", "description": "Sites whose hours the engine cannot evaluate "
                                                             "(loaded, shown as closed)",
                           "items": {"type": "object", "required": ["site_id", "reason"], "properties": {
                               "site_id": {"type": "string"}, "reason": {"type": "string"}}}}}}
EXTENSIONS = ", ".join(sorted(FORMATS))


def _upload() -> tuple[bytes, str]:
    """The uploaded file's bytes and a safe name for messages (its base name)."""
    if request.mimetype != "multipart/form-data":
        raise UnsupportedMediaType("send the file as the multipart/form-data field 'file'",
                                   [{"field": "Content-Type", "reason": "must be multipart/form-data"}])
    upload = request.files.get("file")
    if upload is None:
        raise InvalidInput("send the file as the multipart field 'file'", [{"field": "file", "reason": "is required"}])
    name = re.sub(r"[\x00-\x1f\x7f/\\]", "_", Path(upload.filename or "").name)[-120:]
    if Path(name).suffix.lower() not in FORMATS:
        raise ValidationFailed([Problem("file", f"the file name must end in one of {EXTENSIONS} (got "
                                                f"{name[:60]!r})")])
    return upload.read(), name


def _body(done: Any, name: str, dry_run: bool) -> dict[str, Any]:
    loaded, result = done.file, done.result
    return {
        "file": name, "dry_run": dry_run, "applied": not dry_run, "inserted": result.inserted,
        "updated": result.updated, "unchanged": len(result.unchanged),
        "conflicts": [{"site_id": c.site_id, "where": loaded.where.get(c.source_id, "?"), "field": c.field,
                       "description": c.describe()} for c in result.conflicts],
        "skipped": [{"source_id": source, "problems": [p.as_json() for p in bad]} for source, bad in loaded.skipped],
        "hours_problems": [{"site_id": k, "reason": v} for k, v in result.hours_problems.items()]}


@API.route(bp, P.Operation(
    "POST", "/api/v1/admin/sites/import", "Load a site file from the browser (preview with dry_run)",
    description="Admins. GeoJSON, CSV, GeoPackage or Excel .xlsx (Chinese headers such as 编号, 名称, 经度, 纬度, "
                "开放时间; see the README), told apart by the file name's extension. All or nothing: any bad "
                "record is a 422 whose errors name each one (`where`: `line N`, `feature N` or `sheet S, row N, "
                "column C`) and nothing is written. `dry_run=true` previews the inserts, updates and operators' "
                "edits a load would keep. `skip_invalid=true` loads the valid records and lists the others in "
                "`skipped` (each also in the audit trail as load-skipped).",
    params=(P.Boolean("dry_run", "Preview only: write nothing"),
            P.Boolean("skip_invalid", "Load the valid records; list and audit the bad ones instead of refusing"),
            P.Enum("kind", "The kind of every record (else each needs a kind column)", values=KINDS),
            P.Enum("crs", "The datum of the file's coordinates (gcj02: Amap, Tencent; bd09: Baidu)",
                   values=DATUMS, fallback="wgs84")),
    tags=("admin",), security=CREDENTIALS,
    body=P.Body({"multipart/form-data": {"type": "object", "required": ["file"], "properties": {
        "file": {"type": "string", "format": "binary",
                 "description": f"The site file; its name ends in one of {EXTENSIONS}"}}}}),
    ok={200: P.Response("Loaded (or, in a dry run, what a load would do)", {"application/json": IMPORT_RESULT})},
    errors=(403, 413, 415, 422)))
def import_sites(args: dict[str, Any]) -> Response:
    """An admin loads a site file."""
    require_admin(current_operator())
    raw, name = _upload()
    with tempfile.TemporaryDirectory(prefix="geoservice-import-") as folder:
        path = Path(folder) / f"upload{Path(name).suffix.lower()}"
        path.write_bytes(raw)
        done = import_site_file(services(), path, args["kind"], args["crs"], dry_run=args["dry_run"],
                                skip_invalid=args["skip_invalid"], name=name)
    return json_response(_body(done, name, args["dry_run"]))
