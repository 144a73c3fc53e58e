"""One settings object, read from the environment (prefix ``GEOSERVICE_``) or passed in by tests — and checked.

Every field may be set as ``GEOSERVICE_<FIELD>`` (``DATABASE_URL`` for ``database_url``). Reading the environment
refuses, naming the variable and the reason: a ``GEOSERVICE_*`` variable that is not a setting (a typo would
otherwise silently mean the default), a value of the wrong type, and one outside the field's range. Variables
that configure the tests and tools rather than the service (``GEOSERVICE_TEST_*``, ``GEOSERVICE_CHROMIUM``,
``GEOSERVICE_NOTEBOOK_OUT``) are left alone.
"""
from __future__ import annotations

import dataclasses
import difflib
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from geoservice.basemap import BaseMap, BaseMapError
from geoservice.basemap import resolve as resolve_basemap
from geoservice.packagedata import layers_dir as _bundled_layers_dir
from geoservice.servicearea import BUNDLED_FILE, AreaLayer, service_area
from geoservice.validation import Problem, ValidationFailed
from geoservice.walk import WalkModel

PREFIX = "GEOSERVICE_"
NOT_SETTINGS = ("GEOSERVICE_TEST_", "GEOSERVICE_CHROMIUM", "GEOSERVICE_NOTEBOOK_OUT")
TRUE = ("1", "true", "yes", "on")
FALSE = ("0", "false", "no", "off")


def _range(lo: float, hi: float) -> dict[str, Any]:
    return {"range": (lo, hi)}


