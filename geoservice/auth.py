"""Operators' accounts: bearer tokens, who may touch which site.

A token is ``gso_`` + ``secrets.token_urlsafe(32)`` (256 random bits). It is shown once, when issued, and only
its SHA-256 is stored; a request's token is hashed and looked up by that hash. An unsalted fast hash is enough
for a high-entropy random token (nothing to brute-force), and looking it up by an indexed hash leaks nothing
useful through timing: an attacker cannot choose hash prefixes. The token is never logged, never put in an
error message, and never accepted anywhere but the ``Authorization: Bearer`` header.

Errors never say whether a token exists: an unknown, revoked or malformed token all get the same 401.
"""
from __future__ import annotations

import hashlib
import logging
import re
import secrets

from geoservice.errors import GeoserviceError, NotFound
from geoservice.model import Site
from geoservice.store.base import Operator, Store

LOGGER = logging.getLogger(__name__)

TOKEN_PREFIX = "gso_"
TOKEN_BYTES = 32
# Upper bound on what we even hash: a real token is 47 characters.
MAX_TOKEN_LENGTH = 200
_TOKEN_SHAPE = re.compile(r"^[A-Za-z0-9_\-]+$")
REALM = 'Bearer realm="geoservice operators"'


class Unauthorized(GeoserviceError):
    """No usable credentials (401). Says nothing about whether a token exists."""

    status = 401
    title = "Unauthorized"

    def __init__(self, detail: str, invalid: bool = False):
        super().__init__(detail)
        self.headers = {"WWW-Authenticate": REALM + (', error="invalid_token"' if invalid else "")}


class Forbidden(GeoserviceError):
    """Authenticated, but this is not the operator's site or an admin-only action (403)."""

    status = 403
    title = "Forbidden"


def new_token() -> str:
    """A fresh random token (show it once; store only :func:`token_hash`)."""
    return TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_BYTES)


def token_hash(token: str) -> str:
    """Hex SHA-256 of the token: what the store keeps and looks up."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def bearer_token(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, or None when there is no such header."""
    if not header:
        return None
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    return value.strip()


def authenticate(store: Store, header: str | None) -> Operator:
    """The operator behind a request's ``Authorization`` header; :class:`Unauthorized` otherwise."""
    token = bearer_token(header)
    if token is None:
        raise Unauthorized("this endpoint needs an operator token: send 'Authorization: Bearer <token>'")
    if not token or len(token) > MAX_TOKEN_LENGTH or not _TOKEN_SHAPE.match(token):
        raise Unauthorized("the token is not valid", invalid=True)
    operator = store.operator_for_token(token_hash(token))
    if operator is None:  # unknown and revoked tokens are indistinguishable to the client
        raise Unauthorized("the token is not valid", invalid=True)
    return operator


def require_admin(operator: Operator) -> None:
    """Admin-only actions."""
    if not operator.is_admin:
        raise Forbidden("only union staff (admin accounts) may do this")


def site_for(store: Store, operator: Operator, site_id: str) -> Site:
    """The site if the operator may manage it: 404 when no such site, 403 when it is someone else's."""
    site = store.get_site(site_id) if len(site_id) <= 64 else None
    if site is None:
        raise NotFound(f"no site with id {site_id[:64]!r}")
    if not store.owned_site_ids(operator, [site.id]):
        raise Forbidden(f"site {site.id} is not one of your sites")
    return site
