"""The embedded store's in-memory index: every site and its materialised open intervals as numpy arrays, a
KD-tree over unit-sphere vectors, and the exact nearest search over them.

One :class:`SiteIndex` is an immutable snapshot of one generation of the SQLite file; the store rebuilds it when
the generation moves. The open-at-``t`` state of every site only changes at an interval's start or end, so each
snapshot caches it per *segment* between consecutive boundaries (and the kind/amenity/open filter masks per
segment): queries at any instant inside a cached segment reuse the arrays a query at that segment's first instant
would compute.
"""
from __future__ import annotations

import datetime as dt
import math
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence

import numpy as np
from scipy.spatial import cKDTree

from geoservice.geo import geodesic_distance_m
from geoservice.model import AMENITIES, KINDS, NearestQuery, Site

EARTH_RADIUS_M = 6371008.8
# Below this many eligible sites a vectorised scan beats growing KD-tree queries.
BRUTE_FORCE_MAX = 20000
# KNN candidates fetched beyond k before re-ranking by exact ellipsoidal distance: the index orders by chord
# (unit sphere) distance, which can swap near-ties with the ellipsoidal order.
RERANK_MARGIN = 16
# Per snapshot: open-state arrays kept for this many segments between interval boundaries (8 bytes a site
# each), and filter masks for this many (segment, kinds, amenities) combinations (1 byte a site each, plus the
# eligible positions when few enough for the vectorised scan).
OPEN_SEGMENTS_CACHED = 8
FILTERS_CACHED = 32


def amenity_mask(amenities: Iterable[str]) -> int:
    """Bit mask of amenity codes (bit i = ``AMENITIES[i]``) for cheap filtering."""
    mask = 0
    for code in amenities:
        mask |= 1 << AMENITIES.index(code)
    return mask


