"""Time-aware coverage: which parts of each district have a site of the chosen kinds OPEN within reach.

A grid piece (see :mod:`geoservice.analysis.grid`) is *covered* at time ``t`` when the straight-line distance
from its centroid to the nearest site that is open at ``t`` is at most ``radius_m`` (planar, EPSG:32650,
KD-tree). A walking-time radius converts with the service's walk model:
``radius_m = minutes × walk_speed_m_per_min / detour_factor`` (:class:`geoservice.walk.WalkModel`, the service's
settings; 75 m/min and detour 1.3 by default).

Everything here takes and returns (Geo)DataFrames and needs no Flask.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import geopandas as gpd
import h3
import numpy as np
import pandas as pd
import shapely
from scipy import sparse
from scipy.spatial import cKDTree
from shapely.geometry import shape

from geoservice.analysis.grid import WGS84, cell_strings
from geoservice.analysis.sites import (
    HOURS_PER_WEEK,
    check_sites,
    hour_instants,
    open_matrix,
    open_state,
    select_kinds,
    week_start,
)
from geoservice.hours import TZ, HoursEngine
from geoservice.model import KINDS
from geoservice.walk import WalkModel

LOGGER = logging.getLogger(__name__)

DEFAULT_RADIUS_M = 1000.0
# Above this many piece-site pairs within the radius, the week profile queries a KD-tree per hour instead of
# holding the incidence matrix (only for radii of many kilometres).
MAX_INCIDENCE_PAIRS = 20_000_000
CITY_ADCODE = "110000"
# The whole area's row when the districts frame does not name its service area (attrs["city"]): Beijing.
CITY = {"adcode": CITY_ADCODE, "name_zh": "北京市", "name_en": "Beijing"}


def city_of(districts: gpd.GeoDataFrame) -> dict[str, str]:
    """The whole area's code and names: ``districts.attrs["city"]`` (set by the planner from the service area),
    else Beijing's."""
    return dict(districts.attrs.get("city") or CITY)
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def radius_for_walk_minutes(minutes: float, walk: WalkModel | None = None) -> float:
    """Straight-line radius (m) reachable on foot in ``minutes`` under the walk model (the default one)."""
    return (walk or WalkModel()).radius_m(minutes)


def _demand(grid: gpd.GeoDataFrame, districts: gpd.GeoDataFrame, demand_col: str | None) -> tuple[np.ndarray, str]:
    if demand_col and demand_col in grid.columns:
        return grid[demand_col].to_numpy(float), str(grid.attrs.get("demand_source", demand_col))
    from geoservice.analysis.demand import uniform_demand

    return uniform_demand(grid, districts), "population_2020 spread evenly by area (no demand layer given)"


@dataclasses.dataclass
class CoverageResult:
    """Coverage of a grid at one moment. ``cells``, ``districts``, ``sites`` and ``gaps`` are GeoDataFrames."""

    at: dt.datetime
    kinds: tuple[str, ...]
    radius_m: float
    resolution: int
    cells: gpd.GeoDataFrame
    districts: gpd.GeoDataFrame
    sites: gpd.GeoDataFrame
    summary: dict[str, Any]
    district_geometry: gpd.GeoDataFrame = dataclasses.field(repr=False)
    walk: WalkModel = dataclasses.field(default_factory=WalkModel)

    @functools.cached_property
    def gaps(self) -> gpd.GeoDataFrame:
        """Uncovered area dissolved per district (see :func:`gap_polygons`)."""
        return gap_polygons(self.cells, self.district_geometry)

    def district_table(self) -> pd.DataFrame:
        """The per-district figures without geometry, plus a city-wide row (the service area's code: 110000)."""
        table = pd.DataFrame(self.districts.drop(columns="geometry"))
        return pd.concat([table, pd.DataFrame([self.summary["city"]])], ignore_index=True)


