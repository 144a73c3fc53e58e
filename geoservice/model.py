"""The domain types every layer shares: site kinds, the amenity vocabulary, sites, closures, districts, queries
and their answers, accounts, audit entries and couriers' reports.

Everything a courier, operator or planner reads carries a Chinese and an English label here, so the API,
the pages and the maps take their words from one place. Plain dataclasses: no I/O, no framework.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import string
from enum import StrEnum
from typing import Any

from shapely.geometry.base import BaseGeometry

from geoservice.walk import WalkModel


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


def site_id_for(source_id: str) -> str:
    """Stable public id derived from the source's own id, identical in every store."""
    return "s" + hashlib.sha1(source_id.encode("utf-8")).hexdigest()[:12]


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
    # Hours that replace ``opening_hours`` while a matching weather alert covers the site's district:
    # ``{"hours": <opening_hours>, "types": [alert types], "min_level": <alert level>}`` (see ALERT_TYPES).
    alert_hours: dict[str, Any] | None = None

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


# ``temporarily_closed`` is applied to the hours engine as a closure covering every date it can be asked about.
OPEN_ENDED = (dt.date(2000, 1, 1), dt.date(2100, 12, 31))
STATUS_CLOSURE_REASON = "temporarily closed"


def status_closure(site_id: str) -> Closure:
    """The open-ended closure (``id`` None) that stands for ``status = temporarily_closed``.

    The stores' ``closures_for`` includes it for such sites, so every caller that evaluates hours with a site's
    closures (the nearest query's engine fallback, listings outside the window, coverage analysis) treats the
    site as closed without knowing about the status.
    """
    return Closure(site_id, OPEN_ENDED[0], OPEN_ENDED[1], STATUS_CLOSURE_REASON)


def effective_closures(site: Site, closures: list[Closure] | tuple[Closure, ...]) -> list[Closure]:
    """The closures the hours engine must apply: the site's own, plus the open-ended one while it is
    ``temporarily_closed`` (added once)."""
    out = list(closures)
    if site.status == "temporarily_closed" and not any(c.id is None and c.start == OPEN_ENDED[0] for c in out):
        out.append(status_closure(site.id))
    return out


# ---- operators' side -----------------------------------------------------------------------------------
# ``temporarily_closed`` acts as an open-ended closure: no open intervals are materialised and the hours
# engine is given a closure covering every date, so the site is closed for every query until set back to open.
SITE_STATUSES: tuple[str, ...] = ("open", "temporarily_closed")
# What an operator may change on a site with PATCH (JSON merge).
EDITABLE_FIELDS: tuple[str, ...] = ("opening_hours", "amenities", "phone", "notes", "status", "name_zh", "name_en",
                                    "alert_hours")
# What a courier may report about a site.
REPORT_TYPES: tuple[str, ...] = ("closed_on_arrival", "amenity_missing")
# operator: assigned sites; district_admin: the districts (adcodes) of the account; admin: union staff, the city.
ROLES: tuple[str, ...] = ("operator", "district_admin", "admin")


# ---- weather alerts (issue 14 item 1) -------------------------------------------------------------------------
# Admins declare alerts over districts; a site's ``alert_hours`` replace its hours while a matching one is in force.
ALERT_TYPE_LABELS: dict[str, dict[str, str]] = {
    "cold_wave": {"zh": "寒潮", "en": "Cold wave"},
    "heat": {"zh": "高温", "en": "Heat"},
    "rainstorm": {"zh": "暴雨", "en": "Rainstorm"},
    "gale": {"zh": "大风", "en": "Gale"},
    "blizzard": {"zh": "暴雪", "en": "Blizzard"},
}
ALERT_TYPES: tuple[str, ...] = tuple(ALERT_TYPE_LABELS)
# Lowest first: a trigger's ``min_level`` matches that level and every later one.
ALERT_LEVEL_LABELS: dict[str, dict[str, str]] = {
    "blue": {"zh": "蓝色", "en": "Blue"},
    "yellow": {"zh": "黄色", "en": "Yellow"},
    "orange": {"zh": "橙色", "en": "Orange"},
    "red": {"zh": "红色", "en": "Red"},
}
ALERT_LEVELS: tuple[str, ...] = tuple(ALERT_LEVEL_LABELS)
OPEN_REASON_LABELS: dict[str, dict[str, str]] = {
    "hours": {"zh": "正常开放时间", "en": "Regular hours"},
    "alert_hours": {"zh": "预警延时开放", "en": "Extended hours (alert)"},
}
ALERT_MAX_LENGTH = dt.timedelta(days=14)  # an alert's end is at most this long after its start
ALERT_MAX_DISTRICTS = 32


