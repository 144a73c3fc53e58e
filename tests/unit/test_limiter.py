"""The shared token-bucket limiter: bucket arithmetic, scopes, the slot table, and sharing between real processes."""
from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from geoservice.limiter import FILENAME, WINDOW, LimiterStateError, SharedLimiter, SharedTable, open_table

ROOT = Path(__file__).resolve().parent.parent.parent
REPORTS = ((5, 60.0), (30, 86400.0))


class Clock:
    """A settable clock."""

    def __init__(self, t: float = 1_000_000.0):
        self.t = t

    def __call__(self) -> float:
        return self.t


def test_buckets_refill_by_minute_and_by_day(tmp_path: Path) -> None:
    now = Clock()
    limiter = SharedLimiter(SharedTable(tmp_path / FILENAME), "reports", REPORTS, clock=now)
    assert [limiter.hit("ip") for _ in range(5)] == [None] * 5
    wait = limiter.hit("ip")
    assert wait == pytest.approx(12.0)  # a token comes back every 60/5 s
    now.t += 12.0
    assert limiter.hit("ip") is None
    for _ in range(24):  # 30 a day: spread out so the minute bucket never runs dry
        now.t += 13.0
        assert limiter.hit("ip") is None
    now.t += 60.0
    wait = limiter.hit("ip")
    assert wait is not None and wait > 60  # the day bucket is empty now
    assert limiter.hit("another-ip") is None


def test_scopes_and_keys_do_not_share_buckets(tmp_path: Path) -> None:
    table = SharedTable(tmp_path / FILENAME)
    a = SharedLimiter(table, "reports", ((2, 60.0),), clock=Clock())
    b = SharedLimiter(table, "public", ((2, 60.0),), clock=Clock())
    assert [a.hit("10.0.0.1") for _ in range(3)][-1] is not None
    assert b.hit("10.0.0.1") is None and a.hit("10.0.0.2") is None


def test_peek_takes_nothing_and_reset_gives_the_allowance_back(tmp_path: Path) -> None:
    limiter = SharedLimiter(SharedTable(tmp_path / FILENAME), "login-account", ((3, 900.0),), clock=Clock())
    assert limiter.peek("alice") is None
    assert [limiter.hit("alice") for _ in range(3)] == [None] * 3
    assert limiter.peek("alice") == pytest.approx(300.0) and limiter.hit("alice") == pytest.approx(300.0)
    limiter.reset("alice")
    assert [limiter.hit("alice") for _ in range(3)] == [None] * 3
    assert limiter.hit("alice") is not None
    assert limiter.hit("bob", cost=3) is None and limiter.hit("bob", cost=0.5) is not None


def test_state_survives_a_restart_and_is_shared_by_every_opener(tmp_path: Path) -> None:
    now = Clock()
    first = SharedLimiter(SharedTable(tmp_path / FILENAME), "reports", ((3, 3600.0),), clock=now)
    assert [first.hit("ip") for _ in range(2)] == [None, None]
    second = SharedLimiter(SharedTable(tmp_path / FILENAME), "reports", ((3, 3600.0),), clock=now)
    assert second.hit("ip") is None and second.hit("ip") is not None
    assert first.hit("ip") is not None
    assert open_table(tmp_path) is open_table(tmp_path)  # one mapping per process and path


def test_a_clock_stepped_back_refills_nothing_and_locks_nobody_out(tmp_path: Path) -> None:
    now = Clock()
    limiter = SharedLimiter(SharedTable(tmp_path / FILENAME), "reports", ((2, 60.0),), clock=now)
    assert [limiter.hit("ip") for _ in range(3)][-1] is not None
    now.t -= 3600.0  # e.g. NTP stepped the clock back an hour
    assert limiter.hit("ip") is not None
    now.t += 30.0
    assert limiter.hit("ip") is None  # refills from the stepped-back time on, not from an hour later


