"""The walk model: how far a courier gets on foot in a given time, and how long a distance takes.

Without a street network the service uses the straight-line (WGS-84 geodesic) distance times a detour factor at
a walking speed: ``minutes = distance_m × detour_factor ÷ speed_m_per_min``. Both numbers are settings
(``GEOSERVICE_DETOUR_FACTOR``, ``GEOSERVICE_WALK_SPEED_M_PER_MIN``; 1.3 and 75 m/min = 4.5 km/h by default), and
the nearest query, "still open when I arrive", coverage radii, the map legend and the API documents all take them
from one :class:`WalkModel`, so they cannot disagree.

With a walking network loaded (``geoservice network load``) the service uses :class:`NetworkWalkModel`, the
same interface measuring walks on the network (:meth:`WalkModel.route_m`), falling back per point to the
straight line where the network does not reach.
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from geoservice.network import Network

NETWORK_SEARCH_FACTOR = 4.0  # a network walk longer than this × the straight line is "not connected"
NETWORK_SEARCH_MIN_M = 5000.0  # about an hour on foot


@dataclasses.dataclass(frozen=True)
class WalkModel:
    """Straight line × detour factor at a walking speed."""

    detour_factor: float = 1.3
    speed_m_per_min: float = 75.0
    name: str = "straight_line"

    def __post_init__(self) -> None:
        if not (math.isfinite(self.detour_factor) and 1.0 <= self.detour_factor <= 5.0):
            raise ValueError(f"detour_factor must be within 1..5, not {self.detour_factor}")
        if not (math.isfinite(self.speed_m_per_min) and 10.0 <= self.speed_m_per_min <= 300.0):
            raise ValueError(f"walk speed must be within 10..300 m/min, not {self.speed_m_per_min}")

    @property
    def speed_m_per_s(self) -> float:
        """Walking speed in metres per second."""
        return self.speed_m_per_min / 60.0

    def minutes(self, distance_m: float) -> float:
        """Minutes on foot for a straight-line distance."""
        return distance_m * self.detour_factor / self.speed_m_per_min

    def whole_minutes(self, distance_m: float) -> int:
        """Minutes on foot rounded up, as the API and the cards show them."""
        return math.ceil(self.minutes(distance_m))

    def seconds(self, distance_m: float) -> float:
        """Seconds on foot for a straight-line distance."""
        return distance_m * self.detour_factor / self.speed_m_per_s

    def radius_m(self, minutes: float) -> float:
        """The straight-line radius reachable on foot in ``minutes``."""
        if minutes <= 0:
            raise ValueError("minutes must be positive")
        return minutes * self.speed_m_per_min / self.detour_factor

    def describe(self) -> dict[str, Any]:
        """The model as the API states it in answers and documents."""
        return {"model": self.name, "detour_factor": self.detour_factor, "speed_m_per_min": self.speed_m_per_min,
                "walk_minutes": "ceil(distance_m * detour_factor / speed_m_per_min)",
                "distance_m": "WGS-84 ellipsoidal geodesic (straight line)"}

    def legend(self) -> dict[str, str]:
        """One line for maps and pages, in Chinese and English."""
        kmh = self.speed_m_per_min * 60 / 1000
        return {"en": f"straight line × {self.detour_factor:g} detour at {self.speed_m_per_min:g} m/min "
                      f"({kmh:g} km/h)",
                "zh": f"直线距离 × 绕行系数 {self.detour_factor:g}，步行 {self.speed_m_per_min:g} 米/分钟"
                      f"（{kmh:g} 公里/小时）"}

    # ---- the interface both walk models answer (this one: no network, every route is None) --------
    @property
    def routes_by_network(self) -> bool:
        """True when this model measures walks on a street network (:class:`NetworkWalkModel`)."""
        return False

    def lower_bound(self) -> WalkModel:
        """A straight-line model no slower than this one: candidates found under it include every site this
        model reaches in time (a network walk is never shorter than the straight line)."""
        return self

    def straight_line(self) -> WalkModel:
        """This model's straight-line part (what coverage radii and fallbacks use)."""
        return WalkModel(self.detour_factor, self.speed_m_per_min)

    def route_m(self, lon: float, lat: float, targets: Sequence[tuple[float, float]]) -> Routes:
        """Walking metres on the network to each target (all None here: straight line only)."""
        return Routes([None] * len(targets), [None] * len(targets), None)


