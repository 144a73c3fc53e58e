-- Issue 14 item 3 (webhooks for partners), as postgis/012_webhooks.sql. Times are ISO-8601 text in UTC.

-- A partner's endpoint. It is sent the change feed in order: delivered_through is the feed cursor delivered (or
-- dead-lettered) so far; batch_through fixes the open batch's end at its first attempt, so every retry of it
-- carries the same entries and idempotency key. secret signs the deliveries (HMAC-SHA256), so it is kept as
-- given, not hashed; it is never shown after registration. lease_until lets one delivery worker at a time send.
CREATE TABLE webhooks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    url TEXT NOT NULL,
    secret TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at TEXT NOT NULL,
    delivered_through INTEGER NOT NULL CHECK (delivered_through >= 0),
    batch_through INTEGER,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT,
    last_error TEXT,
    last_success_at TEXT,
    lease_until TEXT
);

-- A batch that failed max_attempts times: the feed range it held (the body is rebuilt from the feed, which is
-- append-only, so a replay sends the same entries under the same key) and why it failed. replay_requested_at is
-- set by an admin's replay and cleared when the worker has tried it; replayed_at when a replay succeeded.
CREATE TABLE webhook_dead_letters (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    webhook_id INTEGER NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    first_seq INTEGER NOT NULL,
    last_seq INTEGER NOT NULL,
    attempts INTEGER NOT NULL,
    last_error TEXT NOT NULL,
    failed_at TEXT NOT NULL,
    replay_requested_at TEXT,
    replayed_at TEXT
);
CREATE INDEX webhook_dead_letters_hook ON webhook_dead_letters (webhook_id, id);
