"""Isochrone coverage of a district on the walking network: the share of the district's walkable network (its
nodes, weighted by the length of the edges they touch) within ``minutes`` on foot of an open site.

One multi-source Dijkstra from every site's snapped node (``scipy.sparse.csgraph``), bounded by the walk's
reach, so the figure costs one graph search whatever the number of sites. A site farther than ``snap_m`` from
the network is left out (it reaches no street); the straight-line figure for the same sites is given alongside,
which a network figure can never exceed.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

from geoservice.network import Network


@dataclasses.dataclass(frozen=True)
class IsochroneCoverage:
    """One district's network coverage at a walking time."""

    minutes: float
    covered_share: float  # of the district's network length within ``minutes`` of a site on the network
    straight_line_share: float  # the same, within minutes × speed in a straight line (no detour): an upper bound
    network_km: float  # the district's network length
    sites_on_network: int
    sites_off_network: int


def isochrone_coverage(network: Network, district: BaseGeometry, sites: Sequence[tuple[float, float]],
                       minutes: float, speed_m_per_min: float, snap_m: float = 250.0) -> IsochroneCoverage:
    """Network coverage of ``district`` by ``sites`` (WGS-84 lon/lat) within ``minutes`` at ``speed_m_per_min``."""
    if minutes <= 0:
        raise ValueError("minutes must be positive")
    reach = minutes * speed_m_per_min
    inside = shapely.contains_xy(district, network.lon, network.lat)
    # each node stands for half of every edge it touches
    weight = np.zeros(network.nodes)
    np.add.at(weight, network.src, network.length_m / 2)
    np.add.at(weight, network.dst, network.length_m / 2)
    total = float(weight[inside].sum())
    on: list[tuple[int, float]] = []
    off = 0
    if sites:
        nodes, dist = network.snap([s[0] for s in sites], [s[1] for s in sites])
        for n, d in zip(nodes.tolist(), dist.tolist(), strict=True):
            if d <= snap_m and d < reach:
                on.append((n, d))
            else:
                off += 1
    covered = np.zeros(network.nodes, dtype=bool)
    near = np.zeros(network.nodes, dtype=bool)
    if on and total > 0:
        xy = network.project(network.lon, network.lat)
        # group sites by their snap distance so each search starts with its own head start (one search per
        # distinct rounded snap; usually a handful)
        by_snap: dict[int, list[int]] = {}
        for n, d in on:
            by_snap.setdefault(int(d), []).append(n)
        for snap, group in by_snap.items():
            covered |= network.lengths_from(group, reach - snap) <= reach - snap
        site_xy = network.project(np.asarray([s[0] for s in sites]), np.asarray([s[1] for s in sites]))
        for sx, sy in site_xy:
            near |= np.hypot(xy[:, 0] - sx, xy[:, 1] - sy) <= reach
    share = float(weight[inside & covered].sum()) / total if total else 0.0
    straight = float(weight[inside & near].sum()) / total if total else 0.0
    return IsochroneCoverage(minutes, share, straight, total / 1000, len(on), off)