def test_a_full_window_hands_over_the_slot_nearest_to_full(tmp_path: Path,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    now = Clock()
    table = SharedTable(tmp_path / FILENAME, slots=WINDOW)  # one window: every key competes for it
    limiter = SharedLimiter(table, "reports", ((1, 60.0),), clock=now)
    for i in range(WINDOW):
        now.t += 0.001
        assert limiter.hit(f"k{i}") is None
    assert limiter.hit("k5") is not None  # every slot busy, each remembered
    with caplog.at_level(logging.WARNING, logger="geoservice.limiter"):
        now.t += 0.001
        assert limiter.hit("newcomer") is None
    assert "full" in caplog.text
    assert limiter.hit("k0") is None  # k0 was nearest to full: its slot was taken over
    assert limiter.hit("k1") is None  # ... and then k1's, for k0 coming back
    assert limiter.hit("k40") is not None and limiter.hit("newcomer") is not None
    now.t += 61.0  # every bucket is full again: every slot is free, nothing is evicted
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="geoservice.limiter"):
        assert all(limiter.hit(f"other{i}") is None for i in range(WINDOW))
    assert caplog.text == ""


def test_a_file_that_is_not_ours_or_a_folder_that_is_not_writable_is_refused(tmp_path: Path) -> None:
    alien = tmp_path / "alien"
    alien.mkdir()
    (alien / FILENAME).write_bytes(b"SQLite format 3\0" + b"\0" * 4096)
    with pytest.raises(LimiterStateError, match="not a geoservice rate-limit file"):
        SharedTable(alien / FILENAME)
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    with pytest.raises(LimiterStateError, match="GEOSERVICE_RATE_LIMIT_DIR"):
        SharedTable(blocker / "sub" / FILENAME)


def test_bad_limits_are_refused(tmp_path: Path) -> None:
    table = SharedTable(tmp_path / FILENAME)
    for limits in [(), ((0, 60.0),), ((5, 0.0),), tuple((1, 1.0) for _ in range(5))]:
        with pytest.raises(ValueError):
            SharedLimiter(table, "x", limits)


def test_threads_of_one_process_take_exactly_the_capacity(tmp_path: Path) -> None:
    limiter = SharedLimiter(SharedTable(tmp_path / FILENAME), "reports", ((100, 86400.0),))
    accepted: list[int] = []
    start = threading.Barrier(8)

    def worker() -> None:
        start.wait()
        accepted.append(sum(limiter.hit("one-nat-address") is None for _ in range(50)))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(accepted) == 100


CHILD = textwrap.dedent("""
    import os, sys, time
    from pathlib import Path
    from geoservice.limiter import SharedLimiter, open_table

    state, go, hits, forks = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    limiter = SharedLimiter(open_table(state), "reports", ((300, 86400.0),))
    limiter.peek("warm-up")  # the table is mapped BEFORE the forks: children must not share its lock
    children = []
    for _ in range(forks):
        pid = os.fork()
        if pid == 0:
            children = []
            break
        children.append(pid)
    while not go.exists():
        time.sleep(0.001)
    ok = sum(limiter.hit("203.0.113.9") is None for _ in range(hits))
    (state / f"accepted-{os.getpid()}").write_text(str(ok))
    for pid in children:
        os.waitpid(pid, 0)
    os._exit(0)
""")


def test_real_processes_share_one_limit(tmp_path: Path) -> None:
    """4 OS processes (each forking 2 more after mapping the table) hit one key 100 times each at once:
    exactly the capacity (300 of 1,200) gets through, not 300 per process."""
    go = tmp_path / "go"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [subprocess.Popen([sys.executable, "-c", CHILD, str(tmp_path), str(go), "100", "2"], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(4)]
    try:
        # start them together once every process has mapped the table (its file exists once the first has)
        for _ in range(3000):
            if (tmp_path / FILENAME).exists():
                break
            threading.Event().wait(0.01)
        threading.Event().wait(0.5)
        go.touch()
        outputs = [p.communicate(timeout=120) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    assert all(p.returncode == 0 for p in procs), [err for _, err in outputs]
    counts = [int(p.read_text()) for p in tmp_path.glob("accepted-*")]
    assert len(counts) == 12  # 4 processes x (itself + 2 forks)
    assert sum(counts) == 300, counts
