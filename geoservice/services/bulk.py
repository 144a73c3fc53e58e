"""Operators' bulk updates: a CSV of hours and closures, validated as a whole, applied all or nothing.

File format (UTF-8, header required, columns in any order)::

    site_id,opening_hours,closed_from,closed_to,reason
    s1a2b3c4d5e6f,Mo-Fr 08:00-18:00; PH off,,,
    s1a2b3c4d5e6f,,2027-02-05,2027-02-12,Spring Festival

A line changes the site's ``opening_hours`` (when given) and/or adds a closure (``closed_from`` and
``closed_to``, inclusive dates in Asia/Shanghai, with an optional ``reason``). Several lines may name the same
site (e.g. two closures), but not two different ``opening_hours``. Every problem is collected first and
reported as ``line N: field: reason`` (:class:`~geoservice.validation.ValidationFailed`; ``Forbidden`` when the
only problems are sites that are not the operator's); nothing is written unless the whole file is valid.

The API (``POST /api/v1/operator/bulk``) and the CLI (``geoservice operators bulk``) share this module.
"""
from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
from typing import TYPE_CHECKING, Any

from geoservice.errors import Forbidden
from geoservice.hours import HoursSyntaxError, validate_hours
from geoservice.model import Closure, EditResult, Operator, SiteEdit
from geoservice.validation import Problem, ValidationFailed

if TYPE_CHECKING:
    from geoservice.services import Services

COLUMNS = ("site_id", "opening_hours", "closed_from", "closed_to", "reason")
MAX_LINES = 10_000
MAX_CLOSURE_DAYS = 366
MAX_REASON = 200


@dataclasses.dataclass
class BulkPlan:
    """The validated file: one edit per site, and which lines asked for it."""

    edits: list[SiteEdit]
    lines: dict[str, list[int]]


def hours_problem(exc: HoursSyntaxError) -> str:
    """A refused expression as one readable reason: where, and what was expected (or which construct)."""
    where = f" at character {exc.column}: " if exc.column else ": "
    if exc.construct:
        return f"cannot evaluate{where}{exc.expected}"
    expected = exc.expected if exc.expected.startswith("expected") else f"expected {exc.expected}"
    return f"cannot parse{where}{expected}"


def check_closure(site_id: str, raw_from: Any, raw_to: Any, raw_reason: Any,
                  today: dt.date) -> tuple[Closure | None, list[tuple[str, str]]]:
    """Validate a closure (``start``/``end`` ISO dates, inclusive); returns it or ``[(field, reason), …]``."""
    problems: list[tuple[str, str]] = []
    dates: dict[str, dt.date] = {}
    for name, raw in (("start", raw_from), ("end", raw_to)):
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            problems.append((name, "is required (a date such as 2027-02-05)"))
            continue
        if not isinstance(raw, str):
            problems.append((name, "must be a date string such as 2027-02-05"))
            continue
        try:
            value = dt.date.fromisoformat(raw.strip())
        except ValueError:
            problems.append((name, f"{raw.strip()[:40]!r} is not a date (YYYY-MM-DD)"))
            continue
        if not 2000 <= value.year <= 2100:
            problems.append((name, "year must be within 2000..2100"))
            continue
        dates[name] = value
    reason = "" if raw_reason is None else raw_reason
    if not isinstance(reason, str):
        problems.append(("reason", "must be a string"))
        reason = ""
    elif len(reason.strip()) > MAX_REASON:
        problems.append(("reason", f"at most {MAX_REASON} characters"))
    elif any(ord(ch) < 32 and ch not in "\t" for ch in reason):
        problems.append(("reason", "contains control characters"))
    if len(dates) == 2:
        start, end = dates["start"], dates["end"]
        if end < start:
            problems.append(("end", f"{end} is before start ({start})"))
        elif end < today:
            problems.append(("end", f"{end} is in the past (today is {today} in Beijing)"))
        elif (end - start).days + 1 > MAX_CLOSURE_DAYS:
            problems.append(("end", f"a closure spans at most {MAX_CLOSURE_DAYS} days; for longer, set status "
                                    "temporarily_closed"))
    if problems:
        return None, problems
    return Closure(site_id, dates["start"], dates["end"], reason.strip()), []