def unit_vectors(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """Points on the unit sphere (chord distance orders like great-circle distance)."""
    lam, phi = np.radians(lon), np.radians(lat)
    return np.column_stack((np.cos(phi) * np.cos(lam), np.cos(phi) * np.sin(lam), np.sin(phi)))


def chord(distance_m: float) -> float:
    """The unit-sphere chord of a great-circle distance."""
    return 2.0 * math.sin(min(distance_m / EARTH_RADIUS_M, math.pi) / 2.0)


class Eligible:
    """A read-only eligibility mask with its count, and its positions when the vectorised scan will use them."""

    __slots__ = ("count", "idx", "mask")

    def __init__(self, mask: np.ndarray):
        self.mask = mask
        self.count = int(np.count_nonzero(mask))
        self.idx: np.ndarray | None = None
        if self.count <= BRUTE_FORCE_MAX:
            self.idx = np.flatnonzero(mask)
            self.idx.flags.writeable = False


class SiteIndex:
    """Immutable snapshot of all sites and intervals for one generation."""

    def __init__(self, generation: str | None, sites: list[Site], intervals: np.ndarray,
                 window: tuple[dt.datetime, dt.datetime] | None):
        self.generation = generation
        self.sites = sites
        self.pos = {s.id: i for i, s in enumerate(sites)}
        n = len(sites)
        self.lon = np.fromiter((s.lon for s in sites), float, n)
        self.lat = np.fromiter((s.lat for s in sites), float, n)
        self.kind = np.fromiter((KINDS.index(s.kind) for s in sites), np.int8, n)
        self.district = np.array([s.district_adcode or "" for s in sites], dtype=object)
        self.mask = np.fromiter((amenity_mask(s.amenities) for s in sites), np.int64, n)
        self.xyz = unit_vectors(self.lon, self.lat) if n else np.zeros((0, 3))
        self.tree = cKDTree(self.xyz) if n else None
        self.window = window
        if len(intervals):
            self.iv_site = np.array([self.pos.get(s, -1) for s in intervals[:, 0]], dtype=np.int64)
            self.iv_start = intervals[:, 1].astype(float)
            self.iv_end = intervals[:, 2].astype(float)
        else:
            self.iv_site = np.zeros(0, np.int64)
            self.iv_start = self.iv_end = np.zeros(0)
        # Every instant at which some interval starts or ends, sorted: the hit set of ``open_until`` (hence its
        # result) is the same for all ``t`` between two consecutive boundaries.
        self.boundaries = np.unique(np.concatenate((self.iv_start, self.iv_end)))
        self._cache_lock = threading.Lock()
        self._until: OrderedDict[int, np.ndarray] = OrderedDict()
        self._eligible: OrderedDict[tuple[int, frozenset[str], int], Eligible] = OrderedDict()

    def segment(self, t: float) -> int:
        """Number of boundaries ``<= t``: ``t`` lies in ``[boundaries[j-1], boundaries[j])`` (open-ended at the
        ends), where ``open_until`` is constant."""
        return int(np.searchsorted(self.boundaries, t, side="right"))

    def until_at(self, t: float) -> np.ndarray:
        """``open_until(t)``, computed once per segment and shared (read-only)."""
        return self._until_in(self.segment(t), t)

    def _until_in(self, seg: int, t: float) -> np.ndarray:
        with self._cache_lock:
            until = self._until.get(seg)
            if until is None:
                until = self.open_until(t)
                until.flags.writeable = False
                self._until[seg] = until
                while len(self._until) > OPEN_SEGMENTS_CACHED:
                    self._until.popitem(last=False)
            else:
                self._until.move_to_end(seg)
            return until

    def open_eligible(self, t: float, kinds: Sequence[str], amenities_mask: int) -> tuple[np.ndarray, Eligible]:
        """``open_until(t)`` and the sites passing the kind and amenity filters that are open at ``t``.

        Keyed by segment and the filter as a set (``base_mask`` ignores order and repeats), so the arrays are
        exactly those an uncached ``base_mask(...) & (open_until(t) > t)`` gives: ``open_until(t)`` is
        constant within the segment, and there ``open_until(t) > t`` holds exactly where it is not ``-inf``
        (the containing interval ends after ``t``), i.e. it is the same mask for every ``t`` of the segment.
        """
        seg = self.segment(t)
        until = self._until_in(seg, t)
        key = (seg, frozenset(kinds), amenities_mask)
        with self._cache_lock:
            hit = self._eligible.get(key)
            if hit is not None:
                self._eligible.move_to_end(key)
                return until, hit
        mask = self.base_mask(kinds, amenities_mask) & (until > t)
        mask.flags.writeable = False
        sel = Eligible(mask)
        with self._cache_lock:
            self._eligible[key] = sel
            while len(self._eligible) > FILTERS_CACHED:
                self._eligible.popitem(last=False)
        return until, sel

    def base_mask(self, kinds: Sequence[str], amenities_mask: int) -> np.ndarray:
        ok = np.ones(len(self.sites), bool)
        if kinds:
            ok &= np.isin(self.kind, [KINDS.index(k) for k in kinds])
        if amenities_mask:
            ok &= (self.mask & amenities_mask) == amenities_mask
        return ok

    def in_bbox(self, bbox: tuple[float, float, float, float]) -> np.ndarray:
        """Sites inside a lon/lat box, edges included; ``lon_min > lon_max`` crosses the antimeridian and
        ``lat_min > lat_max`` holds nothing (as OGC API - Features reads boxes)."""
        x0, y0, x1, y1 = bbox
        lat_ok = (self.lat >= y0) & (self.lat <= y1)
        lon_ok = (self.lon >= x0) & (self.lon <= x1) if x0 <= x1 else (self.lon >= x0) | (self.lon <= x1)
        return np.asarray(lat_ok & lon_ok)

    def open_until(self, t: float) -> np.ndarray:
        """Per site: end of the materialised interval containing ``t`` (epoch s), or -inf when closed."""
        out = np.full(len(self.sites), -np.inf)
        hit = (self.iv_start <= t) & (self.iv_end > t)
        out[self.iv_site[hit]] = self.iv_end[hit]
        return out


def rank(index: SiteIndex, q: NearestQuery, eligible: np.ndarray | Eligible, want: int,
         accept: Callable[[int, float], bool] | None = None) -> list[tuple[Site, float]]:
    """The ``want`` nearest eligible sites by exact ellipsoidal distance; ``accept(i, d)`` filters further.

    Candidates come in chord order (unit sphere); the answer is final once the ``want``-th accepted
    distance is below the sphere distance of the farthest chord examined, less the worst
    sphere-vs-ellipsoid disagreement (under 0.6 %), so no unexamined site can be nearer.
    ``eligible`` is a boolean mask, or a cached :class:`Eligible` (same mask, count and positions
    precomputed; the search is the same).
    """
    sel = eligible if isinstance(eligible, Eligible) else Eligible(eligible)
    eligible, n_eligible = sel.mask, sel.count
    point = unit_vectors(np.array([q.lon]), np.array([q.lat]))[0]
    radius = q.radius_m()
    chord_cap = chord(radius * 1.01) if radius is not None else np.inf
    if n_eligible == 0 or want <= 0:
        return []
    m = want + RERANK_MARGIN
    while True:
        if n_eligible <= BRUTE_FORCE_MAX or index.tree is None:
            eligible_idx = sel.idx if sel.idx is not None else np.flatnonzero(eligible)
            chords = np.linalg.norm(index.xyz[eligible_idx] - point, axis=1)
            take = min(m, len(chords))
            part = np.argpartition(chords, take - 1)[:take] if take < len(chords) else np.arange(len(chords))
            cand, cand_chords = eligible_idx[part], chords[part]
            exhausted = take >= len(chords)
            examined = float(cand_chords.max())
        else:
            k = min(len(index.sites), m * max(2, 2 * len(index.sites) // n_eligible))
            chords, idx = index.tree.query(point, k=k)
            chords, idx = np.atleast_1d(chords), np.atleast_1d(idx)
            keep = eligible[idx]
            cand, cand_chords = idx[keep], chords[keep]
            exhausted = k >= len(index.sites)
            examined = float(chords.max())
        beyond_radius = examined > chord_cap
        cand = cand[cand_chords <= chord_cap]
        dists = np.atleast_1d(geodesic_distance_m(q.lon, q.lat, index.lon[cand], index.lat[cand])) \
            if len(cand) else np.zeros(0)
        out: list[tuple[Site, float]] = []
        for j in np.argsort(dists, kind="stable"):
            i, d = int(cand[j]), float(dists[j])
            if radius is not None and d > radius:
                continue
            if accept is not None and not accept(i, d):
                continue
            out.append((index.sites[i], d))
            if len(out) == want:
                break  # nothing below reads past out[want - 1]
        bound = 2 * EARTH_RADIUS_M * np.arcsin(min(examined / 2, 1.0)) * 0.994
        if exhausted or beyond_radius or (len(out) >= want and out[want - 1][1] <= bound):
            return out[:want]
        m *= 4
