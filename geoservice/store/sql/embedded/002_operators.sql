-- Operators' side (SQLite): site status, accounts and tokens, the append-only audit trail, couriers' reports.
-- Same shapes as postgis/002_operators.sql; times are ISO-8601 text, `changes` is JSON text.

-- 'temporarily_closed' is an open-ended closure: no open intervals are materialised while it is set.
ALTER TABLE sites ADD COLUMN status TEXT NOT NULL DEFAULT 'open'
    CHECK (status IN ('open', 'temporarily_closed'));

CREATE TABLE operators (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL CHECK (role IN ('operator', 'admin')),
    created_at TEXT NOT NULL
);

CREATE TABLE operator_sites (
    operator_id INTEGER NOT NULL REFERENCES operators (id) ON DELETE CASCADE,
    site_id TEXT NOT NULL REFERENCES sites (id) ON DELETE CASCADE,
    assigned_at TEXT NOT NULL,
    PRIMARY KEY (operator_id, site_id)
);
CREATE INDEX operator_sites_site ON operator_sites (site_id);

-- Tokens are stored only as the SHA-256 of the token (hex); the token itself is never kept.
CREATE TABLE operator_tokens (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    operator_id INTEGER NOT NULL REFERENCES operators (id) ON DELETE CASCADE,
    token_sha256 TEXT NOT NULL UNIQUE CHECK (length(token_sha256) = 64),
    label TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL,
    revoked_at TEXT
);
CREATE INDEX operator_tokens_operator ON operator_tokens (operator_id);

-- Every change to a site; append-only (the triggers refuse UPDATE and DELETE).
CREATE TABLE site_changes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    site_id TEXT NOT NULL,
    actor TEXT NOT NULL,
    at TEXT NOT NULL,
    action TEXT NOT NULL,
    changes TEXT NOT NULL,
    version INTEGER
);
CREATE INDEX site_changes_site ON site_changes (site_id, id);
CREATE TRIGGER site_changes_no_update BEFORE UPDATE ON site_changes
BEGIN
    SELECT RAISE(ABORT, 'site_changes is append-only (UPDATE refused)');
END;
CREATE TRIGGER site_changes_no_delete BEFORE DELETE ON site_changes
BEGIN
    SELECT RAISE(ABORT, 'site_changes is append-only (DELETE refused)');
END;

-- Couriers' reports. Nothing about the reporter is stored.
CREATE TABLE site_reports (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    site_id TEXT NOT NULL REFERENCES sites (id) ON DELETE CASCADE,
    type TEXT NOT NULL CHECK (type IN ('closed_on_arrival', 'amenity_missing')),
    amenity TEXT,
    note TEXT CHECK (note IS NULL OR length(note) <= 500),
    lang TEXT,
    observed_at TEXT NOT NULL,
    received_at TEXT NOT NULL,
    resolved_at TEXT,
    resolved_by TEXT,
    resolution_note TEXT
);
CREATE INDEX site_reports_site ON site_reports (site_id, id);
CREATE INDEX site_reports_open ON site_reports (site_id) WHERE resolved_at IS NULL;