def parse_bulk_csv(  # noqa: C901 - one flat pass over every line and field, collecting all problems
    text: str, services: Services, operator: Operator, today: dt.date) -> BulkPlan:
    """Validate a whole bulk file for ``operator``: ``ValidationFailed`` lists every problem (``Forbidden`` when
    the only problems are sites that are not the operator's)."""
    problems: list[tuple[int, Problem]] = []
    forbidden: list[tuple[int, Problem]] = []

    def bad(line: int, field: str, reason: str) -> None:
        problems.append((line, Problem(field, reason, f"line {line}")))

    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")))
    try:
        header = next(reader, None)
    except csv.Error as exc:
        raise ValidationFailed([Problem("header", f"not CSV ({exc})", "line 1")]) from None
    columns = [c.strip() for c in header or []]
    missing = [c for c in COLUMNS if c not in columns]
    extra = [c for c in columns if c not in COLUMNS]
    if header is None or missing or extra or len(set(columns)) != len(columns):
        detail = []
        if missing:
            detail.append(f"missing {', '.join(missing)}")
        if extra:
            detail.append(f"unknown {', '.join(extra)}")
        raise ValidationFailed([Problem("header", f"expected the columns {','.join(COLUMNS)}"
                                        + (f" ({'; '.join(detail)})" if detail else ""), "line 1")])
    at = {name: columns.index(name) for name in COLUMNS}
    rows: list[tuple[int, dict[str, str]]] = []
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            bad(reader.line_num, "row", f"not CSV ({exc})")
            break
        line = reader.line_num
        if not row or all(not c.strip() for c in row):
            continue
        if len(rows) >= MAX_LINES:
            bad(line, "file", f"at most {MAX_LINES} lines per file")
            break
        if len(row) != len(columns):
            bad(line, "row", f"expected {len(columns)} columns, got {len(row)}")
            continue
        rows.append((line, {name: row[i].strip() for name, i in at.items()}))

    hours: dict[str, tuple[int, str]] = {}
    closures: dict[str, list[Closure]] = {}
    lines: dict[str, list[int]] = {}
    for line, rec in rows:
        site_id = rec["site_id"]
        if not site_id:
            bad(line, "site_id", "is required")
            continue
        if len(site_id) > 64:
            bad(line, "site_id", "at most 64 characters")
            continue
        wants_closure = bool(rec["closed_from"] or rec["closed_to"])
        if not rec["opening_hours"] and not wants_closure:
            what = "reason without closed_from/closed_to" if rec["reason"] else "nothing to change"
            bad(line, "row", f"{what}: give opening_hours and/or closed_from + closed_to")
            continue
        lines.setdefault(site_id, []).append(line)
        if rec["opening_hours"]:
            try:
                value = validate_hours(rec["opening_hours"])
            except HoursSyntaxError as exc:
                bad(line, "opening_hours", hours_problem(exc))
            else:
                if site_id in hours and hours[site_id][1] != value:
                    bad(line, "opening_hours", f"differs from line {hours[site_id][0]} for the same site")
                else:
                    hours.setdefault(site_id, (line, value))
        if wants_closure:
            closure, problems_ = check_closure(site_id, rec["closed_from"], rec["closed_to"], rec["reason"], today)
            names = {"start": "closed_from", "end": "closed_to", "reason": "reason"}
            for f, r in problems_:
                bad(line, names[f], r)
            if closure is not None:
                closures.setdefault(site_id, []).append(closure)

    if lines:
        owned = services.accounts.owned_site_ids(operator, list(lines))
        for site_id, site_lines in lines.items():
            if site_id in owned:
                continue
            exists = services.sites.get_site(site_id) is not None
            for line in site_lines:
                if exists:
                    forbidden.append((line, Problem("site_id", f"{site_id} is not one of your sites", f"line {line}")))
                else:
                    bad(line, "site_id", f"no site with id {site_id!r}")
    if not rows and not problems and not forbidden:
        bad(2, "file", "no data lines after the header")
    ordered = [p for _, p in sorted(problems + forbidden, key=lambda x: (x[0], x[1].field))]
    if problems:
        raise ValidationFailed(ordered, note="nothing was changed")
    if forbidden:
        raise Forbidden(f"{len(forbidden)} line(s) name sites that are not yours; nothing was changed",
                        [p.as_json() for p in ordered])
    edits = []
    for site_id in lines:
        fields = {"opening_hours": hours[site_id][1]} if site_id in hours else {}
        edits.append(SiteEdit(site_id, fields=fields, add_closures=closures.get(site_id, [])))
    return BulkPlan(edits, lines)


def describe(results: list[EditResult], plan: BulkPlan) -> list[dict[str, Any]]:
    """Per site, what changed (or would): ``{site_id, name_zh, lines, changes: {field: {before, after}}}``."""
    return [{"site_id": r.before.id, "name_zh": r.before.name_zh, "lines": plan.lines.get(r.before.id, []),
             "version": r.after.version, "changes": r.changes} for r in results]
