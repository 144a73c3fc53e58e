"""The 168-hour profile: the same answer as coverage at each hour, holidays and closures respected."""
from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from geoservice.analysis import open_mask, open_matrix, plot_week_heatmap, profile_matrix, sites_from_service
from geoservice.analysis.coverage import CITY_ADCODE
from geoservice.analysis.sites import hour_instants, week_start
from geoservice.hours import TZ
from geoservice.model import Closure

from .conftest import ARTIFACTS


@pytest.fixture(scope="module")
def sites(demo_embedded):  # type: ignore[no-untyped-def]
    return sites_from_service(demo_embedded.sites)


def test_open_matrix_matches_the_engine_site_by_site(sites, demo_embedded) -> None:  # type: ignore[no-untyped-def]
    engine = demo_embedded.sites.engine
    start = week_start(dt.date(2026, 9, 30))  # National Day week: holidays from Thu 1 Oct
    sample = sites.sample(150, random_state=1).reset_index(drop=True)
    sample.at[0, "closures"] = (Closure(sample.at[0, "id"], dt.date(2026, 9, 29), dt.date(2026, 9, 30)),)
    table = open_matrix(sample, engine, start)
    instants = hour_instants(start)
    for h in (3, 10, 22, 34, 82, 106, 130, 154):  # nights, mornings, holidays, weekend
        expected = [engine.is_open(s.opening_hours, instants[h], s.closures) for s in sample.itertuples()]
        assert table[:, h].tolist() == expected, instants[h]
        np.testing.assert_array_equal(open_mask(sample, engine, instants[h]), table[:, h])
    assert not table[0, 24:72].any()  # closed Tue-Wed by the operator


def test_week_profile_equals_coverage_at_each_hour(planner) -> None:  # type: ignore[no-untyped-def]
    week = planner.week("2026-09-30", kinds=("warm_station",), radius_m=800)
    assert len(week) == 168 * 17 and week["hour_of_week"].nunique() == 168
    assert week.attrs["week_start"].startswith("2026-09-28T00:00")
    # Thursday 1 October is a public holiday in the official schedule.
    assert set(week.loc[week["start"].str.startswith("2026-10-01"), "day_type"]) == {"holiday"}
    for h in (22, 58, 82, 154):  # Mon 22:00, Wed 10:00, Thu (holiday) 10:00, Sun 10:00
        at = dt.datetime(2026, 9, 28, tzinfo=TZ) + dt.timedelta(hours=h)
        result = planner.coverage(at, ("warm_station",), radius_m=800)
        rows = week[week["hour_of_week"] == h].set_index("adcode")
        table = result.district_table().set_index("adcode")
        np.testing.assert_allclose(rows["demand_share"], table.loc[rows.index, "demand_share"], rtol=1e-9)
        np.testing.assert_allclose(rows["area_share"], table.loc[rows.index, "area_share"], rtol=1e-9)
        assert rows.loc[CITY_ADCODE, "open_sites"] == table.loc[CITY_ADCODE, "open_sites"]
    # Banks and union stations are shut on the holiday: fewer open sites than the Wednesday before.
    city = week[week["adcode"] == CITY_ADCODE].set_index("hour_of_week")
    assert city.loc[82, "open_sites"] < city.loc[58, "open_sites"]


def test_heatmap_png(planner) -> None:  # type: ignore[no-untyped-def]
    week = planner.week("2026-11-23")
    wide = profile_matrix(week)
    assert wide.shape == (17, 168) and wide.index[-1][0] == CITY_ADCODE
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / "week_heatmap_2026-11-23.png"
    plot_week_heatmap(week, path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 20_000
    # Night (Mon 03:00) is never better covered than late morning (Mon 11:00).
    assert (wide[3] <= wide[11] + 1e-12).all()
