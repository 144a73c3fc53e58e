"""The couriers' page of a deployment for another city (Helsinki, real OSM data: ``tests/support/helsinki``).

The page takes the city from the server (``service_area`` in ``/api/v1/vocabulary``, areas from
``/api/v1/districts``): Beijing's landmarks are not offered, the district chooser lists Helsinki's areas, and
choosing one searches from a point inside it.
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import shapely

from geoservice.bootstrap import load_site_file
from tests.support.helsinki import Helsinki, build_helsinki

from .conftest import api_get, serve, wait_results
from .test_couriers_page import query_of


@pytest.fixture(scope="module")
def helsinki(tmp_path_factory: pytest.TempPathFactory) -> Helsinki:
    """The Helsinki areas and sites files."""
    return build_helsinki(tmp_path_factory.mktemp("helsinki"))


@pytest.fixture(scope="module")
def live_server(helsinki: Helsinki) -> Iterator[str]:
    """This module's pages talk to a Helsinki deployment (overrides the Beijing one of conftest)."""
    from geoservice import create_app
    from geoservice.settings import Settings

    built, folder = helsinki, helsinki.areas_path.parent
    app = create_app(Settings(embedded_path=folder / "g.sqlite", service_area=built.areas_path,
                              rate_limit_dir=folder, public_rate_per_minute=0))
    load_site_file(app.extensions["geoservice.services"], built.sites_path)
    with serve(app) as url:
        yield url


def test_helsinki_page_offers_helsinkis_areas_not_beijings_landmarks(new_page: Any, live_server: str,
                                                                      helsinki: Helsinki) -> None:
    areas = api_get(live_server, "/api/v1/districts")["features"]
    assert len(areas) == 2
    page = new_page("zh-CN", geolocation=None)
    page.goto(live_server + "/")
    page.wait_for_selector("#chooser:not([hidden])")
    page.wait_for_function("() => document.getElementById('landmarks').hidden")
    assert page.locator("#landmarks [data-landmark]").count() == 0
    page.wait_for_function(f"() => document.querySelectorAll('#district option').length === {len(areas) + 1}")
    labels = page.locator("#district option").all_inner_texts()[1:]
    assert sorted(labels) == sorted(f["properties"]["name_zh"] for f in areas)

    chosen = areas[0]
    page.select_option("#district", chosen["properties"]["adcode"])
    q = query_of(wait_results(page))
    point = shapely.Point(float(q["lon"][0]), float(q["lat"][0]))
    assert helsinki.parts[chosen["properties"]["adcode"]].covers(point)