def coverage_at(grid: gpd.GeoDataFrame, districts: gpd.GeoDataFrame, sites: gpd.GeoDataFrame,
                at: dt.datetime, engine: HoursEngine, kinds: Sequence[str] = (),
                radius_m: float = DEFAULT_RADIUS_M, demand_col: str | None = "demand",
                walk: WalkModel | None = None) -> CoverageResult:
    """Coverage at ``at`` by the sites of ``kinds`` (all kinds when empty) that are open then.

    Parameters
    ----------
    grid
        From :func:`~geoservice.analysis.grid.build_grid` (optionally with a demand column).
    districts
        From :func:`~geoservice.analysis.grid.districts_frame` (the grid's ``district`` column indexes it).
    sites
        From :func:`~geoservice.analysis.sites.sites_frame` (metric ``x``/``y``, hours, closures).
    at
        The moment (naive times are Asia/Shanghai).
    engine
        The store's hours engine (``store.engine``): calendar and closures are applied.
    radius_m
        Straight-line reach in metres.
    demand_col
        Grid column holding demand weights; without it, population spread by area.

    Returns
    -------
    CoverageResult
        ``cells``: the grid plus ``distance_m`` (to the nearest open site, inf if none), ``covered`` and
        ``demand``; ``districts``: one row per district (see :func:`district_figures`); ``sites``: the sites of
        ``kinds`` with ``is_open``, ``open_until``, ``next_open``; ``summary``: city-wide figures.
    """
    check_sites(sites)
    if not radius_m > 0:
        raise ValueError("radius_m must be positive")
    at = at.astimezone(TZ) if at.tzinfo else at.replace(tzinfo=TZ)
    kinds = tuple(kinds)
    chosen = sites[select_kinds(sites, kinds)].copy()
    state = open_state(chosen, engine, at)
    chosen[["is_open", "open_until", "next_open"]] = state
    open_xy = chosen.loc[chosen["is_open"], ["x", "y"]].to_numpy(float)
    xy = grid[["x", "y"]].to_numpy(float)
    if len(open_xy):
        distance, _ = cKDTree(open_xy).query(xy, k=1)
    else:
        distance = np.full(len(grid), np.inf)
    walk_model = walk or WalkModel()
    demand, demand_source = _demand(grid, districts, demand_col)
    cells = grid.assign(distance_m=distance, covered=distance <= radius_m, demand=demand)
    table, city = district_figures(cells, districts, chosen, kinds)
    missing = engine.calendar.missing_years(at.date(), at.date())
    summary = {
        "at": at.isoformat(timespec="minutes"), "kinds": list(kinds) or list(KINDS), "radius_m": radius_m,
        "walk_minutes": round(walk_model.minutes(radius_m), 1), "resolution": grid.attrs.get("resolution"),
        "demand_source": demand_source, "city": city,
        "calendar_missing_years": missing,
        "simulated_sites": bool(chosen["simulated"].any()) if "simulated" in chosen.columns else None,
    }
    geometry = districts[["adcode", "name_zh", "name_en", "geometry"]]
    return CoverageResult(at, kinds, float(radius_m), int(grid.attrs.get("resolution") or 0), cells,
                          table, chosen, summary, geometry, walk_model)