@dataclasses.dataclass(frozen=True)
class Alert:
    """A weather alert over some districts, in force from ``start`` until ``end`` (exclusive)."""

    id: int
    type: str
    level: str
    districts: tuple[str, ...]
    start: dt.datetime
    end: dt.datetime
    created_by: str = ""
    created_at: dt.datetime | None = None

    def triggers(self, site: Site) -> bool:
        """True when this alert covers ``site``'s district and matches its alert hours' types and minimum level."""
        rule = site.alert_hours
        if not rule or site.district_adcode not in self.districts or self.type not in rule.get("types", ()):
            return False
        return ALERT_LEVELS.index(self.level) >= ALERT_LEVELS.index(rule.get("min_level", "blue"))


# ---- live status (issue 14) --------------------------------------------------------------------------------
# What an operator (or a device at the site) says about the site right now, for a while: ``closed_now`` takes it
# out of open-only answers, ``full`` keeps it listed but marked and ranked after non-full sites within
# FULL_TOLERANCE_M. A state lasts LIVE_DEFAULT_TTL unless the post says otherwise, never more than LIVE_MAX_TTL,
# and is read against the query's time: an expired state is simply no longer there.
LIVE_STATES: tuple[str, ...] = ("open", "full", "closed_now")
LIVE_STATE_LABELS: dict[str, dict[str, str]] = {
    "open": {"zh": "正常开放", "en": "Open"},
    "full": {"zh": "满员", "en": "Full"},
    "closed_now": {"zh": "暂停开放", "en": "Closed now"},
}
LIVE_DEFAULT_TTL = dt.timedelta(hours=2)
LIVE_MAX_TTL = dt.timedelta(hours=12)
# A full site ranks as if it were this many metres (straight line, as distance_m) farther than it is.
FULL_TOLERANCE_M = 300.0
# "May be closed": this many "closed when I arrived" reports from different clients within MAY_BE_CLOSED_WINDOW,
# received after the operator last posted or cleared a status, mark the site until the marks are that old.
MAY_BE_CLOSED_REPORTS = 3
MAY_BE_CLOSED_WINDOW = dt.timedelta(hours=2)
MAX_SEATS = 10_000


@dataclasses.dataclass(frozen=True)
class LiveStatus:
    """A site's posted state: in force from ``posted_at`` until ``expires_at`` (exclusive). A cleared status is
    stored as one that expired when it was posted (its ``posted_at`` is when the operator last confirmed)."""

    site_id: str
    state: str
    posted_at: dt.datetime
    expires_at: dt.datetime
    seats_free: int | None = None
    capacity: int | None = None
    posted_by: str = ""

    def active_at(self, t: dt.datetime) -> bool:
        """True while the state is in force at ``t``."""
        return self.posted_at <= t < self.expires_at


@dataclasses.dataclass(frozen=True)
class MayBeClosed:
    """Couriers' "closed when I arrived" marks on a site: how many different clients, and the first one's time."""

    reports: int
    since: dt.datetime


@dataclasses.dataclass(frozen=True)
class LiveView:
    """What the public answers say about a site now: its status in force (or None) and the couriers' marks."""

    status: LiveStatus | None = None
    may_be_closed: MayBeClosed | None = None


