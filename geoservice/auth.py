"""Bearer tokens for operators' accounts: how they are made, hashed and checked.

A token is ``gso_`` + ``secrets.token_urlsafe(32)`` (256 random bits). It is shown once, when issued, and only
its SHA-256 is stored; a request's token is hashed and looked up by that hash. An unsalted fast hash is enough
for a high-entropy random token (nothing to brute-force), and looking it up by an indexed hash leaks nothing
useful through timing: an attacker cannot choose hash prefixes. The token is never logged, never put in an
error message, and never accepted anywhere but the ``Authorization: Bearer`` header.

Errors never say whether a token exists: an unknown, revoked or malformed token all get the same 401.

A browser session (the operators' page, signed in with a password) is the same idea: its id is 256 random bits
in an ``HttpOnly`` cookie, and only the id's SHA-256 is stored. Its CSRF token is derived from the id
(HMAC-SHA256 keyed by it), so it is never stored either, is the same in every worker, and cannot be turned back
into the id; the page reads it from ``GET /api/v1/session`` and sends it as ``X-CSRF-Token``.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from typing import Protocol

from geoservice.errors import Forbidden, Unauthorized
from geoservice.model import Operator

TOKEN_PREFIX = "gso_"
TOKEN_BYTES = 32
# Upper bound on what we even hash: a real token is 47 characters.
MAX_TOKEN_LENGTH = 200
_TOKEN_SHAPE = re.compile(r"^[A-Za-z0-9_\-]+$")


class TokenLookup(Protocol):
    """Who holds a token, by its hash (the accounts repository)."""

    def for_token(self, token_sha256: str) -> Operator | None: ...


def new_token() -> str:
    """A fresh random token (show it once; store only :func:`token_hash`)."""
    return TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_BYTES)


SESSION_BYTES = 32
MAX_SESSION_LENGTH = 100


def new_session_id() -> str:
    """A fresh random session id (the cookie's value; store only :func:`token_hash` of it)."""
    return secrets.token_urlsafe(SESSION_BYTES)


def csrf_token(session_id: str) -> str:
    """The CSRF token of a session: HMAC-SHA256 keyed by the session id, URL-safe base64."""
    digest = hmac.new(session_id.encode("utf-8"), b"geoservice csrf v1", hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")


def csrf_matches(session_id: str, sent: str | None) -> bool:
    """Whether ``sent`` is the session's CSRF token (constant-time)."""
    return sent is not None and hmac.compare_digest(csrf_token(session_id).encode(), sent.encode("utf-8"))


def plausible_session_id(value: str | None) -> bool:
    """A cookie value worth looking up (the shape of :func:`new_session_id`)."""
    return bool(value) and len(value or "") <= MAX_SESSION_LENGTH and bool(_TOKEN_SHAPE.match(value or ""))


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


def authenticate(accounts: TokenLookup, header: str | None) -> Operator:
    """The operator behind a request's ``Authorization`` header; :class:`Unauthorized` otherwise."""
    token = bearer_token(header)
    if token is None:
        raise Unauthorized("this endpoint needs an operator token: send 'Authorization: Bearer <token>'")
    if not token or len(token) > MAX_TOKEN_LENGTH or not _TOKEN_SHAPE.match(token):
        raise Unauthorized("the token is not valid", invalid=True)
    operator = accounts.for_token(token_hash(token))
    if operator is None:  # unknown and revoked tokens are indistinguishable to the client
        raise Unauthorized("the token is not valid", invalid=True)
    return operator


def require_admin(operator: Operator) -> None:
    """Admin-only actions."""
    if not operator.is_admin:
        raise Forbidden("only union staff (admin accounts) may do this")
