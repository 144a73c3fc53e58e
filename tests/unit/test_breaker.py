"""The PostGIS store's circuit breaker on its own: fail fast while open, one probe at a time, close on success."""
from __future__ import annotations

import threading
import time

import pytest

from geoservice.errors import StoreUnavailable
from geoservice.store.postgis.breaker import Breaker


class FlakyProbe:
    """Fails ``failures`` times, then succeeds; counts calls and the most probes ever running at once."""

    def __init__(self, failures: int):
        self.failures = failures
        self.calls = 0
        self.running = 0
        self.most_at_once = 0
        self.lock = threading.Lock()

    def __call__(self) -> None:
        with self.lock:
            self.calls += 1
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
        time.sleep(0.01)
        with self.lock:
            self.running -= 1
            if self.calls <= self.failures:
                raise OSError(f"connection refused ({self.calls})")


def wait_until(condition, timeout: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.005)


def test_open_breaker_fails_at_once_until_a_probe_succeeds() -> None:
    probe = FlakyProbe(failures=3)
    breaker = Breaker(probe, backoff=(0.02, 0.04))
    breaker.check()  # closed: nothing happens
    breaker.trip("no connection within 1 s")
    with pytest.raises(StoreUnavailable, match="not reachable"):
        breaker.check()
    assert breaker.state()["state"] == "down"
    wait_until(lambda: breaker.state()["state"] == "up")
    assert probe.calls == 4  # three failures, then the success that closed it
    breaker.check()


def test_many_trips_start_one_probe_and_a_later_outage_starts_another() -> None:
    probe = FlakyProbe(failures=5)
    breaker = Breaker(probe, backoff=(0.01,))
    threads = [threading.Thread(target=breaker.trip, args=("timeout",)) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wait_until(lambda: breaker.state()["state"] == "up")
    assert probe.most_at_once == 1
    assert probe.calls == 6

    probe.failures = probe.calls + 1  # the next outage: one failed probe, then back
    breaker.trip("timeout again")
    assert breaker.state()["state"] == "down"
    wait_until(lambda: breaker.state()["state"] == "up")
    assert probe.calls == 8


def test_stopped_breaker_probes_no_more() -> None:
    probe = FlakyProbe(failures=10**6)
    breaker = Breaker(probe, backoff=(0.01,))
    breaker.trip("down")
    wait_until(lambda: probe.calls >= 2)
    breaker.stop()
    time.sleep(0.05)
    calls = probe.calls
    time.sleep(0.1)
    assert probe.calls == calls
    breaker.trip("after close")  # ignored: the store is closed
    assert probe.calls == calls
