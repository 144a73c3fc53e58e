"""One object for the planners' workflow over a store: grid, demand, sites, coverage, week profile, siting.

>>> planner = Planner(open_services(settings).sites)  # doctest: +SKIP
>>> monday = planner.coverage("2026-11-23T22:00")  # doctest: +SKIP
>>> monday.districts, monday.gaps                  # doctest: +SKIP
>>> planner.recommend(monday, n=10)                # doctest: +SKIP

The grid (the expensive part, ~5–8 s for Beijing at resolution 9) is built once per resolution and can be
shared between planners through ``grid_cache`` (the web app keeps one). Sites are read from the service on
each call, so operators' edits to hours and closures show up at once.
"""
from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeAlias

import geopandas as gpd
import pandas as pd

from geoservice.analysis import gridfile
from geoservice.analysis.coverage import (
    DEFAULT_RADIUS_M,
    CoverageResult,
    coverage_at,
    week_profile,
)
from geoservice.analysis.demand import (
    bundled_demand,
    bundled_demand_metadata,
    bundled_demand_path,
    demand_for_grid,
    read_demand_layer,
    uniform_demand,
)
from geoservice.analysis.grid import DEFAULT_RESOLUTION, build_grid, districts_frame
from geoservice.analysis.placement import recommend
from geoservice.analysis.sites import HOURS_PER_WEEK, sites_from_service, week_start
from geoservice.hours import TZ
from geoservice.servicearea import AreaLayer
from geoservice.services.sites import SiteService
from geoservice.walk import WalkModel

LOGGER = logging.getLogger(__name__)

DemandSpec: TypeAlias = str | Path | pd.DataFrame | gpd.GeoDataFrame | None


class GridCache:
    """Thread-safe cache of (districts, grid with demand) per (resolution, demand key).

    With a ``folder`` (the web app passes its instance folder), built grids are also stored there
    (:mod:`~geoservice.analysis.gridfile`) and shared by every worker and restart instead of rebuilt. With
    ``cell_shapes=False`` (the web app) the grids keep no piece polygons
    (:func:`~geoservice.analysis.gridfile.without_shapes`): no served answer draws them.
    """

    def __init__(self, folder: Path | None = None, cell_shapes: bool = True) -> None:
        self.folder = folder
        self.cell_shapes = cell_shapes
        self._lock = threading.Lock()
        self._items: dict[tuple[Any, ...], tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]] = {}

    def get(self, key: tuple[Any, ...], build: Callable[[], tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]]
            ) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
        """The cached value for ``key``, building it (once, under the lock) if missing."""
        with self._lock:
            if key not in self._items:
                self._items[key] = build()
            return self._items[key]

    def clear(self) -> None:
        """Forget everything (e.g. after the district layer changed)."""
        with self._lock:
            self._items.clear()


def parse_time(value: str | dt.datetime | dt.date) -> dt.datetime:
    """ISO text, datetime or date to an aware Asia/Shanghai datetime (naive = Beijing local time)."""
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value.strip().replace(" ", "T", 1).replace("Z", "+00:00"))
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        value = dt.datetime.combine(value, dt.time())
    return value.astimezone(TZ) if value.tzinfo else value.replace(tzinfo=TZ)