# ---- what the stores and services pass around ------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class OpenState:
    """Whether a site is open at a moment, and the next change within the hours engine's look-ahead.

    ``open_until`` is None for a site open beyond the horizon (e.g. ``24/7``); ``next_open`` is None for a
    closed site that does not open within it. ``problem`` is set (and the site reported closed) when its hours
    could not be evaluated.
    """

    is_open: bool
    open_until: dt.datetime | None
    next_open: dt.datetime | None
    problem: str | None = None
    # Why it is open: "hours" (its normal hours) or "alert_hours" (a weather alert's extended hours); None closed.
    # Not compared: two states open over the same span are the same state, whatever the reason.
    reason: str | None = dataclasses.field(default=None, compare=False)


@dataclasses.dataclass(frozen=True)
class District:
    """A district polygon with its census population."""

    adcode: str
    name_zh: str
    name_en: str
    area_km2: float
    population_2020: int
    geometry: BaseGeometry


@dataclasses.dataclass(frozen=True)
class NearestQuery:
    """A nearest-open request, already validated. Coordinates are WGS-84; ``at`` is timezone-aware.

    ``arrive_within_s`` caps the walking time and requires the site to stay open until the walker arrives.
    """

    lon: float
    lat: float
    at: dt.datetime
    kinds: tuple[str, ...] = ()
    amenities: tuple[str, ...] = ()
    limit: int = 5
    max_distance_m: float | None = None
    arrive_within_s: float | None = None
    open_only: bool = True
    walk: WalkModel = dataclasses.field(default_factory=WalkModel)

    def walk_seconds(self, distance_m: float) -> float:
        """Seconds on foot under the walk model."""
        return self.walk.seconds(distance_m)

    def radius_m(self) -> float | None:
        """The tightest straight-line radius implied by ``max_distance_m`` and ``arrive_within_s``."""
        radii = [r for r in (self.max_distance_m,) if r is not None]
        if self.arrive_within_s is not None:
            radii.append(self.walk.radius_m(self.arrive_within_s / 60.0))
        return min(radii) if radii else None

    def latest_instant(self) -> dt.datetime:
        """The latest moment the open-check may look at (arrival of the slowest walk allowed)."""
        return self.at + dt.timedelta(seconds=self.arrive_within_s or 0)

    def answered_by(self, window: tuple[dt.datetime, dt.datetime] | None) -> bool:
        """True when a materialised ``window`` answers this query: from ``at`` to the slowest arrival it allows."""
        return window is not None and window[0] <= self.at and self.latest_instant() < window[1]


@dataclasses.dataclass(frozen=True)
class NearestHit:
    """One result: the site, its ellipsoidal geodesic distance in metres, its state at the query time, and how
    many couriers' problem reports about it are unresolved, and its live status and couriers' marks."""

    site: Site
    distance_m: float
    state: OpenState
    unresolved_reports: int = 0
    live: LiveView = dataclasses.field(default_factory=LiveView)
    # With a walking network: the metres walked (network, or straight line × detour on a fallback), which model
    # measured them and, on a fallback, why. None/"straight_line"/None without a network.
    route_m: float | None = None
    walk_model: str = "straight_line"
    walk_reason: str | None = None


# "Opens soonest" (Alternatives) looks at the nearest ALTERNATIVE_CANDIDATES sites matching the query's kinds and
# amenities within its radius, and never farther than ALTERNATIVE_RADIUS_M: bounded work, and a walk a courier takes.
ALTERNATIVE_RADIUS_M = 5_000.0
ALTERNATIVE_CANDIDATES = 50


@dataclasses.dataclass(frozen=True)
class Alternatives:
    """What a courier can do when a nearest-open query finds nothing: the matching site nearby that opens
    soonest (closed at the query's time), and the nearest site open now of any kind, amenities and distance.
    Either is None when there is none."""

    opens_soonest: NearestHit | None
    nearest_open_any: NearestHit | None


