"""Couriers see how fresh a site's details are (issue 16, item 5): every public feature says whether the site is
``stale`` — never verified, or verified longer ago than ``GEOSERVICE_STALE_AFTER_DAYS`` — next to its
``verified_at``, on both stores."""
from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from geoservice import create_app
from geoservice.hours import utc_now
from geoservice.services import Services
from geoservice.settings import Settings
from geoservice.validation import ValidationFailed
from tests.support import LAYERS, TIANANMEN
from tests.support.sites import BASIC, make_sites, sid


def answer(store: Services, tmp_path: Path, **settings: Any) -> dict[str, dict[str, Any]]:
    app = create_app(Settings(embedded_path=Path("unused"), layers_dir=LAYERS, public_rate_per_minute=0,
                              rate_limit_dir=tmp_path, **settings), services=store, prepare=False)
    body = app.test_client().get(f"/api/v1/sites/nearest?lat={TIANANMEN[1]}&lon={TIANANMEN[0]}&limit=10"
                                 "&include_closed=true").get_json()
    return {f["id"]: f["properties"] for f in body["features"]}


def test_never_or_long_ago_verified_sites_are_marked_stale(store: Services, tmp_path: Path) -> None:
    store.sites.upsert_sites(make_sites(store, BASIC))
    now = utc_now()
    store.sites.verify(sid("a"), "test")  # just now
    store.sites.verify(sid("b"), "test", at=now - dt.timedelta(days=90))
    store.sites.verify(sid("c"), "test", at=now - dt.timedelta(days=200))

    by_default = answer(store, tmp_path)
    assert {k: p["stale"] for k, p in by_default.items()} == {
        sid("a"): False, sid("b"): False, sid("c"): True, sid("d"): True, sid("e"): True}
    assert by_default[sid("d")]["verified_at"] is None
    assert dt.datetime.fromisoformat(by_default[sid("c")]["verified_at"]) < now - dt.timedelta(days=199)

    strict = answer(store, tmp_path, stale_after_days=30)
    assert strict[sid("a")]["stale"] is False and strict[sid("b")]["stale"] is True


@pytest.mark.parametrize("days", ["0", "3651", "half a year"])
def test_the_threshold_must_be_a_sensible_number_of_days(days: str) -> None:
    with pytest.raises(ValidationFailed) as failed:
        Settings.from_env({"GEOSERVICE_STALE_AFTER_DAYS": days})
    assert failed.value.items[0].field == "GEOSERVICE_STALE_AFTER_DAYS"