class Planner:
    """The planners' tools over one store.

    Parameters
    ----------
    sites
        The site service of either backend (``open_services(settings).sites``).
    resolution
        H3 resolution of the grid (default 9).
    demand
        ``"bundled"`` (default: the package's ``data/layers/demand_h3r8_modelled.csv``), ``"uniform"``
        (census population spread by area), a path to a demand layer, or a (Geo)DataFrame (see
        :func:`~geoservice.analysis.demand.demand_for_grid`).
    demand_weight
        The weight column of a custom demand layer.
    walk
        The walk model that turns minutes into a radius (the service's settings by default).
    grid_cache
        Share grids between planners (the web app passes its own).
    """

    def __init__(self, sites: SiteService, resolution: int = DEFAULT_RESOLUTION, demand: DemandSpec = "bundled",
                 demand_weight: str = "weight", walk: WalkModel | None = None,
                 grid_cache: GridCache | None = None, layers_dir: Path | None = None,
                 bundled_demand_applies: bool = True, area: AreaLayer | None = None):
        self.service = sites
        self.resolution = resolution
        self.demand = demand
        self.demand_weight = demand_weight
        self.walk = walk or WalkModel()
        self.layers_dir = layers_dir
        # The bundled demand layer models Beijing: for another service area "bundled" means uniform demand.
        self.bundled_demand_applies = bundled_demand_applies
        self.area = area  # names the city-wide rows (None: Beijing)
        self._cache = grid_cache or GridCache()

    # ---- inputs ----------------------------------------------------------------------------------
    def _demand_key(self) -> Any:
        if isinstance(self.demand, (pd.DataFrame, gpd.GeoDataFrame)):
            return ("frame", id(self.demand), self.demand_weight)
        return (str(self.demand), self.demand_weight)

    def _demand_file(self) -> Path | None:
        if isinstance(self.demand, (pd.DataFrame, gpd.GeoDataFrame)) or self.demand in (None, "uniform"):
            return None
        if self.demand == "bundled":
            return bundled_demand_path(self.layers_dir) if self.bundled_demand_applies else None
        return Path(self.demand)

    def _build(self) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
        districts = districts_frame(self.service.districts())
        if self.area is not None:
            districts.attrs["city"] = {"adcode": self.area.code, "name_zh": self.area.name_zh,
                                       "name_en": self.area.name_en}
        if districts.empty:
            raise ValueError("no districts are loaded: run `geoservice db init` first")
        folder = self._cache.folder
        shapes = self._cache.cell_shapes
        if folder is None or isinstance(self.demand, (pd.DataFrame, gpd.GeoDataFrame)):
            return districts, gridfile.shaped(self._build_grid(districts), shapes)
        key = gridfile.fingerprint(districts, self.resolution,
                                   (self._demand_key(), self.bundled_demand_applies), self._demand_file())
        return districts, gridfile.load_or_build(folder, key, lambda: self._build_grid(districts), shapes)

    def _build_grid(self, districts: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
        grid = build_grid(districts, self.resolution)
        if self.demand == "uniform" or self.demand is None:
            grid["demand"] = uniform_demand(grid, districts)
            grid.attrs["demand_source"] = "2020 census population spread evenly by area"
        elif self.demand == "bundled" and not self.bundled_demand_applies:
            grid["demand"] = uniform_demand(grid, districts)
            grid.attrs["demand_source"] = ("the areas' population spread evenly by area (the bundled demand layer "
                                           "models Beijing, not this service area)")
        elif isinstance(self.demand, str) and self.demand == "bundled":
            grid["demand"] = demand_for_grid(grid, bundled_demand(self.layers_dir), "weight")
            meta = bundled_demand_metadata(self.layers_dir)
            grid.attrs["demand_source"] = ("geoservice/data/layers/demand_h3r8_modelled.csv — " + meta["name"])
        else:
            layer = self.demand if isinstance(self.demand, (pd.DataFrame, gpd.GeoDataFrame)) \
                else read_demand_layer(self.demand)
            grid["demand"] = demand_for_grid(grid, layer, self.demand_weight)
            grid.attrs["demand_source"] = f"custom demand layer ({self.demand_weight})" \
                if not isinstance(self.demand, (str, Path)) else f"{self.demand} ({self.demand_weight})"
        return grid

    @property
    def districts(self) -> gpd.GeoDataFrame:
        """District polygons and census population (WGS-84)."""
        return self._cache.get((self.resolution, self._demand_key()), self._build)[0]

    @property
    def grid(self) -> gpd.GeoDataFrame:
        """The H3 grid clipped to the districts, with a ``demand`` column."""
        return self._cache.get((self.resolution, self._demand_key()), self._build)[1]

    def sites(self, alerts_at: dt.datetime | None = None,
              alerts_during: tuple[dt.datetime, dt.datetime] | None = None) -> gpd.GeoDataFrame:
        """Every site in the store, with closures (read fresh); with ``alerts_at``, alert hours in force then;
        with ``alerts_during``, when within that span alerts replace each site's hours."""
        return sites_from_service(self.service, alerts_at, alerts_during)

    def radius(self, radius_m: float | None = None, walk_minutes: float | None = None) -> float:
        """The reach in metres from a radius or walking minutes (not both); default 1,000 m."""
        if radius_m is not None and walk_minutes is not None:
            raise ValueError("give radius_m or walk_minutes, not both")
        if walk_minutes is not None:
            return self.walk.radius_m(walk_minutes)
        return float(radius_m) if radius_m is not None else DEFAULT_RADIUS_M

    # ---- analyses --------------------------------------------------------------------------------
    def coverage(self, at: str | dt.datetime, kinds: Sequence[str] = (), radius_m: float | None = None,
                 walk_minutes: float | None = None, sites: gpd.GeoDataFrame | None = None,
                 alert_hours: bool = True) -> CoverageResult:
        """Coverage at ``at`` (see :func:`~geoservice.analysis.coverage.coverage_at`), by the hours the sites keep
        then: alert hours where a weather alert in force triggers them, unless ``alert_hours`` is False (the
        normal night, for comparison)."""
        when = parse_time(at)
        frame = self.sites(when if alert_hours else None) if sites is None else sites
        return coverage_at(self.grid, self.districts, frame, when, self.service.engine, tuple(kinds),
                           self.radius(radius_m, walk_minutes), walk=self.walk)

    def week(self, week_of: str | dt.date, kinds: Sequence[str] = (), radius_m: float | None = None,
             walk_minutes: float | None = None, progress: Callable[[int], None] | None = None,
             alert_hours: bool = True) -> pd.DataFrame:
        """The 168-hour profile of the week containing ``week_of`` (see
        :func:`~geoservice.analysis.coverage.week_profile`), by the hours the sites keep in each hour: alert hours
        while a weather alert triggers them, unless ``alert_hours`` is False (the normal week, for comparison)."""
        day = dt.date.fromisoformat(week_of) if isinstance(week_of, str) else week_of
        start = week_start(day)
        span = (start, start + dt.timedelta(hours=HOURS_PER_WEEK))
        frame = self.sites(alerts_during=span if alert_hours else None)
        return week_profile(self.grid, self.districts, frame, day, self.service.engine, tuple(kinds),
                            self.radius(radius_m, walk_minutes), progress=progress)

    def recommend(self, result: CoverageResult, n: int = 10, method: str = "greedy",
                  **options: Any) -> gpd.GeoDataFrame:
        """Top-``n`` new sites for the gaps of ``result`` (see :func:`~geoservice.analysis.placement.recommend`)."""
        return recommend(result, n, method, **options)

    def map(self, result: CoverageResult, recommendations: gpd.GeoDataFrame | None = None, **options: Any) -> Any:
        """A Folium map of ``result`` (see :func:`geoservice.analysis.maps.coverage_map`)."""
        from geoservice.analysis.maps import coverage_map

        return coverage_map(result, recommendations, **options)
