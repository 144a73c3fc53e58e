"""Siting: greedy MCLP against the exact optimum, its bound, and the pruning that makes it fast."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import sparse

from geoservice.analysis import placement
from geoservice.analysis.placement import block_bounds, coverage_matrix, greedy_mclp, milp_mclp, recommend


def random_instance(seed: int, nc: int = 60, nd: int = 300, r: float = 1.0) -> tuple[sparse.csr_matrix, np.ndarray]:
    rng = np.random.default_rng(seed)
    cand = rng.uniform(0, 10, (nc, 2))
    dem = rng.uniform(0, 10, (nd, 2))
    w = rng.gamma(1.0, 10.0, nd)
    return coverage_matrix(cand, dem, 1.5 * r), w


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_greedy_within_its_guarantee_and_bound(seed: int) -> None:
    A, w = random_instance(seed)
    n = 5
    picks, added, bound, complete = greedy_mclp(A, w, n)
    exact, opt, _dual = milp_mclp(A, w, n, time_limit_s=30)
    assert complete and len(picks) == n and len(exact) == n
    greedy = sum(added)
    assert greedy == pytest.approx(w[np.unique(A[picks].indices)].sum())
    assert opt == pytest.approx(w[np.unique(A[exact].indices)].sum())
    assert (1 - 1 / np.e) * opt <= greedy <= opt + 1e-9
    assert bound >= opt - 1e-6  # the data-dependent bound really bounds the optimum


def test_block_bounds_are_upper_bounds() -> None:
    rng = np.random.default_rng(5)
    cand = rng.uniform(0, 5000, (400, 2))
    dem = rng.uniform(0, 5000, (3000, 2))
    w = rng.uniform(0, 3, 3000)
    exact = coverage_matrix(cand, dem, 700.0) @ w
    assert (block_bounds(cand, dem, w, 700.0) >= exact - 1e-9).all()


def test_pruned_greedy_equals_full_greedy(monday, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    fast = recommend(monday, 8)
    monkeypatch.setattr(placement, "FIRST_CANDIDATES", 10**7)  # every candidate evaluated exactly
    full = recommend(monday, 8)
    assert fast["h3"].tolist() == full["h3"].tolist()
    np.testing.assert_allclose(fast["added_demand"], full["added_demand"])
    assert fast.attrs["candidates_evaluated"] < full.attrs["candidates_evaluated"]


def test_recommendations_fill_real_gaps(monday) -> None:  # type: ignore[no-untyped-def]
    recs = recommend(monday, 10)
    assert recs["rank"].tolist() == list(range(1, 11))
    assert (recs["distance_to_open_m"] > monday.radius_m / 2).all()
    assert (np.diff(recs["added_demand"]) <= 1e-6).all()  # greedy gains never increase
    np.testing.assert_allclose(recs["cumulative_demand"], np.cumsum(recs["added_demand"]))
    base = monday.summary["city"]["demand_share"]
    assert recs.attrs["baseline_demand_share"] == pytest.approx(base)
    assert recs["demand_share_after"].iloc[-1] == pytest.approx(
        base + recs["added_demand"].sum() / monday.cells["demand"].sum())
    assert 0 <= recs.attrs["gap"] < 1 - 1 / np.e
    # No pick sits within reach of another pick's newly covered centre twice: each adds positive demand.
    assert (recs["added_demand"] > 0).all()


def test_large_radius_aggregates_demand(monday, planner) -> None:  # type: ignore[no-untyped-def]
    wide = planner.coverage(monday.at, radius_m=15_000)
    recs = recommend(wide, 3)
    assert recs.attrs["demand_resolution"] < 9 and len(recs) >= 1


def test_exact_method_on_a_district_sized_instance(planner) -> None:  # type: ignore[no-untyped-def]
    from geoservice.analysis import coverage_at

    # The functions take GeoDataFrames: restrict the grid to Dongcheng for an instance the MILP solves quickly.
    grid = planner.grid[planner.grid["adcode"] == "110101"]
    result = coverage_at(grid, planner.districts, planner.sites(), monday_3am(), planner.service.engine,
                         kinds=("worker_home",), radius_m=500)
    greedy = recommend(result, 3)
    exact = recommend(result, 3, method="milp", time_limit_s=60)
    assert exact.attrs["objective"] >= greedy.attrs["objective"] - 1e-6
    assert greedy.attrs["objective"] >= (1 - 1 / np.e) * exact.attrs["objective"]
    assert exact.attrs["upper_bound"] == pytest.approx(exact.attrs["objective"], rel=1e-6)


def test_exact_method_refuses_a_city_sized_instance(monday) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match="too large for the exact method"):
        recommend(monday, 3, method="milp")


def monday_3am():  # type: ignore[no-untyped-def]
    import datetime as dt

    from geoservice.hours import TZ

    return dt.datetime(2026, 11, 23, 3, 0, tzinfo=TZ)
