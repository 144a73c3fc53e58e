"""Small site networks around Tiananmen, placed in metres and given districts as the loader gives them."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from geoservice.layers import ServiceArea
from geoservice.model import Site, site_id_for
from geoservice.services import Services
from tests.support import TIANANMEN

# (source_id, metres east, metres north, hours, kind, amenities)
Spec = tuple[str, float, float, str, str, Sequence[str]]

BASIC: list[Spec] = [
    ("a", 100, 0, "24/7", "warm_station", ["drinking_water", "toilet"]),
    ("b", 300, 0, "Mo-Fr 08:30-17:30; PH off", "warm_station", ["drinking_water", "heating"]),
    ("c", 0, 500, "Tu-Su 09:00-20:00", "mother_baby_room", ["nursing_chair", "changing_table"]),
    ("d", -800, 0, "Mo-Su 06:00-22:00", "worker_home", ["charging", "toilet", "wifi"]),
    ("e", 0, -1500, "Mo-Su 09:00-10:05", "warm_station", ["drinking_water"]),
]


def offset(dx_m: float, dy_m: float) -> tuple[float, float]:
    """The WGS-84 point ``dx_m`` east and ``dy_m`` north of Tiananmen (flat approximation, fine within km)."""
    return TIANANMEN[0] + dx_m / 85_300.0, TIANANMEN[1] + dy_m / 111_000.0


def make_sites(store: Services, specs: Sequence[Spec],
               name: Callable[[str], str] = lambda source_id: f"站点{source_id}", **extra: Any) -> list[Site]:
    """Sites from specs, with the district each point falls in (looked up as ``geoservice load`` does)."""
    area = ServiceArea(store.sites.districts())
    sites = []
    for source_id, dx, dy, hours, kind, amenities in specs:
        lon, lat = offset(dx, dy)
        sites.append(Site(id=site_id_for(source_id), source_id=source_id, kind=kind, name_zh=name(source_id),
                          lon=lon, lat=lat, opening_hours=hours, amenities=list(amenities),
                          district_adcode=area.lookup([lon], [lat])[0], **extra))
    return sites


def sid(source_id: str) -> str:
    """Public id of a test site."""
    return site_id_for(source_id)
