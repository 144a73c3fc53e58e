-- Issue 14 item 3 (webhooks for partners), as embedded/010_webhooks.sql.

-- A partner's endpoint. It is sent the change feed in order: delivered_through is the feed cursor delivered (or
-- dead-lettered) so far; batch_through fixes the open batch's end at its first attempt, so every retry of it
-- carries the same entries and idempotency key. secret signs the deliveries (HMAC-SHA256), so it is kept as
-- given, not hashed; it is never shown after registration. lease_until lets one delivery worker at a time send.
CREATE TABLE webhooks (
    id bigserial PRIMARY KEY,
    url text NOT NULL,
    secret text NOT NULL,
    created_by text NOT NULL,
    created_at timestamptz NOT NULL,
    delivered_through bigint NOT NULL CHECK (delivered_through >= 0),
    batch_through bigint,
    attempts integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz,
    last_error text,
    last_success_at timestamptz,
    lease_until timestamptz
);

-- A batch that failed max_attempts times: the feed range it held (the body is rebuilt from the feed, which is
-- append-only, so a replay sends the same entries under the same key) and why it failed. replay_requested_at is
-- set by an admin's replay and cleared when the worker has tried it; replayed_at when a replay succeeded.
CREATE TABLE webhook_dead_letters (
    id bigserial PRIMARY KEY,
    webhook_id bigint NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    first_seq bigint NOT NULL,
    last_seq bigint NOT NULL,
    attempts integer NOT NULL,
    last_error text NOT NULL,
    failed_at timestamptz NOT NULL,
    replay_requested_at timestamptz,
    replayed_at timestamptz
);
CREATE INDEX webhook_dead_letters_hook ON webhook_dead_letters (webhook_id, id);
