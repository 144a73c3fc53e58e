-- Issue 16 items 2-3 (district admins, the admin console), as embedded/007_admin.sql: disabled accounts, the
-- district an operator account belongs to (set when a district admin creates it), and union staff's requests
-- that an operator verify a site (one per site, cleared when the site is verified).

ALTER TABLE operators ADD COLUMN disabled_at timestamptz;
ALTER TABLE operators ADD COLUMN home_district text REFERENCES districts (adcode);

CREATE TABLE site_verify_requests (
    site_id text PRIMARY KEY REFERENCES sites (id) ON DELETE CASCADE,
    requested_by text NOT NULL,
    requested_at timestamptz NOT NULL
);
