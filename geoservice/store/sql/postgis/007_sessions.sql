-- Issue 16 (sign-in): login names and password hashes, the district_admin role with its districts, lockout,
-- server-side sessions and one-time setup codes. Only hashes are stored: a password's scrypt hash, a session
-- id's and a setup code's SHA-256.

ALTER TABLE operators DROP CONSTRAINT operators_role_check;
ALTER TABLE operators ADD CONSTRAINT operators_role_check CHECK (role IN ('operator', 'district_admin', 'admin'));
-- Case-folded (geoservice/passwords.py); NULL until the account gets one.
ALTER TABLE operators ADD COLUMN login text UNIQUE;
-- scrypt$n$r$p$salt$key; NULL: no password (token-only account, or reset and awaiting its setup code).
ALTER TABLE operators ADD COLUMN password_hash text CHECK (password_hash IS NULL OR password_hash LIKE 'scrypt$%');
ALTER TABLE operators ADD COLUMN failed_logins integer NOT NULL DEFAULT 0;
ALTER TABLE operators ADD COLUMN locked_at timestamptz;

-- The districts (adcodes) a district_admin looks after.
CREATE TABLE operator_districts (
    operator_id bigint NOT NULL REFERENCES operators (id) ON DELETE CASCADE,
    adcode text NOT NULL CHECK (adcode ~ '^[0-9]{6}$'),
    PRIMARY KEY (operator_id, adcode)
);

-- A signed-in browser: only the SHA-256 of the random session id in its cookie is kept.
CREATE TABLE operator_sessions (
    id bigserial PRIMARY KEY,
    operator_id bigint NOT NULL REFERENCES operators (id) ON DELETE CASCADE,
    session_sha256 text NOT NULL UNIQUE CHECK (session_sha256 ~ '^[0-9a-f]{64}$'),
    created_at timestamptz NOT NULL,
    last_seen_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL
);
CREATE INDEX operator_sessions_operator ON operator_sessions (operator_id);

-- One pending setup code per account (an admin's reset): its SHA-256 and when it stops working.
CREATE TABLE operator_setup_codes (
    operator_id bigint PRIMARY KEY REFERENCES operators (id) ON DELETE CASCADE,
    code_sha256 text NOT NULL UNIQUE CHECK (code_sha256 ~ '^[0-9a-f]{64}$'),
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL
);
