"""Read replicas: public reads on a healthy hot standby (round robin), everything else on the primary.

A standby is used only while it is reachable, in recovery and its replay lags by at most ``max_lag_s``; its
state is checked lazily, at most once every ``CHECK_INTERVAL_S`` per standby, so a request never waits on a
dead standby for more than one short check. Read-your-writes: after a write by a named account (the one hook,
:func:`geoservice.store.caller.set_account`, names it), the primary's WAL insert position is remembered for
that account for ``PIN_S`` seconds by every worker process on the host (:class:`SharedPositions`, in the file of
:mod:`geoservice.limiter`'s table), and handed back to the caller (the web app signs it into a cookie, so the
caller's next requests, signed in or not, carry it to whichever worker process serves them, on any host); the
caller's reads go to a standby only once that standby's ``pg_last_wal_replay_lsn()`` has reached the later of
the two, else to the primary. A client that keeps no cookies (a script with a bearer token) thus reads its own
writes through any worker of the host that took the write; behind a balancer spreading one account over several
hosts it needs the cookie (or sticky sessions).
"""
from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

import psycopg
from psycopg_pool import ConnectionPool

from geoservice.limiter import LimiterStateError, SharedTable
from geoservice.store.caller import current_account, note_write, reported_write, set_account

__all__ = ["ReplicaRouter", "current_account", "safe_name", "set_account"]

LOGGER = logging.getLogger(__name__)
CHECK_INTERVAL_S = 1.0  # a standby's state is at most this old when a read is routed
CHECK_TIMEOUT_S = 1  # connect_timeout of the state check
PIN_S = 60.0  # how long an account's last write LSN is remembered
POSITION_SCOPE = "write-position"
# Where the shared state cannot be read, an account's reads must see everything: no standby is that far.
EVERYTHING = 1 << 64


def lsn_value(text: str | None) -> int | None:
    """A ``pg_lsn`` text (``'16/B374D848'``) as an integer, for comparisons."""
    if not text:
        return None
    hi, sep, lo = str(text).partition("/")
    try:
        value = (int(hi, 16) << 32) | int(lo, 16)
    except ValueError:
        return None
    return value if sep and len(hi) <= 8 and len(lo) <= 8 else None


class WritePositions(Protocol):
    """Where the router remembers each account's last write position (an LSN as an integer)."""

    def get(self, account: str, now: float) -> int | None:
        """The account's position, while it counts (``PIN_S`` seconds after its last write)."""

    def put(self, account: str, lsn: int, now: float) -> None:
        """Count ``lsn`` for the account from ``now``; a later position still counting is kept."""


class LocalPositions:
    """Each account's last write position, counted for ``PIN_S`` seconds, in this process only."""

    def __init__(self) -> None:
        self._pins: dict[str, tuple[int, float]] = {}
        self._lock = threading.Lock()

    def get(self, account: str, now: float) -> int | None:
        """The account's position, while it counts."""
        with self._lock:
            pin = self._pins.get(account)
        return pin[0] if pin is not None and pin[1] >= now else None

    def put(self, account: str, lsn: int, now: float) -> None:
        """Count ``lsn`` for the account from ``now`` (a later position already counting is kept)."""
        with self._lock:
            old = self._pins.get(account)
            kept = max(lsn, old[0]) if old is not None and old[1] >= now else lsn
            self._pins[account] = (kept, now + PIN_S)
            if len(self._pins) > 10_000:  # expired entries of many accounts
                self._pins = {k: v for k, v in self._pins.items() if v[1] >= now}


class SharedPositions:
    """:class:`LocalPositions` in a :class:`~geoservice.limiter.SharedTable`, so every worker process of the host
    sees a write any of them took. A slot holds the position as two exact 32-bit halves; its ``full_at`` is when
    the position stops counting, after which the slot is free for reuse."""

    def __init__(self, table: SharedTable):
        self.table = table

    def get(self, account: str, now: float) -> int | None:
        try:
            found = self.table.read(self.table.digest(POSITION_SCOPE, account))
        except LimiterStateError as exc:  # e.g. the state folder went away after a fork: read from the primary
            LOGGER.warning("write positions unreadable (%s): this read goes to the primary", exc)
            return EVERYTHING
        if found is None or found[1] < now:
            return None
        return (int(found[0][0]) << 32) | int(found[0][1])

    def put(self, account: str, lsn: int, now: float) -> None:
        def write(old: list[float] | None, at: float) -> tuple[list[float], float]:
            counting = old is not None and at + PIN_S >= now
            kept = max(lsn, (int(old[0]) << 32) | int(old[1])) if old is not None and counting else lsn
            return [float(kept >> 32), float(kept & 0xFFFFFFFF)], now + PIN_S

        try:
            self.table.update(self.table.digest(POSITION_SCOPE, account), now, write)
        except LimiterStateError as exc:  # the write is committed: never fail it here (the cookie still pins)
            LOGGER.warning("write position of %s not shared (%s)", account, exc)


