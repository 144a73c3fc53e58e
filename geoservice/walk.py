"""The walk model: how far a courier gets on foot in a given time, and how long a distance takes.

Without a street network the service uses the straight-line (WGS-84 geodesic) distance times a detour factor at
a walking speed: ``minutes = distance_m × detour_factor ÷ speed_m_per_min``. Both numbers are settings
(``GEOSERVICE_DETOUR_FACTOR``, ``GEOSERVICE_WALK_SPEED_M_PER_MIN``; 1.3 and 75 m/min = 4.5 km/h by default), and
the nearest query, "still open when I arrive", coverage radii, the map legend and the API documents all take them
from one :class:`WalkModel`, so they cannot disagree.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any


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