def district_figures(cells: gpd.GeoDataFrame, districts: gpd.GeoDataFrame, sites: gpd.GeoDataFrame,
                     kinds: Sequence[str] = ()) -> tuple[gpd.GeoDataFrame, dict[str, Any]]:
    """Per-district figures from covered cells and site states, and the same figures city-wide.

    Columns: ``area_km2``, ``covered_area_km2``, ``area_share``, ``demand``, ``covered_demand``,
    ``demand_share``, ``uncovered_demand``, ``population_2020``, ``sites``/``open_sites`` (the chosen kinds),
    ``sites_<kind>``/``open_<kind>`` for every kind, ``sites_per_10k`` and ``open_sites_per_10k`` (per 10,000
    residents, 2020 census), ``median_distance_m`` (demand-weighted median distance to the nearest open site).
    """
    n = len(districts)
    didx = cells["district"].to_numpy()
    area = cells["area_m2"].to_numpy(float)
    covered = cells["covered"].to_numpy(bool)
    demand = cells["demand"].to_numpy(float)
    out = pd.DataFrame({"adcode": districts["adcode"], "name_zh": districts["name_zh"],
                        "name_en": districts["name_en"]})
    out["population_2020"] = districts["population_2020"].to_numpy()
    out["area_km2"] = np.bincount(didx, weights=area, minlength=n) / 1e6
    out["covered_area_km2"] = np.bincount(didx, weights=area * covered, minlength=n) / 1e6
    out["area_share"] = out["covered_area_km2"] / out["area_km2"].where(out["area_km2"] > 0)
    out["demand"] = np.bincount(didx, weights=demand, minlength=n)
    out["covered_demand"] = np.bincount(didx, weights=demand * covered, minlength=n)
    out["demand_share"] = out["covered_demand"] / out["demand"].where(out["demand"] > 0)
    out["uncovered_demand"] = out["demand"] - out["covered_demand"]
    out["median_distance_m"] = _weighted_median_by(didx, cells["distance_m"].to_numpy(float), demand, n)
    sd = pd.Categorical(sites["district_adcode"].astype(str), categories=districts["adcode"].tolist()).codes
    sk = pd.Categorical(sites["kind"], categories=list(KINDS)).codes
    ok = (sd >= 0) & (sk >= 0)
    is_open = sites["is_open"].to_numpy(bool)[ok]
    flat = sd[ok].astype(np.int64) * len(KINDS) + sk[ok]
    all_counts = np.bincount(flat, minlength=n * len(KINDS)).reshape(n, len(KINDS))
    open_counts = np.bincount(flat, weights=is_open, minlength=n * len(KINDS)).reshape(n, len(KINDS))
    for i, kind in enumerate(KINDS):
        out[f"sites_{kind}"] = all_counts[:, i].astype(int)
        out[f"open_{kind}"] = open_counts[:, i].astype(int)
    chosen = list(kinds) or list(KINDS)
    out["sites"] = out[[f"sites_{k}" for k in chosen]].sum(axis=1)
    out["open_sites"] = out[[f"open_{k}" for k in chosen]].sum(axis=1)
    pop = out["population_2020"].where(out["population_2020"] > 0)
    out["sites_per_10k"] = out["sites"] / pop * 1e4
    out["open_sites_per_10k"] = out["open_sites"] / pop * 1e4
    frame = gpd.GeoDataFrame(out, geometry=districts.geometry.to_numpy(), crs=WGS84)
    city: dict[str, Any] = city_of(districts)
    for col in ("population_2020", "area_km2", "covered_area_km2", "demand", "covered_demand", "uncovered_demand",
                "sites", "open_sites") + tuple(f"{p}_{k}" for k in KINDS for p in ("sites", "open")):
        city[col] = out[col].sum().item()
    city["area_share"] = city["covered_area_km2"] / city["area_km2"] if city["area_km2"] else None
    city["demand_share"] = city["covered_demand"] / city["demand"] if city["demand"] else None
    city["sites_per_10k"] = city["sites"] / city["population_2020"] * 1e4 if city["population_2020"] else None
    city["open_sites_per_10k"] = city["open_sites"] / city["population_2020"] * 1e4 if city["population_2020"] else None
    everyone = np.zeros(len(cells), int)
    city["median_distance_m"] = float(_weighted_median_by(everyone, cells["distance_m"].to_numpy(float), demand, 1)[0])
    return frame, city


def _weighted_median_by(group: np.ndarray, values: np.ndarray, weights: np.ndarray, n: int) -> np.ndarray:
    """Weighted median of ``values`` within each group 0..n-1 (NaN for an empty group; inf stays inf)."""
    out = np.full(n, np.nan)
    order = np.lexsort((values, group))
    g, v, w = group[order], values[order], weights[order]
    bounds = np.searchsorted(g, np.arange(n + 1))
    for i in range(n):
        a, b = bounds[i], bounds[i + 1]
        if b <= a or w[a:b].sum() <= 0:
            continue
        cw = np.cumsum(w[a:b])
        out[i] = v[a + int(np.searchsorted(cw, cw[-1] / 2))]
    return out


