"""The narrow interface each backend implements: what truly differs between SQLite + an in-memory index and
PostGIS — site reads and writes, districts, the KNN search and the materialised open intervals.

Everything dialect-neutral (accounts, tokens, audit, reports, calendar) is written once in
:mod:`geoservice.store.relational` over the backend's :class:`~geoservice.store.relational.Database`; every
workflow (edits, loads, refreshes, the nearest orchestration and the hours-engine fallback) is written once in
:mod:`geoservice.services.sites` over these two interfaces. Both backends pass the same contract suite
(tests/contract/).
"""
from __future__ import annotations

import abc
import dataclasses
import datetime as dt
from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any

from geoservice.model import Closure, District, LiveView, NearestQuery, Site, SiteChange, SiteFilter
from geoservice.network import Network
from geoservice.store.relational import Database
from geoservice.tiles import TileQuery

Window = tuple[dt.datetime, dt.datetime]
IntervalRow = tuple[str, dt.datetime, dt.datetime]


@dataclasses.dataclass(frozen=True)
class NearestRow:
    """One answer of :meth:`SpatialStore.nearest_open`: the site, its exact (ellipsoidal) distance, and — when the
    backend got them in the same round trip — its closures, its unresolved report count and its live view (the
    stored status, in force or not, and the couriers' mark at the query time)."""

    site: Site
    distance_m: float
    closures: list[Closure] | None = None
    unresolved_reports: int | None = None
    live: LiveView | None = None


class SiteWriter(abc.ABC):
    """The write primitives of one transaction (see :meth:`SpatialStore.writer`)."""

    @abc.abstractmethod
    def lock_site(self, site_id: str) -> Site | None:
        """Read a site and lock it against other writers until the transaction ends."""

    @abc.abstractmethod
    def lock_sites_by_source(self, source_ids: Sequence[str]) -> dict[str, Site]:
        """The stored sites with these source ids, by source id, locked (in id order) until the end."""

    @abc.abstractmethod
    def lock_sites(self, site_ids: Sequence[str]) -> list[Site]:
        """The stored sites with these ids, locked (in id order) against other writers until the end: what a
        workflow reads before writing intervals computed from them (an edit of one of them waits, then sees it)."""

    @abc.abstractmethod
    def sites_by_id(self, site_ids: Sequence[str]) -> list[Site]:
        """The stored sites with these ids, as seen inside the transaction."""

    @abc.abstractmethod
    def site_versions(self) -> dict[str, int]:
        """Every site's current version, by id, as seen inside the transaction."""

    @abc.abstractmethod
    def closures(self, site_id: str) -> list[Closure]:
        """The site's closures as seen inside the transaction."""

    @abc.abstractmethod
    def save_site(self, site: Site, expected_version: int) -> Site:
        """Write editable fields, ``verified_at``, ``edited_fields`` and ``hours_problem`` if the stored version is
        ``expected_version``; new version and ``updated_at``. ``VersionConflict`` when no row matched."""

    @abc.abstractmethod
    def insert_sites(self, sites: Sequence[Site]) -> None:
        """Insert new sites (version 1)."""

    @abc.abstractmethod
    def update_sites(self, sites: Sequence[Site]) -> None:
        """Write the content fields and ``edited_fields`` of loaded sites; new version and ``updated_at``."""

    @abc.abstractmethod
    def set_edit_marks(self, sites: Sequence[Site]) -> None:
        """Write only ``edited_fields`` (no new version: the content did not change)."""

    @abc.abstractmethod
    def set_hours_problems(self, problems: dict[str, str | None]) -> None:
        """Set (or, with None, clear) the ``hours_problem`` flag of these sites (no new version)."""

    @abc.abstractmethod
    def insert_closure(self, closure: Closure) -> Closure:
        """Insert a closure; returns it with its id."""

    @abc.abstractmethod
    def delete_closure(self, site_id: str, closure_id: int) -> None:
        """Delete one closure of the site."""

    @abc.abstractmethod
    def replace_intervals(self, site_ids: Sequence[str], rows: list[IntervalRow]) -> None:
        """Replace these sites' materialised open intervals with ``rows``."""

    @abc.abstractmethod
    def replace_all_intervals(self, rows: list[IntervalRow], window: Window) -> None:
        """Replace every materialised interval and record the window they cover."""

    @abc.abstractmethod
    def set_window_if_missing(self, window: Window) -> None:
        """Record the materialised window when none is recorded yet (the first load)."""

    @abc.abstractmethod
    def append_change(self, site_id: str, actor: str, action: str, changes: dict[str, Any],
                      version: int | None) -> SiteChange:
        """Append one audit entry (never updated or deleted afterwards)."""


