-- Named statements for the PostGIS store. Every value is a bound parameter.
-- The query point is built from constants inside ORDER BY so the planner can use the GiST index for KNN.

-- name: site_columns
s.id, s.source_id, s.kind, s.name_zh, s.name_en, s.address, s.district_adcode,
ST_X(s.geog::geometry) AS lon, ST_Y(s.geog::geometry) AS lat, s.opening_hours, s.amenities, s.operator,
s.phone, s.notes, s.simulated, s.updated_at, s.verified_at, s.version, s.status, s.edited_fields, s.hours_problem,
s.alert_hours

-- name: nearest_open
-- The candidates come from a nearest_open_* function of migration 015 ({candidates}, chosen per query): a KNN
-- over the open intervals themselves (migration 003), of the query time's day only (migration 014), on a plan
-- made once per session that cannot leave the index walk. Only the `limit` answers are joined to `sites` and
-- sent, with their closures, report counts and live views; `farthest_knn_m` and `n_candidates` let the caller
-- prove no unexamined site can be nearer. The materialised window comes last on every row, read in the same
-- snapshot (one statement instead of a second one in a pipeline: ~80 us less client CPU per query); with no
-- candidate at all, one row of nulls carries it.
SELECT x.*, w.window_start, w.window_end
FROM (SELECT max(value) FILTER (WHERE key = 'window_start') AS window_start,
             max(value) FILTER (WHERE key = 'window_end') AS window_end
      FROM meta WHERE key IN ('window_start', 'window_end')) w
LEFT JOIN LATERAL (
    SELECT {site_columns}, k.distance_m, k.farthest_knn_m, k.n_candidates, {closures_column}, {unresolved_column},
           {live_view_columns}
    FROM {candidates}(
        %(lon)s::float8, %(lat)s::float8, %(at)s::timestamptz, %(kinds)s::text[], %(amenities)s::text[],
        %(radius)s::float8, %(arrival)s::boolean, %(detour)s::float8, %(speed)s::float8, %(cand)s::integer,
        %(limit)s::integer) k
    JOIN sites s ON s.id = k.id
    {live_view_joins}
) x ON true
ORDER BY x.distance_m, x.id

-- name: one_kind_within
nearest_open_one_kind_within

-- name: one_kind_anywhere
nearest_open_one_kind_anywhere

-- name: kinds_within
nearest_open_kinds_within

-- name: kinds_anywhere
nearest_open_kinds_anywhere

-- name: closures_column
-- A site's closures as [[id, from, to, reason], ...]: the open state needs them, and one statement saves a trip.
-- Unordered (the caller orders them): an ordered aggregate costs a sort set-up per row, ~10 us each.
(SELECT coalesce(json_agg(json_build_array(c.id, c.start_date, c.end_date, c.reason)), '[]'::json)
 FROM closures c WHERE c.site_id = s.id) AS closures

-- name: unresolved_column
-- Couriers' problem reports about the site not yet resolved (the API shows the count on each result).
(SELECT count(*) FROM site_reports rp WHERE rp.site_id = s.id AND rp.resolved_at IS NULL) AS unresolved_reports

-- name: live_view_columns
-- The site's stored live status (in force or not: the caller keeps it only while in force) and its couriers'
-- "may be closed" mark: the same answer as common live_views_for, in the nearest statement (one trip less).
l.state AS live_state, l.seats_free AS live_seats_free, l.capacity AS live_capacity,
l.posted_at AS live_posted_at, l.expires_at AS live_expires_at, l.posted_by AS live_posted_by,
m.reports AS mark_reports, m.first_report AS mark_first_report

-- name: live_view_joins
LEFT JOIN site_live_status l ON l.site_id = s.id
LEFT JOIN LATERAL (
    SELECT count(DISTINCT r.client_hash) AS reports, min(r.received_at) AS first_report
    FROM site_reports r
    WHERE r.site_id = s.id AND {may_be_closed_reports}
    HAVING {may_be_closed_enough}
) m ON true

