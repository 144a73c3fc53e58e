-- Named statements for the PostGIS store. Every value is a bound parameter.
-- The query point is built from constants inside ORDER BY so the planner can use the GiST index for KNN.

-- name: site_columns
s.id, s.source_id, s.kind, s.name_zh, s.name_en, s.address, s.district_adcode,
ST_X(s.geog::geometry) AS lon, ST_Y(s.geog::geometry) AS lat, s.opening_hours, s.amenities, s.operator,
s.phone, s.notes, s.simulated, s.updated_at, s.verified_at, s.version

-- name: nearest_open
-- KNN scan with the filters evaluated per candidate inside the index scan, then exact (ellipsoidal) distances
-- on the few candidates. %(cand)s > limit leaves room to re-rank sphere-vs-ellipsoid near-ties.
WITH knn AS (
    SELECT s.id, s.geog <-> ST_SetSRID(ST_MakePoint(%(lon)s, %(lat)s), 4326)::geography AS knn_m
    FROM sites s
    WHERE (%(kinds)s::text[] IS NULL OR s.kind = ANY (%(kinds)s::text[]))
      -- Array containment, not a bit mask: the planner estimates it from element statistics, and a bad
      -- estimate here makes it abandon the KNN index scan for a full sort.
      AND s.amenities @> %(amenities)s::text[]
      AND (%(radius)s::float8 IS NULL
           OR ST_DWithin(s.geog, ST_SetSRID(ST_MakePoint(%(lon)s, %(lat)s), 4326)::geography, %(radius)s::float8))
      AND EXISTS (
          SELECT 1 FROM site_open_intervals i
          WHERE i.site_id = s.id
            AND i.during @> tstzrange(
                %(at)s::timestamptz,
                %(at)s::timestamptz + make_interval(secs => CASE WHEN %(walk)s THEN
                    ST_Distance(s.geog, ST_SetSRID(ST_MakePoint(%(lon)s, %(lat)s), 4326)::geography)
                    * %(detour)s::float8 / %(speed)s::float8 ELSE 0 END),
                '[]'))
    ORDER BY s.geog <-> ST_SetSRID(ST_MakePoint(%(lon)s, %(lat)s), 4326)::geography
    LIMIT %(cand)s
)
SELECT {site_columns}, ST_Distance(s.geog, ST_SetSRID(ST_MakePoint(%(lon)s, %(lat)s), 4326)::geography) AS distance_m,
       knn.knn_m
FROM knn JOIN sites s ON s.id = knn.id
ORDER BY distance_m, s.id

-- name: candidates
-- Engine fallback (times outside the materialised window): exact distance order, hours checked in Python.
SELECT {site_columns}, ST_Distance(s.geog, ST_SetSRID(ST_MakePoint(%(lon)s, %(lat)s), 4326)::geography) AS distance_m
FROM sites s
WHERE (%(kinds)s::text[] IS NULL OR s.kind = ANY (%(kinds)s::text[]))
  AND s.amenities @> %(amenities)s::text[]
  AND (%(radius)s::float8 IS NULL
       OR ST_DWithin(s.geog, ST_SetSRID(ST_MakePoint(%(lon)s, %(lat)s), 4326)::geography, %(radius)s::float8))
ORDER BY distance_m, s.id
OFFSET %(offset)s LIMIT %(count)s

-- name: list_sites
SELECT {site_columns}, count(*) OVER () AS total
FROM sites s
WHERE (%(kinds)s::text[] IS NULL OR s.kind = ANY (%(kinds)s::text[]))
  AND (%(district)s::text IS NULL OR s.district_adcode = %(district)s)
  -- Transform the bbox, not the column, so the geography index is used.
  AND (%(bbox)s::float8[] IS NULL OR s.geog && ST_MakeEnvelope(
        (%(bbox)s::float8[])[1], (%(bbox)s::float8[])[2], (%(bbox)s::float8[])[3], (%(bbox)s::float8[])[4], 4326
      )::geography)
  AND (%(open_at)s::timestamptz IS NULL OR EXISTS (
        SELECT 1 FROM site_open_intervals i WHERE i.site_id = s.id AND i.during @> %(open_at)s::timestamptz))
