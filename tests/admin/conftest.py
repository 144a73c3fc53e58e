"""The two-district world of tests.support.districts as a fixture, on both stores."""
from __future__ import annotations

from pathlib import Path

import pytest

from geoservice.services import Services
from tests.support.districts import Districts, build_districts


@pytest.fixture
def districts(store: Services, tmp_path: Path) -> Districts:
    return build_districts(store, tmp_path)
