"""The embedded default backend: SQLite (WAL) for storage, an in-memory numpy/KD-tree index for the search."""
from geoservice.store.embedded.store import EmbeddedStore

__all__ = ["EmbeddedStore"]
