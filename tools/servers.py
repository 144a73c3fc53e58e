"""Real server processes for tests and benchmarks: ``geoservice serve`` and nginx in front of it.

Both run as child processes on free loopback ports and are stopped by their own process id. nginx runs with a
temporary prefix (its config, pid, logs and temp files in one directory), as the current user; when that is
root, nginx's workers drop to ``nobody`` as usual, so the prefix is made traversable for them. The nginx site
config is the shipped ``docs/nginx/geoservice.conf`` with only its listen port and upstream address replaced.
"""
from __future__ import annotations

import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]  # the checkout: tools/ is never installed
NGINX_SITE = ROOT / "docs" / "nginx" / "geoservice.conf"


def stop_on_sigterm() -> None:
    """Turn SIGTERM into KeyboardInterrupt, so a benchmark killed from outside still runs its ``finally``
    blocks (stops its servers and deletes its cluster). Background jobs of a non-interactive shell ignore
    SIGINT, so SIGTERM is the way to stop them."""
    def _raise(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _raise)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get(port: int, path: str, timeout: float = 10.0) -> tuple[int, dict[str, str], bytes]:
    """One HTTP GET on a fresh connection: status, headers (lower-case names), body."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def wait_healthy(port: int, proc: subprocess.Popen[bytes] | None = None, timeout: float = 120.0,
                 path: str = "/healthz") -> None:
    """Until ``path`` answers 200; raises RuntimeError (with the reason) if it does not in time."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before answering")
        try:
            status, _, body = get(port, path, timeout=2.0)
            if status == 200:
                return
            last = f"{status} {body[:200]!r}"
        except OSError as exc:
            last = repr(exc)
        time.sleep(0.3)
    raise RuntimeError(f"{path} on port {port} not healthy after {timeout:.0f} s: {last}")


class ServeProcess:
    """``geoservice serve`` from the checkout ``root`` (this one by default), with ``env`` on top of the current
    environment."""

    def __init__(self, args: Sequence[str] = (), env: Mapping[str, str] | None = None, port: int | None = None,
                 log: Path | None = None, root: Path = ROOT):
        self.port = port or free_port()
        self.args = ["--host", "127.0.0.1", "--port", str(self.port), *args]
        self.root = root
        self.env = dict(os.environ) | dict(env or {}) | {"PYTHONPATH": str(root)}
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 180.0) -> ServeProcess:
        """Start and wait until ``/healthz`` answers 200."""
        self._out = open(self.log, "wb") if self.log else None  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen([sys.executable, "-m", "geoservice.cli", "serve", *self.args], env=self.env,
                                     stdout=self._out or subprocess.DEVNULL, stderr=subprocess.STDOUT, cwd=self.root,
                                     start_new_session=True)
        try:
            wait_healthy(self.port, self.proc, timeout)
        except RuntimeError:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """SIGTERM to the server (granian stops its workers), SIGKILL to its process group if it lingers."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        if getattr(self, "_out", None) is not None:
            self._out.close()  # type: ignore[union-attr]

    def __enter__(self) -> ServeProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def nginx_binary() -> str:
    """Debian's nginx; RuntimeError naming the package when it is missing."""
    for candidate in (shutil.which("nginx"), "/usr/sbin/nginx"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise RuntimeError("nginx not found: install the Debian package nginx (scripts/setup --test does this)")


def site_config(listen_port: int, upstream: str, source: Path = NGINX_SITE) -> str:
    """The shipped site config with its listen port and upstream address replaced (each must occur once, so an
    edit of the shipped file that breaks this fails loudly instead of testing something else)."""
    text = source.read_text(encoding="utf-8")
    for old, new in (("    listen 80;\n", f"    listen 127.0.0.1:{listen_port};\n"),
                     ("    server 127.0.0.1:8000;", f"    server {upstream};")):
        if text.count(old) != 1:
            raise RuntimeError(f"{source}: expected exactly one {old.strip()!r}")
        text = text.replace(old, new)
    return text


class NginxProcess:
    """nginx in the foreground with a temporary prefix, proxying to ``upstream`` (``host:port``)."""

    def __init__(self, upstream: str, port: int | None = None, edit: Callable[[str], str] | None = None):
        """``edit`` changes the site config text (benchmarks compare variants of the shipped file)."""
        self.port = port or free_port()
        self.upstream = upstream
        self.edit = edit
        self.prefix = Path(tempfile.mkdtemp(prefix="geoservice-nginx-"))
        self.proc: subprocess.Popen[bytes] | None = None

    def config(self) -> str:
        """The main nginx.conf around the shipped site config."""
        p = self.prefix
        temp = "\n".join(f"    {name}_temp_path {p / name};" for name in ("client_body", "proxy", "fastcgi",
                                                                              "uwsgi", "scgi"))
        return (f"pid {p / 'nginx.pid'};\nerror_log {p / 'error.log'} warn;\nworker_processes 1;\n"
                "events { worker_connections 1024; }\n"
                f"http {{\n    access_log off;\n{temp}\n    include {p / 'geoservice.conf'};\n}}\n")

    def start(self) -> NginxProcess:
        """Write the config, check it (``nginx -t``), start, and wait until it accepts connections."""
        binary = nginx_binary()
        os.chmod(self.prefix, 0o755)  # nginx's workers run as nobody when we are root
        site = site_config(self.port, self.upstream)
        (self.prefix / "geoservice.conf").write_text(self.edit(site) if self.edit else site, encoding="utf-8")
        conf = self.prefix / "nginx.conf"
        conf.write_text(self.config(), encoding="utf-8")
        base = [binary, "-p", str(self.prefix), "-c", str(conf), "-e", str(self.prefix / "error.log")]
        check = subprocess.run([*base, "-t"], capture_output=True, text=True, timeout=30)
        if check.returncode != 0:
            raise RuntimeError(f"nginx -t failed: {check.stderr.strip()}")
        self.proc = subprocess.Popen([*base, "-g", "daemon off;"], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"nginx exited: {self.error_log()[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("nginx did not start listening")

    def error_log(self) -> str:
        """What nginx logged."""
        path = self.prefix / "error.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        """Fast shutdown (SIGTERM to the master), then delete the prefix."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        shutil.rmtree(self.prefix, ignore_errors=True)

    def __enter__(self) -> NginxProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
