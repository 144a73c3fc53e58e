"""The production server setup with real processes and sockets: slow clients, proxy limits, metrics.

``geoservice serve --workers 3 --threads 1`` (granian) on its own, and behind nginx with the shipped
docs/nginx/geoservice.conf. Attack connections send one header line (or one body byte) every second and are
kept open while normal requests are made; those must get their full, correct answer, and the attackers must
eventually be cut by the server's own timeouts. No timing is asserted beyond generous client timeouts.
"""
from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tools.servers import NginxProcess, ServeProcess, get

NEAREST = "/api/v1/sites/nearest?lat=39.9289&lon=116.4160&at=2026-11-23T10:00&amenity=toilet&limit=3"
CLIENT_TIMEOUT = 15.0  # generous: an unblocked server answers in milliseconds
CUT_WITHIN = 60.0  # the server's timeouts are 10 s; this only bounds the test


class Attacker:
    """One slow connection on its own thread: ``opening`` bytes, then ``drip`` every second until the server
    closes the connection (``cut``) or the test stops it."""

    def __init__(self, port: int, opening: bytes, drip: Callable[[int], bytes]):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.opening, self.drip = opening, drip
        self.cut = threading.Event()
        self.stop = threading.Event()
        self.sent = 0
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.sock.sendall(self.opening)
            while not self.stop.wait(1.0):
                self.sock.sendall(self.drip(self.sent))
                self.sent += 1
                self.sock.settimeout(0.01)
                try:
                    if self.sock.recv(4096) == b"":  # orderly close by the server
                        break
                except TimeoutError:
                    pass  # still open, nothing to read
                finally:
                    self.sock.settimeout(5)
        except OSError:
            pass  # reset by the server
        if not self.stop.is_set():
            self.cut.set()

    def alive(self) -> bool:
        return self.thread.is_alive() and not self.cut.is_set()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)
        self.sock.close()


def slow_head(port: int) -> Attacker:
    """Slowloris: a request head that never ends, one header line a second."""
    return Attacker(port, b"GET /api/v1/vocabulary HTTP/1.1\r\nHost: slow\r\n", lambda n: b"X-Slow-%d: 1\r\n" % n)


def stalled_body(port: int) -> Attacker:
    """A complete POST head announcing 1,000 bytes of body, four of them a second apart, then nothing."""
    head = (b"POST /api/v1/sites/s0/reports HTTP/1.1\r\nHost: slow\r\nContent-Type: application/json\r\n"
            b"Content-Length: 1000\r\n\r\n")
    return Attacker(port, head, lambda n: b" " if n < 4 else b"")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    """The recommended server setup over a fresh embedded store with the bundled demo network."""
    tmp = tmp_path_factory.mktemp("slow")
    (tmp / "metrics").mkdir()
    env = {"GEOSERVICE_EMBEDDED_PATH": str(tmp / "demo.sqlite"), "GEOSERVICE_PUBLIC_RATE_PER_MINUTE": "0",
           "PROMETHEUS_MULTIPROC_DIR": str(tmp / "metrics"), "GEOSERVICE_METRICS_PUBLIC": "true"}
    with ServeProcess(["--workers", "3", "--threads", "1"], env=env, log=tmp / "serve.log") as server:
        yield server


def expected_answer(port: int) -> list[str]:
    status, _, body = get(port, NEAREST, timeout=CLIENT_TIMEOUT)
    assert status == 200
    ids = [f["id"] for f in json.loads(body)["features"]]
    assert len(ids) == 3
    return ids


def check_served_under_attack(port: int, attackers: list[Attacker], expected: list[str]) -> None:
    """While every attacker is still connected: normal requests get the full, correct answer."""
    time.sleep(2.5)  # the attackers have sent their opening and a couple of drips
    assert all(a.alive() for a in attackers), "an attacker was cut before the normal requests were made"
    for _ in range(5):
        status, headers, body = get(port, NEAREST, timeout=CLIENT_TIMEOUT)
        assert status == 200 and headers["content-type"].startswith("application/geo+json")
        assert [f["id"] for f in json.loads(body)["features"]] == expected
        status, _, body = get(port, "/static/js/app.js", timeout=CLIENT_TIMEOUT)
        assert status == 200 and len(body) > 100
    assert all(a.alive() for a in attackers), "the attackers must still be connected for this to mean anything"


