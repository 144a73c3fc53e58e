"""Sending one webhook delivery: the endpoint rules, the signature, and one HTTPS POST.

**Endpoints.** ``https://`` only, no user name or password in the URL, no fragment. A host that is a loopback,
private, link-local or otherwise non-public address, or a local name, is refused at registration; every delivery
also resolves the name and refuses a non-public answer, so an admin's typo or a DNS change cannot make the
service post the change feed into the union's own network. ``allow_local`` (the setting
``GEOSERVICE_WEBHOOKS_ALLOW_LOCAL``, for a receiver on the same machine, and for the tests) also admits
``http://`` and local addresses. Not covered: a name that resolves to a public address when checked and to a
private one a moment later (DNS rebinding); deployments that need that closed route deliveries through an
egress proxy.

**Signature.** Each attempt carries ``Geoservice-Signature: t=<unix seconds>,v1=<hex>``, where ``v1`` is
HMAC-SHA256 with the webhook's secret over ``"<t>." + body`` (the raw bytes). A receiver recomputes it, compares
in constant time and refuses a ``t`` more than a few minutes old (:func:`verify`, which partners may copy). The
``Idempotency-Key`` header is the same for every attempt and every replay of one batch: a receiver that has
applied a key answers 2xx again and does nothing.

**Sending.** One POST with a timeout; a 2xx answer is success, anything else (redirects are not followed, proxy
variables are ignored) is a failure with a short reason for the admins.
"""
from __future__ import annotations

import hashlib
import hmac
import ipaddress
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping

from geoservice.validation import Problem

SIGNATURE_HEADER = "Geoservice-Signature"
KEY_HEADER = "Idempotency-Key"
HOOK_HEADER = "Geoservice-Webhook-Id"
MAX_URL_LENGTH = 2000
TOLERANCE_S = 300
USER_AGENT = "geoservice-webhooks/1 (+https://github.com/; change feed deliveries)"


class DeliveryFailed(Exception):
    """A delivery attempt did not get a 2xx answer; the message is the reason shown to admins."""


# Sends one POST (url, body, headers, timeout in seconds); returns the HTTP status, raises DeliveryFailed.
Sender = Callable[[str, bytes, Mapping[str, str], float], int]


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The ``Geoservice-Signature`` header value for ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret.encode("utf-8"), f"{timestamp}.".encode("ascii") + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def verify(secret: str, header: str | None, body: bytes, now: float | None = None,
           tolerance_s: int = TOLERANCE_S) -> bool:
    """True when ``header`` is a signature of ``body`` with ``secret`` made within ``tolerance_s`` of ``now``:
    what a receiving partner checks before trusting a delivery."""
    if not header:
        return False
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    try:
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs((time.time() if now is None else now) - timestamp) > tolerance_s:
        return False
    expected = sign(secret, timestamp, body).rsplit("v1=", 1)[1]
    return hmac.compare_digest(expected, parts.get("v1", ""))


def _public(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    return ip.is_global and not ip.is_multicast


_LOCAL_SUFFIXES = (".localhost", ".local", ".internal", ".lan", ".home.arpa")


def _private(address: str) -> Problem:
    return Problem("url", f"the host is a non-public address ({address}); deliveries go only to public addresses")


def endpoint_problems(url: str, allow_local: bool, resolve: bool = True) -> list[Problem]:
    """Why ``url`` may not receive deliveries (empty when it may): the rules of this module's docstring.
    ``resolve=False`` (registration) checks the name and IP literals only; each delivery also resolves the name
    (a lookup can take seconds, and a name's addresses can change after registration)."""
    if len(url) > MAX_URL_LENGTH:
        return [Problem("url", f"at most {MAX_URL_LENGTH} characters")]
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError as exc:
        return [Problem("url", f"is not a URL ({exc})")]
    schemes = ("https", "http") if allow_local else ("https",)
    if parts.scheme not in schemes:
        return [Problem("url", "must start with https://" if not allow_local else "must be http(s)://")]
    if not parts.hostname:
        return [Problem("url", "has no host")]
    if parts.username is not None or parts.password is not None:
        return [Problem("url", "must not carry a user name or password (the secret signs each delivery)")]
    if parts.fragment:
        return [Problem("url", "must not have a #fragment")]
    if allow_local:
        return []
    host = parts.hostname.rstrip(".").lower()
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        return [] if _public(str(literal)) else [_private(str(literal))]
    if host == "localhost" or host.endswith(_LOCAL_SUFFIXES) or "." not in host:
        return [Problem("url", f"the host {host[:80]!r} is a local name; deliveries go only to public hosts")]
    if not resolve:
        return []
    try:
        found = {str(info[4][0]) for info in socket.getaddrinfo(host, port or 443, type=socket.SOCK_STREAM)}
    except (OSError, UnicodeError):
        return [Problem("url", f"the host {host[:80]!r} does not resolve")]
    private = sorted(a for a in found if not _public(a))
    return [_private(private[0])] if private else []


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirects())


def post(url: str, body: bytes, headers: Mapping[str, str], timeout_s: float) -> int:
    """POST ``body`` to ``url``: the status of a 2xx answer, else ``DeliveryFailed`` with a short reason."""
    req = urllib.request.Request(url, data=body, method="POST",
                                 headers={"Content-Type": "application/json", "User-Agent": USER_AGENT, **headers})
    try:
        with _OPENER.open(req, timeout=timeout_s) as resp:
            resp.read(1024)
            status = int(resp.status)
    except urllib.error.HTTPError as exc:
        raise DeliveryFailed(f"HTTP {exc.code}" + (" (redirects are not followed)" if 300 <= exc.code < 400
                                                   else "")) from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DeliveryFailed(f"no answer: {str(reason)[:160]}") from None
    if not 200 <= status < 300:
        raise DeliveryFailed(f"HTTP {status}")
    return status