@dataclasses.dataclass
class Settings:
    """Service configuration.

    ``database_url`` selects PostGIS; when it is empty the embedded store (SQLite file at ``embedded_path``)
    is used. The walk model turns straight-line distance into minutes on foot:
    ``walk_minutes = distance_m * detour_factor / walk_speed_m_per_min`` (:mod:`geoservice.walk`).

    Rate limits (public reads, couriers' reports) are one limit for the whole service: their state is a small
    file in ``rate_limit_dir`` that every worker process maps (:mod:`geoservice.limiter`); every process of one
    service must therefore see the same folder, on a local filesystem.

    ``/metrics`` (Prometheus) is not public by default: it answers 404 until ``metrics_token`` is set — then it
    wants ``Authorization: Bearer <metrics_token>`` (compared in constant time) — or ``metrics_public`` opts in.
    """

    database_url: str = dataclasses.field(default="", repr=False)  # may hold a password
    # Hot standbys of the primary for public reads (GEOSERVICE_READ_URLS, comma-separated; empty = the primary
    # answers everything). Writes, bulk loads and admin reads stay on ``database_url`` (geoservice.store.postgis).
    read_urls: str = dataclasses.field(default="", repr=False)  # may hold passwords
    # A standby whose replay lags the primary by more than this is skipped until it catches up.
    replica_max_lag_s: float = dataclasses.field(default=10.0, metadata=_range(0.0, 3600.0))
    # The URLs go through PgBouncer in transaction mode: no server-side prepared statements
    # (psycopg prepare_threshold=None). Also switched on by ``pgbouncer=1`` in a URL's query string.
    pgbouncer: bool = False
    embedded_path: Path = Path("instance/geoservice.sqlite")
    layers_dir: Path = dataclasses.field(default_factory=_bundled_layers_dir)  # GEOSERVICE_LAYERS_DIR overrides
    # The areas layer served (GeoJSON polygons with code and zh/en names, see geoservice.servicearea);
    # None = the layers folder's districts.geojson (the bundled Beijing districts).
    service_area: Path | None = dataclasses.field(default=None, metadata={"path": True})
    # Load the layers folder's site files into an empty store (only when the area is that folder's own).
    autoload_layers: bool = True
    detour_factor: float = dataclasses.field(default=1.3, metadata=_range(1.0, 5.0))
    walk_speed_m_per_min: float = dataclasses.field(default=75.0, metadata=_range(10.0, 300.0))  # 4.5 km/h
    # With a walking network loaded: a point farther than this from the network walks by straight line instead.
    network_snap_m: float = dataclasses.field(default=250.0, metadata=_range(1.0, 5000.0))
    pool_min_size: int = dataclasses.field(default=1, metadata=_range(0, 1000))
    pool_max_size: int = dataclasses.field(default=8, metadata=_range(1, 1000))
    # Wait for a pooled connection; a wait means the database is unreachable.
    pool_timeout_s: float = dataclasses.field(default=1.0, metadata=_range(0.05, 120.0))
    statement_timeout_ms: int = dataclasses.field(default=5000, metadata=_range(100, 600_000))
    window_days_before: int = dataclasses.field(default=1, metadata=_range(0, 31))
    window_days_after: int = dataclasses.field(default=14, metadata=_range(1, 62))
    max_upload_bytes: int = dataclasses.field(default=5 * 1024 * 1024, metadata=_range(1024, 1 << 30))
    # Public reads per client address, whole service (all workers); 0 = off.
    public_rate_per_minute: int = dataclasses.field(default=1200, metadata=_range(0, 10_000_000))
    # Reverse proxies in front: trust that many X-Forwarded-For/-Proto/-Host entries.
    proxy_hops: int = dataclasses.field(default=0, metadata=_range(0, 10))
    # Folder of the state shared by every worker and process on the host (a local filesystem): rate limits and,
    # with read replicas, each account's last write position; None = the folder of embedded_path (instance/).
    rate_limit_dir: Path | None = None
    # Folder of the planners' built analysis grids, shared by every worker and restart (geoservice.analysis.gridfile);
    # None = grids/ in the folder of embedded_path.
    grid_dir: Path | None = None
    # /metrics: 404 unless metrics_token is set (then it needs "Authorization: Bearer <token>") or metrics_public
    # is true (anyone may scrape it: only behind a proxy that keeps it internal). A token wins over public;
    # it is left out of repr() so that logging the settings does not log it.
    metrics_token: str = dataclasses.field(default="", repr=False)
    metrics_public: bool = False
    # A site not verified for this many days (or never) is "stale": couriers' cards and answers say so.
    stale_after_days: int = dataclasses.field(default=180, metadata=_range(1, 3650))
    # The couriers' page's base map (geoservice/basemap.py): osm (WGS-84), amap (GCJ-02), none, or an http(s)
    # {z}/{x}/{y} template with its datum (wgs84 or gcj02) and the attribution its licence asks for.
    tiles: str = "osm"
    tiles_datum: str = ""
    tiles_attribution: str = ""
    # Operators' page sessions (a password sign-in): a session ends after this long unused, and after
    # session_absolute_hours whatever happens (a new sign-in is needed).
    session_idle_minutes: int = dataclasses.field(default=30, metadata=_range(1, 24 * 60))
    session_absolute_hours: int = dataclasses.field(default=12, metadata=_range(1, 24 * 31))
    # Wrong passwords: after login_failures_per_window failures for one login name (or login_address_failures
    # from one client address) within login_window_s, sign-in answers 429 until the window refills; shared by
    # every worker like the other limits. login_lockout_failures wrong passwords in a row lock the account
    # until an admin unlocks it.
    login_failures_per_window: int = dataclasses.field(default=5, metadata=_range(1, 1000))
    login_address_failures: int = dataclasses.field(default=30, metadata=_range(1, 100_000))
    login_window_s: int = dataclasses.field(default=900, metadata=_range(10, 86_400))
    login_lockout_failures: int = dataclasses.field(default=10, metadata=_range(1, 1000))
    # How long an admin's one-time setup code (password reset) may be used.
    setup_code_hours: int = dataclasses.field(default=72, metadata=_range(1, 24 * 31))

    # Webhooks (geoservice.services.webhooks): a batch is retried after webhook_retry_base_s x 2^(n-1) seconds
    # (at most webhook_retry_cap_s) and goes to the dead letters after webhook_max_attempts failures.
    # webhooks_allow_local admits http:// and local addresses (a receiver on this machine; tests): off in
    # production, where endpoints must be public https:// hosts.
    webhook_max_attempts: int = dataclasses.field(default=8, metadata=_range(1, 100))
    webhook_retry_base_s: float = dataclasses.field(default=30.0, metadata=_range(0.0, 3600.0))
    webhook_retry_cap_s: float = dataclasses.field(default=3600.0, metadata=_range(1.0, 7 * 86_400.0))
    webhook_timeout_s: float = dataclasses.field(default=10.0, metadata=_range(0.5, 120.0))
    webhook_batch_size: int = dataclasses.field(default=100, metadata=_range(1, 1000))
    webhooks_allow_local: bool = False

    def __post_init__(self) -> None:
        problems = [p for f in dataclasses.fields(self) if (p := _out_of_range(f, getattr(self, f.name)))]
        if self.pool_min_size > self.pool_max_size:
            problems.append(Problem("pool_min_size", f"{self.pool_min_size} is more than pool_max_size "
                                                     f"({self.pool_max_size})"))
        try:
            self.basemap()
        except BaseMapError as exc:
            problems.append(Problem("tiles", str(exc)))
        try:
            self.area()
        except ValidationFailed as exc:  # the file's problems, as one settings problem naming file and feature
            problems.extend(Problem("service_area", f"{exc.source}" + (f": {p.where}" if p.where else "")
                                    + f": {p.field}: {p.reason}") for p in exc.items[:20])
        if problems:
            raise ValidationFailed(problems, "settings")

    def area_path(self) -> Path:
        """The areas layer file: ``service_area``, or the layers folder's ``districts.geojson``."""
        return self.service_area if self.service_area is not None else self.layers_dir / BUNDLED_FILE

    def area(self) -> AreaLayer:
        """The service area (read once per file version; ``ValidationFailed`` naming the file's problems)."""
        return service_area(self.area_path())

    def area_is_layers_own(self) -> bool:
        """True when the area is the layers folder's own districts: its site and demand layers belong to it."""
        own = self.layers_dir / BUNDLED_FILE
        return self.service_area is None or (own.exists() and self.area_path().resolve() == own.resolve())

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Read ``DATABASE_URL`` and ``GEOSERVICE_*`` variables; keyword overrides win. Unknown ``GEOSERVICE_*``
        variables and unreadable or out-of-range values raise ``ValidationFailed`` naming each variable."""
        env = os.environ if env is None else env
        fields = {PREFIX + f.name.upper(): f for f in dataclasses.fields(cls)}
        values: dict[str, Any] = {}
        problems: list[Problem] = []
        if env.get("DATABASE_URL"):
            values["database_url"] = env["DATABASE_URL"]
        for key in sorted(env):
            if not key.startswith(PREFIX) or key.startswith(NOT_SETTINGS):
                continue
            field = fields.get(key)
            if field is None:
                near = difflib.get_close_matches(key, list(fields), n=1, cutoff=0.8)
                hint = f"; did you mean {near[0]}?" if near else ""
                problems.append(Problem(key, f"is not a setting{hint} (see geoservice/settings.py)"))
                continue
            try:
                values[field.name] = _convert(field, env[key])
            except ValueError as exc:
                problems.append(Problem(key, str(exc)))
        if problems:
            raise ValidationFailed(problems, "environment")
        values.update(overrides)
        try:
            return cls(**values)
        except ValidationFailed as exc:  # name the variable, not the field
            raise ValidationFailed([dataclasses.replace(p, field=PREFIX + p.field.upper()) for p in exc.items],
                                   "environment") from None

    def shared_state_dir(self) -> Path:
        """Where the state every process on the host shares lives: ``rate_limit_dir``, else the embedded store's
        folder."""
        return self.rate_limit_dir if self.rate_limit_dir is not None else self.embedded_path.parent

    def read_url_list(self) -> list[str]:
        """The standbys' URLs (``read_urls`` split on commas, blanks dropped)."""
        return [u.strip() for u in self.read_urls.split(",") if u.strip()]

    def basemap(self) -> BaseMap | None:
        """The couriers' page's base map (None: no tiles), or raise :class:`BaseMapError`."""
        return resolve_basemap(self.tiles, self.tiles_datum, self.tiles_attribution)

    def walk_model(self) -> WalkModel:
        """The walk model these settings describe."""
        return WalkModel(self.detour_factor, self.walk_speed_m_per_min)

    def walk_minutes(self, distance_m: float) -> float:
        """Minutes on foot for a straight-line distance under the walk model."""
        return self.walk_model().minutes(distance_m)


