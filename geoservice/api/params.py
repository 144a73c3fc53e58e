"""Query-parameter parsing: every check names the parameter and the reason, before anything reaches a store."""
from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Sequence

from flask import Request

from geoservice.errors import InvalidInput, NotFound, Unprocessable
from geoservice.geo import DATUMS
from geoservice.hours import TZ, now_local


def _bad(name: str, reason: str, status: int = 400) -> InvalidInput | Unprocessable:
    cls = InvalidInput if status == 400 else Unprocessable
    return cls(f"{name}: {reason}", [{"field": name, "reason": reason}])


def check_known(req: Request, allowed: Sequence[str]) -> None:
    """Reject unknown and empty query parameters (a typo or a blank should not silently mean the default)."""
    unknown = [k for k in req.args if k not in allowed]
    if unknown:
        raise _bad(unknown[0], f"unknown parameter; allowed: {', '.join(allowed)}")
    for key, value in req.args.items(multi=True):
        if value.strip() == "":
            raise _bad(key, "is empty; omit the parameter to use its default")


_SITE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")


def site_id(raw: str) -> str:
    """A site id from the URL, checked before any store sees it: anything that cannot be an id is a 404."""
    if not _SITE_ID.match(raw):
        raise NotFound(f"no site with id {raw[:64]!r}")
    return raw


def get_float(req: Request, name: str, required: bool = False, lo: float | None = None,
              hi: float | None = None, default: float | None = None) -> float | None:
    """A finite float within ``[lo, hi]``."""
    raw = req.args.get(name)
    if raw is None or raw.strip() == "":
        if required:
            raise _bad(name, "is required")
        return default
    try:
        value = float(raw)
    except ValueError:
        raise _bad(name, f"{raw[:40]!r} is not a number") from None
    if not math.isfinite(value):
        raise _bad(name, "must be a finite number")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise _bad(name, f"{value:g} is outside {lo:g}..{hi:g}", 422)
    return value


def get_int(req: Request, name: str, default: int, lo: int, hi: int, out_of_range_status: int = 422) -> int:
    """An integer within ``[lo, hi]``; out of range is 422 unless a standard asks otherwise (OGC: 400)."""
    raw = req.args.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise _bad(name, f"{raw[:40]!r} is not an integer") from None
    if not lo <= value <= hi:
        raise _bad(name, f"{value} is outside {lo}..{hi}", out_of_range_status)
    return value


def get_choices(req: Request, name: str, allowed: Sequence[str]) -> tuple[str, ...]:
    """Repeatable and/or comma-separated values from a vocabulary."""
    values: list[str] = []
    for raw in req.args.getlist(name):
        values.extend(v.strip() for v in raw.split(",") if v.strip())
    unknown = [v for v in values if v not in allowed]
    if unknown:
        raise _bad(name, f"unknown value {unknown[0][:40]!r}; allowed: {', '.join(allowed)}", 422)
    return tuple(dict.fromkeys(values))


def get_time(req: Request, name: str, default_now: bool = True) -> dt.datetime | None:
    """ISO 8601 time; without an offset it is read as Asia/Shanghai local time."""
    raw = req.args.get(name)
    if raw is None or raw.strip() == "" or raw.strip().lower() == "now":
        return now_local() if default_now else None
    text = raw.strip().replace(" ", "T", 1)
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        raise _bad(name, f"{raw[:40]!r} is not an ISO 8601 time such as 2026-11-23T22:40 or "
                         "2026-11-23T22:40+08:00") from None
    if not 2000 <= value.year <= 2100:
        raise _bad(name, "year must be within 2000..2100", 422)
    return value.replace(tzinfo=TZ) if value.tzinfo is None else value.astimezone(TZ)


def get_bool(req: Request, name: str, default: bool) -> bool:
    """true/false, 1/0, yes/no."""
    raw = req.args.get(name)
    if raw is None or raw == "":
        return default
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise _bad(name, f"{raw[:40]!r} is not true or false")


def get_datum(req: Request, name: str = "crs") -> str:
    """The coordinate datum of inputs and outputs."""
    raw = (req.args.get(name) or "wgs84").strip().lower().replace("-", "")
    if raw not in DATUMS:
        raise _bad(name, f"{raw[:40]!r} is not one of {', '.join(DATUMS)}", 422)
    return raw


def get_bbox(req: Request, name: str = "bbox") -> tuple[float, float, float, float] | None:
    """``lon_min,lat_min,lon_max,lat_max``."""
    raw = req.args.get(name)
    if raw is None or raw.strip() == "":
        return None
    try:
        parts = [float(p) for p in raw.split(",")]
    except ValueError:
        raise _bad(name, "must be four numbers lon_min,lat_min,lon_max,lat_max") from None
    if len(parts) != 4 or not all(math.isfinite(p) for p in parts):
        raise _bad(name, "must be four numbers lon_min,lat_min,lon_max,lat_max")
    x0, y0, x1, y1 = parts
    if not (-180 <= x0 <= x1 <= 180 and -90 <= y0 <= y1 <= 90):
        raise _bad(name, "must satisfy -180 <= lon_min <= lon_max <= 180 and -90 <= lat_min <= lat_max <= 90", 422)
    return x0, y0, x1, y1