class SpatialStore(abc.ABC):
    """Sites, districts, the KNN search and the materialised open intervals of one backend."""

    backend: str = "abstract"
    database: Database
    # The same tables, for reads that must see every committed write at once, even with read replicas:
    # accounts, sessions and tokens (a signed-out session, a revoked token or a new password takes effect
    # on the next request, not after a standby's lag).
    primary_database: Database

    @abc.abstractmethod
    def migrate(self) -> list[str]:
        """Create or upgrade the whole schema; returns the migrations applied."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release connections."""

    @abc.abstractmethod
    def health(self) -> dict[str, Any]:
        """Check the backend answers (``StoreUnavailable`` when it does not) and say how it is."""

    @abc.abstractmethod
    def replace_districts(self, districts: Sequence[District]) -> None:
        """Replace the district layer in one transaction: districts no site refers to and not in ``districts``
        are removed, the others inserted or updated."""

    @abc.abstractmethod
    def districts(self) -> list[District]:
        """All districts, ordered by adcode."""

    @abc.abstractmethod
    def get_site(self, site_id: str) -> Site | None:
        """One site by public id."""

    @abc.abstractmethod
    def sites_by_id(self, site_ids: Sequence[str]) -> list[Site]:
        """The sites with these ids, ordered by id (unknown ids are left out)."""

    @abc.abstractmethod
    def all_sites(self) -> list[Site]:
        """Every site, ordered by id."""

    @abc.abstractmethod
    def list_sites(self, flt: SiteFilter) -> tuple[list[Site], int]:
        """A page of sites by id and the total matching; ``open_at`` (if any) is inside :meth:`window`."""

    @abc.abstractmethod
    def site_tile(self, q: TileQuery) -> bytes:
        """One Mapbox Vector Tile of the sites in tile ``q`` by :mod:`geoservice.tiles`' grouping rule (empty bytes
        when none); ``open_at`` (if any) is inside :meth:`window`."""

    @abc.abstractmethod
    def count_sites(self) -> dict[str, dict[str, int]]:
        """Counts per district adcode and kind: ``{adcode: {kind: n}}``."""

    @abc.abstractmethod
    def closures_for(self, site_ids: Sequence[str]) -> dict[str, list[Closure]]:
        """Closures per site id (only ids that have some), with the open-ended status closure of a
        ``temporarily_closed`` site."""

    @abc.abstractmethod
    def window(self) -> Window | None:
        """The materialised window, or None before the first load or refresh."""

    @abc.abstractmethod
    def nearest_open(self, q: NearestQuery) -> list[NearestRow] | None:
        """Nearest sites passing every filter of ``q``, open by the materialised intervals (at ``q.at``, and at
        the walker's arrival when ``q.arrive_within_s`` is set), exact distance order; None when ``q`` falls
        outside the window."""

    @abc.abstractmethod
    def candidates(self, q: NearestQuery, offset: int, count: int) -> list[tuple[Site, float]]:
        """Sites by exact distance passing the kind, amenity and radius filters only (no hours)."""

    @abc.abstractmethod
    def writer(self, mode: str = "edit") -> AbstractContextManager[SiteWriter]:
        """One write transaction (``edit``, ``bulk`` or ``refresh``, which excludes other writers); reads through
        this store or its database in the same thread meanwhile share it."""

    @abc.abstractmethod
    def save_network(self, network: Network) -> None:
        """Replace the stored walking network with ``network`` in one transaction."""

    @abc.abstractmethod
    def load_network(self) -> Network | None:
        """The stored walking network, or None when none is loaded."""

    def after_bulk_write(self) -> None:  # noqa: B027 - optional hook
        """After a large write (PostGIS refreshes its planner statistics)."""
