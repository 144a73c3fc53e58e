"""Sites as a GeoDataFrame, and which of them are open: at one moment, or at every hour of a week.

Opening hours are evaluated with the store's :class:`~geoservice.hours.HoursEngine` (OSM ``opening_hours`` in
Asia/Shanghai with China's official holidays, make-up working days and operator closures). Sites that share
an expression and the same closures get the same answer, so each distinct (expression, closures) pair is
evaluated once and the answer is broadcast: the demo network's 11,829 sites have 26 distinct expressions.
"""
from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Sequence
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geoservice.analysis.grid import WGS84, project_points
from geoservice.hours import TZ, HoursEngine, HoursEvaluationError
from geoservice.model import KINDS, Closure, Site
from geoservice.services.alerts import alert_spans, hours_spans, merged_intervals
from geoservice.services.sites import SiteService

LOGGER = logging.getLogger(__name__)

HOURS_PER_WEEK = 168
SITE_COLUMNS = ["id", "kind", "name_zh", "name_en", "address", "opening_hours", "amenities", "district_adcode",
                "simulated", "closures", "x", "y", "geometry"]


def sites_frame(sites: Iterable[Site], closures: dict[str, list[Closure]] | None = None) -> gpd.GeoDataFrame:
    """Site records as a WGS-84 GeoDataFrame with metric ``x``/``y`` (EPSG:32650) and a ``closures`` column.

    ``closures`` maps site id to its operator closures (as returned by ``Store.closures_for``).
    """
    closures = closures or {}
    sites = list(sites)
    frame = pd.DataFrame({
        "id": [s.id for s in sites], "kind": [s.kind for s in sites], "name_zh": [s.name_zh for s in sites],
        "name_en": [s.name_en for s in sites], "address": [s.address for s in sites],
        "opening_hours": [s.opening_hours for s in sites], "amenities": [list(s.amenities or []) for s in sites],
        "district_adcode": [s.district_adcode for s in sites], "simulated": [bool(s.simulated) for s in sites],
        "closures": [tuple(closures.get(s.id, ())) for s in sites],
    }, columns=[c for c in SITE_COLUMNS if c not in ("x", "y", "geometry")])
    lon = np.fromiter((s.lon for s in sites), dtype=float, count=len(sites))
    lat = np.fromiter((s.lat for s in sites), dtype=float, count=len(sites))
    frame["x"], frame["y"] = project_points(lon, lat)
    out = gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries(shapely.points(lon, lat), crs=WGS84))
    return out.reset_index(drop=True)


def sites_from_service(service: SiteService, alerts_at: dt.datetime | None = None,
                       alerts_during: tuple[dt.datetime, dt.datetime] | None = None) -> gpd.GeoDataFrame:
    """Every site with its closures, read fresh from the site service. With ``alerts_at``, a site whose alert hours
    a weather alert in force at that moment triggers is evaluated by its alert hours instead of its normal hours
    (what the couriers' answers do at that moment); column ``open_reason`` says ``alert_hours`` for those.
    With ``alerts_during`` (a span, for :func:`open_matrix`), columns ``alert_hours`` and ``alert_cuts`` say by
    which hours and when within the span alerts replace each site's normal hours."""
    sites = service.spatial.all_sites()
    frame = sites_frame(sites, service.closures_for([s.id for s in sites]))
    frame["open_reason"] = "hours"
    if alerts_during is not None:
        start, end = (_aware(t) for t in alerts_during)
        during = service.alerts.overlapping(start, end)
        frame["alert_hours"] = [str(s.alert_hours.get("hours", "")) if s.alert_hours else "" for s in sites]
        frame["alert_cuts"] = [tuple(alert_spans(s, during, start, end)) for s in sites]
    if alerts_at is None:
        return frame
    alerts = service.alerts_in_force(_aware(alerts_at))
    for i, site in enumerate(sites):
        if site.alert_hours and any(a.triggers(site) for a in alerts):
            frame.at[i, "opening_hours"] = site.alert_hours["hours"]
            frame.at[i, "open_reason"] = "alert_hours"
    return frame


def check_sites(sites: gpd.GeoDataFrame) -> None:
    """Collect every problem with a site frame, then raise one ``ValueError``."""
    problems = [f"missing column {c!r}" for c in ("id", "kind", "opening_hours", "x", "y") if c not in sites.columns]
    if "kind" in sites.columns:
        unknown = sorted(set(sites["kind"]) - set(KINDS))
        if unknown:
            problems.append(f"unknown kinds {unknown}")
    if problems:
        raise ValueError("sites: " + "; ".join(problems))


def select_kinds(sites: gpd.GeoDataFrame, kinds: Sequence[str] = ()) -> np.ndarray:
    """Boolean mask of the sites of ``kinds`` (all sites when empty)."""
    if not kinds:
        return np.ones(len(sites), dtype=bool)
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        raise ValueError(f"unknown kind {unknown[0]!r}; allowed: {', '.join(KINDS)}")
    return np.asarray(sites["kind"].isin(list(kinds)).to_numpy())


