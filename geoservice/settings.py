"""One settings object, read from the environment (prefix ``GEOSERVICE_``) or passed in by tests."""
from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from geoservice.packagedata import layers_dir as _bundled_layers_dir


@dataclasses.dataclass
class Settings:
    """Service configuration.

    ``database_url`` selects PostGIS; when it is empty the embedded store (SQLite file at ``embedded_path``)
    is used. The walk model turns straight-line distance into minutes on foot:
    ``walk_minutes = distance_m * detour_factor / walk_speed_m_per_min``.

    Rate limits (public reads, couriers' reports) are one limit for the whole service: their state is a small
    file in ``rate_limit_dir`` that every worker process maps (:mod:`geoservice.limiter`); every process of one
    service must therefore see the same folder, on a local filesystem.

    ``/metrics`` (Prometheus) is not public by default: it answers 404 until ``metrics_token`` is set — then it
    wants ``Authorization: Bearer <metrics_token>`` (compared in constant time) — or ``metrics_public`` opts in.
    """

    database_url: str = ""
    embedded_path: Path = Path("instance/geoservice.sqlite")
    layers_dir: Path = dataclasses.field(default_factory=_bundled_layers_dir)  # GEOSERVICE_LAYERS_DIR overrides
    autoload_layers: bool = True
    detour_factor: float = 1.3
    walk_speed_m_per_min: float = 75.0  # 4.5 km/h
    pool_min_size: int = 1
    pool_max_size: int = 8
    pool_timeout_s: float = 1.0  # wait for a pooled connection; a wait means the database is unreachable
    statement_timeout_ms: int = 5000
    window_days_before: int = 1
    window_days_after: int = 14
    max_upload_bytes: int = 5 * 1024 * 1024
    public_rate_per_minute: int = 1200  # public reads per client address, whole service (all workers); 0 = off
    proxy_hops: int = 0  # reverse proxies in front: trust that many X-Forwarded-For/-Proto/-Host entries
    # Folder of the rate-limit state shared by every worker and process on the host (a local filesystem);
    # None = the folder of embedded_path (the instance folder, instance/ by default).
    rate_limit_dir: Path | None = None
    # /metrics: 404 unless metrics_token is set (then it needs "Authorization: Bearer <token>") or metrics_public
    # is true (anyone may scrape it: only behind a proxy that keeps it internal). A token wins over public;
    # it is left out of repr() so that logging the settings does not log it.
    metrics_token: str = dataclasses.field(default="", repr=False)
    metrics_public: bool = False

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Read ``DATABASE_URL`` and ``GEOSERVICE_*`` variables; keyword overrides win."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        if env.get("DATABASE_URL"):
            values["database_url"] = env["DATABASE_URL"]
        for field in dataclasses.fields(cls):
            key = "GEOSERVICE_" + field.name.upper()
            if key in env:
                raw = env[key]
                default = field.default if field.default is not dataclasses.MISSING else None
                if isinstance(default, bool):
                    values[field.name] = raw.strip().lower() in ("1", "true", "yes", "on")
                elif isinstance(default, int):
                    values[field.name] = int(raw)
                elif isinstance(default, float):
                    values[field.name] = float(raw)
                elif field.name.endswith(("_path", "_dir")):
                    values[field.name] = Path(raw)
                else:
                    values[field.name] = raw
        values.update(overrides)
        return cls(**values)

    def walk_minutes(self, distance_m: float) -> float:
        """Minutes on foot for a straight-line distance under the walk model."""
        return distance_m * self.detour_factor / self.walk_speed_m_per_min
