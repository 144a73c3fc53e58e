"""Who the store is serving in this request: the one hook through which routes tell any backend the
authenticated account, and what that caller has already written (read replicas keep an account that just wrote
on the primary until a standby has replayed the write, see :mod:`geoservice.store.postgis.replicas`). Context
variables, so threads and requests never share them."""
from __future__ import annotations

import contextvars

_account: contextvars.ContextVar[str | None] = contextvars.ContextVar("geoservice_account", default=None)
# The primary's WAL position (pg_lsn text) after the caller's latest write, as the caller itself reports it
# (a signed cookie, geoservice/api/write_position.py: it may have written through another worker process), and
# as this request's writes leave it.
_reported: contextvars.ContextVar[str | None] = contextvars.ContextVar("geoservice_reported_write", default=None)
_written: contextvars.ContextVar[str | None] = contextvars.ContextVar("geoservice_written", default=None)


def set_account(name: str | None) -> None:
    """Name the authenticated account of the current request (None: anonymous)."""
    _account.set(name)


def begin_request(reported: str | None) -> None:
    """A new request: the position its caller reports (already verified), and nothing written yet."""
    _reported.set(reported)
    _written.set(None)


def current_account() -> str | None:
    """The account named by :func:`set_account` for this request, if any."""
    return _account.get()


def reported_write() -> str | None:
    """The position :func:`begin_request` was given for this request."""
    return _reported.get()


def note_write(lsn: str) -> None:
    """Record the position after a write of this request, for the answer to hand back to the caller."""
    _written.set(lsn)


def written() -> str | None:
    """The position after this request's latest write, if it wrote."""
    return _written.get()