@dataclasses.dataclass(frozen=True)
class SiteFilter:
    """Listing filter; ``bbox`` is (lon_min, lat_min, lon_max, lat_max) in WGS-84."""

    bbox: tuple[float, float, float, float] | None = None
    kinds: tuple[str, ...] = ()
    district: str | None = None
    open_at: dt.datetime | None = None
    limit: int = 100
    offset: int = 0


@dataclasses.dataclass(frozen=True)
class ReloadConflict:
    """A field where the loaded file and an operator's later edit disagree."""

    site_id: str
    source_id: str
    field: str
    operator_value: Any
    file_value: Any
    edited_by: str
    edited_at: str
    overwritten: bool = False

    def describe(self) -> str:
        """``field: kept the operator's value (edited 2026-11-30 by X)`` or the overwrite's wording."""
        day = self.edited_at[:10]
        if self.overwritten:
            return (f"{self.field}: overwrote the operator's value {self.operator_value!r} (edited {day} by "
                    f"{self.edited_by}) with the file's {self.file_value!r}")
        return f"{self.field}: kept the operator's value (edited {day} by {self.edited_by})"


@dataclasses.dataclass
class UpsertResult:
    """What a load did: ids inserted, updated, and left unchanged; fields kept (or, with ``overwrite_edits``,
    overwritten) because an operator edited them since the last load; sites whose hours could not be evaluated."""

    inserted: list[str] = dataclasses.field(default_factory=list)
    updated: list[str] = dataclasses.field(default_factory=list)
    unchanged: list[str] = dataclasses.field(default_factory=list)
    conflicts: list[ReloadConflict] = dataclasses.field(default_factory=list)
    hours_problems: dict[str, str] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class RefreshResult:
    """What a refresh wrote: the number of intervals, the window, and every site skipped with its problem."""

    intervals: int
    window: tuple[dt.datetime, dt.datetime]
    problems: dict[str, str] = dataclasses.field(default_factory=dict)


def verification_stale(verified_at: dt.datetime | None, now: dt.datetime, stale_after_days: int) -> bool:
    """Whether a site's details are too old to trust without a check: never verified, or verified more than
    ``stale_after_days`` days before ``now`` (couriers are warned; union staff see it in their stale list)."""
    return verified_at is None or now - verified_at > dt.timedelta(days=stale_after_days)


@dataclasses.dataclass(frozen=True)
class Operator:
    """A station operator (``role='operator'``: only assigned sites), a district's staff (``'district_admin'``,
    with its districts' adcodes) or union staff (``'admin'``: all sites)."""

    id: int
    name: str
    role: str
    created_at: dt.datetime | None = None
    site_count: int = 0
    active_tokens: int = 0
    # Set when the request's token is limited to one site: it may only post or clear that site's live status.
    token_site: str | None = None
    login: str | None = None  # case-folded; None: the account cannot sign in with a password
    has_password: bool = False
    locked: bool = False  # too many wrong passwords in a row: an admin unlocks it
    districts: tuple[str, ...] = ()  # a district_admin's adcodes
    disabled: bool = False  # its tokens, password and sessions do not work until it is enabled again
    home_district: str | None = None  # an operator account created by a district admin: that district

    @property
    def is_admin(self) -> bool:
        """Admins see and edit every site and manage operators."""
        return self.role == "admin"

    @property
    def is_manager(self) -> bool:
        """Union staff of the city or of districts: they use the admin console and API."""
        return self.role in ("admin", "district_admin")


@dataclasses.dataclass(frozen=True)
class TokenInfo:
    """A token's bookkeeping; the token itself is never stored (only its SHA-256)."""

    id: int
    operator: str
    label: str
    created_at: dt.datetime
    revoked_at: dt.datetime | None = None
    site_id: str | None = None  # the one site the token is limited to, if any