def _convert(field: dataclasses.Field[Any], raw: str) -> Any:
    """One environment value as the field's type (``ValueError`` saying what was expected)."""
    default = field.default if field.default is not dataclasses.MISSING else None
    text = raw.strip()
    if isinstance(default, bool):
        if text.lower() in TRUE:
            return True
        if text.lower() in FALSE:
            return False
        raise ValueError(f"{raw[:40]!r} is not true or false")
    if isinstance(default, int):
        try:
            return int(text)
        except ValueError:
            raise ValueError(f"{raw[:40]!r} is not an integer") from None
    if isinstance(default, float):
        try:
            value = float(text)
        except ValueError:
            raise ValueError(f"{raw[:40]!r} is not a number") from None
        if not math.isfinite(value):
            raise ValueError("must be a finite number")
        return value
    if field.name.endswith(("_path", "_dir")) or field.metadata.get("path"):
        if not text:
            raise ValueError("is empty")
        return Path(text)
    return raw


def _out_of_range(field: dataclasses.Field[Any], value: Any) -> Problem | None:
    bounds = field.metadata.get("range")
    if bounds is None or isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    lo, hi = bounds
    if not (math.isfinite(value) and lo <= value <= hi):
        return Problem(field.name, f"{value} is outside {lo:g}..{hi:g}")
    return None
