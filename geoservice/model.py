"""Plain data types shared by every layer: site kinds, the amenity vocabulary, sites and closures.

Everything a courier, operator or planner reads carries a Chinese and an English label here, so the API,
the pages and the maps take their words from one place.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
from enum import StrEnum
from typing import Any


class SiteKind(StrEnum):
    """The three kinds of rest facility the unions run."""

    WARM_STATION = "warm_station"
    MOTHER_BABY_ROOM = "mother_baby_room"
    WORKER_HOME = "worker_home"


KIND_LABELS: dict[str, dict[str, str]] = {
    "warm_station": {"zh": "暖心驿站", "en": "Warm station"},
    "mother_baby_room": {"zh": "母婴关爱室", "en": "Mother-and-baby room"},
    "worker_home": {"zh": "职工之家", "en": "Workers' home"},
}

# The controlled amenity vocabulary. Order is the display order.
AMENITY_LABELS: dict[str, dict[str, str]] = {
    "drinking_water": {"zh": "饮用水", "en": "Drinking water"},
    "hot_water": {"zh": "热水", "en": "Hot water"},
    "heating": {"zh": "取暖", "en": "Heating"},
    "air_conditioning": {"zh": "空调", "en": "Air conditioning"},
    "microwave": {"zh": "微波炉", "en": "Microwave"},
    "toilet": {"zh": "厕所", "en": "Toilet"},
    "charging": {"zh": "充电", "en": "Phone charging"},
    "wifi": {"zh": "无线网络", "en": "Wi-Fi"},
    "seating": {"zh": "座椅", "en": "Seating"},
    "first_aid": {"zh": "急救包", "en": "First-aid kit"},
    "lockers": {"zh": "储物柜", "en": "Lockers"},
    "changing_table": {"zh": "尿布台", "en": "Changing table"},
    "nursing_chair": {"zh": "哺乳椅", "en": "Nursing chair"},
    "fridge": {"zh": "冰箱", "en": "Fridge"},
    "sink": {"zh": "洗手池", "en": "Sink"},
    "wheelchair_accessible": {"zh": "无障碍通行", "en": "Wheelchair accessible"},
}
AMENITIES: tuple[str, ...] = tuple(AMENITY_LABELS)
KINDS: tuple[str, ...] = tuple(k.value for k in SiteKind)

# Weekdays keyed by their OpenStreetMap opening_hours tokens, Monday first (the pages' day names).
WEEKDAY_LABELS: dict[str, dict[str, str]] = {
    "Mo": {"zh": "周一", "en": "Mon"},
    "Tu": {"zh": "周二", "en": "Tue"},
    "We": {"zh": "周三", "en": "Wed"},
    "Th": {"zh": "周四", "en": "Thu"},
    "Fr": {"zh": "周五", "en": "Fri"},
    "Sa": {"zh": "周六", "en": "Sat"},
    "Su": {"zh": "周日", "en": "Sun"},
}


@dataclasses.dataclass
class Site:
    """One rest facility. `lon`/`lat` are WGS-84 degrees; times are timezone-aware."""

    id: str
    kind: str
    name_zh: str
    lon: float
    lat: float
    opening_hours: str
    source_id: str | None = None
    name_en: str | None = None
    address: str | None = None
    district_adcode: str | None = None
    amenities: list[str] = dataclasses.field(default_factory=list)
    operator: str | None = None
    phone: str | None = None
    notes: str | None = None
    simulated: bool = False
    updated_at: dt.datetime | None = None
    verified_at: dt.datetime | None = None
    version: int = 1
    # ``open`` or ``temporarily_closed`` (set by the site's operator; closed until set back, whatever the hours).
    status: str = "open"
    # Fields an operator changed since the last load of the site file: ``{field: {"by": actor, "at": ISO}}``.
    # A reload keeps them (geoservice.store.reload). Managed by the store, never read from files.
    edited_fields: dict[str, dict[str, str]] = dataclasses.field(default_factory=dict)
    # Why the hours could not be evaluated at the last materialisation (the site is then treated as closed).
    hours_problem: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of all fields (datetimes left as objects)."""
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class Closure:
    """An operator's temporary closure: whole days `start`..`end` inclusive, Asia/Shanghai."""

    site_id: str
    start: dt.date
    end: dt.date
    reason: str = ""
    id: int | None = None


# ---- operators' side -----------------------------------------------------------------------------------
# ``temporarily_closed`` acts as an open-ended closure: no open intervals are materialised and the hours
# engine is given a closure covering every date, so the site is closed for every query until set back to open.
SITE_STATUSES: tuple[str, ...] = ("open", "temporarily_closed")
# What an operator may change on a site with PATCH (JSON merge).
EDITABLE_FIELDS: tuple[str, ...] = ("opening_hours", "amenities", "phone", "notes", "status", "name_zh", "name_en")
# What a courier may report about a site.
REPORT_TYPES: tuple[str, ...] = ("closed_on_arrival", "amenity_missing")
ROLES: tuple[str, ...] = ("operator", "admin")
