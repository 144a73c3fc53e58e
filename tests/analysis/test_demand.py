"""Demand layers: the bundled modelled layer keeps the census totals; any planner's layer maps onto the grid."""
from __future__ import annotations

import filecmp
from pathlib import Path

import geopandas as gpd
import h3
import numpy as np
import pandas as pd
import pytest
import shapely

from geoservice.analysis import build_grid, demand_for_grid
from geoservice.analysis.demand import (
    BUNDLED_DEMAND,
    BUNDLED_DEMAND_META,
    build_proxy_demand,
    bundled_demand,
    bundled_demand_metadata,
)
from geoservice.analysis.grid import WGS84

from .conftest import LAYERS

CENSUS_2020 = {
    "110101": 708_829, "110102": 1_106_214, "110105": 3_452_460, "110106": 2_019_764, "110107": 567_851,
    "110108": 3_133_469, "110109": 392_606, "110111": 1_312_778, "110112": 1_840_295, "110113": 1_324_044,
    "110114": 2_269_487, "110115": 1_993_591, "110116": 441_040, "110117": 457_313, "110118": 527_683,
    "110119": 345_671,
}


@pytest.fixture(scope="module")
def districts() -> gpd.GeoDataFrame:
    return gpd.read_file(LAYERS / "districts.geojson").sort_values("adcode").reset_index(drop=True)


def test_bundled_layer_keeps_each_districts_census_population() -> None:
    table = bundled_demand(LAYERS)
    assert list(table.columns) == ["adcode", "h3", "weight"]
    assert {h3.get_resolution(c) for c in table["h3"].head(100)} == {8}
    totals = table.groupby("adcode")["weight"].sum()
    for adcode, population in CENSUS_2020.items():
        assert totals[adcode] == pytest.approx(population, rel=1e-5)
    meta = bundled_demand_metadata(LAYERS)
    assert meta["modelled"] is True and "GeoNames" in " ".join(meta["sources"]) and "CC BY" in meta["licence"]


def test_bundled_layer_onto_r9_grid_keeps_totals(planner) -> None:  # type: ignore[no-untyped-def]
    grid = planner.grid
    totals = grid.groupby("adcode")["demand"].sum()
    for adcode, population in CENSUS_2020.items():
        assert totals[adcode] == pytest.approx(population, rel=1e-4)
    # The proxy concentrates people: the densest 10 % of area holds far more than 10 % of demand.
    density = grid["demand"] / grid["area_m2"]
    top = grid.loc[density >= density.quantile(0.9), "demand"].sum() / grid["demand"].sum()
    assert top > 0.5


def test_rebuilding_the_bundled_layer_is_byte_identical(districts, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    build_proxy_demand(districts, tmp_path)
    assert filecmp.cmp(tmp_path / BUNDLED_DEMAND, LAYERS / BUNDLED_DEMAND, shallow=False), \
        "geoservice/data/layers/demand_h3r8_modelled.csv is stale: run `geoservice coverage build-demand`"
    assert filecmp.cmp(tmp_path / BUNDLED_DEMAND_META, LAYERS / BUNDLED_DEMAND_META, shallow=False)


@pytest.fixture(scope="module")
def small_grid(districts) -> gpd.GeoDataFrame:  # type: ignore[no-untyped-def]
    return build_grid(districts[districts["adcode"].isin(["110101", "110102"])].reset_index(drop=True), 9)


def test_points_layer(small_grid) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(3)
    pieces = small_grid.sample(50, random_state=3)
    pts = shapely.point_on_surface(pieces.geometry.to_numpy())  # inside its piece (a centroid may not be)
    outside = shapely.points([[100.0, 30.0]])  # far away: dropped
    layer = gpd.GeoDataFrame({"workers": np.r_[rng.integers(1, 100, 50), 7]},
                             geometry=np.r_[pts, outside], crs=WGS84)
    out = demand_for_grid(small_grid, layer, "workers")
    assert out.sum() == pytest.approx(layer["workers"].iloc[:50].sum())
    np.testing.assert_allclose(out[pieces.index.to_numpy()], layer["workers"].iloc[:50].to_numpy())


def test_polygon_layer_split_by_area(small_grid, districts) -> None:  # type: ignore[no-untyped-def]
    two = districts[districts["adcode"].isin(["110101", "110102"])]
    layer = gpd.GeoDataFrame({"weight": [1000.0, 2000.0]}, geometry=two.geometry.to_numpy(), crs=WGS84)
    out = demand_for_grid(small_grid, layer)
    assert out.sum() == pytest.approx(3000.0, rel=1e-6)
    by = pd.Series(out).groupby(small_grid["adcode"].to_numpy()).sum()
    assert by["110101"] == pytest.approx(1000.0, rel=1e-3) and by["110102"] == pytest.approx(2000.0, rel=1e-3)


def test_h3_layer_finer_and_coarser(small_grid) -> None:  # type: ignore[no-untyped-def]
    cells = small_grid["h3"].drop_duplicates()
    fine = pd.DataFrame({"h3": [c for p in cells for c in h3.cell_to_children(p, 10)]})
    fine["weight"] = 1.0
    out = demand_for_grid(small_grid, fine)
    assert out.sum() == pytest.approx(len(fine))
    coarse = pd.DataFrame({"h3": sorted({h3.cell_to_parent(c, 7) for c in cells})})
    coarse["weight"] = 10.0
    assert demand_for_grid(small_grid, coarse).sum() == pytest.approx(10.0 * len(coarse))


def test_bad_layers_are_refused(small_grid) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match="no 'weight' column"):
        demand_for_grid(small_grid, pd.DataFrame({"h3": ["8931aa5122fffff"], "people": [1]}))
    with pytest.raises(ValueError, match=">= 0"):
        demand_for_grid(small_grid, pd.DataFrame({"h3": ["8931aa5122fffff"], "weight": [-1]}))
    lines = gpd.GeoDataFrame({"weight": [1]}, geometry=[shapely.LineString([(116.4, 39.9), (116.5, 39.9)])], crs=WGS84)
    with pytest.raises(ValueError, match="points or all polygons"):
        demand_for_grid(small_grid, lines)