def gap_polygons(cells: gpd.GeoDataFrame, districts: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Uncovered pieces dissolved into one (Multi)Polygon per district, WGS-84.

    The uncovered cells of a district are merged by H3 itself (``cells_to_h3shape``: exact, edge-based) and the
    result is cut by the district polygon once, which is much faster than a polygon union of thousands of
    hexagons. Columns: ``adcode``, ``name_zh``, ``name_en``, ``area_km2``, ``uncovered_demand``, ``parts``.
    """
    rows = []
    gaps = cells[~cells["covered"].to_numpy(bool)]
    for d, sub in gaps.groupby("district", sort=True):
        district = districts.iloc[int(d)]
        dissolved = shape(h3.cells_to_h3shape(cell_strings(pd.unique(sub["h3"].to_numpy()))).__geo_interface__)
        geom = shapely.intersection(dissolved, district.geometry)
        geom = shapely.union_all([p for p in shapely.get_parts(geom) if p.geom_type == "Polygon"]) \
            if geom.geom_type not in ("Polygon", "MultiPolygon") else geom
        rows.append({"adcode": district["adcode"], "name_zh": district["name_zh"], "name_en": district["name_en"],
                     "area_km2": float(sub["area_m2"].sum()) / 1e6,
                     "uncovered_demand": float(sub["demand"].sum()) if "demand" in sub.columns else None,
                     "parts": int(shapely.get_num_geometries(geom)), "geometry": geom})
    return gpd.GeoDataFrame(rows, columns=["adcode", "name_zh", "name_en", "area_km2", "uncovered_demand", "parts",
                                           "geometry"], geometry="geometry", crs=WGS84)


# ---------------------------------------------------------------------------------------------------------
# The week profile
# ---------------------------------------------------------------------------------------------------------
def incidence(grid: gpd.GeoDataFrame, sites: gpd.GeoDataFrame, radius_m: float) -> sparse.csr_matrix:
    """``(n_pieces, n_sites)`` 0/1 sparse matrix: site within ``radius_m`` of the piece centroid (KD-tree pairs)."""
    if len(sites) == 0:
        return sparse.csr_matrix((len(grid), 0), dtype=np.float32)
    gtree = cKDTree(grid[["x", "y"]].to_numpy(float))
    stree = cKDTree(sites[["x", "y"]].to_numpy(float))
    pairs = gtree.sparse_distance_matrix(stree, radius_m, output_type="ndarray")
    rows, cols = pairs["i"], pairs["j"]
    return sparse.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(len(grid), len(sites)))


def week_profile(grid: gpd.GeoDataFrame, districts: gpd.GeoDataFrame, sites: gpd.GeoDataFrame,
                 week_of: dt.date | dt.datetime, engine: HoursEngine, kinds: Sequence[str] = (),
                 radius_m: float = DEFAULT_RADIUS_M, demand_col: str | None = "demand",
                 progress: Callable[[int], None] | None = None) -> pd.DataFrame:
    """Coverage share per district (and city-wide) at the top of each of the 168 hours of a week.

    The week runs Monday 00:00 – Sunday 23:00 (Asia/Shanghai) of the ISO week containing ``week_of``.
    Opening hours come from ``engine.intervals`` once per distinct (hours, closures) pair for the whole week,
    so public holidays, make-up working days and closures are respected. The piece–site incidence within
    ``radius_m`` is built once (KD-tree pairs); each hour is then one sparse product with that hour's open
    vector. Hour ``h`` equals ``coverage_at(..., at=monday + h hours)`` exactly.

    Returns a long DataFrame: ``adcode``, ``name_en``, ``name_zh``, ``hour_of_week`` (0–167), ``start`` (ISO,
    +08:00), ``weekday``, ``hour``, ``day_type`` (``normal``, ``holiday`` or ``workday`` = make-up working
    day), ``open_sites``, ``area_share``, ``demand_share``. The city-wide rows have the service area's code
    (``110000`` for Beijing).
    ``progress(1)`` is called after each hour.
    """
    check_sites(sites)
    day = week_of.date() if isinstance(week_of, dt.datetime) else week_of
    start = week_start(day)
    chosen = sites[select_kinds(sites, kinds)]
    opened = open_matrix(chosen, engine, start, HOURS_PER_WEEK)
    xy = grid[["x", "y"]].to_numpy(float)
    pairs = (cKDTree(xy).count_neighbors(cKDTree(chosen[["x", "y"]].to_numpy(float)), radius_m)
             if len(chosen) else 0)
    if pairs <= MAX_INCIDENCE_PAIRS:
        A = incidence(grid, chosen, radius_m)
        reach = np.asarray(A.getnnz(axis=1) > 0)
        A = A[reach]
        site_xy = None
    else:  # very large radius: too many pairs to hold; one nearest-open KD-tree query per hour instead
        LOGGER.info("week profile: %d piece-site pairs within %.0f m; querying per hour", pairs, radius_m)
        reach = np.ones(len(grid), dtype=bool)
        site_xy = chosen[["x", "y"]].to_numpy(float)
    n = len(districts)
    didx = grid["district"].to_numpy()
    area = grid["area_m2"].to_numpy(float)
    demand, _ = _demand(grid, districts, demand_col)
    darea = np.bincount(didx, weights=area, minlength=n)
    ddem = np.bincount(didx, weights=demand, minlength=n)
    r_didx, r_area, r_dem = didx[reach], area[reach], demand[reach]
    adcodes = districts["adcode"].tolist()
    site_district = pd.Categorical(chosen["district_adcode"].astype(str), categories=adcodes).codes
    instants = hour_instants(start)
    whole = city_of(districts)
    rows: list[dict[str, Any]] = []
    for h, t in enumerate(instants):
        if site_xy is None:
            covered = (A @ opened[:, h].astype(np.float32)) > 0
        elif opened[:, h].any():
            covered = cKDTree(site_xy[opened[:, h]]).query(xy, k=1, distance_upper_bound=radius_m)[0] <= radius_m
        else:
            covered = np.zeros(len(grid), dtype=bool)
        ca = np.bincount(r_didx, weights=r_area * covered, minlength=n)
        cd = np.bincount(r_didx, weights=r_dem * covered, minlength=n)
        valid = site_district >= 0
        op = np.bincount(site_district[valid], weights=opened[valid, h], minlength=n)
        day_type = engine.calendar.day_type(t.date())
        common = {"hour_of_week": h, "start": t.isoformat(timespec="minutes"), "weekday": WEEKDAYS[t.weekday()],
                  "hour": t.hour, "day_type": day_type}
        for i in range(n):
            rows.append({"adcode": adcodes[i], "name_en": districts["name_en"].iat[i],
                         "name_zh": districts["name_zh"].iat[i], **common, "open_sites": int(op[i]),
                         "area_share": ca[i] / darea[i] if darea[i] else np.nan,
                         "demand_share": cd[i] / ddem[i] if ddem[i] else np.nan})
        rows.append({**{k: whole[k] for k in ("adcode", "name_en", "name_zh")}, **common,
                     "open_sites": int(opened[:, h].sum()),
                     "area_share": ca.sum() / darea.sum() if darea.sum() else np.nan,
                     "demand_share": cd.sum() / ddem.sum() if ddem.sum() else np.nan})
        if progress:
            progress(1)
    frame = pd.DataFrame(rows)
    last_day = (start + dt.timedelta(days=6)).date()
    frame.attrs.update({"city_adcode": whole["adcode"], "week_start": start.isoformat(),
                        "kinds": list(kinds) or list(KINDS), "radius_m": radius_m,
                        "calendar_missing_years": engine.calendar.missing_years(start.date(), last_day)})
    return frame


def profile_matrix(profile: pd.DataFrame, metric: str = "demand_share") -> pd.DataFrame:
    """Wide table (district × hour_of_week) of one metric from :func:`week_profile`, districts in adcode order
    with the city-wide row last."""
    wide = profile.pivot_table(index=["adcode", "name_en"], columns="hour_of_week", values=metric, sort=True)
    code = profile.attrs.get("city_adcode", CITY_ADCODE)
    order = sorted(wide.index, key=lambda k: (k[0] == code, k[0]))
    return wide.loc[order]


def plot_week_heatmap(profile: pd.DataFrame, path: Path | str | None = None, metric: str = "demand_share",
                      title: str | None = None) -> Any:
    """Heatmap (district × hour of week) of a week profile as a matplotlib Figure (Agg; no pyplot state).

    Saves a PNG when ``path`` is given. Holidays and make-up working days are marked under the day labels.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    wide = profile_matrix(profile, metric)
    days = profile.drop_duplicates("hour_of_week").sort_values("hour_of_week")
    fig = Figure(figsize=(15, 0.36 * len(wide) + 2.2), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    image = ax.imshow(wide.to_numpy(float) * 100, aspect="auto", cmap="viridis", vmin=0, vmax=100,
                      interpolation="nearest")
    ax.set_yticks(range(len(wide)), [f"{name} {code}" for code, name in wide.index])
    ticks, labels = [], []
    for _, row in days[days["hour"] == 0].iterrows():
        ticks.append(int(row["hour_of_week"]))
        mark = {"holiday": " (holiday)", "workday": " (make-up workday)"}.get(row["day_type"], "")
        labels.append(f"{row['weekday']} {row['start'][:10]}{mark}")
    ax.set_xticks(ticks, labels, ha="left", fontsize=8)
    ax.set_xticks(range(0, HOURS_PER_WEEK, 6), minor=True)
    for t in ticks[1:]:
        ax.axvline(t - 0.5, color="white", linewidth=0.8)
    ax.axhline(len(wide) - 1.5, color="white", linewidth=1.5)
    ax.set_xlabel("hour of the week (Asia/Shanghai; value at the top of each hour)")
    what = "population-weighted demand" if metric == "demand_share" else "area"
    ax.set_title(title or f"Share of {what} within reach of an open site (%)", fontsize=11)
    fig.colorbar(image, ax=ax, fraction=0.025, pad=0.01, label="% covered")
    fig.tight_layout()
    if path is not None:
        fig.savefig(str(path), format="png")
    return fig
