-- Issue 14 item 3 (change feed for partners), as postgis/008_change_feed.sql. Times are ISO-8601 text in UTC.

-- One row per public change (a site added or changed by a load, an operator's edit, closure or verification, a
-- live-status post or clear, a refresh that flags or clears a site's hours problem), written in the same
-- transaction as the change. seq is the cursor; feature is the site's resulting public GeoJSON feature (NULL for
-- a removal). No foreign key: a removal's entry outlives its site. Kept forever (no retention job).
CREATE TABLE change_feed (
    seq INTEGER PRIMARY KEY,
    site_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    at TEXT NOT NULL,
    feature TEXT
);

-- The last cursor handed out. Writers take its row lock (UPDATE) as the last lock of their transaction and number
-- their entries from it, so cursors become visible in the order they were given (see geoservice.services.feed).
CREATE TABLE change_feed_head (
    one INTEGER PRIMARY KEY CHECK (one = 1),
    last INTEGER NOT NULL
);
INSERT INTO change_feed_head (one, last) VALUES (1, 0);
