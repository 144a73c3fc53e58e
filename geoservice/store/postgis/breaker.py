"""A circuit breaker in front of the PostGIS connection pool, so an outage costs each request a second at most.

After the pool could not hand out a working connection in time, every request fails at once
(``StoreUnavailable``, 503 with Retry-After) instead of each waiting for the pool in turn, and threads never pile
up behind a dead database; one background probe at a time checks whether the database is back
(bench/results_outage.md has the before/after).
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from geoservice.errors import StoreUnavailable

LOGGER = logging.getLogger(__name__)
PROBE_BACKOFF_S = (0.5, 1.0, 2.0)  # pauses between probes while the database is down (the last one repeats)


class Breaker:
    """Circuit breaker in front of the pool: after the pool could not hand out a working connection in time,
    every request fails at once (``StoreUnavailable``, 503) instead of each waiting for the pool in turn, and
    threads never pile up behind a dead database. One background probe at a time checks whether the database is
    back (``probe`` is called after each pause of ``backoff``); the first success closes the breaker.
    """

    def __init__(self, probe: Callable[[], None], backoff: Sequence[float] = PROBE_BACKOFF_S):
        self._probe = probe
        self._backoff = tuple(backoff)
        self._lock = threading.Lock()
        self._down_since: float | None = None  # monotonic time the breaker opened; None while closed
        self._reason = ""
        self._prober: threading.Thread | None = None
        self._stopped = threading.Event()

    def check(self) -> None:
        """Raise ``StoreUnavailable`` at once while the database is known to be down."""
        since = self._down_since
        if since is not None:
            raise StoreUnavailable(f"the database is not reachable (for {time.monotonic() - since:.0f} s); "
                                   "try again shortly")

    def state(self) -> dict[str, Any]:
        """``{"state": "up"}`` or ``{"state": "down", "down_for_s": …, "reason": …}``, without any I/O."""
        since = self._down_since
        if since is None:
            return {"state": "up"}
        return {"state": "down", "down_for_s": round(time.monotonic() - since, 1), "reason": self._reason}

    def trip(self, reason: str) -> None:
        """Open the breaker (if it is not already) and make sure one probe is running."""
        with self._lock:
            if self._stopped.is_set():
                return
            if self._down_since is None:
                self._down_since = time.monotonic()
                LOGGER.warning("PostGIS down, failing fast until it answers again: %s", reason)
            self._reason = reason
            if self._prober is None:
                self._prober = threading.Thread(target=self._probe_loop, name="postgis-probe", daemon=True)
                self._prober.start()

    def _probe_loop(self) -> None:
        attempt = 0
        while not self._stopped.wait(self._backoff[min(attempt, len(self._backoff) - 1)]):
            attempt += 1
            try:
                self._probe()
            except Exception as exc:
                self._reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                continue
            with self._lock:
                down_for = time.monotonic() - (self._down_since or time.monotonic())
                self._down_since = None
                self._prober = None  # under the lock: a trip() from now on starts a new probe
            LOGGER.warning("PostGIS answers again after %.1f s", down_for)
            return
        with self._lock:
            self._prober = None

    def stop(self) -> None:
        """No more probes (the store is closing)."""
        self._stopped.set()