@dataclasses.dataclass(frozen=True)
class Routes:
    """Network metres to each target (None: fall back to the straight line, for the reason beside it); ``origin``
    says why none was measured (the start is off the network), else None."""

    metres: list[float | None]
    reasons: list[str | None]
    origin: str | None


@dataclasses.dataclass(frozen=True)
class NetworkWalkModel(WalkModel):
    """Shortest walk on the loaded street network at the walking speed (no detour factor: the network is the
    detour). A point farther than ``snap_m`` from the network falls back to the straight-line model and says so."""

    network: Network | None = None
    snap_m: float = 250.0
    name: str = "network"

    @property
    def routes_by_network(self) -> bool:
        return self.network is not None

    def lower_bound(self) -> WalkModel:
        return WalkModel(1.0, self.speed_m_per_min)

    def route_m(self, lon: float, lat: float, targets: Sequence[tuple[float, float]]) -> Routes:
        net = self.network
        n = len(targets)
        if net is None or n == 0:
            return Routes([None] * n, [None] * n, None)
        (start,), (start_off,) = net.snap([lon], [lat])
        if start_off > self.snap_m:
            return Routes([None] * n, ["origin_off_network"] * n, "origin_off_network")
        nodes, off = net.snap([t[0] for t in targets], [t[1] for t in targets])
        # Bounded search: a site not reached within NETWORK_SEARCH_FACTOR × the farthest straight line counts as
        # not connected (keeps a query on a city-sized network to a neighbourhood of the graph).
        xy = net.project(np.asarray([lon] + [t[0] for t in targets]), np.asarray([lat] + [t[1] for t in targets]))
        farthest = float(np.hypot(*(xy[1:] - xy[0]).T).max())
        lengths = net.lengths_from([int(start)], max(NETWORK_SEARCH_FACTOR * farthest, NETWORK_SEARCH_MIN_M))
        metres: list[float | None] = []
        reasons: list[str | None] = []
        for node, o in zip(nodes.tolist(), off.tolist(), strict=True):
            along = float(lengths[node])
            if o > self.snap_m:
                metres.append(None)
                reasons.append("site_off_network")
            elif not math.isfinite(along):
                metres.append(None)
                reasons.append("not_connected")
            else:
                metres.append(float(start_off) + along + o)
                reasons.append(None)
        return Routes(metres, reasons, None)

    def describe(self) -> dict[str, Any]:
        net = self.network
        return {"model": "network", "speed_m_per_min": self.speed_m_per_min, "snap_m": self.snap_m,
                "walk_minutes": "ceil(network_m / speed_m_per_min), network_m = snap to the nearest network node "
                                "+ shortest walk on the network + snap at the site",
                "distance_m": "WGS-84 ellipsoidal geodesic (straight line)",
                "network": {"source": net.source if net else None, "nodes": net.nodes if net else 0,
                            "edges": net.edges if net else 0},
                "fallback": {**WalkModel(self.detour_factor, self.speed_m_per_min).describe(),
                             "when": f"the query point or a site is farther than {self.snap_m:g} m from the "
                                     "network, or not connected to it"}}

    def legend(self) -> dict[str, str]:
        kmh = self.speed_m_per_min * 60 / 1000
        return {"en": f"walking network at {self.speed_m_per_min:g} m/min ({kmh:g} km/h)",
                "zh": f"按步行路网，步行 {self.speed_m_per_min:g} 米/分钟（{kmh:g} 公里/小时）"}
