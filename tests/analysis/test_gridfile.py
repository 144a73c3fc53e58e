"""The planners' grid is built once and stored: a recycled worker reads it instead of rebuilding (issue 15)."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from geopandas.testing import assert_geodataframe_equal
from shapely import affinity

import geoservice.analysis.planner as planner_module
from geoservice.analysis import GridCache, Planner, gridfile
from geoservice.analysis.grid import cell_strings
from tests.support import LAYERS

RESOLUTION = 7  # small enough to build in a second; the mechanism is the same at r9


def _no_rebuild(*args: Any, **kwargs: Any) -> Any:
    raise AssertionError("the grid was built again")


def test_a_fresh_worker_reads_the_stored_grid_instead_of_building_it(demo_embedded: Any, tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    first = Planner(demo_embedded.sites, resolution=RESOLUTION, grid_cache=GridCache(tmp_path), layers_dir=LAYERS)
    built = first.grid
    assert len(built) > 0 and built["demand"].sum() > 0
    assert len(list(tmp_path.glob("grid-*.npz"))) == 1

    monkeypatch.setattr(planner_module, "build_grid", _no_rebuild)
    recycled = Planner(demo_embedded.sites, resolution=RESOLUTION, grid_cache=GridCache(tmp_path),
                       layers_dir=LAYERS)
    read = recycled.grid
    assert_geodataframe_equal(read, built, check_less_precise=False)
    assert read.attrs == built.attrs
    # The same answers from it.
    at = "2026-11-23T22:00"
    assert (recycled.coverage(at).districts["covered_demand"].tolist()
            == first.coverage(at).districts["covered_demand"].tolist())


def test_other_inputs_get_another_file(demo_embedded: Any) -> None:
    planner = Planner(demo_embedded.sites, resolution=RESOLUTION, layers_dir=LAYERS)
    districts = planner.districts
    key = gridfile.fingerprint(districts, RESOLUTION, "bundled", None)
    assert key == gridfile.fingerprint(districts.copy(), RESOLUTION, "bundled", None)
    assert key != gridfile.fingerprint(districts, RESOLUTION + 1, "bundled", None)
    assert key != gridfile.fingerprint(districts, RESOLUTION, "uniform", None)
    moved = districts.copy()
    moved.loc[0, "geometry"] = affinity.translate(moved.geometry.iloc[0], xoff=0.001)
    assert key != gridfile.fingerprint(moved, RESOLUTION, "bundled", None)


def test_a_damaged_or_unwritable_grid_file_only_costs_a_rebuild(demo_embedded: Any, tmp_path: Path) -> None:
    planner = Planner(demo_embedded.sites, resolution=RESOLUTION, grid_cache=GridCache(tmp_path), layers_dir=LAYERS)
    expected = planner.grid
    (stored,) = tmp_path.glob("grid-*.npz")
    stored.write_bytes(b"not a grid")
    again = Planner(demo_embedded.sites, resolution=RESOLUTION, grid_cache=GridCache(tmp_path), layers_dir=LAYERS)
    assert_geodataframe_equal(again.grid, expected)
    assert gridfile.read(stored).shape == expected.shape  # and the file was written again

    blocked = tmp_path / "a-file-not-a-folder"
    blocked.write_text("x")
    elsewhere = Planner(demo_embedded.sites, resolution=RESOLUTION, grid_cache=GridCache(blocked),
                        layers_dir=LAYERS)
    assert_geodataframe_equal(elsewhere.grid, expected)


def test_grids_nobody_uses_any_more_are_removed_when_a_new_one_is_written(demo_embedded: Any, tmp_path: Path) -> None:
    old = []
    for i in range(gridfile.KEEP_GRIDS + 2):  # grids of earlier district layers: used long ago, oldest first
        stale = tmp_path / f"grid-old{i:02d}.npz"
        stale.write_bytes(b"an old grid")
        stale.with_suffix(".lock").write_text("")
        os.utime(stale, (1_000_000 + i, 1_000_000 + i))
        old.append(stale)
    in_use = old[0]
    os.utime(in_use)  # read recently by a worker: kept although it was written first
    planner = Planner(demo_embedded.sites, resolution=RESOLUTION, grid_cache=GridCache(tmp_path), layers_dir=LAYERS)
    assert len(planner.grid) > 0
    left = sorted(p.name for p in tmp_path.glob("grid-*.npz"))
    assert len(left) == gridfile.KEEP_GRIDS
    assert in_use.name in left and not old[1].exists() and not old[1].with_suffix(".lock").exists()
    assert {p.name for p in old[-(gridfile.KEEP_GRIDS - 2):]} <= set(left)  # the most recently used stay


def test_the_web_apps_grid_keeps_no_polygons_and_answers_the_same(demo_embedded: Any, tmp_path: Path) -> None:
    """The service's grids drop the pieces' polygons (most of a worker's memory), whether the worker built the
    grid or read the stored file; coverage, gaps, the week profile, recommendations and the map are unchanged."""
    from pandas.testing import assert_frame_equal

    shaped = Planner(demo_embedded.sites, resolution=RESOLUTION, grid_cache=GridCache(tmp_path), layers_dir=LAYERS)
    built = Planner(demo_embedded.sites, resolution=RESOLUTION,
                    grid_cache=GridCache(tmp_path / "elsewhere", cell_shapes=False), layers_dir=LAYERS)
    read = Planner(demo_embedded.sites, resolution=RESOLUTION, grid_cache=GridCache(tmp_path, cell_shapes=False),
                   layers_dir=LAYERS)
    at = "2026-11-23T22:00"
    full = shaped.coverage(at)
    assert full.cells.geometry.notna().all()
    for light in (built, read):
        grid = light.grid
        assert grid.geometry.isna().all() and grid.attrs["cell_shapes"] is False
        columns = shaped.grid.drop(columns="geometry")
        assert grid.memory_usage(deep=True).sum() < columns.memory_usage(deep=True).sum() / 2
        as_strings = grid.drop(columns="geometry").assign(h3=cell_strings(grid["h3"]),
                                                          adcode=grid["adcode"].astype(str))
        assert_frame_equal(as_strings, columns)
        result = light.coverage(at)
        assert_frame_equal(result.district_table(), full.district_table())
        assert_geodataframe_equal(result.gaps, full.gaps)
        assert_frame_equal(light.week("2026-11-23"), shaped.week("2026-11-23"))
        picks = light.recommend(result, n=3)
        assert_frame_equal(picks.drop(columns="geometry"), shaped.recommend(full, n=3).drop(columns="geometry"))
        assert "leaflet" in light.map(result, picks).get_root().render().lower()
    assert gridfile.read(next(tmp_path.glob("grid-*.npz"))).geometry.notna().all()  # the file keeps them