# Kinds of change-feed entries (geoservice.services.feed): about a site, or (alert, alert_removed) a weather alert.
FEED_KINDS = ("added", "changed", "live_status", "removed", "alert_hours", "alert", "alert_removed")


# Change-feed cursors as partners see them: the entry number in base 36 (opaque to partners).
CURSOR_PATTERN = r"^[0-9a-z]{1,12}$"
_DIGITS = string.digits + string.ascii_lowercase


def encode_cursor(seq: int) -> str:
    """A cursor as partners see it (base 36 of the entry number)."""
    out = ""
    while True:
        seq, d = divmod(seq, 36)
        out = _DIGITS[d] + out
        if seq == 0:
            return out


def decode_cursor(text: str) -> int:
    """The entry number of a cursor (``ValueError`` when it is not one)."""
    return int(text, 36)


@dataclasses.dataclass(frozen=True)
class FeedEntry:
    """One change-feed entry: its cursor (``seq``), the site (or, for ``alert``/``alert_removed``, the weather
    alert ``alert_id``), the kind of change, when, and the resulting public state: the site's feature, or the
    alert's public object (None for a removal)."""

    seq: int
    site_id: str | None
    kind: str
    at: dt.datetime
    feature: dict[str, Any] | None
    alert_id: int | None = None


@dataclasses.dataclass(frozen=True)
class Webhook:
    """A partner's endpoint sent the change feed (its secret is never part of it): how far it has been delivered,
    the open batch being retried, and how many batches gave up and wait in the dead letters."""

    id: int
    url: str
    created_by: str
    created_at: dt.datetime
    delivered_through: int
    batch_through: int | None
    attempts: int
    next_attempt_at: dt.datetime | None
    last_error: str | None
    last_success_at: dt.datetime | None
    dead_letters: int


@dataclasses.dataclass(frozen=True)
class DeadLetter:
    """A batch of feed entries (cursors ``first_seq``..``last_seq``) a webhook gave up on, and why."""

    id: int
    webhook_id: int
    first_seq: int
    last_seq: int
    attempts: int
    last_error: str
    failed_at: dt.datetime
    replay_requested_at: dt.datetime | None
    replayed_at: dt.datetime | None


@dataclasses.dataclass(frozen=True)
class SiteChange:
    """One audit entry: ``changes`` is ``{field: {"before": x, "after": y}}`` (JSON values)."""

    id: int
    site_id: str
    actor: str
    at: dt.datetime
    action: str
    changes: dict[str, dict[str, Any]]
    version: int | None


@dataclasses.dataclass(frozen=True)
class Report:
    """A courier's report about a site. Nothing about the reporter is kept (the store keeps a keyed hash of
    the client's address for two hours, to count different clients; never the address)."""

    site_id: str
    type: str
    observed_at: dt.datetime
    amenity: str | None = None
    note: str | None = None
    lang: str | None = None
    id: int | None = None
    received_at: dt.datetime | None = None
    resolved_at: dt.datetime | None = None
    resolved_by: str | None = None
    resolution_note: str | None = None


@dataclasses.dataclass
class SiteEdit:
    """One site's pending change: field values, closures to add and to remove, a verification stamp.

    ``expected_version`` (from the client's ``If-Match``) makes the write conditional: it happens only if the
    site is still at that version when it is locked for writing.
    """

    site_id: str
    fields: dict[str, Any] = dataclasses.field(default_factory=dict)
    add_closures: list[Closure] = dataclasses.field(default_factory=list)
    remove_closures: list[int] = dataclasses.field(default_factory=list)
    verify_at: dt.datetime | None = None
    expected_version: int | None = None


@dataclasses.dataclass
class EditResult:
    """What an edit did (or, in a dry run, would do) to one site."""

    before: Site
    after: Site
    changes: dict[str, dict[str, Any]]
    closures: list[Closure]
    added: list[Closure] = dataclasses.field(default_factory=list)
    change: SiteChange | None = None
