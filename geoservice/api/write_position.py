"""Read-your-writes across worker processes, with read replicas: the answer to a write hands the caller the
primary's WAL position after it (the ``gs_wal`` cookie, signed, valid ``WAL_COOKIE_S`` seconds), and the
caller's next requests — to whichever worker — read from a standby only once it has replayed that far
(:mod:`geoservice.store.postgis.replicas`). An operator who saves a site and reloads it, or reads its new ETag,
never sees the version before the save. The signature keeps anyone else from steering reads to the primary.
Without read replicas no cookie is ever set; one sent anyway is checked like any other and changes nothing.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time

from flask import Flask, Response, current_app, request

from geoservice.api.context import services
from geoservice.store.caller import begin_request, written

WAL_COOKIE = "gs_wal"
WAL_COOKIE_S = 60
MAX_COOKIE = 120
_KEY_NAME = "write_position_cookie"


def _key() -> bytes:
    key: bytes | None = current_app.extensions.get("geoservice.write_position_key")
    if key is None:  # one secret in the database, so every worker signs and checks alike
        key = bytes.fromhex(services().reports.secret(_KEY_NAME, lambda: secrets.token_hex(32)))
        current_app.extensions["geoservice.write_position_key"] = key
    return key


def _mac(text: str) -> str:
    digest = hmac.new(_key(), f"geoservice wal v1 {text}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:18]).decode("ascii")


def sign(lsn: str, until: int) -> str:
    """The cookie value for ``lsn``, honoured until the Unix time ``until``."""
    body = f"{lsn}~{until}"
    return f"{body}~{_mac(body)}"


def verified(value: str | None, now: float) -> str | None:
    """The position in a cookie value made by :func:`sign`, if its signature holds and it has not expired."""
    if not value or len(value) > MAX_COOKIE or value.count("~") != 2:
        return None
    lsn, until, mac = value.split("~")
    if not until.isdigit() or int(until) < now or not hmac.compare_digest(_mac(f"{lsn}~{until}"), mac):
        return None
    return lsn


def init_app(app: Flask) -> None:
    """Read the caller's position before each request; hand back the new one after a write."""

    @app.before_request
    def _reported() -> None:
        # Most callers send no cookie at all: then no parsing, and no KeyError raised and caught inside ``get``.
        value = request.cookies.get(WAL_COOKIE) if "HTTP_COOKIE" in request.environ else None
        begin_request(verified(value, time.time()) if value else None)

    @app.after_request
    def _hand_back(resp: Response) -> Response:
        lsn = written()
        if lsn is not None:
            resp.set_cookie(WAL_COOKIE, sign(lsn, int(time.time()) + WAL_COOKIE_S), max_age=WAL_COOKIE_S, path="/",
                            secure=request.is_secure, httponly=True, samesite="Strict")
        return resp
