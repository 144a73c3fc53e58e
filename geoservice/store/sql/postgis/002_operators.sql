-- Operators' side: site status, accounts and tokens, the append-only audit trail, couriers' reports.

-- 'temporarily_closed' is an open-ended closure: no open intervals are materialised while it is set.
ALTER TABLE sites ADD COLUMN status text NOT NULL DEFAULT 'open'
    CHECK (status IN ('open', 'temporarily_closed'));

CREATE TABLE operators (
    id bigserial PRIMARY KEY,
    name text NOT NULL UNIQUE CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$'),
    role text NOT NULL CHECK (role IN ('operator', 'admin')),
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE operator_sites (
    operator_id bigint NOT NULL REFERENCES operators (id) ON DELETE CASCADE,
    site_id text NOT NULL REFERENCES sites (id) ON DELETE CASCADE,
    assigned_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (operator_id, site_id)
);
CREATE INDEX operator_sites_site ON operator_sites (site_id);

-- Tokens are stored only as the SHA-256 of the token (hex); the token itself is shown once and never kept.
-- A token is high-entropy random (256 bits), so an unsalted fast hash is enough: it cannot be guessed back.
CREATE TABLE operator_tokens (
    id bigserial PRIMARY KEY,
    operator_id bigint NOT NULL REFERENCES operators (id) ON DELETE CASCADE,
    token_sha256 text NOT NULL UNIQUE CHECK (token_sha256 ~ '^[0-9a-f]{64}$'),
    label text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz
);
CREATE INDEX operator_tokens_operator ON operator_tokens (operator_id);

-- Every change to a site: who, when, what (jsonb {field: {before, after}}), and the version it produced.
-- Append-only: the triggers below refuse UPDATE, DELETE and TRUNCATE. No foreign key, so the history
-- outlives the site.
CREATE TABLE site_changes (
    id bigserial PRIMARY KEY,
    site_id text NOT NULL,
    actor text NOT NULL,
    at timestamptz NOT NULL DEFAULT clock_timestamp(),
    action text NOT NULL,
    changes jsonb NOT NULL,
    version integer
);
CREATE INDEX site_changes_site ON site_changes (site_id, id);

CREATE FUNCTION site_changes_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'site_changes is append-only (% refused)', TG_OP;
END
$$;
CREATE TRIGGER site_changes_no_update_delete BEFORE UPDATE OR DELETE ON site_changes
    FOR EACH ROW EXECUTE FUNCTION site_changes_append_only();
CREATE TRIGGER site_changes_no_truncate BEFORE TRUNCATE ON site_changes
    FOR EACH STATEMENT EXECUTE FUNCTION site_changes_append_only();

-- Couriers' reports ("closed when I arrived", "amenity missing"). Nothing about the reporter is stored.
CREATE TABLE site_reports (
    id bigserial PRIMARY KEY,
    site_id text NOT NULL REFERENCES sites (id) ON DELETE CASCADE,
    type text NOT NULL CHECK (type IN ('closed_on_arrival', 'amenity_missing')),
    amenity text,
    note text CHECK (note IS NULL OR char_length(note) <= 500),
    lang text,
    observed_at timestamptz NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    resolved_at timestamptz,
    resolved_by text,
    resolution_note text
);
CREATE INDEX site_reports_site ON site_reports (site_id, id);
CREATE INDEX site_reports_open ON site_reports (site_id) WHERE resolved_at IS NULL;
