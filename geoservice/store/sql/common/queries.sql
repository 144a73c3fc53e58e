-- Dialect-neutral statements, run as written by SQLite (embedded store) and PostgreSQL (PostGIS store).
-- Parameters are :name (each backend's dialect rewrites them to its own style); a list parameter :ids is
-- expanded to :ids_0, :ids_1, ... by the repository, so "IN (:ids)" works in both. No casts, no now():
-- times come from Python, so both backends store the same instants.

-- ---- accounts ------------------------------------------------------------------------------------------------

-- name: operator_select
SELECT o.id, o.name, o.role, o.created_at,
       (SELECT count(*) FROM operator_sites s WHERE s.operator_id = o.id),
       (SELECT count(*) FROM operator_tokens t WHERE t.operator_id = o.id AND t.revoked_at IS NULL),
       o.login, o.password_hash IS NOT NULL, o.locked_at IS NOT NULL, o.disabled_at IS NOT NULL, o.home_district
FROM operators o

-- name: insert_operator
INSERT INTO operators (name, role, created_at, login) VALUES (:name, :role, :now, :login)
ON CONFLICT DO NOTHING RETURNING id

-- name: operator_by_id
{operator_select} WHERE o.id = :id

-- name: operator_by_name
{operator_select} WHERE o.name = :name

-- name: operator_id
SELECT id FROM operators WHERE name = :name

-- name: all_operators
{operator_select} ORDER BY o.name

-- name: scoped_operators
-- The accounts a manager may see (geoservice.services.scope): every one for an admin; for a district admin
-- itself and the operator accounts of its districts (created there, or with a site there).
{operator_select}
WHERE :all_sites OR o.id = :operator_id
   OR (o.role = 'operator' AND (o.home_district IN (SELECT adcode FROM operator_districts WHERE operator_id = :operator_id)
       OR EXISTS (SELECT 1 FROM operator_sites os JOIN sites s ON s.id = os.site_id
                  JOIN operator_districts d ON d.adcode = s.district_adcode
                  WHERE os.operator_id = o.id AND d.operator_id = :operator_id)))
ORDER BY o.name

-- name: set_home_district
UPDATE operators SET home_district = :adcode WHERE id = :id

-- name: set_disabled
UPDATE operators SET disabled_at = :now WHERE id = :id

-- name: scoped_sites
-- The site ids an account manages besides "every site" (geoservice.services.scope): its assigned sites and the
-- sites of its districts (a district admin). Always used as "(:all_sites OR x IN (scoped_sites))", so an admin's
-- query never evaluates it.
SELECT site_id FROM operator_sites WHERE operator_id = :operator_id
UNION SELECT s.id FROM sites s JOIN operator_districts d ON d.adcode = s.district_adcode
WHERE d.operator_id = :operator_id

-- name: site_in_scope
-- The same rule for a row of "sites" (the outer query's table, unaliased), as index lookups per row.
(:all_sites
 OR EXISTS (SELECT 1 FROM operator_sites os WHERE os.operator_id = :operator_id AND os.site_id = sites.id)
 OR EXISTS (SELECT 1 FROM operator_districts od WHERE od.operator_id = :operator_id
            AND od.adcode = sites.district_adcode))

-- name: operator_by_token
-- Looked up by the token's SHA-256: the token itself is never stored or compared.
{operator_select} WHERE o.id = (SELECT operator_id FROM operator_tokens WHERE token_sha256 = :hash AND revoked_at IS NULL)
  AND o.disabled_at IS NULL

-- name: operator_by_login
{operator_select} WHERE o.login = :login

-- name: password_of_login
-- A disabled account has no password as far as signing in goes (the same answer as a wrong one).
SELECT id, CASE WHEN disabled_at IS NULL THEN password_hash END, locked_at FROM operators WHERE login = :login

-- name: set_login
UPDATE operators SET login = :login WHERE id = :id

-- name: login_taken
SELECT id FROM operators WHERE login = :login AND id <> :id

-- name: set_password
UPDATE operators SET password_hash = :hash, failed_logins = 0, locked_at = NULL WHERE id = :id

-- name: clear_password
UPDATE operators SET password_hash = NULL WHERE id = :id

-- name: record_failed_login
-- Counted in the database, so every worker sees one count; the account locks at the threshold.
UPDATE operators SET failed_logins = failed_logins + 1,
    locked_at = CASE WHEN locked_at IS NULL AND failed_logins + 1 >= :threshold THEN :now ELSE locked_at END
WHERE id = :id
RETURNING failed_logins, locked_at

-- name: clear_failed_logins
UPDATE operators SET failed_logins = 0 WHERE id = :id AND failed_logins <> 0

-- name: unlock_operator
UPDATE operators SET failed_logins = 0, locked_at = NULL WHERE id = :id

-- name: operator_districts
SELECT adcode FROM operator_districts WHERE operator_id = :operator_id ORDER BY adcode

-- name: known_adcodes
SELECT adcode FROM districts WHERE adcode IN (:ids)

-- name: insert_operator_district
INSERT INTO operator_districts (operator_id, adcode) VALUES (:operator_id, :adcode) ON CONFLICT DO NOTHING

-- name: insert_session
INSERT INTO operator_sessions (operator_id, session_sha256, created_at, last_seen_at, expires_at)
VALUES (:operator_id, :hash, :now, :now, :expires)

-- name: session_by_hash
SELECT operator_id, created_at, last_seen_at, expires_at FROM operator_sessions WHERE session_sha256 = :hash

-- name: touch_session
UPDATE operator_sessions SET last_seen_at = :now WHERE session_sha256 = :hash

-- name: delete_session
DELETE FROM operator_sessions WHERE session_sha256 = :hash

-- name: delete_sessions_of
DELETE FROM operator_sessions WHERE operator_id = :operator_id

-- name: delete_expired_sessions
DELETE FROM operator_sessions WHERE expires_at <= :now OR last_seen_at <= :idle_before

-- name: upsert_setup_code
INSERT INTO operator_setup_codes (operator_id, code_sha256, created_at, expires_at)
VALUES (:operator_id, :hash, :now, :expires)
ON CONFLICT (operator_id) DO UPDATE SET code_sha256 = excluded.code_sha256, created_at = excluded.created_at,
    expires_at = excluded.expires_at

-- name: setup_code_of_login
SELECT c.operator_id, c.code_sha256, c.expires_at FROM operator_setup_codes c
JOIN operators o ON o.id = c.operator_id WHERE o.login = :login

-- name: delete_setup_code
DELETE FROM operator_setup_codes WHERE operator_id = :operator_id

-- name: existing_site_ids
SELECT id FROM sites WHERE id IN (:ids)

-- name: assigned_count
SELECT count(*) FROM operator_sites WHERE operator_id = :operator_id

-- name: assign_site
INSERT INTO operator_sites (operator_id, site_id, assigned_at) VALUES (:operator_id, :site_id, :now)
ON CONFLICT DO NOTHING

-- name: unassign_site
DELETE FROM operator_sites WHERE operator_id = :operator_id AND site_id = :site_id

-- name: owned_site_ids
SELECT id FROM sites WHERE id IN (:ids) AND {site_in_scope}

-- name: all_sites_count
SELECT count(*) FROM sites

-- name: search_site_ids
-- The managers' site search: in scope, by district and by a piece of the id or either name (case-insensitive).
SELECT id, count(*) OVER () FROM sites
WHERE {site_in_scope} AND (:any_district OR district_adcode = :district)
  AND (:any_text OR lower(id) LIKE :pattern OR lower(name_zh) LIKE :pattern OR lower(coalesce(name_en, '')) LIKE :pattern)
ORDER BY id LIMIT :limit OFFSET :offset

-- name: search_site_ids_count
SELECT count(*) FROM sites
WHERE {site_in_scope} AND (:any_district OR district_adcode = :district)
  AND (:any_text OR lower(id) LIKE :pattern OR lower(name_zh) LIKE :pattern OR lower(coalesce(name_en, '')) LIKE :pattern)

-- name: assignees_of
SELECT os.site_id, o.name FROM operator_sites os JOIN operators o ON o.id = os.operator_id
WHERE os.site_id IN (:ids) ORDER BY o.name

-- ---- verify requests -----------------------------------------------------------------------------------------

-- name: upsert_verify_request
INSERT INTO site_verify_requests (site_id, requested_by, requested_at) VALUES (:site_id, :actor, :now)
ON CONFLICT (site_id) DO UPDATE SET requested_by = excluded.requested_by, requested_at = excluded.requested_at

-- name: verify_requests_for
SELECT site_id, requested_by, requested_at FROM site_verify_requests WHERE site_id IN (:ids)

-- name: delete_verify_request
DELETE FROM site_verify_requests WHERE site_id = :site_id

-- name: insert_token
INSERT INTO operator_tokens (operator_id, token_sha256, label, created_at, site_id)
VALUES (:operator_id, :hash, :label, :now, :site_id)
RETURNING id

-- name: token_site
-- The one site an active token is limited to (NULL: not limited).
SELECT site_id FROM operator_tokens WHERE token_sha256 = :hash AND revoked_at IS NULL

-- name: list_tokens
SELECT id, label, created_at, revoked_at, site_id FROM operator_tokens WHERE operator_id = :operator_id
ORDER BY id DESC

-- name: revoke_all_tokens
UPDATE operator_tokens SET revoked_at = :now WHERE operator_id = :operator_id AND revoked_at IS NULL

-- name: revoke_token
UPDATE operator_tokens SET revoked_at = :now WHERE id = :id AND operator_id = :operator_id AND revoked_at IS NULL

-- ---- the audit trail -----------------------------------------------------------------------------------------

-- name: change_columns
id, site_id, actor, at, action, changes, version

-- name: site_history
SELECT {change_columns}, count(*) OVER () FROM site_changes WHERE site_id = :site_id
ORDER BY id DESC LIMIT :limit OFFSET :offset

-- name: site_history_count
SELECT count(*) FROM site_changes WHERE site_id = :site_id

-- name: changes_filter
-- The change log as a manager reads it: in scope, optionally by site, actor, district and [since, until).
(:all_sites OR site_id IN ({scoped_sites}))
  AND (:any_site OR site_id = :site_id) AND (:any_actor OR actor = :actor)
  AND (:any_district OR site_id IN (SELECT id FROM sites WHERE district_adcode = :district))
  AND (:any_since OR at >= :since) AND (:any_until OR at < :until)

-- name: recent_changes
SELECT {change_columns}, count(*) OVER () FROM site_changes WHERE {changes_filter}
ORDER BY id DESC LIMIT :limit OFFSET :offset

-- name: changes_count
SELECT count(*) FROM site_changes WHERE {changes_filter}

-- ---- couriers' reports ---------------------------------------------------------------------------------------

-- name: report_columns
id, site_id, type, amenity, note, lang, observed_at, received_at, resolved_at, resolved_by, resolution_note

-- name: insert_report
INSERT INTO site_reports (site_id, type, amenity, note, lang, observed_at, received_at, client_hash)
VALUES (:site_id, :type, :amenity, :note, :lang, :observed_at, :now, :client_hash)
RETURNING {report_columns}

-- name: forget_client_hashes
-- A client hash is kept only while it can count towards "may be closed".
UPDATE site_reports SET client_hash = NULL WHERE client_hash IS NOT NULL AND received_at < :before

-- name: get_report
SELECT {report_columns} FROM site_reports WHERE id = :id

-- name: reports_filter
-- The reports queue: in scope, open or all, optionally by site, district and kind.
(:all_sites OR site_id IN ({scoped_sites}))
  AND (:include_resolved OR resolved_at IS NULL)
  AND (:any_site OR site_id = :site_id) AND (:any_type OR type = :type)
  AND (:any_district OR site_id IN (SELECT id FROM sites WHERE district_adcode = :district))

-- name: list_reports
SELECT {report_columns}, count(*) OVER () FROM site_reports WHERE {reports_filter}
ORDER BY id DESC LIMIT :limit OFFSET :offset

-- name: count_reports
SELECT count(*) FROM site_reports WHERE {reports_filter}

-- name: resolve_report
UPDATE site_reports SET resolved_at = :now, resolved_by = :actor, resolution_note = :note
WHERE id = :id AND resolved_at IS NULL
RETURNING {report_columns}

-- name: unresolved_report_counts
SELECT site_id, count(*) FROM site_reports WHERE resolved_at IS NULL AND site_id IN (:ids) GROUP BY site_id

-- ---- live status ---------------------------------------------------------------------------------------------

-- name: live_status_columns
site_id, state, seats_free, capacity, posted_at, expires_at, posted_by

-- name: upsert_live_status
INSERT INTO site_live_status ({live_status_columns})
VALUES (:site_id, :state, :seats_free, :capacity, :posted_at, :expires_at, :posted_by)
ON CONFLICT (site_id) DO UPDATE SET state = excluded.state, seats_free = excluded.seats_free,
    capacity = excluded.capacity, posted_at = excluded.posted_at, expires_at = excluded.expires_at,
    posted_by = excluded.posted_by

-- name: live_statuses_for
SELECT {live_status_columns} FROM site_live_status WHERE site_id IN (:ids)

-- name: may_be_closed_reports
-- The one statement of the "may be closed" rule (live_views_for and PostGIS's nearest statement include it):
-- the reports r that count are unresolved "closed when I arrived" reports with a client hash, received after
-- `since` and by `at`, each after the operator last posted or cleared a live status (that confirms the site);
-- the site is marked when may_be_closed_enough holds over them (reports from enough distinct clients).
r.type = 'closed_on_arrival' AND r.resolved_at IS NULL
  AND r.client_hash IS NOT NULL AND r.received_at > :since AND r.received_at <= :at
  AND NOT EXISTS (SELECT 1 FROM site_live_status l WHERE l.site_id = r.site_id AND l.posted_at >= r.received_at)

-- name: may_be_closed_enough
count(DISTINCT r.client_hash) >= :min_reports

-- name: live_views_for
-- What the public answers say about these sites, in one trip: each site's stored live status (rows with a
-- state), and its "may be closed" mark (rows with a report count; the rule is may_be_closed_reports).
SELECT {live_status_columns}, NULL AS reports, NULL AS first_report FROM site_live_status WHERE site_id IN (:ids)
UNION ALL
SELECT r.site_id, NULL, NULL, NULL, NULL, NULL, NULL, count(DISTINCT r.client_hash), min(r.received_at)
FROM site_reports r
WHERE r.site_id IN (:ids) AND {may_be_closed_reports}
GROUP BY r.site_id
HAVING {may_be_closed_enough}

-- name: insert_change_at
-- The audit entry of a live-status post (no new site version: the status is not part of the edited record).
INSERT INTO site_changes (site_id, actor, at, action, changes, version)
VALUES (:site_id, :actor, :at, :action, :changes, NULL)
RETURNING id

-- name: get_secret
SELECT value FROM service_secrets WHERE name = :name

-- name: insert_secret
INSERT INTO service_secrets (name, value) VALUES (:name, :value) ON CONFLICT (name) DO NOTHING

-- ---- the holiday calendar ------------------------------------------------------------------------------------

-- name: delete_calendar_year
DELETE FROM calendar_days WHERE day >= :first AND day < :after

-- name: insert_calendar_day
INSERT INTO calendar_days (day, type, name_en, name_zh) VALUES (:day, :type, :name_en, :name_zh)

-- name: upsert_calendar_year
INSERT INTO calendar_years (year, source, loaded_at) VALUES (:year, :source, :now)
ON CONFLICT (year) DO UPDATE SET source = excluded.source, loaded_at = excluded.loaded_at

-- name: calendar_years
SELECT year FROM calendar_years

-- name: calendar_days
SELECT day, type, name_en, name_zh FROM calendar_days

-- ---- the change feed for partners ----------------------------------------------------------------------------

-- name: claim_feed_cursors
-- Takes the head row's lock until the transaction ends (the next writer waits here for the commit): cursors are
-- numbered last+1 .. last+:n and become visible in order (geoservice.services.feed).
UPDATE change_feed_head SET last = last + :n WHERE one = 1 RETURNING last

-- name: insert_feed_entry
INSERT INTO change_feed (seq, site_id, alert_id, kind, at, feature)
VALUES (:seq, :site_id, :alert_id, :kind, :at, :feature)

-- name: feed_page
SELECT seq, site_id, kind, at, feature, alert_id FROM change_feed WHERE seq > :after ORDER BY seq LIMIT :limit

-- name: feed_head
SELECT h.last, (SELECT f.at FROM change_feed f WHERE f.seq = h.last) FROM change_feed_head h WHERE h.one = 1

-- ---- webhooks for partners ------------------------------------------------------------------------------------

-- name: webhook_columns
id, url, created_by, created_at, delivered_through, batch_through, attempts, next_attempt_at, last_error,
last_success_at, (SELECT count(*) FROM webhook_dead_letters d WHERE d.webhook_id = webhooks.id AND d.replayed_at IS NULL)

-- name: insert_webhook
INSERT INTO webhooks (url, secret, created_by, created_at, delivered_through)
VALUES (:url, :secret, :created_by, :now, :through) RETURNING {webhook_columns}

-- name: webhooks_all
SELECT {webhook_columns} FROM webhooks ORDER BY id

-- name: webhook_by_id
SELECT {webhook_columns} FROM webhooks WHERE id = :id

-- name: delete_webhook
DELETE FROM webhooks WHERE id = :id

-- name: lease_webhook
-- One worker at a time sends to a hook: the lease is taken only when free or run out (a worker that died).
UPDATE webhooks SET lease_until = :until
WHERE id = :id AND (lease_until IS NULL OR lease_until < :now) RETURNING secret, url, delivered_through,
batch_through, attempts, next_attempt_at

-- name: webhooks_due
-- Hooks with something to send now: feed entries past their cursor (or an open batch) whose retry time has come,
-- or a dead letter an admin asked to replay.
SELECT id FROM webhooks
WHERE (lease_until IS NULL OR lease_until < :now)
  AND ((delivered_through < :head AND (next_attempt_at IS NULL OR next_attempt_at <= :now))
       OR EXISTS (SELECT 1 FROM webhook_dead_letters d WHERE d.webhook_id = webhooks.id
                  AND d.replay_requested_at IS NOT NULL))
ORDER BY id

-- name: open_webhook_batch
UPDATE webhooks SET batch_through = :through WHERE id = :id

-- name: webhook_delivered
UPDATE webhooks SET delivered_through = :through, batch_through = NULL, attempts = 0, next_attempt_at = NULL,
last_error = NULL, last_success_at = :now WHERE id = :id

-- name: webhook_failed
UPDATE webhooks SET attempts = :attempts, next_attempt_at = :next, last_error = :error WHERE id = :id

-- name: webhook_release
UPDATE webhooks SET lease_until = NULL WHERE id = :id

-- name: webhook_given_up
-- The batch moves to the dead letters and the cursor past it: later changes are not held up by one bad batch.
UPDATE webhooks SET delivered_through = :through, batch_through = NULL, attempts = 0, next_attempt_at = NULL,
last_error = :error WHERE id = :id

-- name: dead_letter_columns
id, webhook_id, first_seq, last_seq, attempts, last_error, failed_at, replay_requested_at, replayed_at

-- name: insert_dead_letter
INSERT INTO webhook_dead_letters (webhook_id, first_seq, last_seq, attempts, last_error, failed_at)
VALUES (:webhook_id, :first_seq, :last_seq, :attempts, :error, :now)

-- name: dead_letters_of
SELECT {dead_letter_columns} FROM webhook_dead_letters WHERE webhook_id = :webhook_id ORDER BY id

-- name: dead_letter_by_id
SELECT {dead_letter_columns} FROM webhook_dead_letters WHERE webhook_id = :webhook_id AND id = :id

-- name: request_replay
UPDATE webhook_dead_letters SET replay_requested_at = :now WHERE webhook_id = :webhook_id AND id = :id

-- name: replays_requested
SELECT {dead_letter_columns} FROM webhook_dead_letters
WHERE webhook_id = :webhook_id AND replay_requested_at IS NOT NULL ORDER BY id

-- name: replay_tried
UPDATE webhook_dead_letters SET replay_requested_at = NULL, replayed_at = :replayed_at,
last_error = coalesce(:error, last_error), attempts = attempts + 1 WHERE id = :id

-- name: feed_range
SELECT seq, site_id, kind, at, feature, alert_id FROM change_feed WHERE seq > :after AND seq <= :through
ORDER BY seq
-- ---- weather alerts (issue 14 item 1) ------------------------------------------------------------------------

-- name: alert_columns
id, type, level, districts, start_at, end_at, created_by, created_at

-- name: insert_alert
INSERT INTO alerts (type, level, districts, start_at, end_at, created_by, created_at)
VALUES (:type, :level, :districts, :start_at, :end_at, :created_by, :now)
RETURNING {alert_columns}

-- name: get_alert
SELECT {alert_columns} FROM alerts WHERE id = :id

-- name: alerts_overlapping
-- Alerts in force at some moment of [start, end).
SELECT {alert_columns} FROM alerts WHERE start_at < :end AND end_at > :start ORDER BY start_at, id

-- name: set_alert_end
UPDATE alerts SET end_at = :end_at WHERE id = :id RETURNING {alert_columns}

-- name: delete_alert
DELETE FROM alerts WHERE id = :id
