"""Who the store is serving in this request: the one hook through which routes tell any backend the
authenticated account (read replicas pin an account that just wrote to the primary, see
:mod:`geoservice.store.postgis.replicas`). A context variable, so threads and requests never share it."""
from __future__ import annotations

import contextvars

_account: contextvars.ContextVar[str | None] = contextvars.ContextVar("geoservice_account", default=None)


def set_account(name: str | None) -> None:
    """Name the authenticated account of the current request (None: anonymous)."""
    _account.set(name)


def current_account() -> str | None:
    """The account named by :func:`set_account` for this request, if any."""
    return _account.get()
