-- Named statements of the embedded store (SQLite). Parameters are :name; a list travels as JSON text and is read
-- with json_each, so no statement is built from strings. Times are ISO 8601 text; interval bounds epoch seconds.

-- name: site_columns
id, source_id, kind, name_zh, name_en, address, district_adcode, lon, lat, opening_hours, amenities, operator,
phone, notes, simulated, updated_at, verified_at, version, status, edited_fields, hours_problem, alert_hours

-- name: all_sites
SELECT {site_columns} FROM sites ORDER BY id

-- name: get_site
SELECT {site_columns} FROM sites WHERE id = :id

-- name: sites_by_id
SELECT {site_columns} FROM sites WHERE id IN (SELECT value FROM json_each(:ids)) ORDER BY id

-- name: sites_by_source
SELECT {site_columns} FROM sites WHERE source_id IN (SELECT value FROM json_each(:source_ids)) ORDER BY id

-- name: site_versions
SELECT id, version FROM sites

-- name: count_sites
SELECT district_adcode, kind, count(*) FROM sites GROUP BY 1, 2

-- name: insert_site
INSERT INTO sites (id, source_id, kind, name_zh, name_en, address, district_adcode, lon, lat, opening_hours,
                   amenities, amenity_mask, operator, phone, notes, simulated, updated_at, verified_at, version,
                   edited_fields, hours_problem, alert_hours)
VALUES (:id, :source_id, :kind, :name_zh, :name_en, :address, :district_adcode, :lon, :lat, :opening_hours,
        :amenities, :amenity_mask, :operator, :phone, :notes, :simulated, :now, :verified_at, 1,
        :edited_fields, :hours_problem, :alert_hours)

-- name: update_site
UPDATE sites SET kind = :kind, name_zh = :name_zh, name_en = :name_en, address = :address,
    district_adcode = :district_adcode, lon = :lon, lat = :lat, opening_hours = :opening_hours,
    amenities = :amenities, amenity_mask = :amenity_mask, operator = :operator, phone = :phone, notes = :notes,
    simulated = :simulated, updated_at = :now, edited_fields = :edited_fields, hours_problem = :hours_problem,
    alert_hours = :alert_hours, version = version + 1
WHERE id = :id

-- name: save_edit
-- Operators' edits: only the editable fields, and only if the version is still the one read (no lost update).
UPDATE sites SET opening_hours = :opening_hours, amenities = :amenities, amenity_mask = :amenity_mask,
    phone = :phone, notes = :notes, status = :status, name_zh = :name_zh, name_en = :name_en,
    verified_at = :verified_at, edited_fields = :edited_fields, hours_problem = :hours_problem, updated_at = :now,
    alert_hours = :alert_hours, version = version + 1
WHERE id = :id AND version = :expected

-- name: site_version
SELECT version FROM sites WHERE id = :id

-- name: set_edit_marks
UPDATE sites SET edited_fields = :edited_fields WHERE id = :id

-- name: set_hours_problem
UPDATE sites SET hours_problem = :problem WHERE id = :id

-- ---- closures ------------------------------------------------------------------------------------------------

-- name: closures_for
SELECT id, site_id, start_date, end_date, reason FROM closures
WHERE site_id IN (SELECT value FROM json_each(:ids)) ORDER BY start_date, id

-- name: temporarily_closed_ids
SELECT id FROM sites WHERE status = 'temporarily_closed' AND id IN (SELECT value FROM json_each(:ids))

-- name: closures_of
SELECT id, site_id, start_date, end_date, reason FROM closures WHERE site_id = :id ORDER BY start_date, id

-- name: insert_closure
INSERT INTO closures (site_id, start_date, end_date, reason, created_at) VALUES (:site_id, :start, :end, :reason, :now)

-- name: delete_closure
DELETE FROM closures WHERE site_id = :site_id AND id = :id

-- ---- open intervals and the window ---------------------------------------------------------------------------

-- name: all_intervals
SELECT site_id, start_s, end_s FROM site_open_intervals

-- name: delete_intervals_for
DELETE FROM site_open_intervals WHERE site_id = :id

-- name: delete_all_intervals
DELETE FROM site_open_intervals

-- name: insert_interval
INSERT INTO site_open_intervals (site_id, start_s, end_s) VALUES (:site_id, :start_s, :end_s)

-- name: get_meta
SELECT value FROM meta WHERE key = :key

-- name: set_meta
INSERT INTO meta (key, value) VALUES (:key, :value) ON CONFLICT (key) DO UPDATE SET value = excluded.value

-- name: set_meta_if_missing
INSERT INTO meta (key, value) VALUES (:key, :value) ON CONFLICT (key) DO NOTHING

-- name: bump_generation
-- Every committed write that changes sites or intervals bumps it; readers rebuild their index when it moves.
INSERT INTO meta (key, value) VALUES ('generation', '1')
ON CONFLICT (key) DO UPDATE SET value = CAST(value AS INTEGER) + 1

-- name: generation
SELECT value FROM meta WHERE key = 'generation'

-- ---- live status -------------------------------------------------------------------------------------------

-- name: closed_now_ids
-- Sites whose live status "closed now" is in force at :at (ISO text in UTC, as stored): out of open-only answers.
SELECT site_id FROM site_live_status WHERE state = 'closed_now' AND posted_at <= :at AND expires_at > :at

-- ---- districts -----------------------------------------------------------------------------------------------

-- name: delete_unused_districts
DELETE FROM districts WHERE adcode NOT IN (SELECT DISTINCT district_adcode FROM sites WHERE district_adcode IS NOT NULL)

-- name: upsert_district
INSERT INTO districts (adcode, name_zh, name_en, area_km2, population_2020, geom_wkb)
VALUES (:adcode, :name_zh, :name_en, :area_km2, :population_2020, :wkb)
ON CONFLICT (adcode) DO UPDATE SET name_zh = excluded.name_zh, name_en = excluded.name_en,
    area_km2 = excluded.area_km2, population_2020 = excluded.population_2020, geom_wkb = excluded.geom_wkb

-- name: districts
SELECT adcode, name_zh, name_en, area_km2, population_2020, geom_wkb FROM districts ORDER BY adcode

-- ---- the audit trail (appended by the site writer, in the edit's transaction) ---------------------------------

-- name: insert_change
INSERT INTO site_changes (site_id, actor, at, action, changes, version)
VALUES (:site_id, :actor, :at, :action, :changes, :version)

-- ---- migrations ----------------------------------------------------------------------------------------------

-- name: create_migrations_table
CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT)

-- name: applied_migrations
SELECT version FROM schema_migrations

-- name: record_migration
INSERT INTO schema_migrations (version, applied_at) VALUES (:version, :now)

-- name: site_count
SELECT count(*) FROM sites

-- name: delete_walk_network
DELETE FROM walk_network

-- name: insert_walk_network
INSERT INTO walk_network (one, source, loaded_at, nodes, edges, graph)
VALUES (1, :source, :loaded_at, :nodes, :edges, :graph)

-- name: walk_network
SELECT graph FROM walk_network WHERE one = 1