-- name: nearest_any
-- The like-for-like baseline for bench/bench_scale.py (kept next to nearest_open so the two cannot drift): the
-- same shape and answer columns, with no filter at all (plain KNN over every site) and without the window that
-- nearest_open also returns (one primary-key read of `meta`).
WITH knn AS (
    SELECT s.id, s.geog, s.geog <-> ST_SetSRID(ST_MakePoint(%(lon)s, %(lat)s), 4326)::geography AS knn_m
    FROM sites s
    ORDER BY s.geog <-> ST_SetSRID(ST_MakePoint(%(lon)s, %(lat)s), 4326)::geography
    LIMIT %(cand)s
), ranked AS (
    SELECT knn.id,
           ST_Distance(knn.geog, ST_SetSRID(ST_MakePoint(%(lon)s, %(lat)s), 4326)::geography) AS distance_m,
           max(knn.knn_m) OVER () AS farthest_knn_m, count(*) OVER () AS n_candidates
    FROM knn
    ORDER BY distance_m, knn.id
    LIMIT %(limit)s
)
SELECT {site_columns}, k.distance_m, k.farthest_knn_m, k.n_candidates, {closures_column}, {unresolved_column},
       {live_view_columns}
FROM ranked k JOIN sites s ON s.id = k.id
{live_view_joins}
ORDER BY k.distance_m, s.id

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
  -- Planar lon/lat containment, edges inclusive: the index of migration 004 finds candidates with && (boxes
  -- rounded outward to float4), ST_Intersects then tests the exact coordinates. As OGC API - Features reads a
  -- box, lon_min > lon_max crosses the antimeridian (two envelopes) and lat_min > lat_max holds nothing.
  AND (%(bbox)s::float8[] IS NULL OR ((%(bbox)s::float8[])[2] <= (%(bbox)s::float8[])[4] AND (
        ST_Intersects(s.geog::geometry, ST_MakeEnvelope(
          (%(bbox)s::float8[])[1],
          (%(bbox)s::float8[])[2],
          CASE WHEN (%(bbox)s::float8[])[1] <= (%(bbox)s::float8[])[3] THEN (%(bbox)s::float8[])[3] ELSE 180 END,
          (%(bbox)s::float8[])[4], 4326))
        OR ((%(bbox)s::float8[])[1] > (%(bbox)s::float8[])[3] AND ST_Intersects(s.geog::geometry, ST_MakeEnvelope(
          -180, (%(bbox)s::float8[])[2], (%(bbox)s::float8[])[3], (%(bbox)s::float8[])[4], 4326))))))
  AND {open_at_or_any}
ORDER BY s.id
OFFSET %(offset)s LIMIT %(limit)s

-- name: open_at_or_any
-- Listings and tiles: no open_at, or open at open_at by the materialised intervals and not closed_now then.
(%(open_at)s::timestamptz IS NULL OR (EXISTS (
  SELECT 1 FROM site_open_intervals i WHERE i.day_slot = open_day_slot(%(open_at)s::timestamptz)
                                        AND i.site_id = s.id AND i.during @> %(open_at)s::timestamptz)
  AND NOT EXISTS (SELECT 1 FROM site_live_status l WHERE l.site_id = s.id AND l.state = 'closed_now'
                  AND l.posted_at <= %(open_at)s::timestamptz AND l.expires_at > %(open_at)s::timestamptz)))

-- name: site_tile
-- One Mapbox Vector Tile of sites by geoservice/tiles.py's rule, with its arithmetic: sites inside the tile's
-- envelope (no buffer), found through the lon/lat index of migration 004, placed on the tile's 4096 grid by
-- spherical Mercator (no per-row ST_Transform / ST_AsMVTGeom: ~6 µs a row, 1.3 s for a national zoom-4 tile);
-- below the grouping zoom, or past the cap, the sites of one kind in one cell become one point at their mean
-- position with their count.
WITH tile AS (SELECT ST_TileEnvelope(%(z)s, %(x)s, %(y)s) AS env),
frame AS (SELECT ST_XMin(env) AS x0, ST_YMax(env) AS y1, ST_XMax(env) - ST_XMin(env) AS size,
                 ST_Transform(env, 4326) AS lonlat FROM tile),
