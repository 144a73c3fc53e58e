"""The service layer: every workflow of the product, written once over the storage interfaces.

:func:`open_services` picks the backend from the settings (PostGIS when ``database_url`` is set, otherwise the
embedded SQLite store) and returns one :class:`Services`: the site workflows (``sites``), the live status
(``live``), the partners' change feed (``changes``) and webhooks (``webhooks``), and the dialect-neutral
repositories (``accounts``, ``audit``, ``reports``, ``calendars``). Routes, the CLI, the planners' analysis and the
tests all go through it; nothing above this layer talks to a database.
"""
from __future__ import annotations

import dataclasses
from typing import Any

from geoservice.model import Operator
from geoservice.servicearea import AreaLayer
from geoservice.services.accounts import AccountService
from geoservice.services.feed import FeedService
from geoservice.services.live import LiveService
from geoservice.services.scope import Scope
from geoservice.services.sites import SiteService
from geoservice.services.tiles import TileService
from geoservice.services.webhooks import DeliveryPolicy, WebhookService
from geoservice.settings import Settings
from geoservice.store import open_spatial
from geoservice.store.relational import Audit, Calendars, LiveStatuses, Reports, Webhooks
from geoservice.store.spatial import SpatialStore
from geoservice.walk import NetworkWalkModel, WalkModel


@dataclasses.dataclass
class Services:
    """One backend's services."""

    spatial: SpatialStore
    sites: SiteService
    accounts: AccountService
    audit: Audit
    reports: Reports
    calendars: Calendars
    walk: WalkModel
    live: LiveService
    webhooks: WebhookService
    # The service area the settings name (its name goes into the loader's refusals); None for bare test stores.
    area: AreaLayer | None = None

    @classmethod
    def over(cls, spatial: SpatialStore, walk: WalkModel | None = None,
             window_days: tuple[int, int] = (1, 14), area: AreaLayer | None = None,
             delivery: DeliveryPolicy | None = None) -> Services:
        """The services over an opened spatial store."""
        db = spatial.database
        accounts, reports, calendars = AccountService(spatial.primary_database), Reports(db), Calendars(db)
        live = LiveService(LiveStatuses(db), reports)
        sites = SiteService(spatial, calendars, reports, accounts, window_days, live)
        webhooks = WebhookService(Webhooks(db), sites.feed, delivery)
        return cls(spatial, sites, accounts, Audit(db), reports, calendars, walk or WalkModel(), live, webhooks,
                   area)

    def scope(self, operator: Operator) -> Scope:
        """What ``operator`` may see and manage (:mod:`geoservice.services.scope`)."""
        return Scope(operator, self.accounts)

    @property
    def changes(self) -> FeedService:
        """Reading the partners' change feed (written by the site workflows)."""
        return FeedService(self.sites.feed)

    @property
    def tiles(self) -> TileService:
        """Vector tiles of the sites and districts."""
        return TileService(self.sites)

    @property
    def backend(self) -> str:
        """``embedded`` or ``postgis``."""
        return self.spatial.backend

    def migrate(self) -> list[str]:
        """Create or upgrade the schema; returns the migrations applied."""
        return self.spatial.migrate()

    def health(self) -> dict[str, Any]:
        """The backend's health (``StoreUnavailable`` when it does not answer)."""
        return self.spatial.health()

    def use_network(self, snap_m: float = 250.0) -> bool:
        """Walk on the stored walking network from now on (straight line when none is stored); True when one is."""
        network = self.spatial.load_network()
        base = self.walk
        if network is None:
            self.walk = WalkModel(base.detour_factor, base.speed_m_per_min)
            return False
        self.walk = NetworkWalkModel(base.detour_factor, base.speed_m_per_min, network=network, snap_m=snap_m)
        return True

    def close(self) -> None:
        """Release connections."""
        self.spatial.close()


def open_services(settings: Settings) -> Services:
    """The services over the backend the settings name."""
    return Services.over(open_spatial(settings), settings.walk_model(),
                         (settings.window_days_before, settings.window_days_after), settings.area(),
                         DeliveryPolicy(settings.webhook_max_attempts, settings.webhook_retry_base_s,
                                        settings.webhook_retry_cap_s, settings.webhook_batch_size,
                                        settings.webhook_timeout_s, allow_local=settings.webhooks_allow_local))
