"""Storage backends behind one interface; ``open_store`` picks one from the settings."""
from __future__ import annotations

from geoservice.settings import Settings
from geoservice.store.base import Store


def open_store(settings: Settings) -> Store:
    """PostGIS when ``database_url`` is set, otherwise the embedded SQLite store."""
    common = {
        "detour_factor": settings.detour_factor,
        "walk_speed_m_per_s": settings.walk_speed_m_per_min / 60.0,
        "window_days": (settings.window_days_before, settings.window_days_after),
    }
    if settings.database_url:
        from geoservice.store.postgis import PostgisStore

        return PostgisStore(settings.database_url, min_size=settings.pool_min_size,
                            max_size=settings.pool_max_size, timeout=settings.pool_timeout_s,
                            statement_timeout_ms=settings.statement_timeout_ms, **common)
    from geoservice.store.embedded import EmbeddedStore

    return EmbeddedStore(settings.embedded_path, **common)
