"""Vector tiles of the sites and districts (issue 15 part 4): which path answers a tile, written once.

Sites open at a time inside the materialised window come from the backend in one query (PostGIS ``ST_AsMVT``;
the embedded store encodes its index's selection with :mod:`geoservice.tiles`); a time outside it is decided by
the hours engine over the tile's sites (``SiteService.list_sites``) and encoded the same way. Districts are few
and already cached by the site service: they are encoded here for both stores.
"""
from __future__ import annotations

import sys

from geoservice import tiles
from geoservice.model import SiteFilter
from geoservice.services.sites import SiteService
from geoservice.tiles import TileQuery


class TileService:
    """Tiles over one backend's site workflows."""

    def __init__(self, sites: SiteService) -> None:
        self.sites = sites

    def site_tile(self, q: TileQuery) -> bytes:
        """One tile of sites (empty bytes when the tile holds none)."""
        window = self.sites.window() if q.open_at is not None else None
        if q.open_at is None or (window is not None and window[0] <= q.open_at < window[1]):
            return self.sites.spatial.site_tile(q)
        found, _ = self.sites.list_sites(SiteFilter(q.lonlat_bbox(), q.kinds, None, q.open_at, limit=sys.maxsize))
        return tiles.encode_sites(q, found)

    def district_tile(self, z: int, x: int, y: int, layer: str) -> bytes:
        """One tile of the district polygons (empty bytes when none reaches the tile)."""
        return tiles.encode({layer: tiles.district_polygons(z, x, y, self.sites.districts())})

    def bounds(self) -> tuple[float, float, float, float]:
        """Where there is something to draw: the districts' extent (the whole quad without districts)."""
        districts = self.sites.districts()
        if not districts:
            return -180.0, -tiles.MAX_LAT, 180.0, tiles.MAX_LAT
        boxes = [d.geometry.bounds for d in districts]
        return (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes),
                max(b[3] for b in boxes))

