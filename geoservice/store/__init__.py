"""Storage: one narrow spatial interface per backend (:mod:`.spatial`), dialect-neutral repositories written once
(:mod:`.relational`), and the SQL of both in ``sql/`` loaded by name. :func:`open_spatial` picks the backend."""
from __future__ import annotations

from geoservice.settings import Settings
from geoservice.store.spatial import SpatialStore


def open_spatial(settings: Settings) -> SpatialStore:
    """PostGIS when ``database_url`` is set, otherwise the embedded SQLite store."""
    if settings.database_url:
        from geoservice.store.postgis import PostgisStore

        return PostgisStore(settings.database_url, min_size=settings.pool_min_size,
                            max_size=settings.pool_max_size, timeout=settings.pool_timeout_s,
                            statement_timeout_ms=settings.statement_timeout_ms,
                            read_urls=settings.read_url_list(), replica_max_lag_s=settings.replica_max_lag_s,
                            pgbouncer=settings.pgbouncer, shared_state_dir=settings.shared_state_dir())
    from geoservice.store.embedded import EmbeddedStore

    return EmbeddedStore(settings.embedded_path)
