-- Issue 14 item 3 (change feed for partners), as embedded/006_change_feed.sql.

-- One row per public change (a site added or changed by a load, an operator's edit, closure or verification, a
-- live-status post or clear, a refresh that flags or clears a site's hours problem), written in the same
-- transaction as the change. seq is the cursor; feature is the site's resulting public GeoJSON feature (NULL for
-- a removal). No foreign key: a removal's entry outlives its site. Kept forever (no retention job).
CREATE TABLE change_feed (
    seq bigint PRIMARY KEY,
    site_id text NOT NULL,
    kind text NOT NULL,
    at timestamptz NOT NULL,
    feature jsonb
);

-- The last cursor handed out. NOT a sequence: sequence values commit out of order (a transaction holding 10 can
-- commit after 11 is visible, and a reader at 11 would miss 10 forever). Writers take this row's lock (UPDATE) as
-- the last lock of their transaction and number their entries from it; the next writer waits for the commit, so
-- cursors become visible strictly in order (see geoservice.services.feed).
CREATE TABLE change_feed_head (
    one integer PRIMARY KEY CHECK (one = 1),
    last bigint NOT NULL
);
INSERT INTO change_feed_head (one, last) VALUES (1, 0);