pts AS (
  SELECT s.id, s.kind, s.name_zh, NULLIF(s.name_en, '') AS name_en, NULLIF(s.district_adcode, '') AS district_adcode,
         s.simulated,
         (radians(ST_X(s.geog::geometry)) * 6378137.0 - f.x0) * 4096 / f.size AS fx,
         (f.y1 - ln(tan(pi() / 4 + radians(LEAST(GREATEST(ST_Y(s.geog::geometry), -85.0511287798066),
                                                  85.0511287798066)) / 2)) * 6378137.0) * 4096 / f.size AS fy
  FROM sites s, frame f
  WHERE s.geog::geometry && f.lonlat
    AND (%(kinds)s::text[] IS NULL OR s.kind = ANY (%(kinds)s::text[]))
    AND {open_at_or_any}
),
kept AS (SELECT *, floor(fx + 0.5) AS px, floor(fy + 0.5) AS py, count(*) OVER () AS n
         FROM pts WHERE fx BETWEEN 0 AND 4096 AND fy BETWEEN 0 AND 4096),
grouped AS (
  SELECT kind, count(*)::int AS count,
         CASE WHEN count(*) = 1 THEN min(id) END AS id,
         CASE WHEN count(*) = 1 THEN min(name_zh) END AS name_zh,
         CASE WHEN count(*) = 1 THEN min(name_en) END AS name_en,
         CASE WHEN count(*) = 1 THEN min(district_adcode) END AS district_adcode,
         CASE WHEN count(*) = 1 THEN bool_or(simulated) END AS simulated,
         ST_MakePoint(floor(avg(px) + 0.5), floor(avg(py) + 0.5)) AS g
  FROM kept
  GROUP BY kind, CASE WHEN %(group_always)s OR n > %(max_points)s
                      THEN floor(px / %(cell)s)::text || ',' || floor(py / %(cell)s)::text
                      ELSE id END
)
SELECT ST_AsMVT(grouped, %(layer)s, 4096, 'g') FROM grouped

-- name: get_site
SELECT {site_columns} FROM sites s WHERE s.id = %(id)s

-- name: all_sites
SELECT {site_columns} FROM sites s ORDER BY s.id

-- name: get_window
SELECT key, value FROM meta WHERE key IN ('window_start', 'window_end')

-- name: site_count
SELECT count(*) FROM sites

-- name: postgis_version
SELECT postgis_lib_version()

-- name: analyze_sites
ANALYZE sites

-- name: analyze_intervals
ANALYZE site_open_intervals

-- name: migration_lock
SELECT pg_advisory_xact_lock(%(key)s)

-- name: create_migrations_table
CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, name text NOT NULL,
                                              applied_at timestamptz DEFAULT now())

-- name: applied_migrations
SELECT version FROM schema_migrations

-- name: record_migration
INSERT INTO schema_migrations (version, name) VALUES (%(version)s, %(name)s)

-- ---- writing open intervals: only what changed -----------------------------------------------------------
-- Writers copy the intervals a set of sites should have into interval_staging, spread them over the days they
-- overlap (stage_interval_days), then delete the stored intervals of those sites that are not staged and
-- insert the staged ones not stored. The result is what deleting everything and inserting the staged rows
-- would leave, but a refresh of an unchanged week writes nothing: deleting and re-inserting every row grew the
-- partitions and their KNN indexes by half at each refresh, and nearest queries then took half as long again
-- (bench/results_refresh.md). The copies of kind, amenities and location need no comparison: triggers
-- (migration 003) keep them equal to `sites`.

-- name: create_interval_staging
-- One pair of tables per session, emptied as each write moves its rows on.
CREATE TEMP TABLE IF NOT EXISTS interval_staging (site_id text NOT NULL, during tstzrange NOT NULL)
    ON COMMIT DELETE ROWS

-- name: create_interval_staging_days
CREATE TEMP TABLE IF NOT EXISTS interval_staging_days (
    site_id text NOT NULL, during tstzrange NOT NULL, day_slot smallint NOT NULL) ON COMMIT DELETE ROWS

-- name: copy_intervals
COPY interval_staging (site_id, during) FROM STDIN

