"""One exception tree for the service; the API maps each class to one HTTP status."""
from __future__ import annotations

from typing import Any


class GeoserviceError(Exception):
    """Base class. ``detail`` is safe to show a client; ``problems`` lists ``{field, reason}``."""

    status = 500
    title = "Internal error"

    def __init__(self, detail: str = "", problems: list[dict[str, Any]] | None = None):
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.problems = problems or []


class InvalidInput(GeoserviceError):
    """Malformed request: a parameter that cannot be read (400)."""

    status = 400
    title = "Invalid parameter"


class Unprocessable(GeoserviceError):
    """Well-formed but semantically invalid (422)."""

    status = 422
    title = "Unprocessable input"


class NotFound(GeoserviceError):
    """Unknown id (404)."""

    status = 404
    title = "Not found"


class Conflict(GeoserviceError):
    """State conflict (409)."""

    status = 409
    title = "Conflict"


class StoreUnavailable(GeoserviceError):
    """The database cannot be reached (503, with Retry-After)."""

    status = 503
    title = "Store unavailable"


class ValidationFailed(Exception):
    """A user-supplied file failed validation; ``problems`` are ``file:line/feature: field: reason`` lines."""

    def __init__(self, problems: list[str]):
        super().__init__(f"{len(problems)} problem(s)")
        self.problems = problems
