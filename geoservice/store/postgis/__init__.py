"""The production backend: PostgreSQL + PostGIS (psycopg 3, a pool, a circuit breaker in front of it)."""
from geoservice.store.postgis.store import PostgisStore

__all__ = ["PostgisStore"]
