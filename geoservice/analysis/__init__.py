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

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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

# Loaded on first use (PEP 562), so that ``geoservice.analysis.commands`` — registered by the ``geoservice``
# command — imports without the planners' extra, which these modules need (geopandas, h3, …).
_EXPORTS = {
    "coverage": ("CoverageResult", "coverage_at", "gap_polygons", "plot_week_heatmap", "profile_matrix",
                 "radius_for_walk_minutes", "week_profile"),
    "demand": ("demand_for_grid", "read_demand_layer", "uniform_demand"),
    "grid": ("build_grid", "districts_frame"),
    "placement": ("recommend",),
    "planner": ("GridCache", "Planner", "parse_time"),
    "sites": ("open_mask", "open_matrix", "sites_frame", "sites_from_service"),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = [
    "CoverageResult", "GridCache", "Planner", "build_grid", "coverage_at", "demand_for_grid", "districts_frame",
    "gap_polygons", "open_mask", "open_matrix", "parse_time", "plot_week_heatmap", "profile_matrix",
    "radius_for_walk_minutes", "read_demand_layer", "recommend", "sites_frame", "sites_from_service",
    "uniform_demand", "week_profile",
]


def __getattr__(name: str) -> Any:
    """Import the submodule that defines ``name`` when it is first asked for."""
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value
