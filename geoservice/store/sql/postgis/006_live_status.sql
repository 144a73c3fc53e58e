-- Issue 14 (live status), as embedded/004_live_status.sql.

-- One row per site: the state its operator (or a device at the site) posted, in force from posted_at until
-- expires_at (exclusive). Clearing writes a status that expires when posted: posted_at stays the confirmation.
-- The nearest query tests "closed_now in force at t" per KNN candidate (a primary-key probe), inside the scan.
CREATE TABLE site_live_status (
    site_id text PRIMARY KEY REFERENCES sites (id) ON DELETE CASCADE,
    state text NOT NULL CHECK (state IN ('open', 'full', 'closed_now')),
    seats_free integer CHECK (seats_free IS NULL OR seats_free >= 0),
    capacity integer CHECK (capacity IS NULL OR capacity >= 1),
    posted_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    posted_by text NOT NULL DEFAULT '',
    CHECK (seats_free IS NULL OR capacity IS NULL OR seats_free <= capacity),
    CHECK (expires_at >= posted_at)
);
CREATE INDEX site_live_status_closed ON site_live_status (expires_at) WHERE state = 'closed_now';

-- Couriers' reports tell clients apart by a keyed hash of the client's address (never the address), kept only
-- while it can count towards "may be closed" (two hours; then set to NULL).
ALTER TABLE site_reports ADD COLUMN client_hash text;
CREATE INDEX site_reports_client ON site_reports (site_id, received_at) WHERE client_hash IS NOT NULL;

-- Secrets the service makes itself (the key of the client hash), created on first use.
CREATE TABLE service_secrets (name text PRIMARY KEY, value text NOT NULL);

-- A token may be limited to one site (a device at the site's door): it may then only post or clear that site's
-- live status. NULL: the account's full rights.
ALTER TABLE operator_tokens ADD COLUMN site_id text REFERENCES sites (id) ON DELETE CASCADE;
