"""The planners' analyses: time-aware coverage on an H3 grid, demand layers, week profiles and siting.

Importable without Flask (the notebook uses it). The usual entry point is :class:`Planner`; the functions
underneath take and return (Geo)DataFrames:

* :mod:`~geoservice.analysis.grid` — ``districts_frame``, ``build_grid`` (H3 cells clipped to districts);
* :mod:`~geoservice.analysis.sites` — ``sites_frame``, ``open_mask``, ``open_matrix`` (hours engine);
* :mod:`~geoservice.analysis.demand` — ``demand_for_grid``, the bundled modelled demand layer;
* :mod:`~geoservice.analysis.coverage` — ``coverage_at``, ``gap_polygons``, ``week_profile``, heatmap;
* :mod:`~geoservice.analysis.placement` — ``recommend`` (MCLP: greedy with a bound, or exact MILP).
"""
from __future__ import annotations

from geoservice.analysis.coverage import (
    CoverageResult,
    coverage_at,
    gap_polygons,
    plot_week_heatmap,
    profile_matrix,
    radius_for_walk_minutes,
    week_profile,
)
from geoservice.analysis.demand import demand_for_grid, read_demand_layer, uniform_demand
from geoservice.analysis.grid import build_grid, districts_frame
from geoservice.analysis.placement import recommend
from geoservice.analysis.planner import GridCache, Planner, parse_time
from geoservice.analysis.sites import open_mask, open_matrix, sites_frame, sites_from_service

__all__ = [
    "CoverageResult", "GridCache", "Planner", "build_grid", "coverage_at", "demand_for_grid", "districts_frame",
    "gap_polygons", "open_mask", "open_matrix", "parse_time", "plot_week_heatmap", "profile_matrix",
    "radius_for_walk_minutes", "read_demand_layer", "recommend", "sites_frame", "sites_from_service",
    "uniform_demand", "week_profile",
]
