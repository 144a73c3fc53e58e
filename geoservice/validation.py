"""One vocabulary for what is wrong with an input, whatever the entrance.

Every validator — layer files, operators' bulk files, PATCH bodies, couriers' reports, calendar files, settings —
collects :class:`Problem` records (``field``, ``reason`` and, for files, ``where``: ``line 3``, ``feature 2``,
``sheet 站点, row 4``) and raises one :class:`ValidationFailed` with all of them. The HTTP edge turns that into a
422 problem+json whose ``errors`` are the records; the CLI prints one ``FILE:WHERE: field: reason`` line each.
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping
from typing import Any

from geoservice.errors import GeoserviceError


@dataclasses.dataclass(frozen=True)
class Problem:
    """One thing wrong with an input: which field, why, and where in a file (None for a request)."""

    field: str
    reason: str
    where: str | None = None
    # More for a client to act on (e.g. an opening_hours error's ``column`` and ``expected``).
    extra: Mapping[str, Any] | None = dataclasses.field(default=None, compare=False)

    def line(self, source: str | None = None) -> str:
        """``source:where: field: reason`` (the parts that exist)."""
        head = ":".join(p for p in (source, self.where) if p)
        return f"{head}: {self.field}: {self.reason}" if head else f"{self.field}: {self.reason}"

    def as_json(self) -> dict[str, Any]:
        """An entry of a problem+json ``errors`` list."""
        out: dict[str, Any] = {"field": self.field, "reason": self.reason}
        if self.where is not None:
            out["where"] = self.where
        out.update({k: v for k, v in (self.extra or {}).items() if k not in out})
        return out


class ValidationFailed(GeoserviceError):
    """An input failed validation; ``problems`` lists every problem found (422 at the HTTP edge)."""

    status = 422
    title = "Unprocessable input"

    def __init__(self, problems: Iterable[Problem], source: str | None = None, note: str = ""):
        self.items = list(problems)
        self.source = source
        shown = "; ".join(p.line() for p in self.items[:5]) + ("; …" if len(self.items) > 5 else "")
        head = f"{len(self.items)} problem(s)" + (f", {note}" if note else "")
        super().__init__(f"{head}: {shown}", [p.as_json() for p in self.items])

    def lines(self) -> list[str]:
        """One ``source:where: field: reason`` line per problem, for the CLI."""
        return [p.line(self.source) for p in self.items]


class Problems:
    """A collector: validators add every problem they find, then ``raise_if_any`` once."""

    def __init__(self, source: str | None = None):
        self.source = source
        self.items: list[Problem] = []

    def add(self, field: str, reason: str, where: str | None = None) -> None:
        """Record one problem."""
        self.items.append(Problem(field, reason, where))

    def extend(self, problems: Iterable[Problem]) -> None:
        """Record several problems."""
        self.items.extend(problems)

    def __bool__(self) -> bool:
        return bool(self.items)

    def raise_if_any(self) -> None:
        """Raise :class:`ValidationFailed` with everything collected, if anything was."""
        if self.items:
            raise ValidationFailed(self.items, self.source)


def parse_bbox(text: str, field: str = "--bbox") -> tuple[float, float, float, float]:
    """``W,S,E,N`` in WGS-84 degrees, west < east and south < north (the network loader's ``--bbox``)."""
    parts = text.split(",")
    try:
        values = [float(p) for p in parts]
    except ValueError:
        values = []
    if len(values) != 4 or not all(math.isfinite(v) for v in values):
        raise ValidationFailed([Problem(field, f"expected four numbers W,S,E,N, not {text[:60]!r}")])
    w, s, e, n = values
    if not (-180 <= w < e <= 180 and -90 <= s < n <= 90):
        raise ValidationFailed([Problem(field, "needs -180 <= W < E <= 180 and -90 <= S < N <= 90")])
    return w, s, e, n
def validate_alert_hours(value: Any) -> dict[str, Any] | None:
    """A site's ``alert_hours`` (``{"hours", "types", "min_level"}``) checked and normalised, or None to clear it.

    ``hours`` is checked exactly as ``opening_hours`` is (:func:`geoservice.hours.validate_hours`, including what
    the syntax allows but the engine cannot evaluate); ``types`` is a non-empty list of alert types; ``min_level``
    an alert level. Raises ``ValueError`` naming the member (``alert_hours.hours: …``)."""
    from geoservice.hours import HoursSyntaxError, validate_hours
    from geoservice.model import ALERT_LEVELS, ALERT_TYPES

    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ValueError("must be an object {hours, types, min_level} or null")
    unknown = [str(k)[:40] for k in value if k not in ("hours", "types", "min_level")]
    if unknown:
        raise ValueError(f"unknown member {', '.join(unknown[:5])}; allowed: hours, types, min_level")
    hours = value.get("hours")
    if not isinstance(hours, str):
        raise ValueError("hours: is required, an opening_hours expression such as '24/7'")
    try:
        hours = validate_hours(hours)
    except HoursSyntaxError as exc:
        raise ValueError(f"hours: {exc}") from None
    types = value.get("types")
    if not isinstance(types, list) or not types or not all(isinstance(t, str) for t in types):
        raise ValueError(f"types: must be a non-empty list of alert types ({', '.join(ALERT_TYPES)})")
    bad = [t[:40] for t in types if t not in ALERT_TYPES]
    if bad:
        raise ValueError(f"types: unknown {', '.join(bad[:5])}; allowed: {', '.join(ALERT_TYPES)}")
    level = value.get("min_level", "blue")
    if level not in ALERT_LEVELS:
        raise ValueError(f"min_level: must be one of {', '.join(ALERT_LEVELS)}")
    return {"hours": hours, "types": sorted(dict.fromkeys(types), key=ALERT_TYPES.index), "min_level": level}