-- name: stage_interval_days
-- Each staged interval once per day it overlaps, in that day's partition, clipped to what a query on that day
-- looks at (migrations 014 and 016 hold the one definition of those days and copies).
WITH moved AS (DELETE FROM interval_staging RETURNING site_id, during)
INSERT INTO interval_staging_days (site_id, during, day_slot)
SELECT m.site_id, open_day_copy(m.during, d), open_day_slot(open_day_start(d))
FROM moved m, open_days(m.during) AS d

-- name: analyze_interval_staging_days
-- Temporary tables have no statistics until asked: without them a refresh's anti-joins are planned blind.
ANALYZE interval_staging_days

-- name: delete_unstaged_intervals
-- A refresh: every stored interval not staged.
DELETE FROM site_open_intervals i
WHERE NOT EXISTS (SELECT 1 FROM interval_staging_days d
                  WHERE d.site_id = i.site_id AND d.during = i.during AND d.day_slot = i.day_slot)

-- name: delete_unstaged_intervals_for
-- An edit or a load: the stored intervals of these sites that are not staged.
DELETE FROM site_open_intervals i
WHERE i.site_id = ANY (%(ids)s::text[])
  AND NOT EXISTS (SELECT 1 FROM interval_staging_days d
                  WHERE d.site_id = i.site_id AND d.during = i.during AND d.day_slot = i.day_slot)

-- name: insert_staged_intervals
-- The staged intervals not stored yet, in geohash order: intervals of nearby sites land on nearby pages, so a
-- KNN query reads fewer pages. Then the staging is emptied for the next write in this transaction.
INSERT INTO site_open_intervals (site_id, during, day_slot)
SELECT d.site_id, d.during, d.day_slot
FROM interval_staging_days d JOIN sites s ON s.id = d.site_id
WHERE NOT EXISTS (SELECT 1 FROM site_open_intervals i
                  WHERE i.site_id = d.site_id AND i.during = d.during AND i.day_slot = d.day_slot)
ORDER BY ST_GeoHash(s.geog::geometry, 7)

-- name: empty_interval_staging_days
TRUNCATE interval_staging_days

-- name: statement_timeout_off
SET LOCAL statement_timeout = 0

-- name: insert_site
INSERT INTO sites (id, source_id, kind, name_zh, name_en, address, district_adcode, geog, opening_hours, amenities,
                   operator, phone, notes, simulated, updated_at, verified_at, version, edited_fields, hours_problem,
                   alert_hours)
VALUES (%(id)s, %(source_id)s, %(kind)s, %(name_zh)s, %(name_en)s, %(address)s, %(district_adcode)s,
        ST_SetSRID(ST_MakePoint(%(lon)s, %(lat)s), 4326)::geography, %(opening_hours)s, %(amenities)s,
        %(operator)s, %(phone)s, %(notes)s, %(simulated)s, now(), %(verified_at)s, 1, %(edited_fields)s,
        %(hours_problem)s, %(alert_hours)s)

-- name: update_site
UPDATE sites SET kind = %(kind)s, name_zh = %(name_zh)s, name_en = %(name_en)s, address = %(address)s,
    district_adcode = %(district_adcode)s, geog = ST_SetSRID(ST_MakePoint(%(lon)s, %(lat)s), 4326)::geography,
    opening_hours = %(opening_hours)s, amenities = %(amenities)s,
    operator = %(operator)s, phone = %(phone)s, notes = %(notes)s, simulated = %(simulated)s, updated_at = now(),
    edited_fields = %(edited_fields)s, hours_problem = %(hours_problem)s, alert_hours = %(alert_hours)s,
    version = version + 1
WHERE id = %(id)s

-- name: lock_sites_by_source
-- A load reads the sites it may change inside its write transaction, locked in a fixed order.
SELECT {site_columns} FROM sites s WHERE s.source_id = ANY (%(source_ids)s::text[]) ORDER BY s.id FOR UPDATE

-- name: sites_by_id
SELECT {site_columns} FROM sites s WHERE s.id = ANY (%(ids)s::text[]) ORDER BY s.id

