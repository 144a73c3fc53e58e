-- Issue 16 (sign-in), as postgis/007_sessions.sql: login names and password hashes, the district_admin role
-- with its districts, lockout, server-side sessions and one-time setup codes. Only hashes are stored: a
-- password's scrypt hash, a session id's and a setup code's SHA-256.
-- foreign_keys: off
-- (SQLite cannot change a CHECK constraint: the operators table is rebuilt. The runner turns foreign keys off
-- for this migration, as SQLite's table-rebuild procedure requires, so that dropping the old table does not
-- cascade to operator_sites and operator_tokens, and checks them with foreign_key_check before committing.)

CREATE TABLE operators_new (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL CHECK (role IN ('operator', 'district_admin', 'admin')),
    created_at TEXT NOT NULL,
    -- Case-folded (geoservice/passwords.py); NULL until the account gets one.
    login TEXT UNIQUE,
    -- scrypt$n$r$p$salt$key; NULL: no password (token-only account, or reset and awaiting its setup code).
    password_hash TEXT,
    failed_logins INTEGER NOT NULL DEFAULT 0,
    locked_at TEXT
);
INSERT INTO operators_new (id, name, role, created_at) SELECT id, name, role, created_at FROM operators;
DROP TABLE operators;
ALTER TABLE operators_new RENAME TO operators;

-- The districts (adcodes) a district_admin looks after.
CREATE TABLE operator_districts (
    operator_id INTEGER NOT NULL REFERENCES operators (id) ON DELETE CASCADE,
    adcode TEXT NOT NULL CHECK (length(adcode) = 6),
    PRIMARY KEY (operator_id, adcode)
);

-- A signed-in browser: only the SHA-256 of the random session id in its cookie is kept.
CREATE TABLE operator_sessions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    operator_id INTEGER NOT NULL REFERENCES operators (id) ON DELETE CASCADE,
    session_sha256 TEXT NOT NULL UNIQUE CHECK (length(session_sha256) = 64),
    created_at TEXT NOT NULL,
    last_seen_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
CREATE INDEX operator_sessions_operator ON operator_sessions (operator_id);

-- One pending setup code per account (an admin's reset): its SHA-256 and when it stops working.
CREATE TABLE operator_setup_codes (
    operator_id INTEGER PRIMARY KEY REFERENCES operators (id) ON DELETE CASCADE,
    code_sha256 TEXT NOT NULL UNIQUE CHECK (length(code_sha256) = 64),
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
