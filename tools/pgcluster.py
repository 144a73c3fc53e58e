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


def run_server_command(as_root: bool, *args: str | Path) -> subprocess.CompletedProcess[str]:
    """Run a server binary (as the ``postgres`` user when we are root); ClusterError with its output on failure."""
    cmd = [str(a) for a in args]
    if as_root:
        cmd = ["runuser", "-u", "postgres", "--"] + cmd
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        raise ClusterError(f"{' '.join(cmd[-len(args):][:2])} failed: {proc.stderr.strip() or proc.stdout.strip()}")
    return proc


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
        return run_server_command(self.as_root, *args)

    def start(self) -> ThrowawayCluster:
        """initdb + pg_ctl start; raises ClusterError with the server log on failure."""
        if self.as_root:
            shutil.chown(self.root, "postgres", "postgres")
        os.chmod(self.root, 0o755)
        self._run(self.bin / "initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                  "--locale=C.UTF-8")
        options = [f"-p {self.port}", "-c listen_addresses=127.0.0.1", f"-k {self.root}", "-c max_connections=100",
                   "-c wal_level=replica", "-c max_wal_senders=10", "-c hot_standby=on"]
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


class HotStandby:
    """A streaming hot standby of a running ``ThrowawayCluster``: ``pg_basebackup -R -X stream``, own free port.

    The primary already runs with ``wal_level=replica`` and ``max_wal_senders``, and initdb's pg_hba trusts
    replication connections from 127.0.0.1. ``pause_replay()``/``resume_replay()`` freeze and thaw WAL replay
    (the standby keeps answering reads, and its lag grows); ``stop()`` stops the server and deletes its files.
    """

    def __init__(self, primary: ThrowawayCluster):
        self.primary = primary
        self.bin = primary.bin
        self.root = Path(tempfile.mkdtemp(prefix="geoservice-pg-standby-"))
        self.data = self.root / "data"
        self.port = _free_port()
        self.as_root = primary.as_root
        self.started = False

    def _run(self, *args: str | Path) -> subprocess.CompletedProcess[str]:
        return run_server_command(self.as_root, *args)

    def start(self) -> HotStandby:
        """Base backup of the primary, then start it as a hot standby; raises ClusterError with the log."""
        if self.as_root:
            shutil.chown(self.root, "postgres", "postgres")
        os.chmod(self.root, 0o755)
        self._run(self.bin / "pg_basebackup", "-D", str(self.data), "-h", "127.0.0.1", "-p", str(self.primary.port),
                  "-U", "postgres", "-R", "-X", "stream", "-c", "fast")
        self._options = [f"-p {self.port}", "-c listen_addresses=127.0.0.1", f"-k {self.root}",
                         "-c max_connections=100", "-c hot_standby=on", "-c fsync=off",
                         "-c hot_standby_feedback=on", "-c wal_receiver_status_interval=1s"]
        self.resume()
        self.started = True
        return self

    def url(self, dbname: str = "postgres") -> str:
        """libpq URL for a database of this standby."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"

    def _sql(self, statement: str) -> None:
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(statement)

    def pause_replay(self) -> None:
        """Stop applying WAL (``pg_wal_replay_pause()``): reads still work and show the old data."""
        self._sql("SELECT pg_wal_replay_pause()")

    def resume_replay(self) -> None:
        """Apply WAL again (``pg_wal_replay_resume()``)."""
        self._sql("SELECT pg_wal_replay_resume()")

    def pause(self) -> None:
        """Stop the server but keep its files (the standby goes away)."""
        self._run(self.bin / "pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def resume(self) -> None:
        """Start the (paused) standby again on the same port."""
        log = self.root / "server.log"
        try:
            self._run(self.bin / "pg_ctl", "-D", str(self.data), "-l", str(log), "-w", "-t", "60",
                      "-o", " ".join(self._options), "start")
        except ClusterError as exc:
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise ClusterError(f"{exc}\n{tail}") from exc

    def stop(self) -> None:
        """Stop the standby at once and delete its files."""
        if self.started:
            try:
                self._run(self.bin / "pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
            except ClusterError as exc:
                LOGGER.warning("stopping the throwaway standby: %s", exc)
            self.started = False
        shutil.rmtree(self.root, ignore_errors=True)


class Bouncer:
    """A PgBouncer (transaction pool mode, auth trust, own free port, run as postgres) in front of a cluster.

    Debian package ``pgbouncer``. PgBouncer 1.18 has no protocol-level prepared statements: clients must connect
    with psycopg's ``prepare_threshold=None``.
    """

    def __init__(self, upstream_port: int, pool_size: int = 20):
        exe = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
        if not Path(exe).exists():
            raise ClusterError("pgbouncer not found: install the Debian package pgbouncer (scripts/setup does this)")
        self.exe = exe
        self.upstream_port = upstream_port
        self.pool_size = pool_size
        self.root = Path(tempfile.mkdtemp(prefix="geoservice-pgbouncer-"))
        self.port = _free_port()
        self.as_root = os.geteuid() == 0
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Bouncer:
        """Write the ini and start PgBouncer in the foreground of a child process; wait until it accepts."""
        (self.root / "users.txt").write_text('"postgres" ""\n')
        (self.root / "pgbouncer.ini").write_text(
            "[databases]\n"
            f"* = host=127.0.0.1 port={self.upstream_port}\n"
            "[pgbouncer]\n"
            f"listen_addr = 127.0.0.1\nlisten_port = {self.port}\nunix_socket_dir =\n"
            f"auth_type = trust\nauth_file = {self.root / 'users.txt'}\n"
            f"pool_mode = transaction\ndefault_pool_size = {self.pool_size}\nmax_client_conn = 500\n"
            f"logfile = {self.root / 'pgbouncer.log'}\npidfile = {self.root / 'pgbouncer.pid'}\n"
            "ignore_startup_parameters = extra_float_digits,options\n")
        if self.as_root:
            for p in [self.root, *self.root.iterdir()]:
                shutil.chown(p, "postgres", "postgres")
        cmd = [self.exe, str(self.root / "pgbouncer.ini")]
        if self.as_root:
            cmd = ["runuser", "-u", "postgres", "--"] + cmd
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                log = self.root / "pgbouncer.log"
                raise ClusterError("pgbouncer exited: " + (log.read_text(errors="replace")[-2000:]
                                                            if log.exists() else ""))
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return self
            time.sleep(0.1)
        raise ClusterError("pgbouncer did not listen within 15 s")

    def url(self, dbname: str = "postgres") -> str:
        """libpq URL for a database through the bouncer."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"

    def stop(self) -> None:
        """Stop PgBouncer and delete its files."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self.proc = None
        shutil.rmtree(self.root, ignore_errors=True)
