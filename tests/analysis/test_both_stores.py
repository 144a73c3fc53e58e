"""The analysis is built on the Store interface only: embedded SQLite and real PostGIS give the same answers."""
from __future__ import annotations

import numpy as np
import pytest

from geoservice.analysis import Planner
from tests.support import demo

from .conftest import LAYERS, MONDAY_2200

_reference: dict[str, object] = {}


def test_coverage_and_week_agree_across_stores(demo_store, demo_embedded) -> None:  # type: ignore[no-untyped-def]
    if "embedded" not in _reference:
        ref = Planner(demo_embedded.sites, resolution=8, layers_dir=LAYERS)
        _reference["embedded"] = (ref.coverage(MONDAY_2200).district_table(), ref.week("2026-10-01", radius_m=600))
    table_ref, week_ref = _reference["embedded"]  # type: ignore[misc]
    planner = Planner(demo_store.sites, resolution=8, layers_dir=LAYERS)
    table = planner.coverage(MONDAY_2200).district_table()
    assert table["adcode"].tolist() == table_ref["adcode"].tolist()
    for col in ("area_share", "demand_share", "open_sites", "sites", "median_distance_m"):
        np.testing.assert_allclose(table[col].to_numpy(float), table_ref[col].to_numpy(float), rtol=1e-9)
    week = planner.week("2026-10-01", radius_m=600)
    np.testing.assert_allclose(week["demand_share"], week_ref["demand_share"], rtol=1e-9)
    assert (week["open_sites"] == week_ref["open_sites"]).all()
    assert demo_store.backend in ("embedded", "postgis") and table["sites"].iloc[-1] == pytest.approx(demo.total())
