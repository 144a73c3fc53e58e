"""Token-bucket rate limits whose state is shared by every process of the service on one host.

With N gunicorn workers, buckets kept in each process let N times the configured number through (3 workers let
15 couriers' reports through where 5 were meant). Here the buckets live in one small file, memory-mapped by
every process (``MAP_SHARED``: all see the same pages) and changed only under an exclusive ``flock`` on it, plus
a thread lock for the threads of one process (a ``flock`` is held per open file, not per thread).

Cost, measured by ``bench/bench_ratelimit.py`` (``bench/results_ratelimit.md``) on the 2-core machine while it
was shared with other work (load average 2–7): 8–21 µs per hit warm (one process in a loop), 27–63 µs median
under 3 processes that sleep between hits as request-serving workers do (cold caches; an empty call measured
the same way takes 3–6 µs), p99 0.15–0.46 ms — about 2 % of one nearest request (≈2.6 ms). SQLite in WAL mode
with the same buckets (``BEGIN IMMEDIATE``, ``synchronous=OFF``) took 2–3 times as long (40–50 µs warm,
100–150 µs median under 3 processes), and its busy handler, which polls with sleeps, left single hits waiting
up to 1.3–2.6 s under contention. Cheap enough for the public-read limit too; the remaining tail (p99.9 of
1–2 ms) comes from a lock holder being descheduled on an oversubscribed machine. Libraries checked:
``limits``/``flask-limiter`` share state only through Redis, Memcached or MongoDB; ``pyrate-limiter``'s SQLite
bucket counts every hit of one table whatever the key (a table per client address would be needed) and logs
each hit as a row.

The file (``ratelimits.bin`` in ``GEOSERVICE_RATE_LIMIT_DIR``) is an open-addressing table of fixed-size slots:

* a slot is ``(digest, full_at, at, tokens[4])``: a 128-bit keyed BLAKE2b digest of ``scope`` and ``key`` (the
  hash key is random per file, so nobody can aim many keys at one slot window), the time the buckets are all
  full again, the time of the last hit and the tokens of up to :data:`MAX_LIMITS` buckets;
* a key lives in a window of :data:`WINDOW` slots from its home slot; a slot whose ``full_at`` has passed holds
  nothing a fresh bucket would not, so it is reused; when a whole window is busy, the slot nearest to full is
  taken over (that key starts afresh: only possible when more keys than the table holds are active at once,
  and logged);
* times are wall-clock seconds (``time.time``): they mean the same in every process and after a restart; a clock
  stepped back refills nothing until it catches up, and never locks anyone out.

The state survives restarts of the service (a day's allowance of reports is not reset by a deploy). It needs a
local filesystem (``flock`` over NFS is not reliable). Scopes keep limits apart in one file: ``reports``,
``public``, ``login-account``/``login-address`` for a login throttle (``hit`` on each failed attempt, ``reset``
on success, ``peek`` to refuse before checking a password); read replicas keep each account's last write
position in the same table (scope ``write-position``, :mod:`geoservice.store.postgis.replicas`).
"""
from __future__ import annotations

import fcntl
import hashlib
import logging
import mmap
import os
import secrets
import struct
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

LOGGER = logging.getLogger(__name__)

FILENAME = "ratelimits.bin"
MAGIC = b"GSRLIM01"
MAX_LIMITS = 4
WINDOW = 64
DEFAULT_SLOTS = 1 << 17  # 131,072 keys active at once; 8 MiB, allocated only as pages are touched
_HEADER = struct.Struct("<8sQII16s")  # magic, slots, slot size, max limits, hash key
HEADER_SIZE = 64
_SLOT = struct.Struct(f"<16sdd{MAX_LIMITS}d")
SLOT_SIZE = _SLOT.size  # 64
_FULL_AT = struct.Struct("<d")
WARN_EVERY_S = 60.0


class LimiterStateError(RuntimeError):
    """The shared state file cannot be created or is not ours."""