class Standby:
    """One standby: its pool and its last checked state."""

    def __init__(self, url: str, pool: ConnectionPool):
        self.url = url
        self.pool = pool
        self.checked = 0.0
        self.reachable = False
        self.in_recovery = False
        self.lag_s: float | None = None
        self.replay_lsn: int | None = None
        self.behind_since: float | None = None
        self.lock = threading.Lock()

    def refresh(self, kwargs: dict[str, Any]) -> None:
        """Check the standby on a short-lived connection of its own (the pool may be waiting on a dead host)."""
        try:
            with psycopg.connect(self.url, connect_timeout=CHECK_TIMEOUT_S, autocommit=True, **kwargs) as conn:
                row = conn.execute(
                    "SELECT pg_is_in_recovery(), pg_last_wal_replay_lsn()::text,"
                    " COALESCE(pg_last_wal_receive_lsn() > pg_last_wal_replay_lsn(), false),"
                    " COALESCE(EXTRACT(EPOCH FROM clock_timestamp() - pg_last_xact_replay_timestamp()), 0)"
                    ).fetchone()
            assert row is not None
            now = time.monotonic()
            self.reachable, self.in_recovery = True, bool(row[0])
            self.replay_lsn = lsn_value(row[1])
            # Lag: 0 once everything received is replayed; behind, the time since it was first seen behind, capped
            # by the age of the last replayed transaction (small under a steady write load that it keeps up with).
            if not row[2]:
                self.behind_since = None
                lag = 0.0
            else:
                if self.behind_since is None:
                    self.behind_since = now
                lag = min(now - self.behind_since, max(0.0, float(row[3])))
            self.lag_s = lag if row[0] else None
        except (psycopg.Error, OSError) as exc:
            if self.reachable:
                LOGGER.warning("standby %s unreachable: %s", safe_name(self.url), exc)
            self.reachable, self.in_recovery, self.lag_s = False, False, None
        self.checked = time.monotonic()


def safe_name(url: str) -> str:
    """host:port/dbname of a URL (no user or password), for logs and /healthz."""
    from psycopg.conninfo import conninfo_to_dict

    d = conninfo_to_dict(url)
    return f"{d.get('host', '')}:{d.get('port', '')}/{d.get('dbname', '')}"


class ReplicaRouter:
    """Chooses a standby for a read, or None (the primary)."""

    def __init__(self, urls: list[str], max_lag_s: float, make_pool: Callable[[str], ConnectionPool],
                 check_kwargs: dict[str, Any] | None = None,
                 positions: WritePositions | None = None):
        self.max_lag_s = max_lag_s
        self.standbys = [Standby(u, make_pool(u)) for u in urls]
        self._next = itertools.count()
        self.positions: WritePositions = positions if positions is not None else LocalPositions()
        self._check_kwargs = check_kwargs or {}
        self.last_used: Standby | None = None

    def _fresh(self, s: Standby) -> Standby:
        if time.monotonic() - s.checked >= CHECK_INTERVAL_S and s.lock.acquire(blocking=False):
            try:
                s.refresh(self._check_kwargs)
            finally:
                s.lock.release()
        return s

    def healthy(self, s: Standby) -> bool:
        return s.reachable and s.in_recovery and s.lag_s is not None and s.lag_s <= self.max_lag_s

    def choose(self) -> Standby | None:
        """A healthy standby (round robin) that has replayed the current account's last write, or None."""
        if not self.standbys:
            return None
        need = self._pin(current_account())
        start = next(self._next)
        for i in range(len(self.standbys)):
            s = self._fresh(self.standbys[(start + i) % len(self.standbys)])
            if not self.healthy(s):
                continue
            if need is not None and (s.replay_lsn is None or s.replay_lsn < need):
                # The state may be a second old: ask again before sending the writer to the primary.
                s.refresh(self._check_kwargs)
                if s.replay_lsn is None or s.replay_lsn < need:
                    continue
            return s
        return None

    def _pin(self, account: str | None) -> int | None:
        """The position the caller's reads must see: the account's last write here or the one the caller
        reports, whichever is later."""
        reported = lsn_value(reported_write())
        pin = self.positions.get(account, time.time()) if account is not None else None
        known = [v for v in (pin, reported) if v is not None]
        return max(known) if known else None

    def wants_lsn(self) -> bool:
        """True when the current request's writes must be remembered (standbys exist, an account is named)."""
        return bool(self.standbys) and current_account() is not None

    def wrote(self, lsn_text: str) -> None:
        """Remember the primary's WAL position after the current account's write."""
        account, lsn = current_account(), lsn_value(lsn_text)
        if account is None or lsn is None:
            return
        note_write(lsn_text)
        self.positions.put(account, lsn, time.time())

    def status(self) -> list[dict[str, Any]]:
        """Each standby's state for /healthz."""
        out = []
        for s in self.standbys:
            self._fresh(s)
            out.append({"role": "standby", "server": safe_name(s.url), "reachable": s.reachable,
                        "replay_lag_s": None if s.lag_s is None else round(s.lag_s, 3),
                        "in_use": self.healthy(s)})
        return out

    def close(self) -> None:
        for s in self.standbys:
            s.pool.close()