ORDER BY s.id
OFFSET %(offset)s LIMIT %(limit)s

-- name: list_site_ids_hours
SELECT s.id, s.opening_hours
FROM sites s
WHERE (%(kinds)s::text[] IS NULL OR s.kind = ANY (%(kinds)s::text[]))
  AND (%(district)s::text IS NULL OR s.district_adcode = %(district)s)
  AND (%(bbox)s::float8[] IS NULL OR s.geog && ST_MakeEnvelope(
        (%(bbox)s::float8[])[1], (%(bbox)s::float8[])[2], (%(bbox)s::float8[])[3], (%(bbox)s::float8[])[4], 4326
      )::geography)
ORDER BY s.id

-- name: get_site
SELECT {site_columns} FROM sites s WHERE s.id = %(id)s

-- name: sites_by_source
SELECT {site_columns} FROM sites s WHERE s.source_id = ANY (%(source_ids)s::text[])

-- name: all_sites
SELECT {site_columns} FROM sites s

-- name: insert_site
INSERT INTO sites (id, source_id, kind, name_zh, name_en, address, district_adcode, geog, opening_hours, amenities,
                   operator, phone, notes, simulated, updated_at, verified_at, version)
VALUES (%(id)s, %(source_id)s, %(kind)s, %(name_zh)s, %(name_en)s, %(address)s, %(district_adcode)s,
        ST_SetSRID(ST_MakePoint(%(lon)s, %(lat)s), 4326)::geography, %(opening_hours)s, %(amenities)s,
        %(operator)s, %(phone)s, %(notes)s, %(simulated)s, now(), %(verified_at)s, 1)

-- name: update_site
UPDATE sites SET kind = %(kind)s, name_zh = %(name_zh)s, name_en = %(name_en)s, address = %(address)s,
    district_adcode = %(district_adcode)s, geog = ST_SetSRID(ST_MakePoint(%(lon)s, %(lat)s), 4326)::geography,
    opening_hours = %(opening_hours)s, amenities = %(amenities)s,
    operator = %(operator)s, phone = %(phone)s, notes = %(notes)s, simulated = %(simulated)s, updated_at = now(),
    version = version + 1
WHERE id = %(id)s

-- name: count_sites
SELECT district_adcode, kind, count(*) FROM sites GROUP BY 1, 2

-- name: upsert_district
INSERT INTO districts (adcode, name_zh, name_en, area_km2, population_2020, geom)
VALUES (%(adcode)s, %(name_zh)s, %(name_en)s, %(area_km2)s, %(population_2020)s,
        ST_Multi(ST_GeomFromWKB(%(wkb)s, 4326)))
ON CONFLICT (adcode) DO UPDATE SET name_zh = EXCLUDED.name_zh, name_en = EXCLUDED.name_en,
    area_km2 = EXCLUDED.area_km2, population_2020 = EXCLUDED.population_2020, geom = EXCLUDED.geom

-- name: districts
SELECT adcode, name_zh, name_en, area_km2, population_2020, ST_AsBinary(geom) FROM districts ORDER BY adcode

-- name: insert_closure
INSERT INTO closures (site_id, start_date, end_date, reason) VALUES (%(site_id)s, %(start)s, %(end)s, %(reason)s)
RETURNING id

-- name: closures_for
SELECT id, site_id, start_date, end_date, reason FROM closures WHERE site_id = ANY (%(ids)s::text[])
ORDER BY start_date

-- name: delete_intervals_for
DELETE FROM site_open_intervals WHERE site_id = ANY (%(ids)s::text[])

-- name: calendar_years
SELECT year FROM calendar_years

-- name: calendar_days
SELECT day, type, name_en, name_zh FROM calendar_days

-- name: set_meta
INSERT INTO meta (key, value) VALUES (%(key)s, %(value)s) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value

-- name: get_window
SELECT key, value FROM meta WHERE key IN ('window_start', 'window_end')