class SharedTable:
    """The memory-mapped slot table in one file, shared by every process that opens the same path."""

    def __init__(self, path: Path, slots: int = DEFAULT_SLOTS):
        self.path = Path(path)
        self._wanted_slots = max(int(slots), WINDOW)
        self._warned_at = float("-inf")
        self._open()

    def _open(self) -> None:
        self.pid = os.getpid()
        self.lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise LimiterStateError(f"rate-limit state {self.path}: {exc.strerror or exc}; set "
                                    "GEOSERVICE_RATE_LIMIT_DIR to a writable local folder") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                size = os.fstat(fd).st_size
                if size == 0:  # the first process creates it; the others wait on the lock and read its header
                    size = HEADER_SIZE + self._wanted_slots * SLOT_SIZE
                    os.ftruncate(fd, size)
                    os.pwrite(fd, _HEADER.pack(MAGIC, self._wanted_slots, SLOT_SIZE, MAX_LIMITS,
                                               secrets.token_bytes(16)), 0)
                head = os.pread(fd, _HEADER.size, 0)
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
            magic, slots, slot_size, max_limits, hash_key = _HEADER.unpack(head.ljust(_HEADER.size, b"\0"))
            if magic != MAGIC or slot_size != SLOT_SIZE or max_limits != MAX_LIMITS or slots < WINDOW or (
                    size < HEADER_SIZE + slots * SLOT_SIZE):
                raise LimiterStateError(f"rate-limit state {self.path} is not a geoservice rate-limit file "
                                        "(or from another version): move it away and restart")
            self.map = mmap.mmap(fd, HEADER_SIZE + slots * SLOT_SIZE)
        except BaseException:
            os.close(fd)
            raise
        self.fd = fd
        self.slots = int(slots)
        self.hash_key = hash_key

    def _check_fork(self) -> None:
        """After ``fork`` the child shares the parent's open file, hence its ``flock``: open its own."""
        if self.pid != os.getpid():
            self._open()

    def digest(self, scope: str, key: str) -> bytes:
        """The slot key of ``(scope, key)``."""
        return hashlib.blake2b(f"{scope}\0{key}".encode("utf-8", "surrogatepass"), digest_size=16,
                               key=self.hash_key).digest()

    def update(self, digest: bytes, now: float,
               change: Callable[[list[float] | None, float], tuple[list[float], float] | None]) -> None:
        """Run ``change(tokens or None, at)`` on the slot of ``digest`` under the locks and store its result.

        ``change`` returns ``(tokens, full_at)`` to write (with ``at = now``), or None to clear the slot.
        """
        self._check_fork()
        home = HEADER_SIZE + int.from_bytes(digest[:8], "little") % (self.slots - WINDOW + 1) * SLOT_SIZE
        end = home + WINDOW * SLOT_SIZE
        with self.lock:
            fcntl.flock(self.fd, fcntl.LOCK_EX)
            try:
                offset = self._find(home, end, digest)
                if offset is None:
                    offset, evicted = self._free_slot(home, end, now)
                    old = None
                    at = now
                else:
                    _, _, at, *tokens = _SLOT.unpack_from(self.map, offset)
                    old, evicted = tokens, False
                result = change(old, at)
                if result is None:
                    _SLOT.pack_into(self.map, offset, digest, 0.0, 0.0, *([0.0] * MAX_LIMITS))
                else:
                    tokens, full_at = result
                    _SLOT.pack_into(self.map, offset, digest, full_at, now,
                                    *(tokens + [0.0] * (MAX_LIMITS - len(tokens))))
            finally:
                fcntl.flock(self.fd, fcntl.LOCK_UN)
        if evicted and now - self._warned_at > WARN_EVERY_S:
            self._warned_at = now
            LOGGER.warning("rate-limit table %s is full around one slot window: an active key was reset "
                           "(more than %d keys active at once?)", self.path, self.slots)

    def read(self, digest: bytes) -> tuple[list[float], float, float] | None:
        """The tokens, ``full_at`` and ``at`` stored for ``digest``, or None; takes no slot and changes nothing."""
        self._check_fork()
        home = HEADER_SIZE + int.from_bytes(digest[:8], "little") % (self.slots - WINDOW + 1) * SLOT_SIZE
        with self.lock:
            fcntl.flock(self.fd, fcntl.LOCK_SH)
            try:
                offset = self._find(home, home + WINDOW * SLOT_SIZE, digest)
                if offset is None:
                    return None
                _, full_at, at, *tokens = _SLOT.unpack_from(self.map, offset)
            finally:
                fcntl.flock(self.fd, fcntl.LOCK_UN)
        return list(tokens), full_at, at

    def _find(self, home: int, end: int, digest: bytes) -> int | None:
        """The offset of the slot holding ``digest`` in the window ``[home, end)``, if any."""
        pos = self.map.find(digest, home, end)
        while pos >= 0:
            if (pos - home) % SLOT_SIZE == 0:
                return pos
            pos = self.map.find(digest, pos + 1, end)
        return None

    def _free_slot(self, home: int, end: int, now: float) -> tuple[int, bool]:
        """The first reusable slot of the window, else the one nearest to full (evicted)."""
        oldest, oldest_full_at = home, float("inf")
        for offset in range(home, end, SLOT_SIZE):
            (full_at,) = _FULL_AT.unpack_from(self.map, offset + 16)
            if full_at <= now:
                return offset, False
            if full_at < oldest_full_at:
                oldest, oldest_full_at = offset, full_at
        return oldest, True


