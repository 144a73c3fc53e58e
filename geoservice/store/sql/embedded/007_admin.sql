-- Issue 16 items 2-3 (district admins, the admin console), as postgis/009_admin.sql: disabled accounts, the
-- district an operator account belongs to (set when a district admin creates it), and union staff's requests
-- that an operator verify a site (one per site, cleared when the site is verified).

ALTER TABLE operators ADD COLUMN disabled_at TEXT;
ALTER TABLE operators ADD COLUMN home_district TEXT REFERENCES districts (adcode);

CREATE TABLE site_verify_requests (
    site_id TEXT PRIMARY KEY REFERENCES sites (id) ON DELETE CASCADE,
    requested_by TEXT NOT NULL,
    requested_at TEXT NOT NULL
);
