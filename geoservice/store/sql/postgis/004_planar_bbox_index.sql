-- bbox filters (listings, OGC items, downloads) are boxes in longitude/latitude (CRS84), and a site is in one
-- when its coordinates are. `geog && box::geography` is not that test: it compares geocentric bounding boxes,
-- which lets through points a few hundred metres outside the box (found by bench/bench_pygeoapi.py). The
-- listings use ST_Intersects on the geometry cast instead (exact, edges inclusive), served by this index.
CREATE INDEX sites_lonlat ON sites USING gist ((geog::geometry));
ANALYZE sites;