_tables: dict[tuple[Path, int], SharedTable] = {}
_tables_lock = threading.Lock()


def open_table(directory: Path, slots: int = DEFAULT_SLOTS) -> SharedTable:
    """The table in ``directory`` (created when missing), one per process and path."""
    path = (Path(directory) / FILENAME).resolve()
    with _tables_lock:
        table = _tables.get((path, os.getpid()))
        if table is None:
            table = _tables[(path, os.getpid())] = SharedTable(path, slots)
        return table


class SharedLimiter:
    """Token buckets per key in one scope of a :class:`SharedTable`.

    Each ``(capacity, period_s)`` bucket holds up to ``capacity`` tokens and refills ``capacity`` tokens per
    ``period_s``; a hit takes ``cost`` tokens from every bucket, or none if any has fewer.
    """

    def __init__(self, table: SharedTable, scope: str, limits: Sequence[tuple[int, float]],
                 clock: Callable[[], float] = time.time):
        self.limits = tuple((float(c), float(p)) for c, p in limits)
        if not 1 <= len(self.limits) <= MAX_LIMITS or any(c <= 0 or p <= 0 for c, p in self.limits):
            raise ValueError(f"1 to {MAX_LIMITS} limits of positive (capacity, period_s) are needed")
        self.table = table
        self.scope = scope
        self.clock = clock

    def _refilled(self, old: list[float] | None, at: float, now: float) -> list[float]:
        if old is None:
            return [c for c, _ in self.limits]
        elapsed = max(0.0, now - at)
        return [min(c, t + elapsed * c / p) for t, (c, p) in zip(old, self.limits)]

    def _full_at(self, tokens: list[float], now: float) -> float:
        return now + max((c - t) * p / c for t, (c, p) in zip(tokens, self.limits))

    def _run(self, key: str, cost: float, take: bool) -> float | None:
        now = self.clock()
        wait: list[float | None] = [None]

        def change(old: list[float] | None, at: float) -> tuple[list[float], float]:
            tokens = self._refilled(old, at, now)
            short = [(cost - t) * p / c for t, (c, p) in zip(tokens, self.limits) if t < cost]
            if short:
                wait[0] = max(short)
            elif take:
                tokens = [t - cost for t in tokens]
            return tokens, self._full_at(tokens, now)

        self.table.update(self.table.digest(self.scope, key), now, change)
        return wait[0]

    def hit(self, key: str, cost: float = 1.0) -> float | None:
        """Take ``cost`` tokens for ``key``: None when allowed, else the seconds until it would be."""
        return self._run(key, cost, take=True)

    def peek(self, key: str, cost: float = 1.0) -> float | None:
        """Like :meth:`hit` without taking anything: would ``cost`` tokens be there now?"""
        return self._run(key, cost, take=False)

    def reset(self, key: str) -> None:
        """Give ``key`` its full allowance again (e.g. after a successful login)."""
        self.table.update(self.table.digest(self.scope, key), self.clock(), lambda old, at: None)
