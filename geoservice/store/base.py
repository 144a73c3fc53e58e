"""The one ``Store`` interface both backends implement, plus the logic they share.

Backends own persistence and the spatial index; this module owns what must not drift between them: how open
intervals are materialised from the hours engine, what "open when the walker arrives" means, and the
engine fallback for times outside the materialised window.
"""
from __future__ import annotations

import abc
import dataclasses
import datetime as dt
import hashlib
import logging
import threading
import time
from collections.abc import Iterable, Sequence
from typing import Any

from shapely.geometry.base import BaseGeometry

from geoservice.calendar import Calendar, CalendarDay
from geoservice.hours import TZ, HoursEngine, OpenState, local_day_window, now_local
from geoservice.model import AMENITIES, Closure, Site

LOGGER = logging.getLogger(__name__)

# KNN candidates fetched beyond k before re-ranking by exact ellipsoidal distance: the index orders by
# spherical (PostGIS) or chord (embedded) distance, which can swap near-ties with the ellipsoidal order.
RERANK_MARGIN = 16
ENGINE_BATCH = 256


def site_id_for(source_id: str) -> str:
    """Stable public id derived from the source's own id, identical in every store."""
    return "s" + hashlib.sha1(source_id.encode("utf-8")).hexdigest()[:12]


def amenity_mask(amenities: Iterable[str]) -> int:
    """Bit mask of amenity codes (bit i = ``AMENITIES[i]``) for cheap filtering in both stores."""
    mask = 0
    for code in amenities:
        mask |= 1 << AMENITIES.index(code)
    return mask


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
    detour_factor: float = 1.3
    walk_speed_m_per_s: float = 1.25

    def walk_seconds(self, distance_m: float) -> float:
        """Seconds on foot under the walk model."""
        return distance_m * self.detour_factor / self.walk_speed_m_per_s

    def radius_m(self) -> float | None:
        """The tightest straight-line radius implied by ``max_distance_m`` and ``arrive_within_s``."""
        radii = [r for r in (self.max_distance_m,) if r is not None]
        if self.arrive_within_s is not None:
            radii.append(self.arrive_within_s * self.walk_speed_m_per_s / self.detour_factor)
        return min(radii) if radii else None

    def latest_instant(self) -> dt.datetime:
        """The latest moment the open-check may look at (arrival of the slowest walk allowed)."""
        return self.at + dt.timedelta(seconds=self.arrive_within_s or 0)


@dataclasses.dataclass(frozen=True)
class NearestHit:
    """One result: the site, its ellipsoidal geodesic distance in metres, and its state at the query time."""

    site: Site
    distance_m: float
    state: OpenState


@dataclasses.dataclass(frozen=True)
class SiteFilter:
    """Listing filter; ``bbox`` is (lon_min, lat_min, lon_max, lat_max) in WGS-84."""

    bbox: tuple[float, float, float, float] | None = None
    kinds: tuple[str, ...] = ()
    district: str | None = None
    open_at: dt.datetime | None = None
    limit: int = 100
    offset: int = 0


@dataclasses.dataclass
class UpsertResult:
    """What a load did: ids inserted, updated, and left unchanged."""

    inserted: list[str] = dataclasses.field(default_factory=list)
    updated: list[str] = dataclasses.field(default_factory=list)
    unchanged: list[str] = dataclasses.field(default_factory=list)


CONTENT_FIELDS = (
    "source_id", "kind", "name_zh", "name_en", "address", "district_adcode", "lon", "lat", "opening_hours",
    "amenities", "operator", "phone", "notes", "simulated",
)


def same_content(a: Site, b: Site) -> bool:
    """True when a reload would not change the site (coordinates compared at ~1 cm)."""
    for name in CONTENT_FIELDS:
        x, y = getattr(a, name), getattr(b, name)
        if name in ("lon", "lat"):
            if abs(float(x) - float(y)) > 1e-7:
                return False
        elif name == "amenities":
            if sorted(x or []) != sorted(y or []):
                return False
        elif (x or None) != (y or None):
            return False
    return True