def _groups(sites: gpd.GeoDataFrame, *extra: str) -> tuple[list[tuple[Any, ...]], np.ndarray]:
    """Distinct (expression, closures, *extra columns) keys and, per site, the index of its key (a missing
    column counts as empty for every site)."""
    def column(name: str, empty: Any) -> Sequence[Any]:
        return list(sites[name]) if name in sites.columns else [empty] * len(sites)
    keys = list(zip(sites["opening_hours"], column("closures", ()), *(column(c, ()) for c in extra)))
    index: dict[tuple[Any, ...], int] = {}
    codes = np.fromiter((index.setdefault(k, len(index)) for k in keys), dtype=np.int64, count=len(keys))
    return list(index), codes


def _aware(at: dt.datetime) -> dt.datetime:
    return at.astimezone(TZ) if at.tzinfo else at.replace(tzinfo=TZ)


def open_state(sites: gpd.GeoDataFrame, engine: HoursEngine, at: dt.datetime) -> pd.DataFrame:
    """Per site: ``is_open`` at ``at``, ``open_until`` and ``next_open`` (engine semantics, 8-day look-ahead).

    Returns a DataFrame aligned with ``sites`` (same index).
    """
    at = _aware(at)
    keys, codes = _groups(sites)
    states = [engine.state(expr, at, closures) for expr, closures in keys]
    is_open = np.array([s.is_open for s in states], dtype=bool)
    until = np.array([s.open_until for s in states] + [None], dtype=object)[:-1]
    nxt = np.array([s.next_open for s in states] + [None], dtype=object)[:-1]
    return pd.DataFrame({"is_open": is_open[codes] if len(codes) else np.zeros(0, bool),
                         "open_until": until[codes] if len(codes) else [],
                         "next_open": nxt[codes] if len(codes) else []}, index=sites.index)


def open_mask(sites: gpd.GeoDataFrame, engine: HoursEngine, at: dt.datetime) -> np.ndarray:
    """Boolean array: which sites are open at ``at`` (``engine.is_open`` per distinct hours/closures)."""
    at = _aware(at)
    keys, codes = _groups(sites)
    answers = np.array([engine.is_open(expr, at, closures) for expr, closures in keys], dtype=bool)
    return answers[codes] if len(codes) else np.zeros(0, dtype=bool)


def week_start(day: dt.date) -> dt.datetime:
    """Monday 00:00 (Asia/Shanghai) of the ISO week containing ``day``."""
    monday = day - dt.timedelta(days=day.weekday())
    return dt.datetime.combine(monday, dt.time(), tzinfo=TZ)


def hour_instants(start: dt.datetime, hours: int = HOURS_PER_WEEK) -> list[dt.datetime]:
    """The top of each hour from ``start`` (aware, Asia/Shanghai)."""
    start = _aware(start)
    return [start + dt.timedelta(hours=h) for h in range(hours)]


def open_matrix(sites: gpd.GeoDataFrame, engine: HoursEngine, start: dt.datetime,
                hours: int = HOURS_PER_WEEK) -> np.ndarray:
    """``(n_sites, hours)`` booleans: open at the top of each hour from ``start``.

    Each distinct (expression, closures) pair's open intervals over the whole span are computed once with
    ``engine.intervals`` (holidays, make-up working days and closures applied), then all hours are tested
    at once with ``searchsorted``. Asia/Shanghai has no daylight saving, so hours are plain 3,600 s steps.
    Where the frame has ``alert_hours``/``alert_cuts`` (:func:`sites_from_service` with ``alerts_during``), the
    alert hours replace the normal ones within the cuts, exactly as the couriers' answers do.
    """
    start = _aware(start)
    end = start + dt.timedelta(hours=hours)
    keys, codes = _groups(sites, "alert_hours", "alert_cuts")
    t = np.array([start.timestamp() + 3600.0 * h for h in range(hours)])
    table = np.zeros((len(keys), hours), dtype=bool)
    for k, (expr, closures, alert_hours, cuts) in enumerate(keys):
        try:
            spans = merged_intervals(hours_spans(engine, expr, str(alert_hours or ""), cuts, start, end,
                                                 closures))
        except HoursEvaluationError as exc:  # closed all week (the refresh flags the site); the rest goes on
            LOGGER.warning("%s", exc)
            continue
        if not spans:
            continue
        a = np.array([s.timestamp() for s, _ in spans])
        b = np.array([e.timestamp() for _, e in spans])
        i = np.searchsorted(a, t, side="right") - 1  # last interval starting at or before t
        table[k] = (i >= 0) & (t < b[np.clip(i, 0, None)])
    return table[codes] if len(codes) else np.zeros((0, hours), dtype=bool)
