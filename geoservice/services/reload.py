"""What a (re)load of a site file does to each site, without losing what operators edited since the last load.

A site file (``geoservice load``) is the union staff's master list; operators keep their own sites current
through the API (hours, names, phone, notes, amenities). Every field an operator changes is recorded in the
site's ``edited_fields`` (``{field: {"by": actor, "at": ISO time}}``) in the same transaction as the edit. A
reload then takes, field by field:

* the file's value, when no operator edited the field since the last load;
* the operator's value, when one did and the file says something else — reported as a *conflict*
  (``file:line N: field: kept the operator's value (edited 2026-11-30 by X)``); with ``overwrite_edits`` the
  file's value wins instead, the field is no longer marked, and the audit entry says ``load-overwrite``;
* either, when the file now agrees with the operator: the field is no longer marked, so the file's later
  changes flow again.

Coordinates, kind, address, district, operator and the ``simulated`` flag are never edited by operators and
always come from the file. The site's operator-set ``status`` and its closures are never touched by a load.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence
from typing import Any

from geoservice.model import EDITABLE_FIELDS, ReloadConflict, Site

# Content a file carries; the order is the audit's and the conflict report's.
CONTENT_FIELDS = (
    "source_id", "kind", "name_zh", "name_en", "address", "district_adcode", "lon", "lat", "opening_hours",
    "amenities", "operator", "phone", "notes", "simulated", "alert_hours",
)
# File fields an operator can also edit (status is the operator's alone, not a file field).
OPERATOR_FIELDS = tuple(f for f in CONTENT_FIELDS if f in EDITABLE_FIELDS)


def jsonable(value: Any) -> Any:
    """A field value as the audit trail stores it (ISO text for times, lists for sequences)."""
    if isinstance(value, dt.datetime):
        return value.isoformat(timespec="seconds")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value


def field_value(site: Site, name: str) -> Any:
    """A site field in its canonical comparable form (amenities sorted, empty text as None)."""
    value = getattr(site, name)
    if name == "amenities":
        return sorted(value or [])
    if isinstance(value, str):
        return value or None
    return value


def same_value(name: str, a: Any, b: Any) -> bool:
    """Equality of two canonical field values (coordinates at ~1 cm)."""
    if name in ("lon", "lat"):
        return abs(float(a) - float(b)) <= 1e-7
    return bool(a == b)


@dataclasses.dataclass
class ReloadPlan:
    """What a load will write: new sites, changed sites with their audit changes, conflicts."""

    inserts: list[Site] = dataclasses.field(default_factory=list)
    # (site to write, {field: {before, after}}, audit action)
    updates: list[tuple[Site, dict[str, dict[str, Any]], str]] = dataclasses.field(default_factory=list)
    # sites whose content is unchanged but whose edit marks were cleared (the file caught up)
    marks_cleared: list[Site] = dataclasses.field(default_factory=list)
    unchanged: list[str] = dataclasses.field(default_factory=list)
    conflicts: list[ReloadConflict] = dataclasses.field(default_factory=list)


def plan_reload(sites: Sequence[Site], existing: dict[str, Site], overwrite_edits: bool = False) -> ReloadPlan:
    """Decide, site by site and field by field, what loading ``sites`` does (``existing`` by source id)."""
    plan = ReloadPlan()
    for new in sites:
        old = existing.get(new.source_id or "")
        if old is None:
            plan.inserts.append(new)
            continue
        merged, changes, marks, conflicts = _merge(old, new, overwrite_edits)
        plan.conflicts.extend(conflicts)
        if changes:
            action = "load-overwrite" if any(c.overwritten for c in conflicts) else "load"
            plan.updates.append((dataclasses.replace(merged, edited_fields=marks), changes, action))
        elif marks != old.edited_fields:
            plan.marks_cleared.append(dataclasses.replace(old, edited_fields=marks))
        else:
            plan.unchanged.append(old.id)
    return plan


def _merge(old: Site, new: Site, overwrite: bool
           ) -> tuple[Site, dict[str, dict[str, Any]], dict[str, dict[str, str]], list[ReloadConflict]]:
    """The site after loading ``new`` over ``old``: (site, audit changes, remaining edit marks, conflicts)."""
    values: dict[str, Any] = {}
    changes: dict[str, dict[str, Any]] = {}
    marks = dict(old.edited_fields)
    conflicts: list[ReloadConflict] = []
    for name in CONTENT_FIELDS:
        before, wanted = field_value(old, name), field_value(new, name)
        mark = marks.get(name)
        if same_value(name, before, wanted):
            marks.pop(name, None)  # the file agrees with the operator now
            continue
        if mark is not None:
            conflicts.append(ReloadConflict(old.id, old.source_id or "", name, jsonable(before), jsonable(wanted),
                                            str(mark.get("by", "?")), str(mark.get("at", "")), overwrite))
            if not overwrite:
                continue
            marks.pop(name)
        values[name] = getattr(new, name)
        if name != "source_id":
            changes[name] = {"before": jsonable(before), "after": jsonable(wanted)}
    merged = dataclasses.replace(old, **values)
    return merged, changes, marks, conflicts
