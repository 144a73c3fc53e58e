"""The embedded store's per-segment open-state cache gives exactly what the uncached computation gives.

The open state only changes at interval boundaries, so the store caches ``open_until`` and the filter masks
per segment between consecutive boundaries. These tests compare the cached arrays and the nearest answers
bit for bit with the uncached computation, at boundaries, just either side of them and in between, and check
that writes (also from another store object over the same file, as another process would) are seen at once.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from geoservice.bootstrap import load_bundled_calendar
from geoservice.hours import TZ
from geoservice.model import AMENITIES, KINDS, Closure, NearestQuery, Site, SiteFilter, site_id_for
from geoservice.services import Services
from geoservice.store.embedded import EmbeddedStore
from geoservice.store.embedded import index as embedded
from geoservice.store.embedded.index import amenity_mask, rank

WINDOW = (dt.datetime(2026, 9, 26, tzinfo=TZ), dt.datetime(2026, 10, 6, tzinfo=TZ))
HOURS = ["24/7", "Mo-Fr 08:30-17:30; PH off", "Tu-Su 09:00-20:00", "Mo-Su 06:00-22:00", "Mo-Su 09:00-10:05",
         "Mo-Su 22:00-02:00", "Mo-Sa 07:15-11:45,13:10-19:59", "Sa,Su 10:00-16:00", "off"]
FILTERS = [((), ()), (("warm_station",), ("toilet",)), (("worker_home", "warm_station"), ()),
           (("warm_station", "worker_home"), ()), ((), ("drinking_water", "heating"))]


def _sites(n: int, seed: int) -> list[Site]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        source_id = f"cache-{i}"
        amenities = sorted({str(a) for a in rng.choice(AMENITIES, size=int(rng.integers(0, 4)), replace=False)})
        out.append(Site(id=site_id_for(source_id), source_id=source_id, kind=str(rng.choice(KINDS)),
                        name_zh=f"站点{i}", lon=float(rng.uniform(116.2, 116.6)), lat=float(rng.uniform(39.8, 40.05)),
                        opening_hours=str(rng.choice(HOURS)), amenities=amenities))
    return out


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Services]:
    s = Services.over(EmbeddedStore(tmp_path / "cache.sqlite"))
    s.migrate()
    load_bundled_calendar(s)
    sites = _sites(400, seed=5)
    s.sites.upsert_sites(sites)
    s.sites.refresh_intervals(WINDOW)
    s.sites.add_closure(Closure(sites[0].id, dt.date(2026, 10, 1), dt.date(2026, 10, 2), "repairs"), actor="test")
    yield s
    s.close()


def _times(index: embedded.SiteIndex, n_random: int, seed: int) -> list[float]:
    """Every boundary, half a second and a microsecond either side, random instants, and beyond both ends."""
    b = index.boundaries
    rng = np.random.default_rng(seed)
    ts = [float(x) for x in np.concatenate((b, b - 0.5, b + 0.5, b - 1e-6, b + 1e-6))]
    ts += [float(x) for x in rng.uniform(b[0] - 3600, b[-1] + 3600, n_random)]
    ts += [float(b[0] - 86400), float(b[-1] + 86400)]
    order = rng.permutation(len(ts))  # fill the cache from arbitrary points inside each segment
    return [ts[i] for i in order]


def test_cached_arrays_equal_the_uncached_computation(store: Services) -> None:
    index = store.spatial.snapshot()
    assert 10 < len(index.boundaries) < 1000
    for t in _times(index, 300, seed=1):
        want_until = index.open_until(t)
        assert np.array_equal(index.until_at(t), want_until)
        for kinds, amenities in FILTERS:
            until, sel = index.open_eligible(t, kinds, amenity_mask(amenities))
            want = index.base_mask(kinds, amenity_mask(amenities)) & (want_until > t)
            assert np.array_equal(until, want_until)
            assert np.array_equal(sel.mask, want) and sel.count == int(want.sum())
            assert sel.idx is None or np.array_equal(sel.idx, np.flatnonzero(want))


def _uncached_nearest(store: Services, q: NearestQuery) -> list[tuple[str, float]]:
    """``nearest_open`` as it was before the cache: masks recomputed from every interval for each query (``rank``
    itself is shared, so this checks the cached masks, not ``rank``'s early stop)."""
    index = store.spatial.snapshot()
    t = q.at.timestamp()
    until = index.open_until(t)
    eligible = index.base_mask(q.kinds, amenity_mask(q.amenities)) & (until > t)
    accept = None if q.arrive_within_s is None else (lambda i, d: until[i] > t + q.walk_seconds(d))
    return [(s.id, d) for s, d in rank(index, q, eligible, q.limit, accept)]


@pytest.mark.parametrize("brute_force_max", [embedded.BRUTE_FORCE_MAX, 0])  # vectorised scan, KD-tree
def test_nearest_is_identical_with_and_without_the_cache(store: Services, brute_force_max: int,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(embedded, "BRUTE_FORCE_MAX", brute_force_max)
    index = store.spatial.snapshot()
    rng = np.random.default_rng(7)
    times = [t for t in _times(index, 100, seed=2) if WINDOW[0].timestamp() <= t < WINDOW[1].timestamp() - 7200]
    for i, t in enumerate(times[:600]):
        kinds, amenities = FILTERS[i % len(FILTERS)]
        q = NearestQuery(lon=float(rng.uniform(116.2, 116.6)), lat=float(rng.uniform(39.8, 40.05)),
                         at=dt.datetime.fromtimestamp(t, TZ), kinds=kinds, amenities=amenities,
                         limit=int(rng.choice([1, 5, 10])),
                         arrive_within_s=float(rng.choice([600, 1800])) if i % 3 == 0 else None,
                         max_distance_m=2000.0 if i % 7 == 0 else None)
        got = [(r.site.id, r.distance_m) for r in store.spatial.nearest_open(q) or []]
        assert got == _uncached_nearest(store, q), q


def test_caches_are_bounded(store: Services) -> None:
    index = store.spatial.snapshot()
    for t in _times(index, 50, seed=3):
        index.open_eligible(t, ("warm_station",), 0)
    assert len(index._until) <= embedded.OPEN_SEGMENTS_CACHED
    assert len(index._eligible) <= embedded.FILTERS_CACHED


def test_writes_from_another_store_object_invalidate_the_cache(store: Services) -> None:
    at = dt.datetime(2026, 9, 30, 10, 0, tzinfo=TZ)
    q = NearestQuery(lon=116.40, lat=39.91, at=at, limit=3)
    first = store.sites.nearest(q)[0].site
    cached = store.spatial.snapshot().until_at(at.timestamp())
    assert store.sites.nearest(dataclasses.replace(q, at=at + dt.timedelta(minutes=1)))[0].site.id == first.id
    assert store.spatial.snapshot().until_at(at.timestamp()) is cached  # same segment: the same cached array
    other = Services.over(EmbeddedStore(store.spatial.path))  # as another worker process would
    try:
        other.sites.update_site(first.id, {"opening_hours": "Mo-Su 18:00-19:00"}, actor="test")
    finally:
        other.close()
    assert first.id not in [h.site.id for h in store.sites.nearest(q)]
    listed, _ = store.sites.list_sites(SiteFilter(open_at=at, limit=1000))
    assert first.id not in {s.id for s in listed}
    assert [(r.site.id, r.distance_m) for r in store.spatial.nearest_open(q) or []] == _uncached_nearest(store, q)
