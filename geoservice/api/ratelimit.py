"""Per-client rate limits: token buckets in the process, and the limit on public reads (GET/HEAD).

Keys are the client address (``request.remote_addr``). Behind a reverse proxy set ``GEOSERVICE_PROXY_HOPS`` to
the number of proxies in front, so the app reads the client's address from ``X-Forwarded-For`` (Werkzeug's
``ProxyFix``); otherwise every client shares the proxy's allowance. Each worker process keeps its own buckets,
so with N workers the effective limit is up to N times the configured one: enough to damp abuse, not to
account for use. A shared limiter (a PostgreSQL table or the proxy's own limit) is the step after that.
"""
from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Sequence

from flask import Flask, current_app, request

from geoservice.errors import GeoserviceError

# Paths a public client reads; the operators' API has accounts (so a site's /history is not public), /metrics
# and /healthz are for the operator of the service, and static files are cheap.
PUBLIC_PREFIXES = ("/api/v1/sites", "/api/v1/coverage", "/api/v1/districts", "/api/v1/hours", "/ogc", "/maps")
NOT_PUBLIC_SUFFIXES = ("/history",)
PRUNE_EVERY_S = 60.0


def is_public_read(method: str, path: str) -> bool:
    """True for the reads the public limit counts."""
    return (method in ("GET", "HEAD") and path.startswith(PUBLIC_PREFIXES)
            and not path.endswith(NOT_PUBLIC_SUFFIXES))


class TooManyRequests(GeoserviceError):
    """Rate limit reached (429); ``Retry-After`` says when the next request will be taken."""

    status = 429
    title = "Too many requests"

    def __init__(self, retry_after: float, what: str = "requests"):
        seconds = max(1, math.ceil(retry_after))
        super().__init__(f"too many {what} from this address; try again in {seconds} s")
        self.headers = {"Retry-After": str(seconds)}


class RateLimiter:
    """Token buckets per key. Each ``(capacity, period_s)`` bucket holds up to ``capacity`` tokens and refills
    ``capacity`` tokens per ``period_s``; a hit takes one token from every bucket, or none if any is empty."""

    def __init__(self, limits: Sequence[tuple[int, float]],
                 clock: Callable[[], float] = time.monotonic, max_keys: int = 100_000):
        self.limits = tuple((int(c), float(p)) for c, p in limits)
        self.clock = clock
        self.max_keys = max_keys
        self._buckets: dict[str, tuple[list[float], float]] = {}
        self._lock = threading.Lock()
        self._pruned_at = float("-inf")

    def _refilled(self, key: str, now: float) -> list[float]:
        entry = self._buckets.get(key)
        if entry is None:
            return [float(c) for c, _ in self.limits]
        tokens, last = entry
        return [min(float(c), t + (now - last) * c / p) for t, (c, p) in zip(tokens, self.limits)]

    def hit(self, key: str) -> float | None:
        """Take a token for ``key``: None when allowed, else the seconds until it would be."""
        with self._lock:
            now = self.clock()
            tokens = self._refilled(key, now)
            short = [(1.0 - t) * p / c for t, (c, p) in zip(tokens, self.limits) if t < 1.0]
            if short:
                self._buckets[key] = (tokens, now)
                return max(short)
            self._buckets[key] = ([t - 1.0 for t in tokens], now)
            if len(self._buckets) > self.max_keys and now - self._pruned_at > PRUNE_EVERY_S:
                self._prune(now)  # at most once a minute: it scans every key under the lock
            return None

    def _prune(self, now: float) -> None:
        self._pruned_at = now
        full = [k for k in self._buckets
                if all(t >= c for t, (c, _) in zip(self._refilled(k, now), self.limits))]
        for k in full:
            del self._buckets[k]


def init_public_limit(app: Flask, per_minute: int) -> None:
    """429 problem+json with ``Retry-After`` once a client address exceeds ``per_minute`` public reads (a
    minute's worth may come at once); 0 turns the limit off.

    Generous on purpose: couriers on mobile networks share carrier-grade NAT addresses, so one address can be
    many phones; and a GIS client paging through /ogc items asks quickly.
    """
    if per_minute <= 0:
        return
    limiter = RateLimiter(((per_minute, 60.0),))
    app.extensions["geoservice.public_limiter"] = limiter

    @app.before_request
    def _public_limit() -> None:
        if is_public_read(request.method, request.path):
            wait = current_app.extensions["geoservice.public_limiter"].hit(request.remote_addr or "unknown")
            if wait is not None:
                raise TooManyRequests(wait)