-- name: lock_sites
-- An alert's re-materialisation reads the sites it recomputes locked, in a fixed order: an operator's edit of
-- one of them commits first or waits, so neither writes intervals computed from the other's stale view.
SELECT {site_columns} FROM sites s WHERE s.id = ANY (%(ids)s::text[]) ORDER BY s.id FOR UPDATE

-- name: site_versions
SELECT id, version FROM sites

-- name: set_edit_marks
UPDATE sites SET edited_fields = %(edited_fields)s WHERE id = %(id)s

-- name: set_hours_problem
UPDATE sites SET hours_problem = %(problem)s WHERE id = %(id)s

-- name: lock_intervals_shared
-- Site writers (edits, loads) run side by side but never while a refresh replaces every interval.
LOCK TABLE site_open_intervals IN ROW EXCLUSIVE MODE

-- name: lock_intervals_exclusive
-- A refresh: waits for site writers in progress, holds new ones off until it commits; readers go on.
LOCK TABLE site_open_intervals IN EXCLUSIVE MODE

-- name: set_meta_if_missing
INSERT INTO meta (key, value) VALUES (%(key)s, %(value)s) ON CONFLICT (key) DO NOTHING

-- name: count_sites
SELECT district_adcode, kind, count(*) FROM sites GROUP BY 1, 2

-- name: delete_unused_districts
DELETE FROM districts WHERE adcode NOT IN (SELECT DISTINCT district_adcode FROM sites WHERE district_adcode IS NOT NULL)

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

-- name: temporarily_closed_ids
SELECT id FROM sites WHERE status = 'temporarily_closed' AND id = ANY (%(ids)s::text[])

-- name: set_meta
INSERT INTO meta (key, value) VALUES (%(key)s, %(value)s) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value

-- name: lock_site
-- Row lock for an operator's edit: concurrent writers to one site queue here, then see the new version.
SELECT {site_columns} FROM sites s WHERE s.id = %(id)s FOR UPDATE

-- name: closures_of
SELECT id, site_id, start_date, end_date, reason FROM closures WHERE site_id = %(id)s ORDER BY start_date, id

-- name: save_edit
-- The version check and the write are one statement: no row means someone else wrote first (412).
UPDATE sites SET opening_hours = %(opening_hours)s, amenities = %(amenities)s, phone = %(phone)s,
    notes = %(notes)s, status = %(status)s, name_zh = %(name_zh)s, name_en = %(name_en)s,
    verified_at = %(verified_at)s, edited_fields = %(edited_fields)s, hours_problem = %(hours_problem)s,
    alert_hours = %(alert_hours)s, updated_at = now(), version = version + 1
WHERE id = %(id)s AND version = %(expected)s
RETURNING version, updated_at

-- name: site_version
SELECT version FROM sites WHERE id = %(id)s

-- name: delete_closure
DELETE FROM closures WHERE site_id = %(site_id)s AND id = %(id)s

-- name: insert_change
INSERT INTO site_changes (site_id, actor, action, changes, version)
VALUES (%(site_id)s, %(actor)s, %(action)s, %(changes)s, %(version)s)
RETURNING id, at


-- name: delete_walk_network
TRUNCATE walk_edges, walk_nodes, walk_network

-- name: copy_walk_nodes
COPY walk_nodes (id, geom) FROM STDIN

-- name: copy_walk_edges
COPY walk_edges (id, source, target, cost, reverse_cost) FROM STDIN

-- name: insert_walk_network
INSERT INTO walk_network (one, source, loaded_at, nodes, edges)
VALUES (1, %(source)s, %(loaded_at)s, %(nodes)s, %(edges)s)

-- name: walk_network
SELECT source FROM walk_network WHERE one = 1

-- name: walk_nodes
SELECT ST_X(geom), ST_Y(geom) FROM walk_nodes ORDER BY id

-- name: walk_edges
SELECT source, target, cost FROM walk_edges ORDER BY id

-- name: walk_cost_pgrouting
SELECT end_vid, agg_cost FROM pgr_dijkstraCost(
    'SELECT id, source, target, cost, reverse_cost FROM walk_edges', %(source)s::bigint, %(targets)s::bigint[], false)
