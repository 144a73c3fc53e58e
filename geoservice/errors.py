"""One exception tree for the service. Each class carries its HTTP status, title and any protocol headers, so the
API has one handler (geoservice/api/errors.py) and no module needs another's errors to answer correctly."""
from __future__ import annotations

import math
from typing import Any

REALM = 'Bearer realm="geoservice operators"'


class GeoserviceError(Exception):
    """Base class. ``detail`` is safe to show a client; ``problems`` lists ``{field, reason}``; ``headers`` are
    sent with the answer (Retry-After, WWW-Authenticate, ETag)."""

    status = 500
    title = "Internal error"

    def __init__(self, detail: str = "", problems: list[dict[str, Any]] | None = None,
                 headers: dict[str, str] | None = None):
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.problems = problems or []
        self.headers: dict[str, str] = dict(headers or {})


class InvalidInput(GeoserviceError):
    """Malformed request: a parameter or body that cannot be read (400)."""

    status = 400
    title = "Invalid parameter"


class Unauthorized(GeoserviceError):
    """No usable credentials (401). Says nothing about whether a token exists."""

    status = 401
    title = "Unauthorized"

    def __init__(self, detail: str, invalid: bool = False, realm: str = REALM):
        super().__init__(detail, headers={"WWW-Authenticate": realm + (', error="invalid_token"' if invalid else "")})


class Forbidden(GeoserviceError):
    """Authenticated, but not allowed to do this to this resource (403)."""

    status = 403
    title = "Forbidden"


class NotFound(GeoserviceError):
    """Unknown id (404)."""

    status = 404
    title = "Not found"


class Conflict(GeoserviceError):
    """State conflict (409)."""

    status = 409
    title = "Conflict"


class VersionConflict(GeoserviceError):
    """The site changed since the version the client read (412); ``current`` is the stored version, sent back
    as the ETag so the client can reload and retry."""

    status = 412
    title = "Precondition failed"

    def __init__(self, site_id: str, expected: int, current: int):
        super().__init__(f"site {site_id} is at version {current}, not {expected}: it was changed meanwhile; "
                         "reload it and apply your change again",
                         [{"field": "If-Match", "reason": f"stale version {expected}; current is {current}"}],
                         {"ETag": f'"{current}"'})
        self.current = current


class UnsupportedMediaType(GeoserviceError):
    """A body in a media type the endpoint does not take (415)."""

    status = 415
    title = "Unsupported media type"


class Unprocessable(GeoserviceError):
    """Well-formed but semantically invalid (422)."""

    status = 422
    title = "Unprocessable input"


class PreconditionRequired(GeoserviceError):
    """A write without ``If-Match`` (428): the client must say which version it is changing."""

    status = 428
    title = "Precondition required"


class TooManyRequests(GeoserviceError):
    """Rate limit reached (429); ``Retry-After`` says when the next request will be taken."""

    status = 429
    title = "Too many requests"

    def __init__(self, retry_after: float, what: str = "requests"):
        seconds = max(1, math.ceil(retry_after))
        super().__init__(f"too many {what} from this address; try again in {seconds} s",
                         headers={"Retry-After": str(seconds)})


class NotInstalled(GeoserviceError):
    """A capability whose optional dependencies are not installed (501)."""

    status = 501
    title = "Not installed"


class StoreUnavailable(GeoserviceError):
    """The database cannot be reached (503, with Retry-After)."""

    status = 503
    title = "Store unavailable"

    def __init__(self, detail: str = "", problems: list[dict[str, Any]] | None = None):
        super().__init__(detail, problems, {"Retry-After": "5"})


class FileInvalid(Exception):
    """A user-supplied file failed validation; ``problems`` are ``file:line/feature: field: reason`` lines."""

    def __init__(self, problems: list[str]):
        super().__init__(f"{len(problems)} problem(s)")
        self.problems = problems


class AccountLocked(GeoserviceError):
    """The password was right but the account is locked after too many wrong ones (423): an admin unlocks it."""

    status = 423
    title = "Locked"
