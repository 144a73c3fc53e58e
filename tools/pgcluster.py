"""A throwaway PostgreSQL + PostGIS cluster for tests and benchmarks.

PostgreSQL refuses to run as root, and CI runs as root: when we are root the cluster's files are given to the
``postgres`` system user (created by Debian's packages) and every server command runs through ``runuser``.
The cluster listens on 127.0.0.1 on a free port, trusts local connections, and is deleted on ``stop()``.
"""
from __future__ import annotations

import glob
import logging
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

LOGGER = logging.getLogger(__name__)


class ClusterError(RuntimeError):
    """The cluster could not be created or started; the message says what to install or check."""


def _bin_dir() -> Path:
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                        key=lambda p: int(Path(p).parent.parent.name) if Path(p).parent.parent.name.isdigit() else 0)
    if not candidates:
        raise ClusterError("PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin: install the Debian "
                           "packages postgresql-15 and postgresql-15-postgis-3 (scripts/test does this)")
    return Path(candidates[-1]).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ThrowawayCluster:
    """Create with ``start()``, connect with ``url(dbname)``, delete with ``stop()``."""

    def __init__(self, fast: bool = True):
        self.bin = _bin_dir()
        self.root = Path(tempfile.mkdtemp(prefix="geoservice-pg-"))
        self.data = self.root / "data"
        self.port = _free_port()
        self.fast = fast
        self.as_root = os.geteuid() == 0
        self.started = False

    def _run(self, *args: str | Path) -> subprocess.CompletedProcess[str]:
        cmd = [str(a) for a in args]
        if self.as_root:
            cmd = ["runuser", "-u", "postgres", "--"] + cmd
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        if proc.returncode != 0:
            raise ClusterError(f"{' '.join(cmd[-len(args):][:2])} failed: {proc.stderr.strip() or proc.stdout.strip()}")
        return proc

    def start(self) -> ThrowawayCluster:
        """initdb + pg_ctl start; raises ClusterError with the server log on failure."""
        if self.as_root:
            shutil.chown(self.root, "postgres", "postgres")
        os.chmod(self.root, 0o755)
        self._run(self.bin / "initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                  "--locale=C.UTF-8")
        options = [f"-p {self.port}", "-c listen_addresses=127.0.0.1", f"-k {self.root}", "-c max_connections=100"]
        if self.fast:
            # Durability is pointless for a cluster deleted after the run.
            options += ["-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off"]
        self._options = options
        log = self.root / "server.log"
        try:
            self._run(self.bin / "pg_ctl", "-D", str(self.data), "-l", str(log), "-w", "-t", "60",
                      "-o", " ".join(options), "start")
        except ClusterError as exc:
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise ClusterError(f"{exc}\n{tail}") from exc
        self.started = True
        return self

    def url(self, dbname: str = "postgres") -> str:
        """libpq URL for a database of this cluster."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"

    def create_database(self, name: str, template: str | None = None) -> str:
        """CREATE DATABASE (optionally from a template); returns its URL."""
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.url(), autocommit=True) as conn:
            stmt = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
            if template:
                stmt = sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(name), sql.Identifier(template))
            conn.execute(stmt)
        return self.url(name)

    def drop_database(self, name: str) -> None:
        """DROP DATABASE, closing other sessions first."""
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))

    def stop(self) -> None:
        """Stop the server at once and delete its files."""
        if self.started:
            try:
                self._run(self.bin / "pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
            except ClusterError as exc:
                LOGGER.warning("stopping the throwaway cluster: %s", exc)
            self.started = False
        for _ in range(3):
            try:
                shutil.rmtree(self.root)
                break
            except OSError:
                time.sleep(0.5)

    def pause(self) -> None:
        """Stop the server but keep its files (fault tests: the database goes away)."""
        self._run(self.bin / "pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def resume(self) -> None:
        """Start the paused server again on the same port."""
        self._run(self.bin / "pg_ctl", "-D", str(self.data), "-l", str(self.root / "server.log"), "-w", "-t", "60",
                  "-o", " ".join(self._options), "start")