class Store(abc.ABC):
    """Persistence and spatial queries for sites, districts, closures and the holiday calendar."""

    backend: str = "abstract"

    def __init__(self, detour_factor: float = 1.3, walk_speed_m_per_s: float = 1.25,
                 window_days: tuple[int, int] = (1, 14)):
        self.window_days = window_days
        self._engine: HoursEngine | None = None
        self._engine_loaded_at = 0.0
        self._engine_lock = threading.Lock()

    # ---- lifecycle -------------------------------------------------------------------------------
    @abc.abstractmethod
    def migrate(self) -> list[str]:
        """Create or upgrade the schema; returns the migrations applied."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release connections."""

    @abc.abstractmethod
    def health(self) -> dict[str, Any]:
        """Check the store answers; raises ``StoreUnavailable`` when it does not."""

    # ---- districts -------------------------------------------------------------------------------
    @abc.abstractmethod
    def replace_districts(self, districts: Sequence[District]) -> None:
        """Replace the district layer in one transaction."""

    @abc.abstractmethod
    def districts(self) -> list[District]:
        """All districts, ordered by adcode."""

    # ---- sites -----------------------------------------------------------------------------------
    @abc.abstractmethod
    def upsert_sites(self, sites: Sequence[Site]) -> UpsertResult:
        """Insert or update by ``source_id`` in one transaction, refreshing the changed sites' intervals."""

    @abc.abstractmethod
    def get_site(self, site_id: str) -> Site | None:
        """One site by public id."""

    @abc.abstractmethod
    def list_sites(self, flt: SiteFilter) -> tuple[list[Site], int]:
        """A page of sites ordered by id, and the total number matching."""

    @abc.abstractmethod
    def count_sites(self) -> dict[str, dict[str, int]]:
        """Counts per district adcode and kind: ``{adcode: {kind: n}}``."""

    # ---- closures and calendar -------------------------------------------------------------------
    @abc.abstractmethod
    def add_closure(self, closure: Closure) -> Closure:
        """Record a closure and refresh that site's intervals in the same transaction."""

    @abc.abstractmethod
    def closures_for(self, site_ids: Sequence[str]) -> dict[str, list[Closure]]:
        """Closures per site id (only ids that have some)."""

    @abc.abstractmethod
    def load_calendar_year(self, year: int, days: Sequence[CalendarDay], source: str) -> None:
        """Replace one year's official schedule and re-materialise every site's intervals."""

    @abc.abstractmethod
    def calendar(self) -> Calendar:
        """The loaded official schedule."""

    # ---- open intervals --------------------------------------------------------------------------
    @abc.abstractmethod
    def refresh_intervals(self, window: tuple[dt.datetime, dt.datetime] | None = None) -> int:
        """Re-materialise all sites' open intervals for ``window`` (default: the rolling window)."""

    @abc.abstractmethod
    def window(self) -> tuple[dt.datetime, dt.datetime] | None:
        """The materialised window, or None before the first refresh."""

    # ---- the nearest query -----------------------------------------------------------------------
    @abc.abstractmethod
    def _nearest_materialised(self, q: NearestQuery) -> list[tuple[Site, float]]:
        """Nearest sites passing every filter, using the materialised intervals for the open check."""

    @abc.abstractmethod
    def _candidates(self, q: NearestQuery, offset: int, count: int) -> list[tuple[Site, float]]:
        """Sites by ascending exact distance passing kind/amenity/radius filters only (no hours)."""

    # ---- shared behaviour ------------------------------------------------------------------------
    @property
    def engine(self) -> HoursEngine:
        """The hours engine over the stored calendar (re-read at most once a minute)."""
        with self._engine_lock:
            if self._engine is None or time.monotonic() - self._engine_loaded_at > 60:
                self._engine = HoursEngine(self.calendar())
                self._engine_loaded_at = time.monotonic()
            return self._engine

    def _invalidate_engine(self) -> None:
        with self._engine_lock:
            self._engine = None

    def default_window(self, today: dt.date | None = None) -> tuple[dt.datetime, dt.datetime]:
        """The rolling window around ``today`` (Asia/Shanghai)."""
        before, after = self.window_days
        return local_day_window(today or now_local().date(), before, after)

    def materialise(self, sites: Iterable[Site], closures: dict[str, list[Closure]],
                    window: tuple[dt.datetime, dt.datetime]) -> list[tuple[str, dt.datetime, dt.datetime]]:
        """Open intervals ``(site_id, start, end)`` of ``sites`` within ``window``, from the hours engine."""
        engine = self.engine
        rows: list[tuple[str, dt.datetime, dt.datetime]] = []
        for site in sites:
            for a, b in engine.intervals(site.opening_hours, window[0], window[1], closures.get(site.id, ())):
                rows.append((site.id, a, b))
        return rows

    def window_is_stale(self) -> bool:
        """True when the rolling window no longer starts where today's would."""
        current = self.window()
        return current is None or current[0] != self.default_window()[0]

    def _in_window(self, q: NearestQuery) -> bool:
        current = self.window()
        return current is not None and current[0] <= q.at and q.latest_instant() < current[1]

    def _open_for_walker(self, state: OpenState, q: NearestQuery, distance_m: float) -> bool:
        if not state.is_open:
            return False
        if q.arrive_within_s is None:
            return True
        arrival = q.at + dt.timedelta(seconds=q.walk_seconds(distance_m))
        return state.open_until is None or arrival < state.open_until

    def nearest(self, q: NearestQuery) -> list[NearestHit]:
        """Nearest sites to ``q`` ordered by distance, each with its open state at ``q.at``."""
        if not q.open_only:
            pairs = self._candidates(q, 0, q.limit)
        elif self._in_window(q):
            pairs = self._nearest_materialised(q)
        else:
            pairs = self._nearest_by_engine(q)
        closures = self.closures_for([s.id for s, _ in pairs])
        engine = self.engine
        return [NearestHit(s, d, engine.state(s.opening_hours, q.at, closures.get(s.id, ()))) for s, d in pairs]

    def _nearest_by_engine(self, q: NearestQuery) -> list[tuple[Site, float]]:
        """Outside the materialised window: walk candidates by distance and ask the engine directly."""
        engine = self.engine
        found: list[tuple[Site, float]] = []
        offset = 0
        while len(found) < q.limit:
            batch = self._candidates(q, offset, ENGINE_BATCH)
            if not batch:
                break
            closures = self.closures_for([s.id for s, _ in batch])
            for site, dist in batch:
                state = engine.state(site.opening_hours, q.at, closures.get(site.id, ()))
                if self._open_for_walker(state, q, dist):
                    found.append((site, dist))
                    if len(found) == q.limit:
                        break
            offset += len(batch)
        return found


def utc_now() -> dt.datetime:
    """Aware current time (UTC) for ``updated_at`` stamps."""
    return dt.datetime.now(dt.UTC)


def as_local(t: dt.datetime) -> dt.datetime:
    """Aware datetime in Asia/Shanghai."""
    return t.astimezone(TZ)