def wait_all_cut(attackers: list[Attacker]) -> None:
    deadline = time.monotonic() + CUT_WITHIN
    while time.monotonic() < deadline and not all(a.cut.is_set() for a in attackers):
        time.sleep(0.5)
    cut = sum(a.cut.is_set() for a in attackers)
    assert cut == len(attackers), f"only {cut} of {len(attackers)} slow connections were cut by the server"


def test_granian_serves_others_during_slowloris_and_cuts_slow_heads(served: ServeProcess) -> None:
    expected = expected_answer(served.port)
    attackers = [slow_head(served.port) for _ in range(20)]
    try:
        check_served_under_attack(served.port, attackers, expected)
        wait_all_cut(attackers)
        assert min(a.sent for a in attackers) >= 5, "cut by the header timeout, not refused at once"
    finally:
        for a in attackers:
            a.close()


@pytest.fixture(scope="module")
def nginx(served: ServeProcess) -> Iterator[NginxProcess]:
    """nginx from Debian with the shipped site config, in front of the served app."""
    with NginxProcess(f"127.0.0.1:{served.port}") as proxy:
        yield proxy


def test_nginx_in_front_buffers_slow_heads_and_stalled_bodies_then_cuts_them(nginx: NginxProcess) -> None:
    expected = expected_answer(nginx.port)
    # Three stalled bodies would each hold one of the three app threads if they reached the app (granian waits
    # for a body as long as the client likes); nginx reads them itself.
    attackers = [slow_head(nginx.port) for _ in range(20)] + [stalled_body(nginx.port) for _ in range(3)]
    try:
        check_served_under_attack(nginx.port, attackers, expected)
        wait_all_cut(attackers)
    finally:
        for a in attackers:
            a.close()


def test_nginx_refusals_are_problem_json(nginx: NginxProcess) -> None:
    """The shipped config's own limits answer like the app does (problem+json), before the app is involved."""
    with socket.create_connection(("127.0.0.1", nginx.port), timeout=CLIENT_TIMEOUT) as s:
        s.sendall(b"POST /api/v1/sites/s0/reports HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Content-Length: 6000000\r\n\r\n")
        answer = s.recv(4096)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413") and b"application/problem+json" in head
    assert json.loads(body)["status"] == 413
    status, headers, body = get(nginx.port, "/api/v1/vocabulary?" + "x" * 20000, timeout=CLIENT_TIMEOUT)
    assert status == 414 and headers["content-type"] == "application/problem+json"
    assert json.loads(body)["status"] == 414
    with socket.create_connection(("127.0.0.1", nginx.port), timeout=CLIENT_TIMEOUT) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n")
        answer = s.recv(4096)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 431") and b"application/problem+json" in head
    assert json.loads(body)["status"] == 431


def test_app_answers_pass_through_nginx_unchanged(nginx: NginxProcess) -> None:
    """The proxy's error pages apply to its own refusals only: the app's problem+json reaches the client."""
    status, headers, body = get(nginx.port, "/api/v1/sites/no-such-site", timeout=CLIENT_TIMEOUT)
    assert status == 404 and headers["content-type"] == "application/problem+json"
    assert json.loads(body)["status"] == 404


def _vocabulary_count(port: int) -> float:
    _, _, body = get(port, "/metrics", timeout=CLIENT_TIMEOUT)
    m = re.search(r'^geoservice_http_requests_total\{endpoint="/api/v1/vocabulary",method="GET",status="200"\} '
                  r'([0-9.e+]+)$', body.decode(), re.M)
    return float(m.group(1)) if m else 0.0


def test_metrics_add_up_over_all_workers(served: ServeProcess) -> None:
    """Whichever worker answers the scrape, /metrics counts the requests every worker served."""
    before = _vocabulary_count(served.port)
    with ThreadPoolExecutor(max_workers=12) as pool:  # concurrent fresh connections spread over the workers
        statuses = list(pool.map(lambda _: get(served.port, "/api/v1/vocabulary", timeout=CLIENT_TIMEOUT)[0],
                                 range(60)))
    assert statuses == [200] * 60
    workers = {f.name.rsplit("_", 1)[-1] for f in Path(served.env["PROMETHEUS_MULTIPROC_DIR"]).glob("counter_*.db")}
    assert len(workers) >= 2, "only one worker answered: the sum below would prove nothing"
    assert _vocabulary_count(served.port) - before == 60
